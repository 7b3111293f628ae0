package bench

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/keygate/apikey"
)

// The peer benchmarks. Each implementation serves GET /v1/ping through its
// own ServeHTTP, with one reusable request and a ResponseWriter that drops
// the body. The cost of authentication is a difference measured in the same
// run:
//
//	ours:  impl=apikey       − impl=nethttp-bare  (same handler, no middleware)
//	peer:  impl=echo-keyauth − impl=echo-bare     (same route, no middleware)
//
// impl=nethttp-withvalue is the bare handler behind a middleware that only
// attaches a value to the request context, r.WithContext(context.WithValue
// (...)): the plumbing any net/http middleware pays to hand the key to the
// handler, and that echo's pooled, mutable Context does not need.
//
// Run them with
//
//	go test -run '^$' -bench Peer -count 10 . | tee peer.txt
//	benchstat -col /impl peer.txt

// worldKeys is how many keys both stores hold.
const worldKeys = 100_000

// discardWriter is a ResponseWriter that keeps one header map and drops
// the body, so the benchmarks measure the middleware, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func newDiscardWriter() *discardWriter { return &discardWriter{h: http.Header{}, status: 200} }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// world holds the same keys in our MemoryStore and in the map behind the
// echo validator.
type world struct {
	keys  apikey.KeyConfig
	store *apikey.MemoryStore
	echo  map[[sha256.Size]byte]*echoKey
	valid string // a key with the read scope, known to both
	never string // a well-formed key known to neither
}

// echoKey is what an echo user keeps per key: its digest and its record.
type echoKey struct {
	digest [sha256.Size]byte
	key    *apikey.Key
}

var (
	worlds   = map[int]*world{}
	worldsMu sync.Mutex
)

// getWorld builds (once per size) a store of n keys with the read scope,
// in the default format, digested with plain SHA-256 (no pepper), as the
// echo validator does.
func getWorld(tb testing.TB, n int) *world {
	tb.Helper()
	worldsMu.Lock()
	defer worldsMu.Unlock()
	if w, ok := worlds[n]; ok {
		return w
	}
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	w := &world{keys: keys, store: store, echo: make(map[[sha256.Size]byte]*echoKey, n)}
	for i := 0; i < n; i++ {
		k, s, err := w.store.Create(ctx, apikey.KeySpec{Name: "Production Backend", Scopes: []apikey.Scope{"read"}})
		if err != nil {
			tb.Fatal(err)
		}
		d := sha256.Sum256([]byte(s.Reveal()))
		w.echo[d] = &echoKey{digest: d, key: k}
		w.valid = s.Reveal()
	}
	// Made, never stored.
	never, err := keys.NewKey(apikey.KeySpec{Name: "never stored"})
	if err != nil {
		tb.Fatal(err)
	}
	w.never = never.Secret.Reveal()
	worlds[n] = w
	return w
}

var okBody = []byte("ok")

// okHandler is the protected handler of the net/http stacks.
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(okBody)
	})
}

// echoOK is the same handler for echo.
func echoOK(c echo.Context) error {
	_, err := c.Response().Write(okBody)
	return err
}

// echoValidator is what an echo user writes for the same check as ours:
// SHA-256 of the key, a map lookup of the digest and a constant-time
// compare of the digest. It does not store the key in the echo context
// (c.Set allocates a map per request); a real handler that needs the key
// would pay that too, so the peer's measured overhead is a lower bound.
func echoValidator(keys map[[sha256.Size]byte]*echoKey) middleware.KeyAuthValidator {
	return func(key string, _ echo.Context) (bool, error) {
		d := sha256.Sum256([]byte(key))
		k, ok := keys[d]
		if !ok {
			return false, nil
		}
		return subtle.ConstantTimeCompare(d[:], k.digest[:]) == 1, nil
	}
}

type keyCtx struct{}

// withValue is a middleware that does nothing but attach v to the context.
func withValue(v any) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, v)))
		})
	}
}

// impl is one stack under test.
type impl struct {
	name    string
	handler http.Handler
}

// impls builds the stacks over w, in the order benchstat shows them. Ours
// checks the method's scope (ReadWritePolicy: GET needs read), which the
// echo validator does not; the request id is a new one for every request.
func impls(tb testing.TB, w *world) []impl {
	tb.Helper()
	bare := echo.New()
	bare.GET("/v1/ping", echoOK)

	keyauth := echo.New()
	keyauth.GET("/v1/ping", echoOK, middleware.KeyAuthWithConfig(middleware.KeyAuthConfig{
		Validator: echoValidator(w.echo),
	}))

	mw, err := apikey.New(apikey.Config{Keys: w.keys, Store: w.store, MethodPolicy: apikey.ReadWritePolicy()})
	if err != nil {
		tb.Fatal(err)
	}
	return []impl{
		{"nethttp-bare", okHandler()},
		{"nethttp-withvalue", withValue(&echoKey{})(okHandler())},
		{"apikey", mw.Handler(okHandler())},
		{"echo-bare", bare},
		{"echo-keyauth", keyauth},
	}
}

// authenticated reports whether the implementation checks keys.
func (i impl) authenticated() bool { return i.name == "apikey" || i.name == "echo-keyauth" }

func pingRequest(key string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/ping", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

// TestPeerStacks checks that every stack answers as the benchmarks assume:
// 200 with the body for a valid key, 401 for an unknown one where keys
// are checked.
func TestPeerStacks(t *testing.T) {
	w := getWorld(t, 100)
	if _, ok := w.echo[[sha256.Size]byte(w.keys.Digest(w.valid))]; !ok {
		t.Fatal("the store's digest is not the echo validator's SHA-256")
	}
	for _, im := range impls(t, w) {
		for _, c := range []struct {
			path, key string
			want      int
		}{{"valid", w.valid, 200}, {"unknown", w.never, 401}} {
			if c.path == "unknown" && !im.authenticated() {
				continue
			}
			rr := httptest.NewRecorder()
			im.handler.ServeHTTP(rr, pingRequest(c.key))
			if rr.Code != c.want {
				t.Errorf("%s, %s key: status %d, want %d", im.name, c.path, rr.Code, c.want)
			}
			if c.want == 200 && rr.Body.String() != "ok" {
				t.Errorf("%s: body %q, want ok", im.name, rr.Body.String())
			}
		}
	}
}

// BenchmarkPeer measures one request at a time: a valid key through every
// stack, and an unknown key through the two that check keys.
func BenchmarkPeer(b *testing.B) {
	w := getWorld(b, worldKeys)
	for _, im := range impls(b, w) {
		b.Run("path=valid/impl="+im.name, func(b *testing.B) {
			serve(b, im.handler, pingRequest(w.valid), 200)
		})
	}
	for _, im := range impls(b, w) {
		if !im.authenticated() {
			continue
		}
		b.Run("path=unknown/impl="+im.name, func(b *testing.B) {
			serve(b, im.handler, pingRequest(w.never), 401)
		})
	}
}

func serve(b *testing.B, h http.Handler, r *http.Request, want int) {
	b.Helper()
	w := newDiscardWriter()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.status = 200 // as net/http does when the handler only writes
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.status != want {
		b.Fatalf("status %d, want %d", w.status, want)
	}
}

// BenchmarkPeerParallel is BenchmarkPeer's valid path from GOMAXPROCS
// goroutines at once, each with its own request and writer.
func BenchmarkPeerParallel(b *testing.B) {
	w := getWorld(b, worldKeys)
	for _, im := range impls(b, w) {
		b.Run("path=valid/impl="+im.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rw := newDiscardWriter()
				r := pingRequest(w.valid)
				for pb.Next() {
					rw.status = 200 // as net/http does when the handler only writes
					im.handler.ServeHTTP(rw, r)
				}
				if rw.status != 200 {
					b.Errorf("%s: status %d", im.name, rw.status)
				}
			})
		})
	}
}
