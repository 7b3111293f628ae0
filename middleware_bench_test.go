package apikey_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keygate/apikey"
)

// The per-request benchmarks. Compare ours with the floor (the
// allocation-free hand-written check below) in the same run:
//
//	go test -run '^$' -bench 'Request|FloorParts' -count 10 . | tee new.txt
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
	floorMap map[[32]byte]*apikey.Key // the floors' map: SHA-256 of the key → record
}

// worldKeys is how many keys a benchWorld holds.
const worldKeys = 100_000

var (
	worldOnce, pepperedOnce sync.Once
	world, pepperedWorld    *benchWorld
)

// getWorld returns the world of plain SHA-256 digests (no pepper).
func getWorld(b *testing.B) *benchWorld {
	worldOnce.Do(func() {
		world = newBenchWorld(apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}})
	})
	return world
}

// getPepperedWorld returns a world of the same size and shape whose keys
// are digested with HMAC-SHA-256 under a pepper (KeyConfig.Peppers).
func getPepperedWorld(b *testing.B) *benchWorld {
	pepperedOnce.Do(func() {
		pepperedWorld = newBenchWorld(apikey.KeyConfig{
			Formats: []*apikey.Format{apikey.FormatDefault},
			Peppers: []apikey.Pepper{pepper(b, "bench", 'p')},
		})
	})
	return pepperedWorld
}

func newBenchWorld(keys apikey.KeyConfig) *benchWorld {
	ctx := context.Background()
	mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		panic(err)
	}
	w := &benchWorld{keys: keys, mem: mem, floorMap: make(map[[32]byte]*apikey.Key, worldKeys)}
	add := func(scopes ...apikey.Scope) (*apikey.Key, string) {
		k, s, err := w.mem.Create(ctx, apikey.KeySpec{Name: "Production Backend", Scopes: scopes})
		if err != nil {
			panic(err)
		}
		w.floorMap[sha256.Sum256([]byte(s.Reveal()))] = k
		return k, s.Reveal()
	}
	for i := 0; i < worldKeys-3; i++ {
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
	return w
}

// middleware is ours over store, with the usual REST policy.
func (w *benchWorld) middleware(b *testing.B, store apikey.KeyStore) *apikey.Middleware {
	mw, err := apikey.New(apikey.Config{Keys: w.keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()})
	if err != nil {
		b.Fatal(err)
	}
	return mw
}

// handler is our middleware over store in front of next.
func (w *benchWorld) handler(b *testing.B, store apikey.KeyStore, next http.Handler) http.Handler {
	return w.middleware(b, store).Handler(next)
}

var okBody = []byte("ok")

// benchNext is the protected handler behind our middleware: it takes the
// key from the context, as a handler that uses it does, and writes "ok".
func benchNext() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := apikey.FromContext(r.Context()); !ok {
			panic("handler reached without a key")
		}
		_, _ = w.Write(okBody)
	})
}

// floorNext is benchNext for the floors: the same work, with the floors'
// context key.
func floorNext() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if floorKey(r.Context()) == nil {
			panic("handler reached without a key")
		}
		_, _ = w.Write(okBody)
	})
}

// keyArgNext is benchNext for a handler that gets the key as an argument.
func keyArgNext(w http.ResponseWriter, _ *http.Request, k *apikey.Key) {
	if k == nil {
		panic("handler reached without a key")
	}
	_, _ = w.Write(okBody)
}

type floorCtxKey struct{}

func floorKey(ctx context.Context) *apikey.Key {
	k, _ := ctx.Value(floorCtxKey{}).(*apikey.Key)
	return k
}

// floorMiddleware is the floor every ratio is taken against (impl=floor):
// the hand-written minimum that allocates nothing of its own. It cuts
// "Bearer ", copies the key to an array on the stack, hashes it with
// SHA-256, looks the digest up in a map, and calls next with the key in
// the context: context.WithValue and r.WithContext, the two allocations a
// net/http middleware cannot avoid to hand a value to the handler. A key
// longer than the array or not in the map gets floorReject.
func floorMiddleware(keys map[[32]byte]*apikey.Key) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			var buf [128]byte
			if !ok || len(tok) > len(buf) {
				floorReject(w)
				return
			}
			n := copy(buf[:], tok)
			k := keys[sha256.Sum256(buf[:n])]
			if k == nil {
				floorReject(w)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), floorCtxKey{}, k)))
		})
	}
}

// The floor's 401: what http.Error writes, from values made once, so that
// the floor's rejection allocates nothing either.
var (
	floorTextPlain    = []string{"text/plain; charset=utf-8"}
	floorNoSniff      = []string{"nosniff"}
	floorUnauthorized = []byte("unauthorized\n")
)

func floorReject(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = floorTextPlain
	h["X-Content-Type-Options"] = floorNoSniff
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(floorUnauthorized)
}

// floorAllocMiddleware is the earlier floor (impl=floor-alloc), kept for
// comparison with older figures: the same check written the obvious way,
// sha256.Sum256([]byte(tok)) (a copy of the key on the heap) and
// http.Error on a miss (three more allocations).
func floorAllocMiddleware(keys map[[32]byte]*apikey.Key) func(http.Handler) http.Handler {
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

// countLookups reports the store calls per request of r through h, a
// middleware over the world's counting store, in 100 requests made after
// the timed loop: the timed loops go to the store directly, so that the
// counter's atomic add is not in their figures.
func countLookups(b *testing.B, wd *benchWorld, h http.Handler, r *http.Request) float64 {
	b.Helper()
	const n = 100
	w := &discardWriter{h: http.Header{}}
	before := wd.store.n.Load()
	for range n {
		h.ServeHTTP(w, r)
	}
	return float64(wd.store.n.Load()-before) / n
}

// BenchmarkRequest sends one request at a time through a handler, one
// sub-benchmark per path (what is wrong with the key, if anything) and
// implementation:
//
//	impl=floor          floorMiddleware: the allocation-free hand-written
//	                    minimum, the reference of every ratio
//	impl=floor-alloc    floorAllocMiddleware, the earlier floor
//	impl=apikey         Middleware.Handler, the handler takes the key from
//	                    the context (apikey.FromContext)
//	impl=apikey-keyarg  Middleware.HandlerFunc, the key as the handler's
//	                    argument
//	impl=apikey-keyarg-noid  the same with Config.NoRequestID
//
// path=peppered is a valid key in a world of the same size whose digests
// are HMAC-SHA-256 under a pepper. The floors reject every bad key alike:
// they hash it and miss in their map (path=unknown).
func BenchmarkRequest(b *testing.B) {
	wd := getWorld(b)
	pw := getPepperedWorld(b)
	// Both worlds are built: collect their garbage now, not in the first
	// sub-benchmark's loop.
	runtime.GC()
	ours := wd.handler(b, wd.mem, benchNext())
	keyArg := wd.middleware(b, wd.mem).HandlerFunc(keyArgNext)
	counted := wd.handler(b, wd.store, benchNext())
	floor := floorMiddleware(wd.floorMap)(floorNext())
	floorAlloc := floorAllocMiddleware(wd.floorMap)(floorNext())
	badChecksum := flipChecksum(wd.valid)
	never := newSecret(b)

	b.Run("path=valid/impl=floor", func(b *testing.B) {
		runHandler(b, floor, benchRequest("GET", "Bearer "+wd.valid), 200)
	})
	b.Run("path=valid/impl=floor-alloc", func(b *testing.B) {
		runHandler(b, floorAlloc, benchRequest("GET", "Bearer "+wd.valid), 200)
	})
	b.Run("path=valid/impl=apikey", func(b *testing.B) {
		runHandler(b, ours, benchRequest("GET", "Bearer "+wd.valid), 200)
	})
	b.Run("path=valid/impl=apikey-keyarg", func(b *testing.B) {
		runHandler(b, keyArg, benchRequest("GET", "Bearer "+wd.valid), 200)
	})
	// The request id's share of HandlerFunc: the same without it.
	noID, err := apikey.New(apikey.Config{Keys: wd.keys, Store: wd.mem, MethodPolicy: apikey.ReadWritePolicy(), NoRequestID: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("path=valid/impl=apikey-keyarg-noid", func(b *testing.B) {
		runHandler(b, noID.HandlerFunc(keyArgNext), benchRequest("GET", "Bearer "+wd.valid), 200)
	})
	peppered := pw.handler(b, pw.mem, benchNext())
	b.Run("path=peppered/impl=apikey", func(b *testing.B) {
		runHandler(b, peppered, benchRequest("GET", "Bearer "+pw.valid), 200)
	})
	b.Run("path=unknown/impl=floor", func(b *testing.B) {
		runHandler(b, floor, benchRequest("GET", "Bearer "+never), 401)
	})
	b.Run("path=unknown/impl=floor-alloc", func(b *testing.B) {
		runHandler(b, floorAlloc, benchRequest("GET", "Bearer "+never), 401)
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
			r := benchRequest(rj.method, rj.auth)
			runHandler(b, ours, r, rj.status)
			calls := countLookups(b, wd, counted, r)
			b.ReportMetric(calls, "lookups/op")
			if !rj.store && calls != 0 {
				b.Fatalf("%s reached the store", rj.name)
			}
		})
	}
}

// Sinks for BenchmarkFloorParts.
var (
	partDigest [32]byte
	partKey    *apikey.Key
	partReq    *http.Request
)

// BenchmarkFloorParts measures the parts of the floor that no
// implementation can avoid, each alone; cmd/ratios reports their sum
// beside the floor:
//
//	part=sha256        copy the key to a stack array, sha256.Sum256
//	part=map-lookup    the floor's map of 100,000 keys, the same digest
//	                   each time as in BenchmarkRequest
//	part=with-context  r.WithContext(context.WithValue(ctx, k, v))
func BenchmarkFloorParts(b *testing.B) {
	wd := getWorld(b)
	d := sha256.Sum256([]byte(wd.valid))
	k := wd.floorMap[d]
	if k == nil {
		b.Fatal("the valid key is not in the floor's map")
	}
	r := benchRequest("GET", "Bearer "+wd.valid)
	runtime.GC()
	b.Run("part=sha256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var buf [128]byte
			n := copy(buf[:], wd.valid)
			partDigest = sha256.Sum256(buf[:n])
		}
	})
	b.Run("part=map-lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			partKey = wd.floorMap[d]
		}
	})
	b.Run("part=with-context", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			partReq = r.WithContext(context.WithValue(r.Context(), floorCtxKey{}, k))
		}
	})
	// Not a part of the floor: the price of one response header, which
	// every answer of ours pays for X-Request-Id and a refusal four times
	// (with Cache-Control, WWW-Authenticate and Content-Type), written as
	// the request benchmarks write it: through the ResponseWriter
	// interface into a header map that already holds the name.
	b.Run("part=header-write", func(b *testing.B) {
		b.ReportAllocs()
		var w http.ResponseWriter = &discardWriter{h: http.Header{}}
		for b.Loop() {
			w.Header()["X-Request-Id"] = partHeader
		}
	})
}

var partHeader = []string{"req_0123456789ABCDEFGHJKMNPQ"}

func BenchmarkRequestParallel(b *testing.B) {
	wd := getWorld(b)
	runtime.GC()
	for _, impl := range []struct {
		name string
		h    http.Handler
	}{
		{"floor", floorMiddleware(wd.floorMap)(floorNext())},
		{"apikey", wd.handler(b, wd.mem, benchNext())},
	} {
		b.Run("path=valid/impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}, status: 200}
				r := benchRequest("GET", "Bearer "+wd.valid)
				for pb.Next() {
					w.status = 200
					impl.h.ServeHTTP(w, r)
				}
				if w.status != 200 {
					b.Errorf("status %d, want 200", w.status) // the valid path, not its 401
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
