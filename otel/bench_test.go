package apikeyotel_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/keygate/apikey"
	apikeyotel "github.com/keygate/apikey/otel"
)

// discardWriter keeps one header map and drops the body, so that the
// benchmark measures the middleware, not a recorder (as the root
// package's benchmarks do).
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// BenchmarkInstrumented is a valid request through the bare middleware and
// through the instrumented one, in one process, on an SDK MeterProvider
// with a reader and no span: impl=otel is Instrument and Wrap timing every
// request (DurationEvery: 1), impl=otel-default times one in 64 (the default
// (Config.DurationEvery), impl=otel-hooks is Instrument alone (counts and
// span attributes, no duration). The paired= sub-benchmarks alternate
// chunks of requests between the bare middleware and one of these and
// report the median ratio: on a busy machine, the figure to read.
//
//	go test -c -o otel.test .
//	for i in $(seq 6); do ./otel.test -test.run '^$' -test.bench Instrumented; done | tee otel.txt
func BenchmarkInstrumented(b *testing.B) {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	for range 10_000 {
		if _, _, err := store.Create(ctx, apikey.KeySpec{Name: "filler", Scopes: []apikey.Scope{"read", "write"}}); err != nil {
			b.Fatal(err)
		}
	}
	_, secret, err := store.Create(ctx, apikey.KeySpec{Name: "bench", Scopes: []apikey.Scope{"read", "write"}})
	if err != nil {
		b.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := apikey.FromContext(r.Context()); !ok {
			panic("handler reached without a key")
		}
		_, _ = w.Write([]byte("ok"))
	})

	bareMW, err := apikey.New(apikey.Config{Keys: keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()})
	if err != nil {
		b.Fatal(err)
	}
	bare := bareMW.Handler(next)

	// instrumented is the middleware through Instrument and, unless
	// hooksOnly, Wrap, on an SDK MeterProvider with a reader.
	instrumented := func(cfg apikeyotel.Config, hooksOnly bool) http.Handler {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		b.Cleanup(func() { _ = mp.Shutdown(ctx) })
		cfg.MeterProvider = mp
		inst, err := apikeyotel.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		mwCfg := apikey.Config{Keys: keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()}
		inst.Instrument(&mwCfg)
		mw, err := apikey.New(mwCfg)
		if err != nil {
			b.Fatal(err)
		}
		if hooksOnly {
			return mw.Handler(next)
		}
		return inst.Wrap(mw, next)
	}
	otel := instrumented(apikeyotel.Config{DurationEvery: 1}, false)
	sampled := instrumented(apikeyotel.Config{}, false) // the default: one in 64
	hooks := instrumented(apikeyotel.Config{}, true)

	run := func(b *testing.B, h http.Handler) {
		r := httptest.NewRequest("GET", "/v1/reports", nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			w.status = 200
			h.ServeHTTP(w, r)
		}
		b.StopTimer()
		if w.status != 200 {
			b.Fatalf("status %d, want 200", w.status)
		}
	}
	b.Run("impl=bare", func(b *testing.B) { run(b, bare) })
	b.Run("impl=otel", func(b *testing.B) { run(b, otel) })
	b.Run("impl=otel-default", func(b *testing.B) { run(b, sampled) })
	b.Run("impl=otel-hooks", func(b *testing.B) { run(b, hooks) })
	b.Run("paired=otel", func(b *testing.B) { paired(b, secret.Reveal(), bare, otel) })
	b.Run("paired=otel-default", func(b *testing.B) { paired(b, secret.Reveal(), bare, sampled) })
	b.Run("paired=otel-hooks", func(b *testing.B) { paired(b, secret.Reveal(), bare, hooks) })
}

// paired serves b.N requests through each handler, alternating chunks of
// pairChunk requests, and reports each one's ns/op and the median of the
// ratios of adjacent chunks: a burst of load from elsewhere hits both
// sides alike, which separate sub-benchmarks on a busy machine do not.
func paired(b *testing.B, secret string, bare, instrumented http.Handler) {
	r := httptest.NewRequest("GET", "/v1/reports", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	w := &discardWriter{h: http.Header{}}
	chunk := func(h http.Handler, n int) time.Duration {
		start := time.Now()
		for range n {
			h.ServeHTTP(w, r)
		}
		return time.Since(start)
	}
	var bareTotal, instTotal time.Duration
	bareMin, instMin := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	var ratios []float64
	b.ResetTimer()
	for left := b.N; left > 0; left -= pairChunk {
		n := min(left, pairChunk)
		if len(ratios)%2 == 0 { // alternate which side goes first
			tb := chunk(bare, n)
			ti := chunk(instrumented, n)
			bareTotal, instTotal = bareTotal+tb, instTotal+ti
			ratios = append(ratios, float64(ti)/float64(tb))
			if n == pairChunk {
				bareMin, instMin = min(bareMin, tb), min(instMin, ti)
			}
		} else {
			ti := chunk(instrumented, n)
			tb := chunk(bare, n)
			bareTotal, instTotal = bareTotal+tb, instTotal+ti
			ratios = append(ratios, float64(ti)/float64(tb))
			if n == pairChunk {
				bareMin, instMin = min(bareMin, tb), min(instMin, ti)
			}
		}
	}
	b.StopTimer()
	if w.status != 0 && w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
	slices.Sort(ratios)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(bareTotal.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(instTotal.Nanoseconds())/float64(b.N), "otel-ns/op")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	if bareMin < math.MaxInt64 {
		// the least disturbed chunk of each side
		b.ReportMetric(float64(instMin)/float64(bareMin), "min-ratio")
	}
}

// pairChunk is the number of requests per chunk of paired: long enough
// for two clock readings not to count, short enough for load to change
// little between two adjacent chunks.
const pairChunk = 500
