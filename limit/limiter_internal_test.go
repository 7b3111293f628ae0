package limit

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/keygate/apikey"
)

type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time { return c.t }

func (l *Limiter) entries() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += l.shards[i].state.live
		l.shards[i].mu.Unlock()
	}
	return n
}

// The state of idle keys is dropped: a rate's once its bucket is whole
// again, a quota's when its period ends. Memory follows the active keys.
func TestIdleStateIsDropped(t *testing.T) {
	clock := &manualClock{t: time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)}
	l, err := New(Config{Live: []apikey.Limit{
		{Name: "requests", Count: 10, Per: time.Second},
		{Name: "daily", Count: 100, Period: "day"},
	}, Clock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	round := func(prefix string, n int) {
		for i := range n {
			if ok, _ := l.Take(context.Background(), &apikey.Key{ID: fmt.Sprintf("%s%d", prefix, i), Environment: apikey.EnvLive}, 1, nil); !ok {
				t.Fatalf("refused %s%d", prefix, i)
			}
		}
	}
	round("a", 10_000)
	if got := l.entries(); got != 20_000 {
		t.Fatalf("%d entries, want 20,000 (two limits × 10,000 keys)", got)
	}
	clock.t = clock.t.Add(2 * time.Hour) // buckets whole, the day over
	round("b", 1_000)
	if got := l.entries(); got > 2*1_000+2*64*3 {
		t.Fatalf("%d entries after the idle ones could go; want about 2,000", got)
	}
	// Give on a dropped rate entry is a no-op, not a resurrection.
	before := l.entries()
	l.Give(context.Background(), &apikey.Key{ID: "a1", Environment: apikey.EnvLive}, 1)
	if got := l.entries(); got != before {
		t.Fatalf("Give on a dropped entry: %d entries, were %d", got, before)
	}
}

// Memory per active key, one rate limit each: the figure BENCHMARKS.md
// reports (target: at most 64 bytes).
func BenchmarkMemoryPerActiveKey(b *testing.B) {
	const keys = 1_000_000
	l, err := New(Config{Live: []apikey.Limit{{Name: "requests", Count: 100, Per: time.Minute}}})
	if err != nil {
		b.Fatal(err)
	}
	ks := make([]apikey.Key, keys)
	for i := range ks {
		ks[i] = apikey.Key{ID: fmt.Sprintf("key_%026d", i), Environment: apikey.EnvLive}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range ks {
		l.Take(context.Background(), &ks[i], 1, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if l.entries() != keys {
		b.Fatalf("%d entries", l.entries())
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "B/key")
	b.ReportMetric(0, "ns/op")
	runtime.KeepAlive(ks)
}
