package apikey_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

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
