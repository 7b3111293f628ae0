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
	"github.com/keygate/apikey/internal/faultstore"
)

// faultTimeout is the lookup timeout of the fault tests: long enough for
// a loaded CI machine to answer a healthy lookup, short enough to keep
// the tests fast.
const faultTimeout = 40 * time.Millisecond

// unavailableBody is the 503 body of each ready-made style.
func unavailableBody(style string) map[string]any {
	msg := func(s apikey.JSONStyle) string { return s.Messages().Unavailable }
	switch style {
	case "flat":
		return map[string]any{"error": "unavailable", "message": msg(apikey.StyleFlat), "request_id": rid}
	case "nested-meta":
		return map[string]any{"error": map[string]any{"code": "unavailable", "message": msg(apikey.StyleNestedMeta)}, "meta": map[string]any{"request_id": rid}}
	case "nested":
		return map[string]any{"error": map[string]any{"code": "unavailable", "message": msg(apikey.StyleNested)}}
	case "nested-status":
		return map[string]any{"error": map[string]any{"code": "unavailable", "message": msg(apikey.StyleNestedStatus), "status": float64(503)}}
	case "stax":
		return map[string]any{"success": false, "authError": false, "error": msg(apikey.StyleStax)}
	case "problem":
		return map[string]any{"type": "about:blank", "title": "Service Unavailable", "status": float64(503), "detail": msg(apikey.StyleProblem), "request_id": rid}
	}
	panic("unknown style " + style)
}

// storeFault is a fault a store can have and the reason it must be
// reported under (for logs and the hook; the status is 503 for all).
type storeFault struct {
	name   string
	fault  faultstore.Fault
	reason apikey.Reason
}

// reasonOK reports whether got is an acceptable reason for the fault. A
// store's own deadline (a statement timeout) may be reported as a failure
// or as a timeout: both are 503.
func (f storeFault) reasonOK(got apikey.Reason) bool {
	if f.fault.Err != nil && errors.Is(f.fault.Err, context.DeadlineExceeded) {
		return got == apikey.ReasonStoreFailure || got == apikey.ReasonStoreTimeout
	}
	return got == f.reason
}

func storeFaults() []storeFault {
	return []storeFault{
		{"error", faultstore.Fault{Err: errors.New("dial tcp 10.0.0.5:5432: connection refused")}, apikey.ReasonStoreFailure},
		{"wrapped error", faultstore.Fault{Err: fmt.Errorf("lookup: %w", &net.OpError{Op: "read", Err: errors.New("reset")})}, apikey.ReasonStoreFailure},
		{"store's own context cancelled", faultstore.Fault{Err: fmt.Errorf("pool closed: %w", context.Canceled)}, apikey.ReasonStoreFailure},
		{"store's own deadline exceeded", faultstore.Fault{Err: fmt.Errorf("statement timeout: %w", context.DeadlineExceeded)}, apikey.ReasonStoreFailure},
		{"latency beyond the lookup timeout", faultstore.Fault{Latency: time.Hour}, apikey.ReasonStoreTimeout},
		{"lookup that never answers", faultstore.Fault{Hang: true}, apikey.ReasonStoreTimeout},
		{"panic with a string", faultstore.Fault{Panic: "index out of range"}, apikey.ReasonStorePanic},
		{"panic with an error", faultstore.Fault{Panic: errors.New("nil map")}, apikey.ReasonStorePanic},
		{"panic(nil)", faultstore.Fault{PanicNil: true}, apikey.ReasonStorePanic},
		{"panic with http.ErrAbortHandler", faultstore.Fault{Panic: http.ErrAbortHandler}, apikey.ReasonStorePanic},
	}
}

// TestStoreFaultsAnswer503 injects each fault under each style: the answer
// is 503 with Retry-After and the style's body, never 401; the protected
// handler never runs; the hook learns the precise reason.
func TestStoreFaultsAnswer503(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	for _, fc := range storeFaults() {
		for _, style := range apikey.StyleNames() {
			t.Run(fc.name+"/"+style, func(t *testing.T) {
				st, _ := apikey.StyleByName(style)
				var rejected []apikey.AuthError
				var called atomic.Bool
				h := apikey.Middleware(fs, apikey.WithStyle(st), apikey.WithLookupTimeout(faultTimeout),
					apikey.OnRejected(func(_ *http.Request, e apikey.AuthError) { rejected = append(rejected, e) }),
				)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) }))
				fs.Set(fc.fault)
				defer fs.Clear()

				start := time.Now()
				rr := call(h, "GET", "/", f.read)
				assert.Less(t, time.Since(start), 2*time.Second, "bounded by the lookup timeout")
				require.Equal(t, http.StatusServiceUnavailable, rr.Code, "body %s", rr.Body)
				assert.False(t, called.Load(), "the protected handler never runs on a store fault")
				assert.Equal(t, "1", rr.Header().Get("Retry-After"))
				assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
				assert.Empty(t, rr.Header().Get("Www-Authenticate"), "a fault is not a credential problem")
				reqID := rr.Header().Get("X-Request-Id")
				assert.Regexp(t, freshRequestID, reqID)
				assert.Equal(t, replaceRID(unavailableBody(style), reqID), decode(t, rr))
				assert.NotContains(t, rr.Body.String(), "refused")
				assert.NotContains(t, rr.Body.String(), "panic")
				require.Len(t, rejected, 1)
				assert.True(t, fc.reasonOK(rejected[0].Reason), "reason %v", rejected[0].Reason)
				assert.Equal(t, http.StatusServiceUnavailable, rejected[0].Status())
			})
		}
	}
	assert.Zero(t, fs.InFlight(), "no lookup left behind")
}

// A fault is reported by Verify too, as a 503 reason wrapping the store's
// error, never as an unknown key.
func TestStoreFaultsThroughVerify(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	auth := apikey.New(fs, apikey.WithLookupTimeout(faultTimeout))
	for _, fc := range storeFaults() {
		t.Run(fc.name, func(t *testing.T) {
			fs.Set(fc.fault)
			defer fs.Clear()
			k, err := auth.Verify(context.Background(), f.read)
			assert.Nil(t, k)
			var ae apikey.AuthError
			require.ErrorAs(t, err, &ae)
			assert.True(t, fc.reasonOK(ae.Reason), "reason %v", ae.Reason)
			assert.Equal(t, http.StatusServiceUnavailable, ae.Status())
			if fc.fault.Err != nil {
				assert.ErrorIs(t, err, fc.fault.Err)
			}
			assert.NotErrorIs(t, err, apikey.ErrNotFound)
		})
	}
	k, err := auth.Verify(context.Background(), f.read)
	require.NoError(t, err, "healthy again once the fault is gone")
	assert.Equal(t, f.readID, k.ID)
}

func TestRetryAfterIsConfigurable(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	fs.Set(faultstore.Fault{Err: errors.New("down")})
	h := apikey.Middleware(fs, apikey.WithRetryAfter(2500*time.Millisecond))(okHandler())
	rr := call(h, "GET", "/", f.read)
	assert.Equal(t, 503, rr.Code)
	assert.Equal(t, "3", rr.Header().Get("Retry-After"), "rounded up to whole seconds")
}

// writeSpy records whether anything was written.
type writeSpy struct {
	h       http.Header
	written atomic.Bool
}

func (w *writeSpy) Header() http.Header { return w.h }
func (w *writeSpy) Write(b []byte) (int, error) {
	w.written.Store(true)
	return len(b), nil
}
func (w *writeSpy) WriteHeader(int) { w.written.Store(true) }

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
			h := apikey.Middleware(fs,
				apikey.WithLookupTimeout(time.Minute),
				apikey.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
				apikey.OnRejected(func(*http.Request, apikey.AuthError) { rejected.Add(1) }),
			)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) }))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fault := fc.fault
			fault.Before = func(context.Context) { cancel() } // the client hangs up mid-lookup
			fs.Set(fault)
			r := bearer(httptest.NewRequest("GET", "/", nil).WithContext(ctx), f.read)
			w := &writeSpy{h: http.Header{}}
			done := make(chan struct{})
			go func() { defer close(done); h.ServeHTTP(w, r) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
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

// serverErrors captures the http.Server's error log, where net/http
// reports handler panics ("http: panic serving …").
type serverErrors struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *serverErrors) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *serverErrors) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func newFaultServer(t *testing.T, h http.Handler) (*httptest.Server, *serverErrors) {
	t.Helper()
	errs := &serverErrors{}
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
	srv, errs := newFaultServer(t, apikey.Middleware(fs, apikey.WithLookupTimeout(faultTimeout))(protected))
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

// Every store fault over real HTTP: 503, never 401, never the handler.
func TestStoreFaultsOverRealHTTP(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	var called atomic.Int32
	srv, errs := newFaultServer(t, apikey.Middleware(fs, apikey.WithLookupTimeout(faultTimeout))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) })))
	for _, fc := range storeFaults() {
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
	mw := apikey.Middleware(fs, apikey.WithLookupTimeout(time.Minute),
		apikey.OnRejected(func(*http.Request, apikey.AuthError) { rejected.Add(1) }),
	)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) }))
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
	case <-time.After(5 * time.Second):
		t.Fatal("the lookup never started")
	}
	cancel()
	require.ErrorIs(t, <-clientErr, context.Canceled)
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
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
	faults := storeFaults()
	fs.Set(faults[0].fault)
	var called, not503 atomic.Int32
	h := apikey.Middleware(fs, apikey.WithLookupTimeout(5*time.Millisecond))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) }))
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

// rotatedStore is a key made under pepper "old", behind a fault store,
// with a middleware that knows "new" (current) and "old".
func rotatedStore(t *testing.T) (*faultstore.Store, *apikey.MemoryStore, string, *apikey.Hasher) {
	t.Helper()
	oldHasher, err := apikey.NewHasher(pepper(t, "old", 'o'))
	require.NoError(t, err)
	mem := apikey.NewMemoryStore(apikey.StoreConfig{Hasher: oldHasher})
	_, sec, err := mem.Create(context.Background(), apikey.KeySpec{Name: "k", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	rotating, err := apikey.NewHasher(pepper(t, "new", 'n'), pepper(t, "old", 'o'))
	require.NoError(t, err)
	return faultstore.New(mem), mem, sec.Reveal(), rotating
}

// A failed or hung re-digest under the current pepper is logged and the
// request goes on (middleware.go: "A failure is logged; the request goes
// on").
func TestRehashFaultsDoNotFailTheRequest(t *testing.T) {
	for _, fc := range []struct {
		name  string
		fault faultstore.Fault
	}{
		{"error", faultstore.Fault{Err: errors.New("read-only replica")}},
		{"hang", faultstore.Fault{Hang: true}},
	} {
		t.Run(fc.name, func(t *testing.T) {
			fs, _, key, rotating := rotatedStore(t)
			fs.SetRehash(fc.fault)
			var logs bytes.Buffer
			h := apikey.Middleware(fs, apikey.WithHasher(rotating), apikey.WithLookupTimeout(faultTimeout),
				apikey.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))(okHandler())
			rr := call(h, "GET", "/", key)
			assert.Equal(t, 200, rr.Code)
			assert.EqualValues(t, 1, fs.RehashCalls())
			assert.Contains(t, logs.String(), "rehash under current pepper failed")
			assert.NotContains(t, logs.String(), key)
		})
	}
}

// A panicking Rehash must be contained like a panicking Lookup.
func TestRehashPanicIsContained(t *testing.T) {
	fs, _, key, rotating := rotatedStore(t)
	fs.SetRehash(faultstore.Fault{Panic: "rehash exploded"})
	var called atomic.Bool
	h := apikey.Middleware(fs, apikey.WithHasher(rotating), apikey.WithLookupTimeout(faultTimeout))(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { called.Store(true); w.WriteHeader(200) }))
	rr := call(h, "GET", "/", key)
	assert.Equal(t, 200, rr.Code, "the rehash is best effort; the request goes on")
	assert.True(t, called.Load())
}

// A Cache in front of a failing store passes the fault on: 503, never 401,
// never the handler; and a fault is never cached, so the key works again
// as soon as the store does.
func TestCacheOverFaultyStore(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	cache := apikey.NewCache(fs, apikey.CacheLookupTimeout(faultTimeout))
	var called atomic.Int32
	var reasons []apikey.Reason
	h := apikey.Middleware(cache,
		apikey.OnRejected(func(_ *http.Request, e apikey.AuthError) { reasons = append(reasons, e.Reason) }),
	)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { called.Add(1) }))
	for _, fc := range storeFaults() {
		t.Run(fc.name, func(t *testing.T) {
			reasons = nil
			fs.Set(fc.fault)
			defer fs.Clear()
			rr := call(h, "GET", "/", f.rw)
			assert.Equal(t, 503, rr.Code, rr.Body.String())
			assert.Equal(t, "1", rr.Header().Get("Retry-After"))
			require.Len(t, reasons, 1)
			assert.Equal(t, 503, reasons[0].Status())
		})
	}
	assert.Zero(t, called.Load())
	rr := call(h, "GET", "/", f.rw)
	assert.Equal(t, 200, rr.Code, "the fault was not cached")
	assert.EqualValues(t, 1, called.Load())

	// The client goes away during a miss: quiet, as without a cache.
	var rejected atomic.Int32
	quiet := apikey.Middleware(cache, apikey.OnRejected(func(*http.Request, apikey.AuthError) { rejected.Add(1) }))(okHandler())
	ctx, cancel := context.WithCancel(context.Background())
	fs.Set(faultstore.Fault{Hang: true, Before: func(context.Context) { cancel() }})
	defer fs.Clear()
	w := &writeSpy{h: http.Header{}}
	quiet.ServeHTTP(w, bearer(httptest.NewRequest("GET", "/", nil).WithContext(ctx), f.read))
	assert.False(t, w.written.Load())
	assert.Zero(t, rejected.Load())
}
