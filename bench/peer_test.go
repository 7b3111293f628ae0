package bench

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/keyauth"
	echo4 "github.com/labstack/echo/v4"
	echo4mw "github.com/labstack/echo/v4/middleware"
	echo5 "github.com/labstack/echo/v5"
	echo5mw "github.com/labstack/echo/v5/middleware"
	"github.com/valyala/fasthttp"

	"github.com/keygate/apikey"
)

// The peer benchmarks. Each implementation serves GET /v1/ping, one
// reusable request at a time; the cost of authentication is a difference
// measured in the same run, each stack over itself without it:
//
//	ours:     impl=apikey         − impl=nethttp-bare  (same handler, no middleware)
//	          impl=apikey-keyarg  − impl=nethttp-bare  (Middleware.HandlerFunc:
//	                                                    the key as an argument)
//	          impl=apikey-keyarg-noid − impl=nethttp-bare  (the same with
//	                                                    Config.NoRequestID)
//	echo v4:  impl=echo-keyauth   − impl=echo-bare     (same route, no middleware)
//	echo v5:  impl=echo5-keyauth  − impl=echo5-bare
//	fiber v2: impl=fiber-keyauth  − impl=fiber-bare
//
// The net/http and echo stacks are driven through ServeHTTP with a
// ResponseWriter that drops the body. Fiber runs on fasthttp, not
// net/http: its stacks are driven through app.Handler() with one reused
// *fasthttp.RequestCtx, so its figures are a reference measured on another
// server library, comparable with the others as overheads only.
//
// Every peer validates keys the same way (peerValidate): SHA-256 of the
// key copied to a stack array, a map lookup of the digest (the map is
// keyed by digest, so no constant-time compare is needed). None of them
// stores the key for the handler (echo's c.Set and fiber's c.Locals would
// cost more), so their overheads are lower bounds.
//
// impl=nethttp-withvalue is the bare handler behind a middleware that only
// attaches a value to the request context, r.WithContext(context.WithValue
// (...)): the plumbing any net/http middleware pays to hand the key to the
// handler through the context, and that echo's and fiber's pooled, mutable
// contexts do not need.
//
// Run them with
//
//	go test -run '^$' -bench Peer -count 10 . | tee peer.txt
//	benchstat -col /impl peer.txt

// worldKeys is how many keys the stores hold.
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
// peers' validator.
type world struct {
	keys  apikey.KeyConfig
	store *apikey.MemoryStore
	peer  map[[sha256.Size]byte]*apikey.Key
	valid string // a key with the read scope, known to both
	never string // a well-formed key known to neither
}

var (
	worlds   = map[int]*world{}
	worldsMu sync.Mutex
)

// getWorld builds (once per size) a store of n keys with the read scope,
// in the default format, digested with plain SHA-256 (no pepper), as the
// peers' validator does.
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
	w := &world{keys: keys, store: store, peer: make(map[[sha256.Size]byte]*apikey.Key, n)}
	for i := 0; i < n; i++ {
		k, s, err := w.store.Create(ctx, apikey.KeySpec{Name: "Production Backend", Scopes: []apikey.Scope{"read"}})
		if err != nil {
			tb.Fatal(err)
		}
		w.peer[sha256.Sum256([]byte(s.Reveal()))] = k
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

// peerValidate is the check every peer's validator makes, as a user would
// write it without allocating: the key copied to a stack array, SHA-256,
// a map lookup of the digest. A key longer than the array is refused.
func peerValidate(keys map[[sha256.Size]byte]*apikey.Key, key string) bool {
	var buf [128]byte
	if len(key) > len(buf) {
		return false
	}
	n := copy(buf[:], key)
	return keys[sha256.Sum256(buf[:n])] != nil
}

var okBody = []byte("ok")

// okHandler is the protected handler of the net/http stacks.
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(okBody)
	})
}

// okKeyArg is okHandler for Middleware.HandlerFunc: the key is an argument.
func okKeyArg(w http.ResponseWriter, _ *http.Request, k *apikey.Key) {
	if k == nil {
		panic("handler reached without a key")
	}
	_, _ = w.Write(okBody)
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

// impl is one stack under test: a net/http handler, or a fasthttp one
// (fiber).
type impl struct {
	name    string
	handler http.Handler
	fast    fasthttp.RequestHandler
	auth    bool // checks keys
}

// impls builds the stacks over w, in the order benchstat shows them. Ours
// checks the method's scope (ReadWritePolicy: GET needs read), which the
// peers' validator does not; the request id is a new one for every
// request.
func impls(tb testing.TB, w *world) []impl {
	tb.Helper()
	mw, err := apikey.New(apikey.Config{Keys: w.keys, Store: w.store, MethodPolicy: apikey.ReadWritePolicy()})
	if err != nil {
		tb.Fatal(err)
	}
	noID, err := apikey.New(apikey.Config{Keys: w.keys, Store: w.store, MethodPolicy: apikey.ReadWritePolicy(), NoRequestID: true})
	if err != nil {
		tb.Fatal(err)
	}
	return []impl{
		{name: "nethttp-bare", handler: okHandler()},
		{name: "nethttp-withvalue", handler: withValue(&apikey.Key{})(okHandler())},
		{name: "apikey", handler: mw.Handler(okHandler()), auth: true},
		{name: "apikey-keyarg", handler: mw.HandlerFunc(okKeyArg), auth: true},
		{name: "apikey-keyarg-noid", handler: noID.HandlerFunc(okKeyArg), auth: true},
		{name: "echo-bare", handler: echo4Stack(nil)},
		{name: "echo-keyauth", handler: echo4Stack(w.peer), auth: true},
		{name: "echo5-bare", handler: echo5Stack(nil)},
		{name: "echo5-keyauth", handler: echo5Stack(w.peer), auth: true},
		{name: "fiber-bare", fast: fiberStack(nil)},
		{name: "fiber-keyauth", fast: fiberStack(w.peer), auth: true},
	}
}

// echo4Stack is echo v4 with the route, behind KeyAuth when keys is not
// nil.
func echo4Stack(keys map[[sha256.Size]byte]*apikey.Key) http.Handler {
	e := echo4.New()
	var mws []echo4.MiddlewareFunc
	if keys != nil {
		mws = append(mws, echo4mw.KeyAuthWithConfig(echo4mw.KeyAuthConfig{
			Validator: func(key string, _ echo4.Context) (bool, error) { return peerValidate(keys, key), nil },
		}))
	}
	e.GET("/v1/ping", func(c echo4.Context) error {
		_, err := c.Response().Write(okBody)
		return err
	}, mws...)
	return e
}

// echo5Stack is echo4Stack for echo v5.
func echo5Stack(keys map[[sha256.Size]byte]*apikey.Key) http.Handler {
	e := echo5.New()
	var mws []echo5.MiddlewareFunc
	if keys != nil {
		mws = append(mws, echo5mw.KeyAuthWithConfig(echo5mw.KeyAuthConfig{
			Validator: func(_ *echo5.Context, key string, _ echo5mw.ExtractorSource) (bool, error) {
				return peerValidate(keys, key), nil
			},
		}))
	}
	e.GET("/v1/ping", func(c *echo5.Context) error {
		_, err := c.Response().Write(okBody)
		return err
	}, mws...)
	return e
}

// fiberStack is fiber v2 with the route, behind keyauth when keys is not
// nil, as the fasthttp handler a fasthttp server would call.
func fiberStack(keys map[[sha256.Size]byte]*apikey.Key) fasthttp.RequestHandler {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	handlers := []fiber.Handler{}
	if keys != nil {
		handlers = append(handlers, keyauth.New(keyauth.Config{
			Validator: func(_ *fiber.Ctx, key string) (bool, error) { return peerValidate(keys, key), nil },
		}))
	}
	handlers = append(handlers, func(c *fiber.Ctx) error { return c.Send(okBody) })
	app.Get("/v1/ping", handlers...)
	return app.Handler()
}

func pingRequest(key string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/ping", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

// fastRequest is pingRequest for fasthttp: a RequestCtx to reuse.
func fastRequest(key string) *fasthttp.RequestCtx {
	c := new(fasthttp.RequestCtx)
	c.Request.Header.SetMethod(fasthttp.MethodGet)
	c.Request.SetRequestURI("/v1/ping")
	c.Request.Header.Set("Authorization", "Bearer "+key)
	return c
}

// TestPeerStacks checks that every stack answers as the benchmarks assume:
// 200 with the body for a valid key, 401 for an unknown one where keys
// are checked.
func TestPeerStacks(t *testing.T) {
	w := getWorld(t, 100)
	if _, ok := w.peer[[sha256.Size]byte(w.keys.Digest(w.valid))]; !ok {
		t.Fatal("the store's digest is not the peers' SHA-256")
	}
	for _, im := range impls(t, w) {
		for _, c := range []struct {
			path, key string
			want      int
		}{{"valid", w.valid, 200}, {"unknown", w.never, 401}} {
			if c.path == "unknown" && !im.auth {
				continue
			}
			var code int
			var body string
			if im.fast != nil {
				fc := fastRequest(c.key)
				im.fast(fc)
				code, body = fc.Response.StatusCode(), string(fc.Response.Body())
			} else {
				rr := httptest.NewRecorder()
				im.handler.ServeHTTP(rr, pingRequest(c.key))
				code, body = rr.Code, rr.Body.String()
			}
			if code != c.want {
				t.Errorf("%s, %s key: status %d, want %d", im.name, c.path, code, c.want)
			}
			if c.want == 200 && body != "ok" {
				t.Errorf("%s: body %q, want ok", im.name, body)
			}
		}
	}
}

// BenchmarkPeer measures one request at a time: a valid key through every
// stack, and an unknown key through those that check keys.
func BenchmarkPeer(b *testing.B) {
	w := getWorld(b, worldKeys)
	list := impls(b, w)
	runtime.GC() // the world's garbage, not in the first sub-benchmark's loop
	for _, im := range list {
		b.Run("path=valid/impl="+im.name, func(b *testing.B) {
			serve(b, im, w.valid, 200)
		})
	}
	for _, im := range list {
		if !im.auth {
			continue
		}
		b.Run("path=unknown/impl="+im.name, func(b *testing.B) {
			serve(b, im, w.never, 401)
		})
	}
}

// serve sends the same request with key through im b.N times and checks
// the last answer's status.
func serve(b *testing.B, im impl, key string, want int) {
	b.Helper()
	var status func() int
	var loop func(n int)
	if im.fast != nil {
		c := fastRequest(key)
		status = c.Response.StatusCode
		loop = func(n int) {
			for i := 0; i < n; i++ {
				im.fast(c)
			}
		}
	} else {
		w, r := newDiscardWriter(), pingRequest(key)
		status = func() int { return w.status }
		loop = func(n int) {
			for i := 0; i < n; i++ {
				w.status = 200 // as net/http does when the handler only writes
				im.handler.ServeHTTP(w, r)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	loop(b.N)
	b.StopTimer()
	if got := status(); got != want {
		b.Fatalf("status %d, want %d", got, want)
	}
}

// BenchmarkPeerParallel is BenchmarkPeer's valid path from GOMAXPROCS
// goroutines at once, each with its own request and writer.
func BenchmarkPeerParallel(b *testing.B) {
	w := getWorld(b, worldKeys)
	list := impls(b, w)
	runtime.GC()
	for _, im := range list {
		b.Run("path=valid/impl="+im.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				if im.fast != nil {
					c := fastRequest(w.valid)
					for pb.Next() {
						im.fast(c)
					}
					if s := c.Response.StatusCode(); s != 200 {
						b.Errorf("%s: status %d", im.name, s)
					}
					return
				}
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
