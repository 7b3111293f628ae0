package apikeyotel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	apikeyotel "github.com/keygate/apikey/otel"
)

// printSums prints every point of the named integer sum.
func printSums(rm metricdata.ResourceMetrics, name string) {
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, p := range s.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s} %d", name, attrString(p.Attributes), p.Value))
				}
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
}

// Count and time the middleware's verdicts: Instrument sets the hooks,
// Wrap times what the middleware does before the handler runs.
func Example() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader() // in production: the Prometheus exporter, or an OTLP one
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)

	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: mp, DurationEvery: 1}) // time every request: default one in 64
	if err != nil {
		panic(err)
	}
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "reporting", Scopes: []apikey.Scope{"read"}})

	cfg := apikey.Config{Keys: keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()}
	inst.Instrument(&cfg) // before apikey.New; hooks already set still run
	mw, err := apikey.New(cfg)
	if err != nil {
		panic(err)
	}
	handler := inst.Wrap(mw, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	for _, req := range []struct{ method, auth string }{
		{"GET", "Bearer " + secret.Reveal()},
		{"GET", "Bearer " + secret.Reveal()},
		{"POST", "Bearer " + secret.Reveal()}, // read-only key: 403
		{"GET", "Bearer sk_nope"},
		{"GET", ""},
	} {
		r := httptest.NewRequest(req.method, "/v1/reports", nil)
		if req.auth != "" {
			r.Header.Set("Authorization", req.auth)
		}
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	printSums(rm, "apikey.verifications")
	var timed []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, p := range h.DataPoints {
					timed = append(timed, fmt.Sprintf("%s{%s} count %d", m.Name, attrString(p.Attributes), p.Count))
				}
			}
		}
	}
	sort.Strings(timed)
	for _, l := range timed {
		fmt.Println(l)
	}
	// Output:
	// apikey.verifications{outcome=accepted} 2
	// apikey.verifications{outcome=rejected,reason=malformed} 1
	// apikey.verifications{outcome=rejected,reason=missing} 1
	// apikey.verifications{outcome=rejected,reason=scope} 1
	// apikey.verification.duration{outcome=accepted} count 2
	// apikey.verification.duration{outcome=rejected} count 3
}

// Observe a cache: its Stats are read at each collection, and its
// breaker's openings are counted through the OnBreaker hook.
func ExampleInstrumentation_ObserveCache() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	inst, _ := apikeyotel.New(apikeyotel.Config{MeterProvider: mp})

	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "etl"})

	c, err := cache.New(store, cache.Config{OnBreaker: inst.OnBreaker(nil)})
	if err != nil {
		panic(err)
	}
	if err := inst.ObserveCache(c); err != nil {
		panic(err)
	}
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: c})
	for range 3 {
		if _, err := mw.Verify(ctx, secret.Reveal()); err != nil {
			panic(err)
		}
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	printSums(rm, "apikey.cache.hits")
	printSums(rm, "apikey.cache.misses")
	// Output:
	// apikey.cache.hits{} 2
	// apikey.cache.misses{} 1
}

// Chain the lag gauge into the invalidation feed's OnSync, before the
// cache's Synced: pgstore.ListenConfig{OnSync: inst.FeedLag(c.Synced)}.
func ExampleInstrumentation_FeedLag() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	inst, _ := apikeyotel.New(apikeyotel.Config{MeterProvider: mp, Clock: func() time.Time { return now }})

	var synced time.Time
	onSync := inst.FeedLag(func(asOf time.Time) { synced = asOf }) // c.Synced, in production
	onSync(now.Add(-1500 * time.Millisecond))                      // as pgstore's Listen calls it

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == "apikey.feed.lag" {
				fmt.Printf("%s %v %s\n", m.Name, g.DataPoints[0].Value, m.Unit)
			}
		}
	}
	fmt.Println(synced.Equal(now.Add(-1500 * time.Millisecond)))
	// Output:
	// apikey.feed.lag 1.5 s
	// true
}
