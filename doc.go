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
// A KeyConfig (formats, peppers, scopes, clock) is given to the store and
// the middleware alike; nothing is learned from a store's type. Every
// package follows one style: New or NewX takes its dependencies and one
// XConfig struct, a zero field means its documented default, and its error
// names the field to change; hooks are OnEvent funcs, loggers Logger,
// clocks Clock. A store's optional abilities are interfaces (Manager,
// UsageStore, Rehasher). As in http.ServeMux, Require naming an
// undeclared scope panics when the route is set up.
//
// # Status codes
//
// 401 with WWW-Authenticate for a missing, malformed, unknown, revoked,
// disabled, expired or rolled-over credential; 403 for a valid key without
// the scope or owner the request needs; 429 with Retry-After and the
// RateLimit fields when a limit of the key is spent (Config.Limiter); 503
// with Retry-After when the store fails: never 401, and never the handler.
// The body never says why; Logger and OnRejected get the Reason.
//
// # Around the core
//
// Package presets reproduces the Stairoids (v1, v2), Stepsies, Stax.ai and
// Straply APIs; package cache puts a verification cache in front of a
// remote store; package usage counts requests per key; package manage
// serves the API Keys page and its JSON API; package limit enforces rate
// limits, quotas and credits in process, the redislimit module across
// servers; package storetest is the store contract suite; the pgstore
// module keeps keys in PostgreSQL.
package apikey
