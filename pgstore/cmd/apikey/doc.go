// Command apikey is the operator's tool for the keys of a
// github.com/keygate/apikey server: it creates, lists, changes, rolls and
// revokes keys in the server's store, PostgreSQL (package pgstore) or a
// key file (apikey.NewMemoryStore), reads their usage and the audit log,
// applies pgstore's migrations, and tells offline whether a string is one
// of our keys.
//
//	cd pgstore/cmd/apikey && go install .    (from a clone of the repository)
//
//	export APIKEY_STORE=postgres://apikey@db.internal/apikey
//	apikey list --owner acme
//	apikey usage key_0mz3…
//	apikey revoke key_0mz3…
//
// # Configuration
//
// Flags come after the command (apikey list --owner acme); the common
// ones may also come before it (apikey --store … list).
//
//	--store URL          postgres://… or postgresql://… (pgstore), file:/path/keys.json
//	                     or a bare path (a key file); default $APIKEY_STORE
//	--format NAME        the key format: default, stairoids-v1, stairoids-v2, stepsies,
//	                     stax, straply; default $APIKEY_FORMAT, else default
//	--declared-scopes L  declare the scopes keys may hold (read,write,admin); default
//	                     $APIKEY_SCOPES, else the preset's, else any well-formed scope
//	--timeout D          bounds every store call; default 10s
//
// The key configuration must be the server's: the same format and the
// same peppers, which come from $APIKEY_PEPPERS, a comma-separated list of
// id:base64 pairs (at least 32 bytes each), the current pepper first:
//
//	APIKEY_PEPPERS=p2025b:q8V…=,p2025a:Zr1…=
//
// apikey pepper makes a new one. The actor recorded in the audit log for
// the tool's own actions is $APIKEY_ACTOR, else "cli:" and $USER.
//
// # Commands
//
//	create    --name N [--owner O] [--scope S]… [--env live|test] [--expires T]
//	list      [--owner O] [--state S] [--env E] [--unused-days N] [--limit N] [--after ID] [--json]
//	show      ID [--json]
//	update    ID [--name N] [--scopes L] [--add-scope S]… [--remove-scope S]… [--expires T|never] [--yes] [--json]
//	roll      ID [--grace 24h] [--yes]
//	revoke    ID [--yes]
//	disable   ID [--yes]
//	enable    ID
//	usage     ID [--json]
//	audit     [--key ID] [--owner O] [--limit N] [--json]      (PostgreSQL only)
//	migrate   [--print]
//	check     KEY|-                                           (offline)
//	pepper    [--id ID]
//	help      [COMMAND]
//
// Every command takes --help. A secret (create, roll) and a pepper
// (pepper) are written alone, one line, to standard output and nowhere
// else; everything else the tool says goes to standard error, so that
// apikey create … > secret.txt keeps the secret out of the terminal.
// --json writes keys in apikey.Key's JSON form, audit events in
// manage.Event's. Times are shown in UTC. Expiry times are RFC 3339
// (2026-01-31T00:00:00Z), a date (2026-01-31), or a duration from now
// (90d, 36h).
//
// revoke, roll, disable and an update that removes scopes ask for
// confirmation on standard error and read the answer from standard input;
// when standard input is not a terminal they refuse, unless --yes is
// given.
//
// # Exit codes
//
//	0  success
//	1  an error the operator can fix: an unknown key ID, a key that cannot
//	   change (revoked, rolled), a refused confirmation, a key that is not
//	   ours (check), a missing schema (run apikey migrate)
//	2  a usage error: an unknown command or flag, a missing or extra
//	   argument, a bad flag value or environment variable
//	3  the store is unreachable or failing: the database is down, a call
//	   took longer than --timeout, the key file is locked by a running
//	   server or cannot be read or written
package main
