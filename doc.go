// Package apikey authenticates net/http requests with API keys.
//
// A server wraps its mux (or a single handler) in the middleware. For each
// request it reads "Authorization: Bearer <key>", checks the key's format
// offline (prefix, length, alphabet, checksum), digests it with SHA-256 or
// HMAC-SHA-256 under a server-side pepper, looks the digest up in a
// KeyStore, checks the key's state (revoked, expired, past its roll grace),
// its owner binding and its scopes, and attaches the key to the request
// context. The cost of a valid request is about one hash and one map
// lookup; a malformed key is rejected before any store is asked.
//
//	store := apikey.NewMemoryStore(apikey.StoreConfig{})
//	key, secret, err := store.Create(ctx, apikey.KeySpec{
//		Name: "reporting", Scopes: []apikey.Scope{"read"},
//	})
//	// show secret.Reveal() to its owner, once; the store keeps a digest
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /v1/things", func(w http.ResponseWriter, r *http.Request) {
//		key, _ := apikey.FromContext(r.Context())
//		fmt.Fprintf(w, "hello %s\n", key.Name)
//	})
//	http.ListenAndServe(addr, apikey.Middleware(store)(mux))
//
// # Pieces
//
//   - Keys: Format describes a key format (FormatDefault, our recommended
//     one with a checksum, and one per seed API); Generate makes a secret;
//     Format.Parse checks one without allocating. Secret and Pepper print as
//     "[REDACTED]" in fmt, log/slog and JSON.
//   - Digests: Hasher, with optional peppers that can be rotated.
//   - Stores: KeyStore is the only interface an integrator must implement
//     (Lookup by digest). Manager, UsageStore, Rehasher and Configured are
//     optional capabilities, detected by type assertion. MemoryStore is the
//     embedded default, optionally persisted to a file; the pgstore module
//     holds keys in PostgreSQL for servers with many replicas.
//   - Usage: UsageRecorder counts requests per key off the request path.
//   - Scopes: ScopeSet declares scopes and their implications; MethodPolicy
//     maps HTTP methods to scopes; Require guards one handler.
//   - Errors: an ErrorStyle writes rejections; the Style variables reproduce
//     the seed APIs and RFC 9457 problem+json. Reasons go to the logger and
//     the OnRejected hook, never into the body.
//   - Presets bundle format, scopes, policy and style for each seed API.
//
// # Status codes
//
// 401 with WWW-Authenticate for a missing, duplicated, oversized, malformed,
// unknown, revoked or expired credential; 403 for a valid key without the
// scope or owner the request needs; 503 with Retry-After when the store
// fails, times out or panics — never 401 for a store fault, and the
// protected handler is never called. StyleStax answers 200 instead of 401
// and 403, as its seed API does.
package apikey
