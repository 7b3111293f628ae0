// Package pgstore keeps apikey keys in PostgreSQL, for servers that run
// many replicas against one database. It is its own module, so a program
// that imports only apikey never downloads a database driver.
//
//	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
//	poolCfg, err := pgstore.PoolConfig(os.Getenv("APIKEY_DATABASE_URL"))
//	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
//	store, err := pgstore.New(pool, pgstore.Config{Keys: keys})
//	if err := store.Migrate(ctx); err != nil { … }
//
//	c, err := cache.New(store, cache.Config{TTL: 30 * time.Second})
//	go store.Listen(ctx, pgstore.ListenConfig{
//		OnInvalidate: func(inv pgstore.Invalidation) {
//			c.Invalidate(inv.Digest)
//			c.InvalidateKey(inv.KeyID)
//		},
//		OnSync: c.Synced,
//		OnGap:  c.Purge,
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
//   - RecordUsage files a batch under its flush id in one INSERT … FROM
//     unnest(…) statement, once: a retry of a flush that committed although
//     its caller gave up adds nothing. It takes no lock on apikey_keys.
//   - Times come from the KeyConfig's Clock, are stored at microsecond
//     precision and are returned in UTC.
//
// # Schema
//
// Migrate creates and upgrades the schema to SchemaVersion: the tables
// apikey_keys, apikey_invalidations (the invalidation log),
// apikey_usage, apikey_usage_deltas and apikey_usage_flushes, the triggers
// that log changes, and the bookkeeping table apikey_schema_migrations. It
// is versioned, idempotent and safe to run from several replicas at once
// (it holds a transaction-level advisory lock). The same schema is in
// Migrations as one SQL file per version, for psql, golang-migrate or
// goose. The tables are created in the first schema of the connection's
// search_path; to keep them in a schema of their own, set search_path in
// the connection string (…?search_path=auth).
//
// Digests, never secrets, are stored: the digest column holds SHA-256 or
// HMAC-SHA-256 of the key, and pepper_id names the pepper of an HMAC. A
// key's limits are the jsonb column limits (a JSON array of apikey.Limit,
// NULL when none) and its roll chain the column lineage (schema version
// 6); the middleware reads both with the key, in the same lookup.
//
// # Invalidation across replicas
//
// Every statement that inserts, updates or deletes rows of apikey_keys,
// through this package or by plain SQL (UPDATE apikey_keys SET revoked_at
// = now() WHERE id = …, the natural move during an incident), fires a
// trigger that writes one row per key and digest to apikey_invalidations
// and notifies the channel apikey_invalidate (the constant Channel), in
// the same transaction: a change is published if and only if it commits.
// Writers of the log take turns until they commit (an advisory lock), so
// the log's order is its commit order. The notification's payload is
// "<key id>:<digest in lowercase hex>", for example
//
//	key_01jd5y4m2pf3qx8v9b7c6n0rtw:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
//
// Store.Listen follows the log: it reads the rows after its position when
// a notification arrives and at least every ListenConfig.PollInterval
// (500 ms), hands each to ListenConfig.OnInvalidate, and then calls
// ListenConfig.OnSync. A replica whose connection dropped (a restart of
// PostgreSQL, pg_terminate_backend, a network fault) reads what it missed
// once it is back; the log keeps rows for an hour, and only a replica cut
// off for longer forgets everything (ListenConfig.OnGap). Behind a pooler
// in transaction mode, where LISTEN does not work, give Listen a direct
// connection (ListenConfig.ConnConfig) or let it poll through the pool
// (ListenConfig.Poll).
//
// # The model, and its bounds
//
// A replica serves a key from its cache (package cache) without asking
// the database while the key's entry is younger than the cache's TTL and
// the feed has synced within cache.Config.MaxFeedLag (1 s). So:
//
//   - Revocation, while the database answers: a revoked key is rejected by
//     every replica once its feed has read the log, milliseconds after the
//     commit; if the feed is down or silent, cached keys are checked with
//     the database again after MaxFeedLag, so the bound is about a second
//     however the feed failed.
//   - Revocation, while this replica cannot reach the database:
//     cache.Config.StaleIfError (5 s) bounds how long it keeps accepting a
//     key it last knew valid; it cannot learn of a revocation before then.
//   - Database load: each replica asks for each active key once per TTL
//     (with jitter, and refreshing hot keys ahead of expiry), so N replicas
//     and K active keys cost N·K/TTL lookups a second, not K/TTL: the load
//     grows with the replica count, and a key used less often than once per
//     TTL on a replica misses on every request there. Routing requests by
//     key (key affinity: a hash of the Authorization header in the load
//     balancer) brings it to K/TTL and makes hits likelier.
//   - Read replicas: do not point the store's pool at a PostgreSQL read
//     replica. A replica that lags replays a revocation late; a lookup
//     made there just after the primary's notification re-caches the
//     revoked key for a whole TTL.
//   - Network faults: make the pool with PoolConfig. pgx gives a
//     connection that timed out up to 15 s to close, holding its pool slot
//     meanwhile; PoolConfig bounds that to about a second, so a replica
//     answers again within seconds of a network hang's end.
//   - Usage: each server counts in memory and flushes every interval
//     (package usage); a graceful stop loses nothing and a retried flush is
//     never counted twice, but a process that is killed (SIGKILL, a crash,
//     out of memory) loses what it counted since its last flush: at most one
//     flush interval of its traffic.
package pgstore
