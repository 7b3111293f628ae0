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
// Configuration is explicit: a KeyConfig (formats, peppers, scopes, clock)
// is given to the store and to the middleware alike; nothing is learned
// from a store's type, so a decorated store answers the same.
//
// Every package of the module follows one style. A constructor is New or
// NewX; it takes what it needs as arguments, its settings as one struct
// (XConfig; Messages for an error style), and returns an error that names
// the field to change. A zero field means its documented default. Hooks
// are func fields named OnEvent; loggers are *slog.Logger fields named
// Logger; clocks are func() time.Time fields named Clock; durations are
// time.Duration fields named for what they measure (TTL, FlushTimeout,
// Interval). A store's optional abilities are interfaces (Manager,
// UsageStore, Rehasher). One exception, as in http.ServeMux: a route guard
// (Require) naming an undeclared scope panics when the route is set up.
//
// # Status codes
//
// 401 with WWW-Authenticate for a missing, malformed, unknown, revoked,
// expired or rolled-over credential; 403 for a valid key without the scope
// or owner the request needs; 503 with Retry-After when the store fails:
// never 401, and never the handler. The body never says why; Logger and
// OnRejected get the Reason.
//
// # Around the core
//
// Package presets reproduces the Stairoids (v1, v2), Stepsies, Stax.ai and
// Straply APIs; package cache puts a verification cache in front of a
// remote store; package usage counts requests per key; package storetest is
// the store contract suite; the pgstore module keeps keys in PostgreSQL.
package apikey
