package apikeyotel_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	apikeyotel "github.com/keygate/apikey/otel"
	"github.com/keygate/apikey/usage"
)

// setup is an instrumented middleware over w's store, with the REST
// policy, through Instrument and Wrap.
func setup(t *testing.T, w *world, cfg apikeyotel.Config, mwCfg apikey.Config) (*apikeyotel.Instrumentation, *metrics, http.Handler) {
	t.Helper()
	m := newMetrics(t)
	cfg.MeterProvider = m.mp
	inst, err := apikeyotel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mwCfg.Keys, mwCfg.Store = w.keys, w.store
	if mwCfg.MethodPolicy == nil {
		mwCfg.MethodPolicy = apikey.ReadWritePolicy()
	}
	inst.Instrument(&mwCfg)
	mw, err := apikey.New(mwCfg)
	if err != nil {
		t.Fatal(err)
	}
	return inst, m, inst.Wrap(mw, okHandler)
}

// sequence sends the known mix of requests and checks their statuses.
func sequence(t *testing.T, w *world, h http.Handler) {
	t.Helper()
	for _, c := range []struct {
		n      int
		method string
		auth   string
		down   bool
		status int
	}{
		{3, "GET", "Bearer " + w.validSecret, false, 200},
		{1, "POST", "Bearer " + w.validSecret, false, 200},
		{2, "GET", "Bearer " + w.unknownSecret, false, 401},
		{1, "GET", "Bearer sk_live_nope", false, 401},
		{1, "GET", "", false, 401},
		{2, "GET", "Bearer " + w.revokedSecret, false, 401},
		{1, "POST", "Bearer " + w.readOnlySecret, false, 403},
		{2, "GET", "Bearer " + w.validSecret, true, 503},
	} {
		w.store.down.Store(c.down)
		for range c.n {
			if got := do(t, h, c.method, c.auth); got != c.status {
				t.Fatalf("%s %q (down %v): status %d, want %d", c.method, c.auth, c.down, got, c.status)
			}
		}
	}
	w.store.down.Store(false)
}

const sequenceRequests = 13

func TestVerificationCounts(t *testing.T) {
	w := newWorld(t)
	_, m, h := setup(t, w, apikeyotel.Config{DurationEvery: 1}, apikey.Config{})
	sequence(t, w, h)
	rm := m.collect()

	want := map[string]int64{
		"outcome=accepted":                      4,
		"outcome=rejected,reason=unknown":       2,
		"outcome=rejected,reason=malformed":     1,
		"outcome=rejected,reason=missing":       1,
		"outcome=rejected,reason=revoked":       2,
		"outcome=rejected,reason=scope":         1,
		"outcome=rejected,reason=store_failure": 2,
	}
	if got := points(t, rm, "apikey.verifications"); !equalMaps(got, want) {
		t.Errorf("apikey.verifications = %v, want %v", got, want)
	}
	wantHist := map[string]uint64{"outcome=accepted": 4, "outcome=rejected": 9}
	got := histogram(t, rm)
	if !equalMaps(got, wantHist) {
		t.Errorf("duration counts = %v, want %v", got, wantHist)
	}
	var total uint64
	for _, n := range got {
		total += n
	}
	if total != sequenceRequests {
		t.Errorf("duration count %d, want %d requests", total, sequenceRequests)
	}
	if p := points(t, rm, "apikey.require.refusals"); len(p) != 0 {
		t.Errorf("refusals %v, want none", p)
	}

	dur := find(rm, "apikey.verification.duration")
	if dur.Unit != "s" {
		t.Errorf("duration unit %q, want s", dur.Unit)
	}
	for _, p := range dur.Data.(metricdata.Histogram[float64]).DataPoints {
		if !slices.Equal(p.Bounds, apikeyotel.DefaultBuckets) {
			t.Errorf("bounds %v, want DefaultBuckets", p.Bounds)
		}
		if p.Sum <= 0 || p.Sum > 10 {
			t.Errorf("%s: sum %v s, want a small positive duration", attrString(p.Attributes), p.Sum)
		}
	}
	if v := find(rm, "apikey.verifications"); v.Unit != "{verification}" {
		t.Errorf("verifications unit %q", v.Unit)
	}
	if s := find(rm, "apikey.verifications").Data.(metricdata.Sum[int64]); !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
		t.Errorf("verifications: monotonic %v, temporality %v", s.IsMonotonic, s.Temporality)
	}

	// Counts are cumulative: the same sequence again doubles them.
	sequence(t, w, h)
	rm = m.collect()
	for k := range want {
		want[k] *= 2
	}
	if got := points(t, rm, "apikey.verifications"); !equalMaps(got, want) {
		t.Errorf("after a second round: %v, want %v", got, want)
	}
}

func TestKeyIDAttribute(t *testing.T) {
	w := newWorld(t)
	_, m, h := setup(t, w, apikeyotel.Config{KeyIDAttribute: true, DurationEvery: 1}, apikey.Config{})
	sequence(t, w, h)
	want := map[string]int64{
		"apikey.key_id=" + w.valid.ID + ",outcome=accepted":                  4,
		"outcome=rejected,reason=unknown":                                    2,
		"outcome=rejected,reason=malformed":                                  1,
		"outcome=rejected,reason=missing":                                    1,
		"apikey.key_id=" + w.revoked.ID + ",outcome=rejected,reason=revoked": 2,
		"apikey.key_id=" + w.readOnly.ID + ",outcome=rejected,reason=scope":  1,
		"outcome=rejected,reason=store_failure":                              2,
	}
	rm := m.collect()
	if got := points(t, rm, "apikey.verifications"); !equalMaps(got, want) {
		t.Errorf("apikey.verifications = %v, want %v", got, want)
	}
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "apikey.verifications" {
				n++
			}
		}
	}
	if n != 1 {
		t.Errorf("%d streams named apikey.verifications, want 1", n)
	}
}

func TestSpanAttributes(t *testing.T) {
	for _, withOwner := range []bool{false, true} {
		w := newWorld(t)
		_, _, h := setup(t, w, apikeyotel.Config{OwnerAttribute: withOwner, DurationEvery: 1}, apikey.Config{})
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		tracer := tp.Tracer("test")
		traced := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			ctx, span := tracer.Start(r.Context(), "request")
			defer span.End()
			h.ServeHTTP(rw, r.WithContext(ctx))
		})
		do(t, traced, "GET", "Bearer "+w.validSecret)
		do(t, traced, "GET", "Bearer "+w.revokedSecret)
		do(t, traced, "GET", "Bearer "+w.unknownSecret)
		do(t, traced, "POST", "Bearer "+w.readOnlySecret)

		spans := sr.Ended()
		if len(spans) != 4 {
			t.Fatalf("%d spans, want 4", len(spans))
		}
		wantAccepted := map[string]string{"apikey.outcome": "accepted", "apikey.key_id": w.valid.ID}
		if withOwner {
			wantAccepted["apikey.owner"] = owner
		}
		for i, want := range []map[string]string{
			wantAccepted,
			{"apikey.outcome": "rejected", "apikey.reason": "revoked", "apikey.key_id": w.revoked.ID},
			{"apikey.outcome": "rejected", "apikey.reason": "unknown"},
			{"apikey.outcome": "rejected", "apikey.reason": "scope", "apikey.key_id": w.readOnly.ID},
		} {
			got := map[string]string{}
			for _, kv := range spans[i].Attributes() {
				got[string(kv.Key)] = kv.Value.String()
			}
			if !equalMaps(got, want) {
				t.Errorf("owner %v: span %d attributes %v, want %v", withOwner, i, got, want)
			}
			if spans[i].Status().Code != 0 {
				t.Errorf("span %d status %v: a rejection is not a span error", i, spans[i].Status())
			}
		}
		_ = tp.Shutdown(context.Background())
	}
}

// TestNoSecretInAttributes scans every exported attribute, of metrics and
// spans, with every opt-in on, for the secrets and credentials used.
func TestNoSecretInAttributes(t *testing.T) {
	w := newWorld(t)
	_, m, h := setup(t, w, apikeyotel.Config{KeyIDAttribute: true, OwnerAttribute: true, DurationEvery: 1}, apikey.Config{})
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	traced := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ctx, span := tp.Tracer("test").Start(r.Context(), "request")
		defer span.End()
		h.ServeHTTP(rw, r.WithContext(ctx))
	})
	sequence(t, w, traced)

	values := allAttributeValues(m.collect())
	for _, s := range sr.Ended() {
		for _, kv := range s.Attributes() {
			values = append(values, string(kv.Key)+"="+kv.Value.String())
		}
		for _, e := range s.Events() {
			for _, kv := range e.Attributes {
				values = append(values, string(kv.Key)+"="+kv.Value.String())
			}
		}
	}
	if len(values) < 20 {
		t.Fatalf("only %d attribute values scanned: %v", len(values), values)
	}
	var needles []string
	for _, s := range append(w.secrets(), "sk_live_nope") {
		needles = append(needles, s, "Bearer "+s)
		// the random part alone, past the prefix
		if i := strings.LastIndexByte(s, '_'); i >= 0 && len(s)-i > 8 {
			needles = append(needles, s[i+1:])
		}
	}
	for _, v := range values {
		if strings.HasPrefix(v, "unscanned:") {
			t.Errorf("metric of a type the scan does not read: %s", v)
		}
		for _, n := range needles {
			if strings.Contains(v, n) {
				t.Errorf("attribute %q holds a secret or credential", v)
			}
		}
	}
}

func TestHooksChained(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	var accepted []string
	var rejected []apikey.Reason
	mwCfg := apikey.Config{
		OnAuthenticated: func(r *http.Request, k *apikey.Key) { mu.Lock(); accepted = append(accepted, k.ID); mu.Unlock() },
		OnRejected: func(r *http.Request, e apikey.AuthError) {
			mu.Lock()
			rejected = append(rejected, e.Reason)
			mu.Unlock()
		},
	}
	_, m, h := setup(t, w, apikeyotel.Config{DurationEvery: 1}, mwCfg)
	do(t, h, "GET", "Bearer "+w.validSecret)
	do(t, h, "GET", "Bearer "+w.revokedSecret)
	if !slices.Equal(accepted, []string{w.valid.ID}) || !slices.Equal(rejected, []apikey.Reason{apikey.ReasonRevoked}) {
		t.Errorf("hooks saw %v and %v", accepted, rejected)
	}
	want := map[string]int64{"outcome=accepted": 1, "outcome=rejected,reason=revoked": 1}
	if got := points(t, m.collect(), "apikey.verifications"); !equalMaps(got, want) {
		t.Errorf("apikey.verifications = %v, want %v", got, want)
	}

	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: newMetrics(t).mp})
	if err != nil {
		t.Fatal(err)
	}
	var opened []bool
	inst.OnBreaker(func(open bool) { opened = append(opened, open) })(true)
	inst.OnBreaker(nil)(false) // nil next: no panic
	var synced time.Time
	at := time.Unix(1_700_000_000, 0)
	inst.FeedLag(func(asOf time.Time) { synced = asOf })(at)
	inst.FeedLag(nil)(at)
	if !slices.Equal(opened, []bool{true}) || !synced.Equal(at) {
		t.Errorf("OnBreaker next saw %v, FeedLag next saw %v", opened, synced)
	}
}

func TestRequireAndAnonymous(t *testing.T) {
	w := newWorld(t)
	m := newMetrics(t)
	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: m.mp, DurationEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := apikey.Config{Keys: w.keys, Store: w.store, Anonymous: []string{"GET"}}
	inst.Instrument(&cfg)
	mw, err := apikey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/reports", mw.Require("write")(okHandler))
	mux.Handle("GET /v1/reports", okHandler)
	h := inst.Wrap(mw, mux)

	if got := do(t, h, "POST", "Bearer "+w.readOnlySecret); got != 403 {
		t.Fatalf("read-only POST: %d, want 403", got)
	}
	if got := do(t, h, "POST", "Bearer "+w.validSecret); got != 200 {
		t.Fatalf("valid POST: %d, want 200", got)
	}
	if got := do(t, h, "GET", ""); got != 200 {
		t.Fatalf("anonymous GET: %d, want 200", got)
	}
	rm := m.collect()
	if got, want := points(t, rm, "apikey.verifications"), map[string]int64{"outcome=accepted": 2}; !equalMaps(got, want) {
		t.Errorf("apikey.verifications = %v, want %v", got, want)
	}
	if got, want := points(t, rm, "apikey.require.refusals"), map[string]int64{"reason=scope": 1}; !equalMaps(got, want) {
		t.Errorf("apikey.require.refusals = %v, want %v", got, want)
	}
	if got, want := histogram(t, rm), map[string]uint64{"outcome=accepted": 2, "outcome=anonymous": 1}; !equalMaps(got, want) {
		t.Errorf("duration counts = %v, want %v", got, want)
	}
}

// TestCanceled: a client gone while the store is asked gets no answer and
// no verdict; Wrap still times it.
func TestCanceled(t *testing.T) {
	w := newWorld(t)
	m := newMetrics(t)
	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: m.mp, DurationEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := apikey.Config{Keys: w.keys, Store: blockingStore{}}
	inst.Instrument(&cfg)
	mw, err := apikey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+w.validSecret)
	inst.Wrap(mw, okHandler).ServeHTTP(httptest.NewRecorder(), r)
	rm := m.collect()
	if got := points(t, rm, "apikey.verifications"); len(got) != 0 {
		t.Errorf("apikey.verifications = %v, want none", got)
	}
	if got, want := histogram(t, rm), map[string]uint64{"outcome=canceled": 1}; !equalMaps(got, want) {
		t.Errorf("duration counts = %v, want %v", got, want)
	}
}

// blockingStore answers when the request's context is done.
type blockingStore struct{}

func (blockingStore) Lookup(ctx context.Context, _ apikey.Digest) (*apikey.Key, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestWrapWriter: next gets the writer Wrap was given, not a wrapper.
func TestWrapWriter(t *testing.T) {
	w := newWorld(t)
	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: newMetrics(t).mp})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := apikey.New(apikey.Config{Keys: w.keys, Store: w.store})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	var got http.ResponseWriter
	h := inst.Wrap(mw, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { got = rw }))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+w.validSecret)
	h.ServeHTTP(rec, r)
	if got != http.ResponseWriter(rec) {
		t.Errorf("next got %T, want the recorder", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Wrap(nil, next) did not panic")
		}
	}()
	inst.Wrap(nil, okHandler)
}

func TestVerify(t *testing.T) {
	w := newWorld(t)
	m := newMetrics(t)
	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: m.mp, DurationEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := apikey.New(apikey.Config{Keys: w.keys, Store: w.store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if k, err := inst.Verify(ctx, mw, w.validSecret); err != nil || k.ID != w.valid.ID {
		t.Fatalf("Verify valid: %v, %v", k, err)
	}
	var ae apikey.AuthError
	if _, err := inst.Verify(ctx, mw, w.revokedSecret); !errors.As(err, &ae) || ae.Reason != apikey.ReasonRevoked {
		t.Fatalf("Verify revoked: %v", err)
	}
	rm := m.collect()
	if got, want := points(t, rm, "apikey.verifications"), map[string]int64{"outcome=accepted": 1, "outcome=rejected,reason=revoked": 1}; !equalMaps(got, want) {
		t.Errorf("apikey.verifications = %v, want %v", got, want)
	}
	if got, want := histogram(t, rm), map[string]uint64{"outcome=accepted": 1, "outcome=rejected": 1}; !equalMaps(got, want) {
		t.Errorf("duration counts = %v, want %v", got, want)
	}
}

func TestObserveCache(t *testing.T) {
	w := newWorld(t)
	m := newMetrics(t)
	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: m.mp, DurationEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(w.store, cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.ObserveCache(c); err != nil {
		t.Fatal(err)
	}
	if err := inst.ObserveCache(c); !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("second ObserveCache: %v, want ErrInvalid", err)
	}
	cfg := apikey.Config{Keys: w.keys, Store: c}
	inst.Instrument(&cfg)
	mw, err := apikey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := inst.Wrap(mw, okHandler)
	for range 3 {
		do(t, h, "GET", "Bearer "+w.validSecret)
		do(t, h, "GET", "Bearer "+w.unknownSecret)
	}
	do(t, h, "GET", "Bearer "+w.readOnlySecret)

	rm := m.collect()
	s := c.Stats()
	if s.Hits != 2 || s.NegativeHits != 2 || s.Misses != 3 {
		t.Fatalf("unexpected cache stats %+v", s)
	}
	for name, want := range map[string]uint64{
		"apikey.cache.hits": s.Hits, "apikey.cache.negative_hits": s.NegativeHits, "apikey.cache.misses": s.Misses,
		"apikey.cache.store_calls": s.StoreCalls, "apikey.cache.stale_served": s.StaleServed,
		"apikey.cache.evictions": s.Evictions, "apikey.cache.negative_evictions": s.NegativeEvictions,
		"apikey.cache.refreshes": s.Refreshes, "apikey.cache.fast_fails": s.FastFails,
	} {
		if got := value(t, rm, name); got != int64(want) {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if got, want := points(t, rm, "apikey.cache.entries"), map[string]int64{"kind=found": 2, "kind=unknown": 1}; !equalMaps(got, want) {
		t.Errorf("apikey.cache.entries = %v, want %v", got, want)
	}
	if got := value(t, rm, "apikey.cache.breaker.open"); got != 0 {
		t.Errorf("breaker.open = %d, want 0", got)
	}

	// A cache whose store is down opens its breaker after one failure.
	m2 := newMetrics(t)
	inst2, err := apikeyotel.New(apikeyotel.Config{MeterProvider: m2.mp})
	if err != nil {
		t.Fatal(err)
	}
	down := &switchStore{KeyStore: w.mem}
	down.down.Store(true)
	c2, err := cache.New(down, cache.Config{BreakerFailures: 1, BreakerProbe: time.Hour, NoStale: true, OnBreaker: inst2.OnBreaker(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst2.ObserveCache(c2); err != nil {
		t.Fatal(err)
	}
	cfg2 := apikey.Config{Keys: w.keys, Store: c2}
	inst2.Instrument(&cfg2)
	mw2, err := apikey.New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	h2 := inst2.Wrap(mw2, okHandler)
	for range 3 {
		if got := do(t, h2, "GET", "Bearer "+w.validSecret); got != 503 {
			t.Fatalf("status %d, want 503", got)
		}
	}
	rm = m2.collect()
	s = c2.Stats()
	if !s.BreakerOpen || s.FastFails != 2 {
		t.Fatalf("stats %+v: want the breaker open and 2 fast fails", s)
	}
	if got := value(t, rm, "apikey.cache.breaker.open"); got != 1 {
		t.Errorf("breaker.open = %d, want 1", got)
	}
	if got := value(t, rm, "apikey.cache.breaker.openings"); got != 1 {
		t.Errorf("breaker.openings = %d, want 1", got)
	}
	if got := value(t, rm, "apikey.cache.fast_fails"); got != 2 {
		t.Errorf("fast_fails = %d, want 2", got)
	}
	if got, want := points(t, rm, "apikey.verifications"), map[string]int64{"outcome=rejected,reason=store_failure": 3}; !equalMaps(got, want) {
		t.Errorf("apikey.verifications = %v, want %v", got, want)
	}
}

// usageStore fails its flushes while failing is set.
type usageStore struct {
	mu      sync.Mutex
	failing bool
	got     uint64
}

func (s *usageStore) RecordUsage(_ context.Context, _ string, batch []apikey.Usage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return errors.New("usage store is down")
	}
	for _, u := range batch {
		s.got += u.Count
	}
	return nil
}

func TestObserveUsage(t *testing.T) {
	w := newWorld(t)
	m := newMetrics(t)
	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: m.mp, DurationEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	store := &usageStore{failing: true}
	rec, err := usage.New(store, usage.Config{Interval: time.Hour, MaxPending: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.ObserveUsage(rec); err != nil {
		t.Fatal(err)
	}
	if err := inst.ObserveUsage(rec); !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("second ObserveUsage: %v, want ErrInvalid", err)
	}
	now := time.Now()
	rec.Record(w.valid, now)
	rec.Record(w.valid, now)
	rec.Record(w.readOnly, now) // over MaxPending: dropped
	ctx := context.Background()
	if err := rec.Flush(ctx); err == nil {
		t.Fatal("Flush to a failing store succeeded")
	}
	check := func(stage string) {
		t.Helper()
		// A full recorder flushes in the background too: compare a
		// collection with the Stats that were current throughout it.
		var rm metricdata.ResourceMetrics
		var s usage.Stats
		for i := 0; ; i++ {
			before := rec.Stats()
			rm = m.collect()
			if s = rec.Stats(); s == before {
				break
			}
			if i == 100 {
				t.Fatal("usage stats never settled")
			}
			time.Sleep(10 * time.Millisecond)
		}
		for name, want := range map[string]int64{
			"apikey.usage.flush.failures": int64(s.Failures), "apikey.usage.flushed": int64(s.Flushed),
			"apikey.usage.dropped": int64(s.Dropped), "apikey.usage.pending": int64(s.Pending),
		} {
			if got := value(t, rm, name); got != want {
				t.Errorf("%s: %s = %d, want %d (Stats %+v)", stage, name, got, want, s)
			}
		}
	}
	if s := rec.Stats(); s.Failures < 1 || s.Pending != 1 || s.Dropped != 1 {
		t.Fatalf("stats %+v", s)
	}
	check("failing")
	store.mu.Lock()
	store.failing = false
	store.mu.Unlock()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := rec.Stats(); s.Flushed != 2 || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}
	check("flushed")
	if err := rec.Close(); err != nil {
		t.Log(err) // the dropped request is reported again
	}
}

func TestFeedLag(t *testing.T) {
	m := newMetrics(t)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: m.mp, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if find(m.collect(), "apikey.feed.lag") != nil {
		t.Error("feed lag reported before the first sync")
	}
	feed := inst.FeedLag(nil)
	feed(now.Add(-250 * time.Millisecond))
	lag := func() float64 {
		t.Helper()
		g, ok := find(m.collect(), "apikey.feed.lag").Data.(metricdata.Gauge[float64])
		if !ok || len(g.DataPoints) != 1 {
			t.Fatalf("feed lag: %+v", g)
		}
		return g.DataPoints[0].Value
	}
	if got := lag(); got != 0.25 {
		t.Errorf("lag %v s, want 0.25", got)
	}
	mu.Lock()
	now = now.Add(3 * time.Second) // the feed stalls: the lag grows
	mu.Unlock()
	if got := lag(); got != 3.25 {
		t.Errorf("lag %v s, want 3.25", got)
	}
	feed(now)
	if got := lag(); got != 0 {
		t.Errorf("lag %v s, want 0", got)
	}
	if u := find(m.collect(), "apikey.feed.lag").Unit; u != "s" {
		t.Errorf("unit %q", u)
	}
}

func TestNewErrors(t *testing.T) {
	for _, b := range [][]float64{{}, {0.1, 0.1}, {-1}, {0.1, 0.05}} {
		_, err := apikeyotel.New(apikeyotel.Config{Buckets: b})
		if !errors.Is(err, apikey.ErrInvalid) || !strings.Contains(err.Error(), "Config.Buckets") {
			t.Errorf("Buckets %v: %v, want ErrInvalid naming Config.Buckets", b, err)
		}
	}
	inst, err := apikeyotel.New(apikeyotel.Config{}) // the global (no-op) provider
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.ObserveCache(nil); !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("ObserveCache(nil): %v", err)
	}
	if err := inst.ObserveUsage(nil); !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("ObserveUsage(nil): %v", err)
	}

	m := newMetrics(t)
	custom := []float64{0.001, 0.01, 0.1}
	inst, err = apikeyotel.New(apikeyotel.Config{MeterProvider: m.mp, Buckets: custom, DurationEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.Verify(context.Background(), mustMiddleware(t), "x"); err == nil {
		t.Fatal("Verify of garbage succeeded")
	}
	h := find(m.collect(), "apikey.verification.duration").Data.(metricdata.Histogram[float64])
	if !slices.Equal(h.DataPoints[0].Bounds, custom) {
		t.Errorf("bounds %v, want %v", h.DataPoints[0].Bounds, custom)
	}
}

func mustMiddleware(t *testing.T) *apikey.Middleware {
	w := newWorld(t)
	mw, err := apikey.New(apikey.Config{Keys: w.keys, Store: w.store})
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

func TestClose(t *testing.T) {
	w := newWorld(t)
	inst, m, h := setup(t, w, apikeyotel.Config{DurationEvery: 1}, apikey.Config{})
	c, err := cache.New(w.store, cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.ObserveCache(c); err != nil {
		t.Fatal(err)
	}
	do(t, h, "GET", "Bearer "+w.validSecret)
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	rm := m.collect()
	for _, name := range []string{"apikey.verifications", "apikey.cache.hits"} {
		if p := points(t, rm, name); len(p) != 0 {
			t.Errorf("%s still observed after Close: %v", name, p)
		}
	}
	if got := histogram(t, rm); got["outcome=accepted"] != 1 {
		t.Errorf("histogram after Close: %v", got)
	}
}

// TestDurationEvery: with DurationEvery the histogram is a sample; the
// verdicts are all counted.
func TestDurationEvery(t *testing.T) {
	w := newWorld(t)
	_, m, h := setup(t, w, apikeyotel.Config{DurationEvery: 4}, apikey.Config{})
	const n = 800
	for range n {
		do(t, h, "GET", "Bearer "+w.validSecret)
	}
	rm := m.collect()
	if got := points(t, rm, "apikey.verifications")["outcome=accepted"]; got != n {
		t.Errorf("accepted %d, want %d", got, n)
	}
	// 200 expected; the bounds are 7 standard deviations out.
	if timed := histogram(t, rm)["outcome=accepted"]; timed < 120 || timed > 280 {
		t.Errorf("%d of %d requests timed, want about a quarter", timed, n)
	}
	if _, err := apikeyotel.New(apikeyotel.Config{DurationEvery: -1}); !errors.Is(err, apikey.ErrInvalid) || !strings.Contains(err.Error(), "Config.DurationEvery") {
		t.Errorf("DurationEvery -1: %v", err)
	}
}

// TestConcurrent serves requests from several goroutines while a reader
// collects; the counts come out exact (and the race detector is quiet).
func TestConcurrent(t *testing.T) {
	w := newWorld(t)
	_, m, h := setup(t, w, apikeyotel.Config{DurationEvery: 1}, apikey.Config{})
	const workers, each = 4, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for {
			select {
			case <-stop:
				return
			default:
				m.collect()
			}
		}
	}()
	for range workers {
		wg.Go(func() {
			for i := range each {
				auth := "Bearer " + w.validSecret
				if i%2 == 1 {
					auth = "Bearer " + w.unknownSecret
				}
				do(t, h, "GET", auth)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-collected
	rm := m.collect()
	want := map[string]int64{"outcome=accepted": workers * each / 2, "outcome=rejected,reason=unknown": workers * each / 2}
	if got := points(t, rm, "apikey.verifications"); !equalMaps(got, want) {
		t.Errorf("apikey.verifications = %v, want %v", got, want)
	}
	if got, want := histogram(t, rm), map[string]uint64{"outcome=accepted": workers * each / 2, "outcome=rejected": workers * each / 2}; !equalMaps(got, want) {
		t.Errorf("duration counts = %v, want %v", got, want)
	}
}
