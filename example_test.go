package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/limit"
)

// Protect a handler: the store keeps a digest of each key, the middleware
// checks the key of every request. The same KeyConfig goes to both.
func ExampleNew() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		panic(err)
	}
	_, secret, err := store.Create(ctx, apikey.KeySpec{Name: "reporting"})
	if err != nil {
		panic(err)
	}
	// Show secret.Reveal() to the key's owner, once.

	mw, err := apikey.New(apikey.Config{Keys: keys, Store: store})
	if err != nil {
		panic(err)
	}
	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := apikey.FromContext(r.Context())
		fmt.Fprintf(w, "hello, %s\n", key.Name)
	}))

	r := httptest.NewRequest("GET", "/v1/reports", nil)
	r.Header.Set("Authorization", "Bearer "+secret.Reveal())
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())

	w = httptest.NewRecorder() // no key
	handler.ServeHTTP(w, httptest.NewRequest("GET", "/v1/reports", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"), w.Header().Get("Content-Type"))
	// Output:
	// 200 hello, reporting
	// 401 Bearer realm="api" application/problem+json
}

// Guard one route with Require; the middleware in front authenticates.
// Without an authenticated key in the context Require answers 401: it never
// lets a request through by default.
func ExampleMiddleware_Require() {
	ctx := context.Background()
	scopes, _ := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{
		"read": nil, "write": nil, "admin": {"read", "write"},
	})
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: scopes}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, admin, _ := store.Create(ctx, apikey.KeySpec{Name: "ops", Scopes: []apikey.Scope{"admin"}})
	_, reader, _ := store.Create(ctx, apikey.KeySpec{Name: "dashboard", Scopes: []apikey.Scope{"read"}})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})

	mux := http.NewServeMux()
	mux.Handle("GET /v1/keys", mw.Require("admin")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "key list")
	})))
	handler := mw.Handler(mux)

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

// HandlerFunc hands the key to the handler as an argument: the request
// keeps its context, which saves the copy every net/http middleware
// otherwise makes to carry a value.
func ExampleMiddleware_HandlerFunc() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "monitoring"})
	auth, _ := apikey.New(apikey.Config{Keys: keys, Store: store})

	mux := http.NewServeMux()
	// readme:handlerfunc
	mux.Handle("GET /v1/ping", auth.HandlerFunc(func(w http.ResponseWriter, r *http.Request, k *apikey.Key) {
		fmt.Fprintln(w, "pong for", k.Name)
	}))
	// readme:end

	r := httptest.NewRequest("GET", "/v1/ping", nil)
	r.Header.Set("Authorization", "Bearer "+secret.Reveal())
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// 200 pong for monitoring
}

// Cost prices an expensive route: with 12 requests a minute, a render
// that costs 10 fits once, and then a request that costs 1 still does.
func ExampleMiddleware_Cost() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "ci"})
	lim, _ := limit.New(limit.Config{Live: []apikey.Limit{{Name: "requests", Count: 12, Per: time.Minute}}})
	auth, _ := apikey.New(apikey.Config{Keys: keys, Store: store, Limiter: lim})

	mux := http.NewServeMux()
	mux.Handle("POST /v1/render", auth.Cost(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	mux.Handle("GET /v1/reports", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	handler := auth.Handler(mux)
	for _, call := range []string{"POST /v1/render", "POST /v1/render", "GET /v1/reports"} {
		method, path, _ := strings.Cut(call, " ")
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(call, w.Code, w.Header().Get("RateLimit"))
	}
	// Output:
	// POST /v1/render 200 "requests";r=2;t=50
	// POST /v1/render 429 "requests";r=2;t=50
	// GET /v1/reports 200 "requests";r=1;t=55
}

// RequireAny accepts a key that holds every scope of one of the
// alternatives: here "admin", or both "read" and "billing".
func ExampleMiddleware_RequireAny() {
	ctx := context.Background()
	scopes, _ := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "billing": nil, "admin": nil})
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: scopes}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})
	invoices := mw.Handler(mw.RequireAny([]apikey.Scope{"admin"}, []apikey.Scope{"read", "billing"})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))

	for _, granted := range [][]apikey.Scope{{"admin"}, {"read", "billing"}, {"read"}} {
		_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "k", Scopes: granted})
		r := httptest.NewRequest("GET", "/v1/invoices", nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		invoices.ServeHTTP(w, r)
		fmt.Println(granted, w.Code)
	}
	// Output:
	// [admin] 200
	// [read billing] 200
	// [read] 403
}

// Verify checks a credential without HTTP, for a gRPC interceptor or a
// WebSocket upgrade; its error is an AuthError that says why.
func ExampleMiddleware_Verify() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	key, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "worker"})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})

	k, err := mw.Verify(ctx, secret.Reveal())
	fmt.Println(k.Name, err)

	_ = store.Revoke(ctx, key.ID)
	_, err = mw.Verify(ctx, secret.Reveal())
	var rejected apikey.AuthError
	fmt.Println(errors.As(err, &rejected), rejected.Reason, rejected.Reason.Status())

	_, err = mw.Verify(ctx, "kg_live_not-a-key")
	fmt.Println(errors.Is(err, apikey.ErrMalformedKey))
	// Output:
	// worker <nil>
	// true revoked 401
	// true
}

// With a Path the store keeps its keys in a file (digests and metadata,
// never secrets), rewritten atomically at every change and loaded again
// at the next start.
func ExampleNewMemoryStore() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "apikey-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys.json")
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}

	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	if err != nil {
		panic(err)
	}
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "cron"})
	// One store at a time has the file; Close releases it.
	_, err = apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	fmt.Println(err != nil)
	_ = store.Close()

	// After a restart:
	store, err = apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	list, _ := store.List(ctx, apikey.Filter{})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})
	_, err = mw.Verify(ctx, secret.Reveal())
	file, _ := os.ReadFile(path)
	fmt.Println(len(list), list[0].Name, err, strings.Contains(string(file), secret.Reveal()))
	// Output:
	// true
	// 1 cron <nil> false
}

// A store of your own makes its keys with KeyConfig.NewKey: it files the
// digest and the record, and hands the secret out once.
func ExampleKeyConfig_NewKey() {
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	filed := map[apikey.Digest]*apikey.Key{} // your database
	store := testkit.StoreFunc(func(_ context.Context, d apikey.Digest) (*apikey.Key, error) {
		if k, ok := filed[d]; ok {
			return k, nil
		}
		return nil, apikey.ErrNotFound // 401; any other error is a 503
	})

	issued, err := keys.NewKey(apikey.KeySpec{Name: "partner", Environment: apikey.EnvTest})
	if err != nil {
		panic(err)
	}
	filed[issued.Digest] = issued.Key // file the digest; hand the secret out once

	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})
	k, err := mw.Verify(context.Background(), issued.Secret.Reveal())
	fmt.Println(k.Name, k.Environment, err)
	// The hint is for display: the prefix and the last four characters.
	hint := issued.Key.Hint
	fmt.Println(strings.HasPrefix(issued.Secret.Reveal(), "kg_test_"), hint[:len(hint)-4])
	// A Secret never prints its plaintext.
	fmt.Println(issued.Secret)
	// Output:
	// partner test <nil>
	// true kg_test_…
	// [REDACTED]
}

// A store of your own rolls a key with KeyConfig.Successor: it files the
// successor and replaces the old record with the retired copy, which keeps
// working for the grace period.
func ExampleKeyConfig_Successor() {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Clock: func() time.Time { return now }}
	filed := map[apikey.Digest]*apikey.Key{} // your database
	store := testkit.StoreFunc(func(_ context.Context, d apikey.Digest) (*apikey.Key, error) {
		if k, ok := filed[d]; ok {
			return k, nil
		}
		return nil, apikey.ErrNotFound
	})
	old, _ := keys.NewKey(apikey.KeySpec{Name: "deploy"})
	filed[old.Digest] = old.Key

	next, retired, err := keys.Successor(old.Key, time.Hour)
	if err != nil {
		panic(err)
	}
	filed[next.Digest] = next.Key // in one transaction
	filed[old.Digest] = retired

	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})
	_, errOld := mw.Verify(ctx, old.Secret.Reveal())
	_, errNew := mw.Verify(ctx, next.Secret.Reveal())
	fmt.Println(next.Key.RolledFrom == old.Key.ID, retired.RolledTo == next.Key.ID, errOld, errNew)

	now = now.Add(time.Hour) // the grace period is over
	_, errOld = mw.Verify(ctx, old.Secret.Reveal())
	var rejected apikey.AuthError
	fmt.Println(errors.As(errOld, &rejected), rejected.Reason)

	_, _, err = keys.Successor(retired, time.Hour)
	fmt.Println(errors.Is(err, apikey.ErrAlreadyRolled))
	// Output:
	// true true <nil> <nil>
	// true rolled
	// true
}

// Roll replaces a key; the old one keeps working for the grace period
// (24 hours here), so clients can switch without downtime.
func ExampleMemoryStore_Roll() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})

	key, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "prod"})
	successor, newSecret, _ := store.Roll(ctx, key.ID, 24*time.Hour)
	_, errOld := mw.Verify(ctx, secret.Reveal())
	_, errNew := mw.Verify(ctx, newSecret.Reveal())
	fmt.Println(successor.RolledFrom == key.ID, errOld, errNew)

	_, _, err := store.Roll(ctx, key.ID, 24*time.Hour)
	fmt.Println(errors.Is(err, apikey.ErrAlreadyRolled))
	// Output:
	// true <nil> <nil>
	// true
}

// A format of your own: prefixes, alphabet, length and an optional
// checksum that rejects typos before any store is asked.
func ExampleNewFormat() {
	f, err := apikey.NewFormat(apikey.FormatConfig{
		Name: "acme", LivePrefix: "acme_live_", TestPrefix: "acme_test_",
		Alphabet: "0123456789abcdefghijklmnopqrstuvwxyz", Length: 32, Checksum: true,
	})
	if err != nil {
		panic(err)
	}
	issued, _ := apikey.KeyConfig{Formats: []*apikey.Format{f}}.NewKey(apikey.KeySpec{Name: "n"})
	key := issued.Secret.Reveal()
	env, err := f.Parse(key)
	fmt.Println(len(key), env, err)
	_, err = f.Parse(key[:len(key)-1] + "!")
	fmt.Println(err)
	_, err = apikey.NewFormat(apikey.FormatConfig{Name: "weak", Alphabet: "01", Length: 8})
	fmt.Println(errors.Is(err, apikey.ErrInvalid))
	// Output:
	// 48 live <nil>
	// apikey: malformed key: bad alphabet
	// true
}

// Peppers make digests HMAC-SHA-256 under a server-side secret. To rotate,
// put the new pepper first: keys made under the old one still verify, and
// are re-filed under the new one on their next use.
func ExampleNewPepper() {
	ctx := context.Background()
	// In production: 32 random bytes from your secret manager.
	old, _ := apikey.NewPepper("2025", []byte("an-old-pepper-of-32-bytes-or-more"))
	cur, _ := apikey.NewPepper("2026", []byte("the-new-pepper-of-32-bytes-or-more"))

	before := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Peppers: []apikey.Pepper{old}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: before})
	key, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "legacy"})
	fmt.Println(key.PepperID, old)

	during := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Peppers: []apikey.Pepper{cur, old}}
	mw, _ := apikey.New(apikey.Config{Keys: during, Store: store})
	_, err := mw.Verify(ctx, secret.Reveal())
	refiled, _ := store.Get(ctx, key.ID)
	fmt.Println(err, refiled.PepperID)
	// Output:
	// 2025 apikey.Pepper{id:2025, [REDACTED]}
	// <nil> 2026
}

// Declare the scopes an API knows and what each implies; a key granted
// "admin" then covers "read" and "write", and "reports:*" every scope of
// the reports resource.
func ExampleNewScopeSet() {
	scopes, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{
		"read": nil, "write": nil, "admin": {"read", "write"},
		"reports:read": nil, "reports:export": nil,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(scopes.Scopes())
	fmt.Println(scopes.Allows([]apikey.Scope{"admin"}, "write"))
	fmt.Println(scopes.Allows([]apikey.Scope{"read"}, "write"))
	fmt.Println(scopes.Allows([]apikey.Scope{"reports:*"}, "reports:export"))

	_, err = apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"admin": {"read"}})
	fmt.Println(err)
	// Output:
	// [admin read reports:export reports:read write]
	// true
	// false
	// true
	// apikey: invalid input: scope "admin" implies "read", which is not declared
}

// Error bodies in the layout of your API, with your own messages.
func ExampleNewErrorStyle() {
	ctx := context.Background()
	style, err := apikey.NewErrorStyle(apikey.ShapeNested, apikey.Messages{
		Unauthorized: "Missing or invalid API key",
		Forbidden:    "This key cannot {scope}",
	})
	if err != nil {
		panic(err)
	}
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, reader, _ := store.Create(ctx, apikey.KeySpec{Name: "r", Scopes: []apikey.Scope{"read"}})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store, Style: style, MethodPolicy: apikey.ReadWritePolicy()})
	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	w := httptest.NewRecorder() // no key
	handler.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Print(w.Code, " ", w.Body.String())

	r := httptest.NewRequest("DELETE", "/", nil) // a read-only key
	r.Header.Set("Authorization", "Bearer "+reader.Reveal())
	w = httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// 401 {"error":{"code":"unauthorized","message":"Missing or invalid API key"}}
	// 403 {"error":{"code":"forbidden","message":"This key cannot write"}}
}

// A handler reads the key that authenticated the request from the
// context. The key carries metadata and scopes, never the secret.
func ExampleFromContext() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{
		Name: "ci", Environment: apikey.EnvTest, Scopes: []apikey.Scope{"read"},
		Owner: "ci@example.com", Metadata: map[string]string{"team": "platform"},
	})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})

	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := apikey.FromContext(r.Context())
		fmt.Println(ok, key.Name, key.Environment, key.Scopes, key.Owner, key.Metadata["team"])
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+secret.Reveal())
	handler.ServeHTTP(httptest.NewRecorder(), r)

	_, ok := apikey.FromContext(context.Background())
	fmt.Println(ok)
	// Output:
	// true ci test [read] ci@example.com platform
	// false
}

// Every response carries the request's id in X-Request-Id, the same id as
// the request_id of error bodies; handlers read it with RequestID to put
// it in their logs.
func ExampleRequestID() {
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store, Anonymous: []string{"GET"}})

	var seen string
	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = apikey.RequestID(r.Context())
	}))
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	id := w.Header().Get("X-Request-Id")
	fmt.Println(id == seen, strings.HasPrefix(id, "req_"), len(id))

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer kg_live_bad")
	w = httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Println(w.Code, strings.Contains(w.Body.String(), `"request_id":"`+w.Header().Get("X-Request-Id")+`"`))
	// Output:
	// true true 30
	// 401 true
}

// Config.RequestID takes the id the request already has, such as one set
// by a proxy or a request-id middleware upstream; an unsafe one is
// replaced by a fresh id.
func ExampleConfig_requestID() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "k"})
	mw, _ := apikey.New(apikey.Config{
		Keys: keys, Store: store,
		RequestID: func(w http.ResponseWriter, r *http.Request) string {
			return r.Header.Get("X-Request-Id") // trust the proxy in front
		},
	})
	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := apikey.RequestID(r.Context()) // also in the X-Request-Id response header
		if strings.HasPrefix(id, "req_") {
			id = "a new id"
		}
		fmt.Println(id)
	}))

	for _, upstream := range []string{"lb-7f3a9c", "forged\r\nX-Admin: yes"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		r.Header.Set("X-Request-Id", upstream)
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// lb-7f3a9c
	// a new id
}

// meteredStore is a decorator: it counts the lookups of the store it
// wraps.
type meteredStore struct {
	apikey.KeyStore
	lookups atomic.Int64
}

func (c *meteredStore) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	c.lookups.Add(1)
	return c.KeyStore.Lookup(ctx, d)
}

// A KeyStore is one method, so a decorator is a small type: here one that
// counts lookups. The middleware learns nothing from the store's type, so
// the wrapped store authenticates exactly as the bare one.
func ExampleKeyStore() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "metered"})

	counted := &meteredStore{KeyStore: store}
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: counted})
	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	for _, key := range []string{secret.Reveal(), "kg_live_" + strings.Repeat("0", 36)} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	fmt.Println(counted.lookups.Load()) // the second key failed its checksum: no lookup
	// Output:
	// 200
	// 401
	// 1
}

// Parse checks a key offline, without any store: is this even one of ours?
func ExampleFormat_Parse() {
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	is, err := keys.NewKey(apikey.KeySpec{Name: "support", Environment: apikey.EnvTest})
	if err != nil {
		panic(err)
	}
	key := is.Secret.Reveal()
	env, err := apikey.FormatDefault.Parse(key)
	fmt.Println(env, err)

	typo := key[:len(key)-1] + "?"
	_, err = apikey.FormatDefault.Parse(typo)
	var fe *apikey.FormatError
	fmt.Println(errors.As(err, &fe), fe.Problem, errors.Is(err, apikey.ErrMalformedKey))
	// Output:
	// test <nil>
	// true alphabet true
}

// Clients that cannot set Authorization may send the key in a header of
// their own; a request with a key in both is refused.
func ExampleFromHeader() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "legacy client"})
	mw, err := apikey.New(apikey.Config{
		Keys: keys, Store: store,
		Sources: []apikey.Source{apikey.FromBearer(), apikey.FromHeader("X-API-Key")},
	})
	if err != nil {
		panic(err)
	}
	h := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, hdr := range [][2]string{
		{"X-API-Key", secret.Reveal()},
		{"Authorization", "Bearer " + secret.Reveal()},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(hdr[0], hdr[1])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(hdr[0], w.Code)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", secret.Reveal())
	r.Header.Set("Authorization", "Bearer "+secret.Reveal())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println("both", w.Code)
	// Output:
	// X-API-Key 200
	// Authorization 200
	// both 401
}

// The REST way to authorize: GET needs read, every other method write.
func ExampleReadWritePolicy() {
	ctx := context.Background()
	scopes, _ := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "write": nil})
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: scopes}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, reader, _ := store.Create(ctx, apikey.KeySpec{Name: "dashboard", Scopes: []apikey.Scope{"read"}})
	mw, err := apikey.New(apikey.Config{Keys: keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()})
	if err != nil {
		panic(err)
	}
	h := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, method := range []string{"GET", "POST", "DELETE"} {
		r := httptest.NewRequest(method, "/v1/things", nil)
		r.Header.Set("Authorization", "Bearer "+reader.Reveal())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(method, w.Code)
	}
	// Output:
	// GET 200
	// POST 403
	// DELETE 403
}

// Import a key issued by another system: file its digest, never the key.
func ExampleMemoryStore_Add() {
	ctx := context.Background()
	legacy, _ := apikey.NewFormat(apikey.FormatConfig{
		Name: "legacy", LivePrefix: "lg_", Alphabet: "0123456789abcdef", Length: 32,
	})
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault, legacy}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})

	const issuedElsewhere = "lg_0123456789abcdef0123456789abcdef"
	err := store.Add(ctx, keys.Digest(issuedElsewhere), &apikey.Key{
		ID: "legacy:42", Name: "imported", Environment: apikey.EnvLive, CreatedAt: time.Now(),
	})
	if err != nil {
		panic(err)
	}
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})
	key, err := mw.Verify(ctx, issuedElsewhere)
	fmt.Println(key.ID, err)
	// Output: legacy:42 <nil>
}

// List filters by environment, owner and state (Key.State's rule).
func ExampleFilter() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, _, _ = store.Create(ctx, apikey.KeySpec{Name: "ci", Owner: "acme", Environment: apikey.EnvTest})
	live, _, _ := store.Create(ctx, apikey.KeySpec{Name: "backend", Owner: "acme"})
	_, _, _ = store.Create(ctx, apikey.KeySpec{Name: "other", Owner: "globex"})
	_ = store.Revoke(ctx, live.ID)

	for _, f := range []apikey.Filter{
		{Owner: "acme"},
		{Owner: "acme", State: apikey.StateActive},
		{Environment: apikey.EnvLive, State: apikey.StateRevoked},
	} {
		list, _ := store.List(ctx, f)
		var names []string
		for _, k := range list {
			names = append(names, k.Name)
		}
		fmt.Println(strings.Join(names, ", "))
	}
	// Output:
	// ci, backend
	// ci
	// backend
}

// listKeys is the quick start's admin route.
func listKeys(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "all keys") }

// The README's quick start, run: a ServeMux protected by the middleware,
// one key, a route that needs more, a roll and a revocation.
func Example_quickStart() {
	ctx := context.Background()
	// readme:quickstart
	scopes, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{
		"read": nil, "write": nil, "admin": {"read", "write"}, // admin ⇒ read + write
	})
	if err != nil {
		panic(err)
	}
	// One KeyConfig says how keys are made and checked; the store and the
	// middleware get the same one.
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: scopes}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		panic(err)
	}

	// Create a key: the secret is returned once; the store keeps its digest.
	key, secret, err := store.Create(ctx, apikey.KeySpec{
		Name: "Zapier Integration", Scopes: []apikey.Scope{"read"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(secret) // [REDACTED]: secret.Reveal() gives the key, to show its owner once

	mw, err := apikey.New(apikey.Config{
		Keys:         keys,
		Store:        store,
		MethodPolicy: apikey.ReadWritePolicy(), // GET needs read, other methods write
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things", func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context()) // metadata and scopes, never the secret
		fmt.Fprintf(w, "hello %s (%s)\n", k.Name, k.Environment)
	})
	// Guard one handler beyond the method policy:
	mux.Handle("GET /v1/keys", mw.Require("admin")(http.HandlerFunc(listKeys)))
	handler := mw.Handler(mux) // http.ListenAndServe(":8080", handler)
	// readme:end

	get := func(path string, s apikey.Secret) {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+s.Reveal())
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(path, w.Code, strings.TrimSpace(strings.SplitN(w.Body.String(), ",", 2)[0]))
	}
	get("/v1/things", secret)
	get("/v1/keys", secret)

	// readme:later
	// Later:
	_, rolled, err := store.Roll(ctx, key.ID, 24*time.Hour) // new secret; the old one works 24 h more (0: not at all)
	if err != nil {
		panic(err)
	}
	err = store.Revoke(ctx, key.ID) // refused by every request that starts after this returns
	if err != nil {
		panic(err)
	}
	// readme:end
	get("/v1/things", secret)
	get("/v1/things", rolled)
	// Output:
	// [REDACTED]
	// /v1/things 200 hello Zapier Integration (live)
	// /v1/keys 403 {"type":"about:blank"
	// /v1/things 401 {"type":"about:blank"
	// /v1/things 200 hello Zapier Integration (live)
}
