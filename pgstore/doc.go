// Package pgstore keeps apikey keys in PostgreSQL, for servers that run
// many replicas against one database. It is its own module, so a program
// that imports only apikey never downloads a database driver.
//
//	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
//	pool, err := pgxpool.New(ctx, os.Getenv("APIKEY_DATABASE_URL"))
//	store, err := pgstore.New(pool, pgstore.Config{Keys: keys})
//	if err := store.Migrate(ctx); err != nil { … }
//
//	c, err := cache.New(store, cache.Config{TTL: 30 * time.Second})
//	go store.Listen(ctx, pgstore.ListenConfig{
//		OnInvalidate: func(inv pgstore.Invalidation) {
//			c.Invalidate(inv.Digest)
//			c.InvalidateKey(inv.KeyID)
//		},
//		OnReconnect: c.Purge,
//	})
//	mw, err := apikey.New(apikey.Config{Keys: keys, Store: c})
//	http.ListenAndServe(addr, mw.Handler(mux))
//
// (cache is the package github.com/keygate/apikey/cache.) The store, the
// cache and the middleware are each configured the apikey way: a
// constructor takes what it needs and one Config struct, a zero field
// means its documented default, and an error wraps apikey.ErrInvalid and
// names the field to change. Give the store and the middleware the same
// apikey.KeyConfig.
//
// # What it implements
//
// Store implements apikey.KeyStore, apikey.Manager, apikey.UsageStore and
// apikey.Rehasher, and passes the storetest contract suite:
//
//   - Lookup is one indexed query by digest, bounded by
//     Config.LookupTimeout (default 2 s): the middleware sets no deadline,
//     a store that blocks sets its own. An unknown digest returns
//     apikey.ErrNotFound (the middleware answers 401); every other error,
//     such as a lost connection or the timeout, is returned wrapped, so
//     the middleware answers 503 and never calls the protected handler.
//   - Create, Get, List, Revoke and Roll follow apikey.Manager. Create
//     makes keys with apikey.KeyConfig.NewKey and Roll with
//     apikey.KeyConfig.Successor, so keys follow the same rules as in every
//     other store. Roll is one transaction that locks the old key's row
//     (SELECT … FOR UPDATE), so of two concurrent rolls of one key exactly
//     one succeeds; the other fails with apikey.ErrAlreadyRolled.
//   - List filters in SQL by apikey.Key.State's rule: revoked wins; past
//     its expiry a rolled key is apikey.StateRolled and any other
//     apikey.StateExpired; otherwise the key is active.
//   - RecordUsage applies a whole batch in one UPDATE … FROM unnest(…)
//     statement; records of unknown keys are skipped.
//   - Times come from the KeyConfig's Clock, are stored at microsecond
//     precision and are returned in UTC.
//
// # Schema
//
// Migrate creates and upgrades the schema: the table apikey_keys and the
// bookkeeping table apikey_schema_migrations. It is versioned, idempotent
// and safe to run from several replicas at once (it holds a transaction-level
// advisory lock). The tables are created in the first schema of the
// connection's search_path; to keep them in a schema of their own, set
// search_path in the connection string (…?search_path=auth).
//
// Digests, never secrets, are stored: the digest column holds SHA-256 or
// HMAC-SHA-256 of the key, and pepper_id names the pepper of an HMAC.
//
// # Invalidation across replicas
//
// Replicas that cache keys (package cache) learn of changes made elsewhere
// through PostgreSQL's LISTEN/NOTIFY. Revoke, Roll and Rehash publish a
// notification on the channel apikey_invalidate (the constant Channel) in
// the same transaction as the change, so it is delivered if and only if the
// change commits. The payload is "<key id>:<digest in lowercase hex>", for
// example
//
//	key_01jd5y4m2pf3qx8v9b7c6n0rtw:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
//
// Rehash publishes two, one for the key's old digest and one for its new
// one. Store.Listen receives them and hands each, as an Invalidation, to
// ListenConfig.OnInvalidate. Notifications sent while a
// listener is disconnected are lost; ListenConfig.OnReconnect tells the
// caller when that may have happened (purge the cache then), and the
// cache's TTL bounds staleness meanwhile. Listen reconnects by itself, with
// backoff, and pings an idle connection to notice a server that went away.
package pgstore
