// Package pgstore keeps apikey keys in PostgreSQL, for servers that run
// many replicas against one database. It is its own module, so a program
// that imports only apikey never downloads a database driver.
//
//	pool, err := pgxpool.New(ctx, os.Getenv("APIKEY_DATABASE_URL"))
//	store := pgstore.New(pool, apikey.StoreConfig{})
//	if err := store.Migrate(ctx); err != nil { … }
//
//	cache := apikey.NewCache(store, apikey.CacheTTL(30*time.Second))
//	go store.Listen(ctx, func(inv pgstore.Invalidation) {
//		cache.Invalidate(inv.Digest)
//		cache.InvalidateKey(inv.KeyID)
//	}, pgstore.OnReconnect(cache.Purge))
//	handler := apikey.Middleware(cache)(mux)
//
// # What it implements
//
// Store implements apikey.KeyStore, apikey.Manager, apikey.UsageStore,
// apikey.Rehasher and apikey.Configured, and passes the storetest contract
// suite:
//
//   - Lookup is one indexed query by digest. An unknown digest returns
//     apikey.ErrNotFound (the middleware answers 401); every other error,
//     such as a lost connection, is returned wrapped, so the middleware
//     answers 503 and never calls the protected handler.
//   - Create, Get, List, Revoke and Roll follow apikey.Manager. Roll is one
//     transaction that locks the old key's row (SELECT … FOR UPDATE), so of
//     two concurrent rolls of one key exactly one succeeds; the other fails
//     with apikey.ErrAlreadyRolled.
//   - RecordUsage applies a whole batch in one UPDATE … FROM unnest(…)
//     statement; records of unknown keys are skipped.
//   - Times come from the StoreConfig's clock, are stored at microsecond
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
// Replicas that cache keys (apikey.Cache) learn of changes made elsewhere
// through PostgreSQL's LISTEN/NOTIFY. Revoke, Roll and Rehash publish a
// notification on the channel apikey_invalidate (the constant Channel) in
// the same transaction as the change, so it is delivered if and only if the
// change commits. The payload is "<key id>:<digest in lowercase hex>", for
// example
//
//	key_01jd5y4m2pf3qx8v9b7c6n0rtw:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
//
// Rehash publishes two, one for the key's old digest and one for its new
// one. Store.Listen receives them and hands each to a callback as an
// Invalidation. Notifications sent while a listener is disconnected are
// lost; the OnReconnect option tells the caller when that may have happened
// (purge the cache then), and the cache's TTL bounds staleness meanwhile.
package pgstore
