package apikey_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/limit"
)

// newLimiter is limit.New over the fixture's clock with live keys limited
// to n per minute, burst n.
func (f *fixture) newLimiter(t *testing.T, n int64) *limit.Limiter {
	t.Helper()
	l, err := limit.New(limit.Config{Live: []apikey.Limit{{Name: "requests", Count: n, Per: time.Minute}}, Clock: f.clock.Now})
	require.NoError(t, err)
	return l
}

// Every shape's 429, pinned, with the headers a client needs to back off.
func TestLimitedBodies(t *testing.T) {
	for _, tc := range []struct {
		shape  apikey.Shape
		status int
		ctype  string
		body   string
	}{
		{apikey.ShapeProblem, 429, "application/problem+json", `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"This API key has used its allowance; retry after the time in Retry-After.","request_id":"RID"}`},
		{apikey.ShapeFlat, 429, "application/json", `{"error":"limited","message":"This API key has used its allowance; retry after the time in Retry-After.","request_id":"RID"}`},
		{apikey.ShapeNested, 429, "application/json", `{"error":{"code":"limited","message":"This API key has used its allowance; retry after the time in Retry-After."}}`},
		{apikey.ShapeNestedMeta, 429, "application/json", `{"error":{"code":"limited","message":"This API key has used its allowance; retry after the time in Retry-After."},"meta":{"request_id":"RID"}}`},
		{apikey.ShapeNestedStatus, 429, "application/json", `{"error":{"code":"limited","message":"This API key has used its allowance; retry after the time in Retry-After.","status":429}}`},
		{apikey.ShapeAuthError, 429, "application/json", `{"success":false,"authError":false,"error":"This API key has used its allowance; retry after the time in Retry-After."}`},
	} {
		t.Run(tc.ctype+tc.body[:12], func(t *testing.T) {
			f := newFixture(t)
			style, err := apikey.NewErrorStyle(tc.shape, apikey.Messages{})
			require.NoError(t, err)
			h := f.handler(t, func(c *apikey.Config) { c.Style, c.Limiter = style, f.newLimiter(t, 2) })
			for range 2 {
				rr := call(h, "GET", "/", f.read)
				require.Equal(t, http.StatusOK, rr.Code)
			}
			rr := call(h, "GET", "/", f.read)
			rid := rr.Header().Get("X-Request-Id")
			require.NotEmpty(t, rid)
			assert.Equal(t, tc.status, rr.Code)
			assert.Equal(t, tc.ctype, rr.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
			assert.Equal(t, "30", rr.Header().Get("Retry-After"), "one token every 30 s")
			assert.Equal(t, `"requests";q=2;w=60`, rr.Header().Get("RateLimit-Policy"))
			assert.Equal(t, `"requests";r=0;t=60`, rr.Header().Get("RateLimit"))
			assert.Empty(t, rr.Header().Get("WWW-Authenticate"))
			assert.JSONEq(t, strings.ReplaceAll(tc.body, "RID", rid), rr.Body.String())
		})
	}
}

// Allowed requests say what remains; NoHeaders keeps it to the refusals.
func TestLimitHeadersOnAllowedRequests(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, func(c *apikey.Config) { c.Limiter = f.newLimiter(t, 10) })
	rr := call(h, "GET", "/", f.read)
	require.Equal(t, http.StatusOK, rr.Code)
	assert.Equal(t, `"requests";q=10;w=60`, rr.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"requests";r=9;t=6`, rr.Header().Get("RateLimit"))
	assert.Empty(t, rr.Header().Get("Retry-After"))

	quiet, err := limit.New(limit.Config{Live: []apikey.Limit{{Name: "requests", Count: 1, Per: time.Minute}}, NoHeaders: true, Clock: f.clock.Now})
	require.NoError(t, err)
	h = f.handler(t, func(c *apikey.Config) { c.Limiter = quiet })
	rr = call(h, "GET", "/", f.read)
	require.Equal(t, http.StatusOK, rr.Code)
	assert.Empty(t, rr.Header().Get("RateLimit"))
	assert.Empty(t, rr.Header().Get("RateLimit-Policy"))
	rr = call(h, "GET", "/", f.read)
	require.Equal(t, http.StatusTooManyRequests, rr.Code)
	assert.Equal(t, `"requests";r=0;t=60`, rr.Header().Get("RateLimit"))
}

// A request refused for any other reason consumes nothing: not a 401, not
// the middleware's 403, not a Require's 403 after the middleware charged
// it; a 429 consumes nothing either.
func TestLimitChargesOnlyServedRequests(t *testing.T) {
	f := newFixture(t)
	lim := f.newLimiter(t, 3)
	auth := newMiddleware(t, func() apikey.Config { c := f.config(); c.Limiter = lim; return c }())
	mux := http.NewServeMux()
	mux.Handle("GET /admin", auth.Require("admin")(okHandler()))
	mux.Handle("GET /", okHandler())
	h := auth.Handler(mux)

	assert.Equal(t, 401, call(h, "GET", "/", flipChecksum(f.read)).Code)
	assert.Equal(t, 401, call(h, "GET", "/", newSecret(t)).Code)
	assert.Equal(t, 403, call(h, "POST", "/", f.read).Code, "MethodPolicy: read key cannot write")
	for range 5 {
		rr := call(h, "GET", "/admin", f.read)
		assert.Equal(t, 403, rr.Code, "Require refuses after the charge and gives it back")
		assert.Empty(t, rr.Header().Get("RateLimit"), "the state the charge wrote no longer holds")
	}
	for range 3 {
		assert.Equal(t, 200, call(h, "GET", "/", f.read).Code)
	}
	assert.Equal(t, 429, call(h, "GET", "/", f.read).Code)
	st, err := lim.Status(context.Background(), f.readKey)
	require.NoError(t, err)
	require.Len(t, st, 1)
	assert.Equal(t, int64(0), st[0].Remaining)

	f.clock.Advance(20 * time.Second) // one token back, not two: the 429 took none
	assert.Equal(t, 200, call(h, "GET", "/", f.read).Code)
	assert.Equal(t, 429, call(h, "GET", "/", f.read).Code)
}

// Cost raises a route's price; nested Costs charge the largest; a request
// its key cannot pay for gives back what it paid and is not usage.
func TestCost(t *testing.T) {
	f := newFixture(t)
	lim := f.newLimiter(t, 12)
	rec := &countingRecorder{}
	auth := newMiddleware(t, func() apikey.Config { c := f.config(); c.Limiter, c.Usage = lim, rec; return c }())
	mux := http.NewServeMux()
	mux.Handle("GET /render", auth.Cost(10)(okHandler()))
	mux.Handle("GET /both", auth.Cost(10)(auth.Cost(4)(okHandler())))
	mux.Handle("GET /", okHandler())
	h := auth.Handler(mux)

	assert.Equal(t, 200, call(h, "GET", "/render", f.read).Code)
	assert.Equal(t, 200, call(h, "GET", "/", f.read).Code)
	rr := call(h, "GET", "/render", f.read)
	assert.Equal(t, 429, rr.Code, "1 left, 10 needed")
	assert.Equal(t, `"requests";r=1;t=55`, rr.Header().Get("RateLimit"), "the 1 it paid went back before the whole price was asked")
	assert.Equal(t, 200, call(h, "GET", "/", f.read).Code, "the refused request gave back its 1")
	assert.Equal(t, 3, rec.n(), "the 429 is not usage")

	f.clock.Advance(time.Minute)
	assert.Equal(t, 200, call(h, "GET", "/both", f.read).Code)
	assert.Equal(t, 200, call(h, "GET", "/", f.read).Code)
	assert.Equal(t, 200, call(h, "GET", "/", f.read).Code)
	assert.Equal(t, 429, call(h, "GET", "/", f.read).Code, "/both cost 10, not 14")

	assert.Panics(t, func() { auth.Cost(0) })
	assert.Panics(t, func() { auth.Cost(1<<40 + 1) })

	// A price over the burst never fits: 429 without a Retry-After that
	// would promise otherwise.
	f.clock.Advance(time.Hour)
	rr = call(auth.Handler(auth.Cost(13)(okHandler())), "GET", "/", f.read)
	assert.Equal(t, 429, rr.Code)
	assert.Empty(t, rr.Header().Get("Retry-After"))
	assert.Equal(t, 200, call(h, "GET", "/render", f.read).Code, "and it took nothing")
	// Without a middleware upstream Cost refuses, as Require does.
	assert.Equal(t, 401, call(auth.Cost(2)(okHandler()), "GET", "/", f.read).Code)
}

// countingRecorder counts what Config.Usage records.
type countingRecorder struct{ count atomic.Int64 }

func (r *countingRecorder) Record(*apikey.Key, time.Time) { r.count.Add(1) }

func (r *countingRecorder) n() int { return int(r.count.Load()) }

// A limiter that fails or panics is a 503, never a pass and never a crash.
func TestLimiterFaults(t *testing.T) {
	f := newFixture(t)
	for name, l := range map[string]apikey.Limiter{
		"error": faultyLimiter{err: errors.New("redis: i/o timeout")},
		"panic": faultyLimiter{panics: true},
	} {
		t.Run(name, func(t *testing.T) {
			var got apikey.AuthError
			h := f.handler(t, func(c *apikey.Config) {
				c.Limiter = l
				c.OnRejected = func(_ *http.Request, e apikey.AuthError) { got = e }
			})
			rr := call(h, "GET", "/", f.read)
			assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
			assert.Equal(t, "1", rr.Header().Get("Retry-After"))
			assert.Equal(t, apikey.ReasonStoreFailure, got.Reason)
			assert.Contains(t, got.Error(), "limiter")
		})
	}
}

type faultyLimiter struct {
	err    error
	panics bool
}

func (l faultyLimiter) Take(context.Context, *apikey.Key, int64, http.Header) (bool, error) {
	if l.panics {
		panic("boom")
	}
	return false, l.err
}

func (faultyLimiter) Give(context.Context, *apikey.Key, int64) {}

// A client that goes away while the limiter works gets what one that goes
// away during a lookup gets (TestClientGoneDuringSlowLookup): nothing
// written, no hook, no log line, no handler; in both handler forms.
func TestClientGoneDuringTake(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	var rejected, called atomic.Int32
	cfg := f.config()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.OnRejected = func(*http.Request, apikey.AuthError) { rejected.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Limiter = hangUpLimiter{cancel}
	m := newMiddleware(t, cfg)
	for name, h := range map[string]http.Handler{
		"Handler":     m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) })),
		"HandlerFunc": m.HandlerFunc(func(http.ResponseWriter, *http.Request, *apikey.Key) { called.Add(1) }),
	} {
		w := &faultWriteSpy{h: http.Header{}}
		h.ServeHTTP(w, bearer(httptest.NewRequest("GET", "/", nil).WithContext(ctx), f.read))
		assert.False(t, w.written.Load(), "%s: nothing is written for a client that has gone", name)
	}
	assert.Zero(t, rejected.Load(), "no OnRejected call")
	assert.Zero(t, called.Load())
	assert.Empty(t, logs.String())
}

// hangUpLimiter is a limiter whose client hangs up mid-decision: it
// cancels the request's context and fails with the cancellation.
type hangUpLimiter struct{ cancel context.CancelFunc }

func (l hangUpLimiter) Take(ctx context.Context, _ *apikey.Key, _ int64, _ http.Header) (bool, error) {
	l.cancel()
	return false, ctx.Err()
}

func (hangUpLimiter) Give(context.Context, *apikey.Key, int64) {}

// The limited reason is a 429 in logs and hooks.
func TestReasonLimited(t *testing.T) {
	assert.Equal(t, 429, apikey.ReasonLimited.Status())
	assert.Equal(t, "limited", apikey.ReasonLimited.String())
}

// HandlerFunc runs every check Handler runs, limits and usage included,
// and hands the handler the key (nil for an anonymous request).
func TestHandlerFunc(t *testing.T) {
	f := newFixture(t)
	rec := &countingRecorder{}
	auth := newMiddleware(t, func() apikey.Config {
		c := f.config()
		c.Limiter, c.Usage, c.Anonymous = f.newLimiter(t, 2), rec, []string{"OPTIONS"}
		return c
	}())
	var got []string
	h := auth.HandlerFunc(func(w http.ResponseWriter, r *http.Request, k *apikey.Key) {
		if k == nil {
			got = append(got, "anonymous")
		} else {
			got = append(got, k.ID)
		}
		_, ok := apikey.FromContext(r.Context())
		assert.False(t, ok, "the key is an argument, not in the context")
	})
	for _, tc := range []struct {
		method, key string
		status      int
	}{
		{"GET", f.read, 200},
		{"GET", newSecret(t), 401},
		{"POST", f.read, 403},
		{"OPTIONS", "", 200},
		{"GET", f.read, 200},
		{"GET", f.read, 429},
	} {
		rr := call(h, tc.method, "/", tc.key)
		assert.Equal(t, tc.status, rr.Code, "%s %.12s", tc.method, tc.key)
		assert.NotEmpty(t, rr.Header().Get("X-Request-Id"))
	}
	assert.Equal(t, []string{f.readID, "anonymous", f.readID}, got)
	assert.Equal(t, 2, rec.n(), "usage: the two served requests with a key")
	assert.Panics(t, func() { auth.HandlerFunc(nil) })
}
