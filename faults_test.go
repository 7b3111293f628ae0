package apikey_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/internal/faultstore"
	"github.com/keygate/apikey/internal/testkit"
)

// The middleware sets no deadline on a lookup: a store that blocks bounds
// its own calls (cache.Config.LookupTimeout, pgstore), or the request's
// context has a deadline. These tests bound slow lookups either way.

// faultTimeout bounds slow lookups in the fault tests: long enough for a
// loaded CI machine to answer a healthy lookup, short enough to keep the
// tests fast.
const faultTimeout = 40 * time.Millisecond

// faultShapes are the JSON shapes, each with the default messages.
var faultShapes = []struct {
	name  string
	shape apikey.Shape
}{
	{"problem", apikey.ShapeProblem},
	{"flat", apikey.ShapeFlat},
	{"nested", apikey.ShapeNested},
	{"nested-meta", apikey.ShapeNestedMeta},
	{"nested-status", apikey.ShapeNestedStatus},
	{"auth-error", apikey.ShapeAuthError},
}

// faultUnavailable is the default message of a 503.
const faultUnavailable = "Authentication is temporarily unavailable; retry the request shortly."

// faultUnavailableBody is the 503 body of each shape.
func faultUnavailableBody(shape apikey.Shape) map[string]any {
	switch shape {
	case apikey.ShapeFlat:
		return map[string]any{"error": "unavailable", "message": faultUnavailable, "request_id": mwRID}
	case apikey.ShapeNestedMeta:
		return map[string]any{"error": map[string]any{"code": "unavailable", "message": faultUnavailable}, "meta": map[string]any{"request_id": mwRID}}
	case apikey.ShapeNested:
		return map[string]any{"error": map[string]any{"code": "unavailable", "message": faultUnavailable}}
	case apikey.ShapeNestedStatus:
		return map[string]any{"error": map[string]any{"code": "unavailable", "message": faultUnavailable, "status": float64(503)}}
	case apikey.ShapeAuthError:
		return map[string]any{"success": false, "authError": false, "error": faultUnavailable}
	case apikey.ShapeProblem:
		return map[string]any{"type": "about:blank", "title": "Service Unavailable", "status": float64(503), "detail": faultUnavailable, "request_id": mwRID}
	}
	panic(fmt.Sprintf("unknown shape %d", shape))
}

// faultCase is a fault a store can have. Every one is reported as
// ReasonStoreFailure (503); AuthError.Err says which.
type faultCase struct {
	name  string
	fault faultstore.Fault
}

// slow reports whether the fault only ends when the lookup's context does.
func (f faultCase) slow() bool { return f.fault.Hang || f.fault.Latency > 0 }

// checkErr asserts that the AuthError's Err tells the fault apart.
func (f faultCase) checkErr(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.NotErrorIs(t, err, apikey.ErrNotFound, "a fault is never an unknown key")
	switch {
	case f.fault.Err != nil:
		assert.ErrorIs(t, err, f.fault.Err)
	case f.slow():
		assert.ErrorIs(t, err, context.DeadlineExceeded, "a timeout wraps context.DeadlineExceeded")
	default:
		assert.Contains(t, err.Error(), "panicked")
	}
}

func faultCases() []faultCase {
	return []faultCase{
		{"error", faultstore.Fault{Err: errors.New("dial tcp 10.0.0.5:5432: connection refused")}},
		{"wrapped error", faultstore.Fault{Err: fmt.Errorf("lookup: %w", &net.OpError{Op: "read", Err: errors.New("reset")})}},
		{"store's own context cancelled", faultstore.Fault{Err: fmt.Errorf("pool closed: %w", context.Canceled)}},
		{"store's own deadline exceeded", faultstore.Fault{Err: fmt.Errorf("statement timeout: %w", context.DeadlineExceeded)}},
		{"latency beyond the deadline", faultstore.Fault{Latency: time.Hour}},
		{"lookup that never answers", faultstore.Fault{Hang: true}},
		{"panic with a string", faultstore.Fault{Panic: "index out of range"}},
		{"panic with an error", faultstore.Fault{Panic: errors.New("nil map")}},
		{"panic(nil)", faultstore.Fault{PanicNil: true}},
		{"panic with http.ErrAbortHandler", faultstore.Fault{Panic: http.ErrAbortHandler}},
	}
}

// faultDeadline gives every request a context deadline of d, as a server
// with a request timeout does.
func faultDeadline(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// faultCall is call, failing the test if the request does not finish
// within ten seconds: a lookup nothing bounds would hang for ever.
func faultCall(t *testing.T, h http.Handler, key string) *httptest.ResponseRecorder {
	t.Helper()
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- call(h, "GET", "/", key) }()
	select {
	case rr := <-done:
		return rr
	case <-time.After(10 * time.Second):
		t.Fatal("the request never finished: the lookup was not bounded")
		return nil
	}
}

// TestStoreFaultsAnswer503 injects each fault under each shape: the answer
// is 503 with Retry-After and the shape's body, never 401; the protected
// handler never runs; the hook learns the reason and the error.
func TestStoreFaultsAnswer503(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	for _, fc := range faultCases() {
		for _, sh := range faultShapes {
			t.Run(fc.name+"/"+sh.name, func(t *testing.T) {
				st, err := apikey.NewErrorStyle(sh.shape, apikey.Messages{})
				require.NoError(t, err)
				var mu sync.Mutex
				var rejected []apikey.AuthError
				var called atomic.Bool
				cfg := f.config()
				cfg.Store, cfg.Style = fs, st
				cfg.OnRejected = func(_ *http.Request, e apikey.AuthError) {
					mu.Lock()
					defer mu.Unlock()
					rejected = append(rejected, e)
				}
				h := faultDeadline(faultTimeout, newMiddleware(t, cfg).Handler(
					http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) })))
				fs.Set(fc.fault)
				defer fs.Clear()

				rr := faultCall(t, h, f.read)
				require.Equal(t, http.StatusServiceUnavailable, rr.Code, "body %s", rr.Body)
				assert.False(t, called.Load(), "the protected handler never runs on a store fault")
				assert.Equal(t, "1", rr.Header().Get("Retry-After"))
				assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
				assert.Empty(t, rr.Header().Get("Www-Authenticate"), "a fault is not a credential problem")
				reqID := rr.Header().Get("X-Request-Id")
				assert.Regexp(t, mwFreshRID, reqID)
				assert.Equal(t, replaceRID(faultUnavailableBody(sh.shape), reqID), decode(t, rr))
				assert.NotContains(t, rr.Body.String(), "refused")
				assert.NotContains(t, rr.Body.String(), "panic")
				mu.Lock()
				defer mu.Unlock()
				require.Len(t, rejected, 1)
				assert.Equal(t, apikey.ReasonStoreFailure, rejected[0].Reason)
				assert.Equal(t, http.StatusServiceUnavailable, rejected[0].Reason.Status())
				assert.Equal(t, reqID, rejected[0].RequestID)
				fc.checkErr(t, rejected[0].Err)
			})
		}
	}
	assert.Zero(t, fs.InFlight(), "no lookup left behind")
}

// A fault is reported by Verify too, as a store failure wrapping the
// store's error, never as an unknown key.
func TestStoreFaultsThroughVerify(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	cfg := f.config()
	cfg.Store = fs
	mw := newMiddleware(t, cfg)
	for _, fc := range faultCases() {
		t.Run(fc.name, func(t *testing.T) {
			fs.Set(fc.fault)
			defer fs.Clear()
			ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
			defer cancel()
			k, err := mw.Verify(ctx, f.read)
			assert.Nil(t, k)
			var ae apikey.AuthError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, apikey.ReasonStoreFailure, ae.Reason)
			assert.Equal(t, http.StatusServiceUnavailable, ae.Reason.Status())
			fc.checkErr(t, err)
		})
	}
	k, err := mw.Verify(context.Background(), f.read)
	require.NoError(t, err, "healthy again once the fault is gone")
	assert.Equal(t, f.readID, k.ID)
}

func TestRetryAfterIsConfigurable(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	fs.Set(faultstore.Fault{Err: errors.New("down")})
	for _, tt := range []struct {
		retryAfter time.Duration
		want       string
	}{
		{0, "1"},
		{time.Millisecond, "1"},
		{2 * time.Second, "2"},
		{2500 * time.Millisecond, "3"}, // rounded up to whole seconds
	} {
		h := f.handler(t, func(c *apikey.Config) { c.Store, c.RetryAfter = fs, tt.retryAfter })
		rr := call(h, "GET", "/", f.read)
		assert.Equal(t, 503, rr.Code)
		assert.Equal(t, tt.want, rr.Header().Get("Retry-After"), "RetryAfter %v", tt.retryAfter)
	}
}

// faultWriteSpy records whether anything was written.
type faultWriteSpy struct {
	h       http.Header
	written atomic.Bool
}

func (w *faultWriteSpy) Header() http.Header { return w.h }
func (w *faultWriteSpy) Write(b []byte) (int, error) {
	w.written.Store(true)
	return len(b), nil
}
func (w *faultWriteSpy) WriteHeader(int) { w.written.Store(true) }

// When the client goes away during a slow lookup, the middleware stops
// quietly: nothing written, no hook, no log line, no handler.
func TestClientGoneDuringSlowLookup(t *testing.T) {
	f := newFixture(t)
	for _, fc := range []struct {
		name  string
		fault faultstore.Fault
	}{
		{"hung lookup", faultstore.Fault{Hang: true}},
		{"slow lookup", faultstore.Fault{Latency: time.Hour}},
		{"lookup returning the cancellation", faultstore.Fault{Err: context.Canceled}},
	} {
		t.Run(fc.name, func(t *testing.T) {
			fs := faultstore.New(f.store)
			var logs bytes.Buffer
			var rejected, called atomic.Int32
			cfg := f.config()
			cfg.Store = fs
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			cfg.OnRejected = func(*http.Request, apikey.AuthError) { rejected.Add(1) }
			h := newMiddleware(t, cfg).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) }))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fault := fc.fault
			fault.Before = func(context.Context) { cancel() } // the client hangs up mid-lookup
			fs.Set(fault)
			r := bearer(httptest.NewRequest("GET", "/", nil).WithContext(ctx), f.read)
			w := &faultWriteSpy{h: http.Header{}}
			done := make(chan struct{})
			go func() { defer close(done); h.ServeHTTP(w, r) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the middleware kept waiting for a client that has gone")
			}
			assert.False(t, w.written.Load(), "nothing is written for a client that has gone")
			assert.Zero(t, rejected.Load(), "no OnRejected call")
			assert.Zero(t, called.Load())
			assert.Empty(t, logs.String())
			assert.EqualValues(t, 1, fs.Calls())
			assert.Zero(t, fs.InFlight())
		})
	}
}

// faultServerErrors captures the http.Server's error log, where net/http
// reports handler panics ("http: panic serving …").
type faultServerErrors = testkit.Buffer

func newFaultServer(t *testing.T, h http.Handler) (*httptest.Server, *faultServerErrors) {
	t.Helper()
	errs := &faultServerErrors{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(errs, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, errs
}

func faultGet(t *testing.T, client *http.Client, url, key string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

// A panicking store, over real HTTP: every request gets a 503 with a body
// (no dropped connection, no "panic serving" in the server's log), many at
// once, and the server keeps serving once the store recovers.
func TestStorePanicOverRealHTTP(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	var called atomic.Int32
	protected := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called.Add(1)
		okHandler().ServeHTTP(w, r)
	})
	cfg := f.config()
	cfg.Store = fs
	srv, errs := newFaultServer(t, newMiddleware(t, cfg).Handler(protected))
	client := srv.Client()

	for _, p := range []faultstore.Fault{{Panic: "boom"}, {Panic: http.ErrAbortHandler}, {PanicNil: true}} {
		fs.Set(p)
		var wg sync.WaitGroup
		var bad atomic.Int32
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", srv.URL, nil)
				req.Header.Set("Authorization", "Bearer "+f.read)
				resp, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"status":503`) {
					bad.Add(1)
				}
			}()
		}
		wg.Wait()
		assert.Zero(t, bad.Load(), "every request answered 503 (%v)", p)
	}
	assert.Zero(t, called.Load(), "the protected handler never ran")
	assert.EqualValues(t, 48, fs.Panics())
	assert.Empty(t, errs.String(), "no panic reached net/http")

	fs.Clear()
	status, _, body := faultGet(t, client, srv.URL, f.read)
	assert.Equal(t, 200, status, "the server still serves: %s", body)
	assert.EqualValues(t, 1, called.Load())
}

// Every store fault over real HTTP, behind a request deadline: 503, never
// 401, never the handler.
func TestStoreFaultsOverRealHTTP(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	var called atomic.Int32
	cfg := f.config()
	cfg.Store = fs
	srv, errs := newFaultServer(t, faultDeadline(faultTimeout, newMiddleware(t, cfg).Handler(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) }))))
	for _, fc := range faultCases() {
		fs.Set(fc.fault)
		status, hdr, body := faultGet(t, srv.Client(), srv.URL, f.read)
		assert.Equal(t, 503, status, "%s: %s", fc.name, body)
		assert.Equal(t, "1", hdr.Get("Retry-After"), fc.name)
		assert.Equal(t, "application/problem+json", hdr.Get("Content-Type"), fc.name)
	}
	assert.Zero(t, called.Load())
	assert.Empty(t, errs.String())
}

// A client that hangs up during a slow lookup over real HTTP: the server
// notices, the middleware stops quietly, nothing else runs.
func TestClientGoneOverRealHTTP(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	started := make(chan struct{}, 1)
	fs.Set(faultstore.Fault{Hang: true, Before: func(context.Context) { started <- struct{}{} }})
	var rejected, called atomic.Int32
	finished := make(chan struct{}, 1)
	cfg := f.config()
	cfg.Store = fs
	cfg.OnRejected = func(*http.Request, apikey.AuthError) { rejected.Add(1) }
	mw := newMiddleware(t, cfg).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) }))
	srv, errs := newFaultServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { finished <- struct{}{} }()
		mw.ServeHTTP(w, r)
	}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+f.read)
	clientErr := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the lookup never started")
	}
	cancel()
	require.ErrorIs(t, <-clientErr, context.Canceled)
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept waiting on a lookup for a client that has gone")
	}
	assert.Zero(t, rejected.Load(), "no OnRejected call for a client that has gone")
	assert.Zero(t, called.Load())
	assert.Zero(t, fs.InFlight())
	assert.Empty(t, errs.String())
}

// Faults switching under concurrent load: every answer is a 503, the
// handler never runs, and the race detector has nothing to say.
func TestStoreFaultsUnderConcurrency(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	faults := faultCases()
	fs.Set(faults[0].fault)
	var called, not503 atomic.Int32
	cfg := f.config()
	cfg.Store = fs
	h := faultDeadline(5*time.Millisecond, newMiddleware(t, cfg).Handler(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) })))
	stop := make(chan struct{})
	var switcher sync.WaitGroup
	switcher.Add(1)
	go func() {
		defer switcher.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				fs.Set(faults[i%len(faults)].fault)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if call(h, "GET", "/", f.read).Code != 503 {
					not503.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	switcher.Wait()
	assert.Zero(t, called.Load())
	assert.Zero(t, not503.Load())
	assert.EqualValues(t, 320, fs.Calls())
	assert.Zero(t, fs.InFlight())
}

// faultRotatedStore is a key made under pepper "old", filed in a memory
// store behind a fault store, and the KeyConfig that knows "new" (current)
// and "old".
func faultRotatedStore(t *testing.T) (*faultstore.Store, string, apikey.KeyConfig) {
	t.Helper()
	keys, _ := testKeys()
	before := keys
	before.Peppers = []apikey.Pepper{pepper(t, "old", 'o')}
	is, err := before.NewKey(apikey.KeySpec{Name: "k", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	rotating := keys
	rotating.Peppers = []apikey.Pepper{pepper(t, "new", 'n'), pepper(t, "old", 'o')}
	mem := newMemoryStore(t, rotating)
	require.NoError(t, mem.Add(context.Background(), is.Digest, is.Key))
	return faultstore.New(mem), is.Secret.Reveal(), rotating
}

// A failed or hung re-digest under the current pepper is logged and the
// request goes on. A hung one ends with the request's deadline: the
// middleware sets none of its own.
func TestRehashFaultsDoNotFailTheRequest(t *testing.T) {
	for _, fc := range []struct {
		name  string
		fault faultstore.Fault
	}{
		{"error", faultstore.Fault{Err: errors.New("read-only replica")}},
		{"hang", faultstore.Fault{Hang: true}},
	} {
		t.Run(fc.name, func(t *testing.T) {
			fs, key, rotating := faultRotatedStore(t)
			fs.SetRehash(fc.fault)
			var logs bytes.Buffer
			h := faultDeadline(faultTimeout, newMiddleware(t, apikey.Config{
				Keys: rotating, Store: fs, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			}).Handler(okHandler()))
			rr := faultCall(t, h, key)
			assert.Equal(t, 200, rr.Code)
			assert.Equal(t, true, decode(t, rr)["authenticated"])
			assert.EqualValues(t, 1, fs.RehashCalls())
			assert.Contains(t, logs.String(), "rehash under current pepper failed")
			assert.NotContains(t, logs.String(), key)
		})
	}
}

// A panicking Rehash must be contained like a panicking Lookup.
func TestRehashPanicIsContained(t *testing.T) {
	fs, key, rotating := faultRotatedStore(t)
	fs.SetRehash(faultstore.Fault{Panic: "rehash exploded"})
	var called atomic.Bool
	var logs bytes.Buffer
	h := newMiddleware(t, apikey.Config{Keys: rotating, Store: fs, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}).Handler(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { called.Store(true); w.WriteHeader(200) }))
	rr := call(h, "GET", "/", key)
	assert.Equal(t, 200, rr.Code, "the rehash is best effort; the request goes on")
	assert.True(t, called.Load())
	assert.EqualValues(t, 1, fs.Panics())
	assert.Contains(t, logs.String(), "rehash exploded")
}

// A cache in front of a failing store passes the fault on: 503, never 401,
// never the handler; a slow store is bounded by the cache's LookupTimeout;
// and a fault is never cached, so the key works again as soon as the store
// does.
func TestCacheOverFaultyStore(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	// Each fault must reach the store: no circuit breaker in this test
	// (cache's own tests cover it).
	c, err := cache.New(fs, cache.Config{LookupTimeout: faultTimeout, Clock: f.clock.Now, BreakerFailures: 1000})
	require.NoError(t, err)
	var called atomic.Int32
	var mu sync.Mutex
	var rejected []apikey.AuthError
	cfg := f.config()
	cfg.Store = c
	cfg.OnRejected = func(_ *http.Request, e apikey.AuthError) {
		mu.Lock()
		defer mu.Unlock()
		rejected = append(rejected, e)
	}
	h := newMiddleware(t, cfg).Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { called.Add(1) }))
	for _, fc := range faultCases() {
		t.Run(fc.name, func(t *testing.T) {
			mu.Lock()
			rejected = nil
			mu.Unlock()
			fs.Set(fc.fault)
			defer fs.Clear()
			rr := faultCall(t, h, f.rw) // no request deadline: the cache's bounds the lookup
			assert.Equal(t, 503, rr.Code, rr.Body.String())
			assert.Equal(t, "1", rr.Header().Get("Retry-After"))
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, rejected, 1)
			assert.Equal(t, apikey.ReasonStoreFailure, rejected[0].Reason)
			fc.checkErr(t, rejected[0].Err)
		})
	}
	assert.Zero(t, called.Load())
	rr := call(h, "GET", "/", f.rw)
	assert.Equal(t, 200, rr.Code, "the fault was not cached")
	assert.EqualValues(t, 1, called.Load())

	// The client goes away during a miss: quiet, as without a cache.
	var quietRejected atomic.Int32
	qcfg := f.config()
	qcfg.Store = c
	qcfg.OnRejected = func(*http.Request, apikey.AuthError) { quietRejected.Add(1) }
	quiet := newMiddleware(t, qcfg).Handler(okHandler())
	ctx, cancel := context.WithCancel(context.Background())
	fs.Set(faultstore.Fault{Hang: true, Before: func(context.Context) { cancel() }})
	defer fs.Clear()
	w := &faultWriteSpy{h: http.Header{}}
	quiet.ServeHTTP(w, bearer(httptest.NewRequest("GET", "/", nil).WithContext(ctx), f.read))
	assert.False(t, w.written.Load())
	assert.Zero(t, quietRejected.Load())
	// The cache's own lookup, detached from the client, ends at its
	// LookupTimeout.
	assert.Eventually(t, func() bool { return fs.InFlight() == 0 }, 10*time.Second, 5*time.Millisecond)
}
