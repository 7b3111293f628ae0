package apikey_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keygate/apikey"
)

// Wrap a whole mux: every route needs a key; GET needs the "read" scope and
// POST, PUT, PATCH and DELETE need "write" (the default method policy).
func ExampleMiddleware() {
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "reporting", Scopes: []apikey.Scope{"read"}})

	mux := http.NewServeMux()
	mux.HandleFunc("/v1/things", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "things")
	})
	handler := apikey.Middleware(store, apikey.WithStyle(apikey.StyleNested))(mux)

	for _, req := range []struct{ method, key string }{
		{"GET", secret.Reveal()}, {"POST", secret.Reveal()}, {"GET", ""},
	} {
		r := httptest.NewRequest(req.method, "/v1/things", nil)
		if req.key != "" {
			r.Header.Set("Authorization", "Bearer "+req.key)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Print(req.method, " ", w.Code, " ", w.Body.String())
	}
	// Output:
	// GET 200 things
	// POST 403 {"error":{"code":"forbidden","message":"Insufficient scope for this action"}}
	// GET 401 {"error":{"code":"unauthorized","message":"Missing or invalid API key"}}
}

// Guard one handler with Require; the middleware upstream authenticates.
// Without an authenticated key in the context Require answers 401: it never
// lets a request through by default.
func ExampleRequire() {
	ctx := context.Background()
	scopes := apikey.MustDeclareScopes(map[apikey.Scope][]apikey.Scope{
		"read": nil, "write": nil, "admin": {"read", "write"},
	})
	store := apikey.NewMemoryStore(apikey.StoreConfig{Scopes: scopes})
	_, admin, _ := store.Create(ctx, apikey.KeySpec{Name: "ops", Scopes: []apikey.Scope{"admin"}})
	_, reader, _ := store.Create(ctx, apikey.KeySpec{Name: "dashboard", Scopes: []apikey.Scope{"read"}})

	mux := http.NewServeMux()
	mux.Handle("GET /v1/keys", apikey.Require("admin")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "key list")
	})))
	handler := apikey.Middleware(store)(mux)

	for _, key := range []apikey.Secret{admin, reader} {
		r := httptest.NewRequest("GET", "/v1/keys", nil)
		r.Header.Set("Authorization", "Bearer "+key.Reveal())
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Printf("%d %q\n", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 200 ""
	// 403 "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"admin\""
}

// A handler reads the authenticated key and the request id from the
// context. The key carries metadata and scopes, never the secret.
func ExampleFromContext() {
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{Format: apikey.FormatStraply})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{
		Name: "ci", Environment: apikey.EnvTest, Scopes: []apikey.Scope{"read"},
	})

	handler := apikey.Middleware(store)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := apikey.FromContext(r.Context())
		fmt.Println(ok, key.Name, key.Environment, key.Scopes)
		fmt.Println(strings.HasPrefix(apikey.RequestID(r.Context()), "req_"))
	}))
	r := httptest.NewRequest("GET", "/v1/properties", nil)
	r.Header.Set("Authorization", "Bearer "+secret.Reveal())
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// true ci test [read]
	// true
}

// Generate a key, check its format offline, digest it for storage. A Secret
// never prints its plaintext by accident.
func ExampleGenerate() {
	secret, err := apikey.Generate(apikey.FormatDefault, apikey.EnvLive)
	if err != nil {
		panic(err)
	}
	key := secret.Reveal()
	env, err := apikey.FormatDefault.Parse(key)
	fmt.Println(len(key), strings.HasPrefix(key, "kg_live_"), env, err)
	fmt.Println(secret)

	typo := key[:10] + "X" + key[11:]
	if key[10] == 'X' {
		typo = key[:10] + "Y" + key[11:]
	}
	_, err = apikey.FormatDefault.Parse(typo)
	fmt.Println(errors.Is(err, apikey.ErrMalformedKey), err)
	fmt.Printf("%.1f bits\n", apikey.FormatDefault.EntropyBits())
	// Output:
	// 44 true live <nil>
	// [REDACTED]
	// true apikey: malformed key: bad checksum
	// 178.6 bits
}

// sqlStore is a custom KeyStore over database/sql: Lookup alone is enough
// for the middleware. Management and usage are optional interfaces it may
// add later.
type sqlStore struct{ db *sql.DB }

func (s sqlStore) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	var k apikey.Key
	var env string
	err := s.db.QueryRowContext(ctx,
		`SELECT id, name, environment FROM api_keys WHERE digest = $1`, d[:]).Scan(&k.ID, &k.Name, &env)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, apikey.ErrNotFound // → 401
	case err != nil:
		return nil, fmt.Errorf("api_keys lookup: %w", err) // → 503, never 401
	}
	k.Environment, err = apikey.ParseEnvironment(env)
	return &k, err
}

// Implement your own store: one method. Here a map-backed one keeps the
// example self-contained; see sqlStore in this file for a database/sql
// sketch.
func ExampleKeyStore() {
	var hasher apikey.Hasher
	secret, _ := apikey.Generate(apikey.FormatDefault, apikey.EnvLive)
	keys := map[apikey.Digest]*apikey.Key{
		hasher.Digest(secret.Reveal()): {ID: "key_1", Name: "legacy", Environment: apikey.EnvLive, Scopes: []apikey.Scope{"read"}},
	}
	store := apikey.KeyStoreFunc(func(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
		if k, ok := keys[d]; ok {
			return k, nil
		}
		return nil, apikey.ErrNotFound
	})
	var _ apikey.KeyStore = sqlStore{}

	handler := apikey.Middleware(store)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := apikey.FromContext(r.Context())
		fmt.Println("hello", key.Name)
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+secret.Reveal())
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output: hello legacy
}

// Create, roll and revoke keys with a store's Manager capability.
func ExampleManager() {
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{Format: apikey.FormatStraply})
	auth := apikey.New(store)

	key, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "prod", Scopes: []apikey.Scope{"read"}})
	fmt.Println(strings.HasPrefix(secret.Reveal(), "stp_live_"), len(secret.Reveal()))

	successor, newSecret, _ := store.Roll(ctx, key.ID) // the old key works 24 h more
	_, errOld := auth.Verify(ctx, secret.Reveal())
	_, errNew := auth.Verify(ctx, newSecret.Reveal())
	fmt.Println(successor.RolledFrom == key.ID, errOld, errNew)

	_ = store.Revoke(ctx, successor.ID)
	_, err := auth.Verify(ctx, newSecret.Reveal())
	var rejected apikey.AuthError
	fmt.Println(errors.As(err, &rejected), rejected.Reason, rejected.Status())
	// Output:
	// true 40
	// true <nil> <nil>
	// true revoked 401
}
