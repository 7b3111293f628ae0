package redislimit

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/apikey"
)

// The decision's latency on loopback (the test's own redis-server):
// ns/op, and the median and 99th percentile of single decisions, without
// leasing (a script run each time) and with Lease 100 (a script run every
// 100 decisions). The key's rate never refuses.
func BenchmarkTake(b *testing.B) {
	for _, bc := range benchLeases {
		b.Run(bc.name, func(b *testing.B) {
			l := benchLimiter(b, bc.lease)
			k := live("key_bench")
			h := http.Header{}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				ok, err := l.Take(context.Background(), k, 1, h)
				lat = append(lat, time.Since(start))
				if !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
			reportLatency(b, lat)
		})
	}
}

// The same from GOMAXPROCS×4 goroutines at once.
func BenchmarkTakeParallel(b *testing.B) {
	for _, bc := range benchLeases {
		b.Run(bc.name, func(b *testing.B) {
			l := benchLimiter(b, bc.lease)
			k := live("key_bench")
			var mu sync.Mutex
			var lat []time.Duration
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				h := http.Header{}
				mine := make([]time.Duration, 0, 1024)
				for pb.Next() {
					start := time.Now()
					ok, err := l.Take(context.Background(), k, 1, h)
					mine = append(mine, time.Since(start))
					if !ok || err != nil {
						b.Error(ok, err)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			reportLatency(b, lat)
		})
	}
}

// benchLeases are the two ways a decision is made: a script run each
// time, and a script run every 100 decisions.
var benchLeases = []struct {
	name  string
	lease int64
}{{"redis", 0}, {"lease", 100}}

func benchLimiter(b *testing.B, lease int64) *Limiter {
	return newLimiter(b, sharedClient(b), Config{
		Lease:   lease,
		Timeout: time.Second,
		Live:    []apikey.Limit{{Name: "rps", Count: 1_000_000_000, Per: time.Second}},
	})
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
}
