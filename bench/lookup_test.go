package bench

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/bench/internal/keyfill"
)

// latencyStore is the one store BenchmarkLookupLatency keeps at a time
// (the largest holds a million keys, about 450 MB).
var latencyStore struct {
	n       int
	store   *apikey.MemoryStore
	digests []apikey.Digest
}

// filledStore returns a MemoryStore of n keys filed by keyfill (read
// scope, default format) and their digests, replacing the previous one.
func filledStore(b *testing.B, n int) (*apikey.MemoryStore, []apikey.Digest) {
	b.Helper()
	if latencyStore.n == n {
		return latencyStore.store, latencyStore.digests
	}
	latencyStore.store, latencyStore.digests, latencyStore.n = nil, nil, 0
	runtime.GC()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	ds, err := keyfill.Fill(context.Background(), s, n, keyfill.Spec{Name: "Production Backend", Scopes: []apikey.Scope{"read"}, Seed: uint64(n)})
	if err != nil {
		b.Fatal(err)
	}
	latencyStore.store, latencyStore.digests, latencyStore.n = s, ds, n
	return s, ds
}

// BenchmarkLookupLatency times MemoryStore.Lookup one call at a time, for
// a key drawn at random from the store, at 1k, 10k, 100k and 1M keys, and
// reports the distribution of the calls' times:
//
//	p50-ns, p99-ns, p999-ns  quantiles of the single calls, timer included
//	clock-ns                 the median cost of the timer alone (a
//	                         time.Now and a time.Since with nothing
//	                         between), to subtract by eye
//
// ns/op is the mean time of an iteration, which also draws the random
// key and records the time. A flat p99 from 1k to 1M keys means that the
// lookup's worst case does not grow with the store; random keys out of a
// large store miss the CPU caches, which is what a server with many
// active clients sees.
func BenchmarkLookupLatency(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s, ds := filledStore(b, n)
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			h := new(histogram)
			clock := clockCost()
			runtime.GC() // no collection of the filling's garbage in the loop
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d := ds[rng.IntN(len(ds))]
				t0 := time.Now()
				_, err := s.Lookup(ctx, d)
				dt := time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				h.add(dt)
			}
			b.StopTimer()
			b.ReportMetric(h.quantile(0.50), "p50-ns")
			b.ReportMetric(h.quantile(0.99), "p99-ns")
			b.ReportMetric(h.quantile(0.999), "p999-ns")
			b.ReportMetric(clock, "clock-ns")
		})
	}
	latencyStore.store, latencyStore.digests, latencyStore.n = nil, nil, 0
}

// clockCost is the median time of an empty timed section.
func clockCost() float64 {
	v := make([]time.Duration, 1001)
	for i := range v {
		t0 := time.Now()
		v[i] = time.Since(t0)
	}
	slices.Sort(v)
	return float64(v[len(v)/2])
}

// histogram counts durations in log-linear buckets: exact below 1,024 ns,
// then 512 buckets per power of two (a bucket is at most 0.2% wide).
type histogram struct {
	counts [1024 + 54*512]uint64
	n      uint64
}

func bucketOf(ns uint64) int {
	if ns < 1024 {
		return int(ns)
	}
	shift := bits.Len64(ns) - 10 // ≥ 1; ns>>shift is in [512, 1024)
	return 1024 + (shift-1)*512 + int(ns>>shift) - 512
}

// lowest is the smallest duration in bucket i, in nanoseconds.
func lowest(i int) uint64 {
	if i < 1024 {
		return uint64(i)
	}
	i -= 1024
	shift := i/512 + 1
	return uint64(i%512+512) << shift
}

func (h *histogram) add(d time.Duration) {
	ns := uint64(max(d, 0))
	i := min(bucketOf(ns), len(h.counts)-1)
	h.counts[i]++
	h.n++
}

// quantile returns the lower bound of the bucket holding the q-quantile.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return float64(lowest(i))
		}
	}
	return float64(lowest(len(h.counts) - 1))
}

func TestHistogram(t *testing.T) {
	for _, ns := range []uint64{0, 1, 1023, 1024, 1025, 2047, 2048, 5000, 123456, 1 << 40} {
		i := bucketOf(ns)
		lo := lowest(i)
		if lo > ns || (i+1 < 1024+54*512 && lowest(i+1) <= ns) {
			t.Errorf("%d ns: bucket %d [%d, %d)", ns, i, lo, lowest(i+1))
		}
		if ns >= 1024 && float64(ns-lo) > float64(ns)*0.002 {
			t.Errorf("%d ns: bucket %d starts at %d, more than 0.2%% below", ns, i, lo)
		}
	}
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i))
	}
	if p50, p99 := h.quantile(0.5), h.quantile(0.99); p50 != 500 || p99 != 990 {
		t.Errorf("1..1000 ns: p50 %v, p99 %v; want 500, 990", p50, p99)
	}
}
