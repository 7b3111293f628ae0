// Package apikey authenticates net/http requests with API keys.
//
// The middleware reads "Authorization: Bearer <key>", checks the key's
// format offline (prefix, length, alphabet, checksum), digests it (SHA-256,
// or HMAC-SHA-256 under a server-side pepper), looks the digest up in a
// KeyStore, checks the key's state, owner and scopes, and attaches the key
// to the request context: about the cost of one hash and one map lookup.
// A credential the format rejects never reaches the store.
//
//	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
//	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
//	key, secret, err := store.Create(ctx, apikey.KeySpec{Name: "reporting"})
//	// show secret.Reveal() to its owner, once; the store keeps a digest
//
//	mw, err := apikey.New(apikey.Config{Keys: keys, Store: store})
//	mux.Handle("GET /v1/reports", mw.Require("read")(reports))
//	http.ListenAndServe(addr, mw.Handler(mux))
//
// # One shape
//
// Configuration is explicit and travels with what uses it. A KeyConfig
// (formats, peppers, scopes, clock) is given to the store and to the
// middleware alike; nothing is learned from a store's type, so a store
// wrapped in any decorator answers the same.
//
// Every package of the module follows one style. A constructor is New or
// NewX; it takes what it needs as arguments and its settings as one XConfig
// struct, and returns an error that names the field to change. A zero
// field means its documented default. Hooks are func fields named OnEvent;
// clocks are func() time.Time fields named Clock; durations are
// time.Duration fields named for what they bound (TTL, Timeout, Interval).
// A store's optional abilities are small interfaces (Manager, UsageStore,
// Rehasher).
//
// # Status codes
//
// 401 with WWW-Authenticate for a missing, duplicated, oversized,
// malformed, unknown, revoked, expired or rolled-over credential; 403 for a
// valid key without the scope or owner the request needs; 503 with
// Retry-After when the store fails, times out or panics: never 401 for a
// store fault, and the protected handler is never called. The body never
// says why; Config.Logger and Config.OnRejected get the Reason.
//
// # Around the core
//
// Package presets reproduces the Stairoids (v1, v2), Stepsies, Stax.ai and
// Straply APIs; package cache puts a verification cache in front of a
// remote store; package usage counts requests per key; package storetest is
// the store contract suite; the pgstore module keeps keys in PostgreSQL.
package apikey
