package apikey_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/apikey"
)

// filledStore holds n keys with a typical name, two scopes and an owner
// (50 keys each), and the digests of some of them.
type filledStore struct {
	store   *apikey.MemoryStore
	digests []apikey.Digest
	bytes   float64 // heap bytes per key
}

// ownerKeys is how many keys each owner of a filled store has.
const ownerKeys = 50

var (
	filledMu sync.Mutex
	filled   = map[int]*filledStore{}
)

func fillStore(b *testing.B, n int) *filledStore {
	b.Helper()
	filledMu.Lock()
	defer filledMu.Unlock()
	if f, ok := filled[n]; ok {
		return f
	}
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	f := &filledStore{store: s}
	for i := 0; i < n; i++ {
		_, sec, err := s.Create(ctx, apikey.KeySpec{
			Name:   fmt.Sprintf("Production Backend %d", i%1000),
			Scopes: []apikey.Scope{"read", "write"},
			Owner:  fmt.Sprintf("acct_%d", i%max(1, n/ownerKeys)),
		})
		if err != nil {
			b.Fatal(err)
		}
		if i%(n/100_000+1) == 0 { // up to 100k samples, spread over the store
			f.digests = append(f.digests, keys.Digest(sec.Reveal()))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// The sampled digests are outside the store; subtract them.
	sample := float64(len(f.digests)) * 32
	f.bytes = (float64(after.HeapAlloc-before.HeapAlloc) - sample) / float64(n)
	filled[n] = f
	return f
}

func BenchmarkMemoryStoreLookup(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			if n > 1000 && testing.Short() {
				b.Skip("1M keys in -short mode")
			}
			f := fillStore(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.store.Lookup(ctx, f.digests[i%len(f.digests)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(f.bytes, "B/key")
		})
	}
}

func BenchmarkMemoryStoreLookupParallel(b *testing.B) {
	f := fillStore(b, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine walks the keys from its own place, as different
		// clients send different keys.
		i := int(next.Add(1)) * len(f.digests) / 7
		for pb.Next() {
			if _, err := f.store.Lookup(ctx, f.digests[i%len(f.digests)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkMemoryStoreListOwnerPage lists one owner's 50 keys, and the
// page after the 25th of them, out of 1,000 and 1,000,000 keys: a page
// walks the owner's ordered index, whatever the store holds.
func BenchmarkMemoryStoreListOwnerPage(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 1_000_000} {
		f := fillStore(b, n)
		owner := fmt.Sprintf("acct_%d", (n/ownerKeys)/2)
		first, err := f.store.List(ctx, apikey.Filter{Owner: owner, Limit: ownerKeys})
		if err != nil || len(first) != ownerKeys {
			b.Fatalf("List: %d keys, %v", len(first), err)
		}
		for _, tt := range []struct {
			name string
			f    apikey.Filter
			want int
		}{
			{"first", apikey.Filter{Owner: owner, Limit: ownerKeys}, ownerKeys},
			{"after", apikey.Filter{Owner: owner, Limit: ownerKeys, After: first[24].ID}, ownerKeys - 25},
		} {
			b.Run(fmt.Sprintf("keys=%d/page=%s", n, tt.name), func(b *testing.B) {
				for b.Loop() {
					page, err := f.store.List(ctx, tt.f)
					if err != nil || len(page) != tt.want {
						b.Fatalf("List: %d keys, %v", len(page), err)
					}
				}
			})
		}
	}
}

// residentStore is a store of n keys imported with Add: a typical name
// and owner of about 20 characters, two scopes, no metadata; and the
// digests of up to 100k of them, spread over the store.
type residentStore struct {
	store   *apikey.MemoryStore
	digests [][32]byte
	heap    float64 // live heap bytes per key
	scan    float64 // GC-scannable heap bytes per key
}

var (
	residentMu sync.Mutex
	residents  = map[int]*residentStore{}
)

// heapMetrics returns the live heap and its scannable part after a GC.
func heapMetrics() (live, scan uint64) {
	runtime.GC()
	runtime.GC()
	ms := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}}
	metrics.Read(ms)
	return ms[0].Value.Uint64(), ms[1].Value.Uint64()
}

func residentKeys(b *testing.B, n int) *residentStore {
	b.Helper()
	residentMu.Lock()
	defer residentMu.Unlock()
	if r, ok := residents[n]; ok {
		return r
	}
	for k := range residents { // one resident store at a time
		delete(residents, k)
	}
	ctx := context.Background()
	r := &residentStore{}
	step := n/100_000 + 1
	r.digests = make([][32]byte, 0, n/step+1)
	for i := 0; i < n; i += step {
		r.digests = append(r.digests, sha256.Sum256(fmt.Appendf(nil, "kg_live_resident_%d", i)))
	}
	live0, scan0 := heapMetrics()
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}})
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	scopes := []apikey.Scope{"read", "write"}
	var buf []byte
	for i := range n {
		d := sha256.Sum256(fmt.Appendf(buf[:0], "kg_live_resident_%d", i))
		k := &apikey.Key{
			ID:          fmt.Sprintf("key_%026d", i),
			Name:        fmt.Sprintf("Production Backend %d", i%1000),
			Environment: apikey.EnvLive,
			Scopes:      scopes,
			Owner:       fmt.Sprintf("acct_%015d", i/ownerKeys),
			Hint:        "kg_live_…" + fmt.Sprintf("%04d", i%10000),
			CreatedAt:   base.Add(time.Duration(i) * time.Millisecond),
		}
		if err := s.Add(ctx, d, k); err != nil {
			b.Fatal(err)
		}
	}
	r.store = s
	live1, scan1 := heapMetrics()
	r.heap = (float64(live1) - float64(live0)) / float64(n)
	r.scan = (float64(scan1) - float64(scan0)) / float64(n)
	runtime.KeepAlive(s)
	residents[n] = r
	return r
}

// BenchmarkMemoryStoreResident measures what resident keys cost: live
// heap and GC-scannable heap per key (runtime/metrics, after a GC), with
// a million keys imported by Add.
func BenchmarkMemoryStoreResident(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	r := residentKeys(b, n)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := r.store.Lookup(ctx, r.digests[i%len(r.digests)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(r.heap, "heapB/key")
	b.ReportMetric(r.scan, "scanB/key")
}

// BenchmarkMemoryStoreLookupHot looks one key up again and again, as the
// request benchmark does: no allocation.
func BenchmarkMemoryStoreLookupHot(b *testing.B) {
	r := residentKeys(b, 1_000)
	ctx := context.Background()
	d := r.digests[len(r.digests)/2]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.store.Lookup(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

// latencySink keeps the request-like garbage of the latency benchmark
// from being optimised away.
var latencySink []byte

// BenchmarkMemoryStoreLookupLatency looks keys up at random in stores of
// 1k to 1M keys and reports the distribution of single lookups (timer
// included, about 20-40 ns). Each lookup comes with 1 KiB of garbage, as
// a request brings, so that the GC runs as in a server and its work on
// the store shows in the tail.
func BenchmarkMemoryStoreLookupLatency(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("1M keys in -short mode")
			}
			r := residentKeys(b, n)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(1, 2))
			lat := make([]int64, 0, 1<<20)
			b.ResetTimer()
			for b.Loop() {
				d := &r.digests[rng.IntN(len(r.digests))]
				latencySink = make([]byte, 1024)
				t0 := time.Now()
				_, err := r.store.Lookup(ctx, *d)
				el := time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if len(lat) < cap(lat) {
					lat = append(lat, int64(el))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) }
			b.ReportMetric(q(0.50), "p50-ns")
			b.ReportMetric(q(0.99), "p99-ns")
			b.ReportMetric(q(0.999), "p999-ns")
		})
	}
}
