package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// Every command, end to end, against a key file and a real PostgreSQL:
// what an operator does to a key in its life.
func TestLifecycle(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store := b.open(t)
			tl := newTool(t, store)

			// migrate: the schema on PostgreSQL, nothing for a file.
			r := tl.run("", "migrate")
			require.Equal(t, 0, r.code, r.stderr)

			// create: the secret alone on stdout, the rest on stderr.
			secret := tl.secret("create", "--name", "reporting", "--owner", "acme",
				"--scope", "read", "--scope", "write", "--env", "live", "--expires", "90d")
			other := tl.secret("create", "--name", "ci", "--owner", "globex", "--scope", "read,admin", "--env", "test")
			require.True(t, strings.HasPrefix(other, "kg_test_"))

			// list --json: both keys, oldest first; filters and pages.
			var keys []apikey.Key
			tl.okJSON(&keys, "list", "--json")
			require.Len(t, keys, 2)
			k := keys[0]
			assert.Equal(t, "reporting", k.Name)
			assert.Equal(t, "acme", k.Owner)
			assert.Equal(t, []apikey.Scope{"read", "write"}, k.Scopes)
			assert.Equal(t, apikey.EnvLive, k.Environment)
			assert.WithinDuration(t, time.Now().Add(90*24*time.Hour), k.ExpiresAt, time.Minute)
			assert.Equal(t, secret[:len("kg_live_")]+"…"+secret[len(secret)-4:], k.Hint)
			id, otherID := k.ID, keys[1].ID

			tl.okJSON(&keys, "list", "--owner", "acme", "--json")
			require.Len(t, keys, 1)
			assert.Equal(t, id, keys[0].ID)
			tl.okJSON(&keys, "list", "--env", "test", "--json")
			require.Len(t, keys, 1)
			assert.Equal(t, otherID, keys[0].ID)
			tl.okJSON(&keys, "list", "--limit", "1", "--json")
			require.Len(t, keys, 1)
			assert.Equal(t, id, keys[0].ID)
			tl.okJSON(&keys, "list", "--limit", "1", "--after", id, "--json")
			require.Len(t, keys, 1)
			assert.Equal(t, otherID, keys[0].ID)
			tl.okJSON(&keys, "list", "--owner", "nobody", "--json")
			assert.Empty(t, keys)
			table := tl.ok("list")
			assert.Contains(t, table, "ID")
			assert.Contains(t, table, id)
			assert.Contains(t, table, "read,write")

			// show
			assert.Equal(t, k, tl.key(id))
			detail := tl.ok("show", id)
			assert.Contains(t, detail, "reporting")
			assert.Contains(t, detail, "active")

			// update: add a scope (no question), replace the scopes (one
			// removed: confirmed with --yes), rename, expire never.
			tl.ok("update", id, "--add-scope", "admin")
			assert.Equal(t, []apikey.Scope{"read", "write", "admin"}, tl.key(id).Scopes)
			r = tl.run("", "update", id, "--scopes", "read,admin")
			assert.Equal(t, 1, r.code, "removing a scope without a terminal or --yes is refused")
			assert.Equal(t, []apikey.Scope{"read", "write", "admin"}, tl.key(id).Scopes)
			var updated apikey.Key
			tl.okJSON(&updated, "update", id, "--scopes", "read,admin", "--name", "reports", "--expires", "never", "--yes", "--json")
			assert.Equal(t, []apikey.Scope{"read", "admin"}, updated.Scopes)
			assert.Equal(t, "reports", updated.Name)
			assert.True(t, updated.ExpiresAt.IsZero())
			assert.Equal(t, updated, tl.key(id))

			// disable and enable
			tl.ok("disable", id, "--yes")
			assert.True(t, tl.key(id).Disabled)
			tl.okJSON(&keys, "list", "--state", "disabled", "--json")
			require.Len(t, keys, 1)
			assert.Equal(t, id, keys[0].ID)
			tl.ok("enable", id)
			assert.False(t, tl.key(id).Disabled)
			tl.okJSON(&keys, "list", "--state", "active", "--json")
			assert.Len(t, keys, 2)

			// usage, as recorded by a server
			var u keyUsage
			tl.okJSON(&u, "usage", id, "--json")
			assert.Equal(t, keyUsage{ID: id}, u)
			assert.Contains(t, tl.ok("usage", id), "never")
			lastUsed := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
			b.recordUsage(t, store, id, 3, lastUsed)
			tl.okJSON(&u, "usage", id, "--json")
			assert.Equal(t, keyUsage{ID: id, Requests: 3, LastUsedAt: lastUsed}, u)
			assert.Contains(t, tl.ok("usage", id), "1h ago")
			tl.okJSON(&keys, "list", "--unused-days", "1", "--json")
			require.Len(t, keys, 1, "used an hour ago: only the other key")
			assert.Equal(t, otherID, keys[0].ID)

			// roll: the successor's secret alone on stdout
			rolled := tl.secret("roll", id, "--grace", "1h", "--yes")
			assert.NotEqual(t, secret, rolled)
			old := tl.key(id)
			require.NotEmpty(t, old.RolledTo)
			successor := tl.key(old.RolledTo)
			assert.Equal(t, id, successor.RolledFrom)
			assert.Equal(t, "reports", successor.Name)
			assert.Equal(t, successor.Hint, rolled[:len("kg_live_")]+"…"+rolled[len(rolled)-4:])
			assert.Equal(t, apikey.StateActive, old.State(time.Now()), "in its grace period")

			// revoke
			tl.ok("revoke", successor.ID, "--yes")
			revoked := tl.key(successor.ID)
			assert.Equal(t, apikey.StateRevoked, revoked.State(time.Now()))
			tl.okJSON(&keys, "list", "--state", "revoked", "--json")
			require.Len(t, keys, 1)
			assert.Equal(t, successor.ID, keys[0].ID)
			r = tl.run("", "update", successor.ID, "--name", "again")
			assert.Equal(t, 1, r.code, "a revoked key cannot change")

			// audit: PostgreSQL only
			if b.name == "file" {
				r := tl.run("", "audit")
				assert.Equal(t, 1, r.code)
				assert.Contains(t, r.stderr, "PostgreSQL")
			} else {
				// An event as the API Keys page records it.
				page := manage.Event{At: time.Now().UTC().Truncate(time.Microsecond), Actor: "user_42", Action: "update",
					KeyID: otherID, Owner: "globex", Remote: "192.0.2.7", Detail: "scopes: read → read admin"}
				require.NoError(t, openPG(t, store).Record(context.Background(), page))
				var events []manage.Event
				tl.okJSON(&events, "audit", "--json")
				require.NotEmpty(t, events)
				assert.Equal(t, page, events[0], "newest first")
				var actions []string
				for _, e := range events[1:] {
					assert.Equal(t, "cli:ops", e.Actor)
					actions = append(actions, e.Action+" "+e.KeyID)
				}
				assert.Equal(t, []string{
					"revoke " + successor.ID, "roll " + id, "enable " + id, "disable " + id,
					"update " + id, "update " + id, "create " + otherID, "create " + id,
				}, actions)
				tl.okJSON(&events, "audit", "--key", otherID, "--json")
				assert.Len(t, events, 2)
				tl.okJSON(&events, "audit", "--owner", "acme", "--limit", "2", "--json")
				assert.Len(t, events, 2)
				table := tl.ok("audit", "--key", otherID)
				assert.Contains(t, table, "user_42")
				assert.Contains(t, table, "192.0.2.7")
			}

			// check: offline
			assert.Equal(t, 0, tl.run(secret+"\n", "check", "-").code)

			tl.noSecretInStderr(secret, other, rolled)
		})
	}
}
