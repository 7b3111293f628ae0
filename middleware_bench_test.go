package apikey_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keygate/apikey"
)

// The per-request benchmarks. Compare ours with the floor (the
// hand-written minimal check below) in the same run:
//
//	go test -run '^$' -bench 'Request' -count 10 . | tee new.txt
//	benchstat new.txt
//
// BENCHMARKS.md has the figures and the ratios.

// discardWriter is a ResponseWriter that keeps one header map and drops
// the body, so the benchmarks measure the middleware, not the recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// countingStore counts lookups, to prove which paths never reach the store.
// It is a plain decorator: nothing of the store's type reaches the
// middleware through it.
type countingStore struct {
	apikey.KeyStore
	n atomic.Int64
}

func (s *countingStore) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	s.n.Add(1)
	return s.KeyStore.Lookup(ctx, d)
}

// benchWorld is a store of 100,000 keys shared by the request benchmarks.
type benchWorld struct {
	keys     apikey.KeyConfig
	mem      *apikey.MemoryStore
	store    *countingStore
	valid    string // read+write key
	readOnly string
	revoked  string
	floorMap map[[32]byte]*apikey.Key
}

var (
	worldOnce sync.Once
	world     *benchWorld
)

func getWorld(b *testing.B) *benchWorld {
	worldOnce.Do(func() {
		ctx := context.Background()
		keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
		mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
		if err != nil {
			panic(err)
		}
		w := &benchWorld{keys: keys, mem: mem, floorMap: map[[32]byte]*apikey.Key{}}
		add := func(scopes ...apikey.Scope) (*apikey.Key, string) {
			k, s, err := w.mem.Create(ctx, apikey.KeySpec{Name: "Production Backend", Scopes: scopes})
			if err != nil {
				panic(err)
			}
			w.floorMap[sha256.Sum256([]byte(s.Reveal()))] = k
			return k, s.Reveal()
		}
		for i := 0; i < 100_000-3; i++ {
			add("read", "write")
		}
		_, w.valid = add("read", "write")
		_, w.readOnly = add("read")
		k, revoked := add("read", "write")
		w.revoked = revoked
		if err := w.mem.Revoke(ctx, k.ID); err != nil {
			panic(err)
		}
		w.store = &countingStore{KeyStore: w.mem}
		world = w
	})
	return world
}

// handler is our middleware over store, with the usual REST policy.
func (w *benchWorld) handler(b *testing.B, store apikey.KeyStore, next http.Handler) http.Handler {
	mw, err := apikey.New(apikey.Config{Keys: w.keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()})
	if err != nil {
		b.Fatal(err)
	}
	return mw.Handler(next)
}

var okBody = []byte("ok")

func benchNext() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := apikey.FromContext(r.Context()); !ok {
			if floorKey(r.Context()) == nil {
				panic("handler reached without a key")
			}
		}
		_, _ = w.Write(okBody)
	})
}

type floorCtxKey struct{}

func floorKey(ctx context.Context) *apikey.Key {
	k, _ := ctx.Value(floorCtxKey{}).(*apikey.Key)
	return k
}

// floorMiddleware is the hand-written minimum: cut "Bearer ", SHA-256, a
// map lookup, context.WithValue, r.WithContext, next.
func floorMiddleware(keys map[[32]byte]*apikey.Key) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			k := keys[sha256.Sum256([]byte(tok))]
			if k == nil {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), floorCtxKey{}, k)))
		})
	}
}

func benchRequest(method, auth string) *http.Request {
	r := httptest.NewRequest(method, "/v1/stepsies", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func runHandler(b *testing.B, h http.Handler, r *http.Request, wantStatus int) {
	b.Helper()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.status = 200
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.status != wantStatus {
		b.Fatalf("status %d, want %d", w.status, wantStatus)
	}
}

func BenchmarkRequest(b *testing.B) {
	wd := getWorld(b)
	ours := wd.handler(b, wd.mem, benchNext())
	counted := wd.handler(b, wd.store, benchNext())
	floor := floorMiddleware(wd.floorMap)(benchNext())
	badChecksum := flipChecksum(wd.valid)
	never := newSecret(b)

	b.Run("path=valid/impl=floor", func(b *testing.B) {
		runHandler(b, floor, benchRequest("GET", "Bearer "+wd.valid), 200)
	})
	b.Run("path=valid/impl=apikey", func(b *testing.B) {
		runHandler(b, ours, benchRequest("GET", "Bearer "+wd.valid), 200)
	})
	b.Run("path=unknown/impl=floor", func(b *testing.B) {
		runHandler(b, floor, benchRequest("GET", "Bearer "+never), 401)
	})
	rejects := []struct {
		name   string
		method string
		auth   string
		status int
		store  bool // reaches the store
	}{
		{"missing", "GET", "", 401, false},
		{"malformed", "GET", "Bearer sk_live_nope", 401, false},
		{"bad-checksum", "GET", "Bearer " + badChecksum, 401, false},
		{"unknown", "GET", "Bearer " + never, 401, true},
		{"revoked", "GET", "Bearer " + wd.revoked, 401, true},
		{"wrong-scope", "POST", "Bearer " + wd.readOnly, 403, true},
	}
	for _, rj := range rejects {
		b.Run("path="+rj.name+"/impl=apikey", func(b *testing.B) {
			before := wd.store.n.Load()
			runHandler(b, counted, benchRequest(rj.method, rj.auth), rj.status)
			calls := float64(wd.store.n.Load()-before) / float64(b.N)
			b.ReportMetric(calls, "lookups/op")
			if !rj.store && calls != 0 {
				b.Fatalf("%s reached the store", rj.name)
			}
		})
	}
}

func BenchmarkRequestParallel(b *testing.B) {
	wd := getWorld(b)
	for _, impl := range []struct {
		name string
		h    http.Handler
	}{
		{"floor", floorMiddleware(wd.floorMap)(benchNext())},
		{"apikey", wd.handler(b, wd.mem, benchNext())},
	} {
		b.Run("path=valid/impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				r := benchRequest("GET", "Bearer "+wd.valid)
				for pb.Next() {
					impl.h.ServeHTTP(w, r)
				}
			})
		})
	}
}

func BenchmarkRequire(b *testing.B) {
	wd := getWorld(b)
	mw, err := apikey.New(apikey.Config{Keys: wd.keys, Store: wd.mem})
	if err != nil {
		b.Fatal(err)
	}
	h := mw.Handler(mw.Require("read", "write")(benchNext()))
	runHandler(b, h, benchRequest("GET", "Bearer "+wd.valid), 200)
}

func BenchmarkErrorStyle(b *testing.B) {
	r := benchRequest("GET", "")
	shapes := []struct {
		name  string
		shape apikey.Shape
	}{
		{"problem", apikey.ShapeProblem}, {"flat", apikey.ShapeFlat}, {"nested", apikey.ShapeNested},
		{"nested-meta", apikey.ShapeNestedMeta}, {"nested-status", apikey.ShapeNestedStatus}, {"auth-error", apikey.ShapeAuthError},
	}
	for _, e := range []apikey.AuthError{
		{Reason: apikey.ReasonMalformed, RequestID: "req_01HXYZ5678GHIJKLMNOPQRSTUV"},
		{Reason: apikey.ReasonScope, RequestID: "req_01HXYZ5678GHIJKLMNOPQRSTUV", Scope: "write"},
	} {
		for _, sh := range shapes {
			style, err := apikey.NewErrorStyle(sh.shape, apikey.Messages{})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("style=%s/status=%d", sh.name, e.Reason.Status()), func(b *testing.B) {
				w := &discardWriter{h: http.Header{}}
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					style.WriteError(w, r, e)
				}
			})
		}
	}
}

func BenchmarkParse(b *testing.B) {
	s := newSecret(b)
	for _, c := range []struct{ name, key string }{
		{"valid", s},
		{"malformed", "kg_live_!!"},
		{"bad-checksum", flipChecksum(s)},
	} {
		b.Run("key="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, _ = apikey.FormatDefault.Parse(c.key)
			}
		})
	}
}

func BenchmarkDigest(b *testing.B) {
	s := newSecret(b)
	plain := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	peppered := plain
	peppered.Peppers = []apikey.Pepper{pepper(b, "p", 'x')}
	for _, c := range []struct {
		name string
		keys apikey.KeyConfig
	}{{"sha256", plain}, {"hmac-sha256", peppered}} {
		b.Run("hash="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = c.keys.Digest(s)
			}
		})
	}
}
