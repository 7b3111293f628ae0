package sweep_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/storetest"
	"github.com/keygate/apikey/sweep"
)

// BenchmarkRunMemory1M: one sweep of a memory store of 1,000,000 active
// keys (the generic path: List pages of 1,000), in steady state: 1% of the
// keys are findings, delivered by an earlier sweep, so the sweep reads
// every key and changes none.
func BenchmarkRunMemory1M(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := storetest.NewClock(start.Add(400 * 24 * time.Hour))
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Clock: clock.Now}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		k := &apikey.Key{
			ID: fmt.Sprintf("key_%08d", i), Name: "bench", Environment: apikey.EnvLive,
			CreatedAt:  start.Add(time.Duration(i) * time.Second),
			LastUsedAt: clock.Now().Add(-time.Hour),
		}
		if i%100 == 0 {
			k.LastUsedAt = start // unused for 400 days
		}
		if err := store.Add(ctx, keys.Digest(k.ID), k); err != nil {
			b.Fatal(err)
		}
	}
	notified := 0
	s, err := sweep.New(store, sweep.Config{
		Keys:      keys,
		UnusedFor: 90 * 24 * time.Hour,
		OnFinding: func(context.Context, sweep.Finding) error { notified++; return nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil || notified != n/100 {
		b.Fatalf("first sweep: %d notified, %v", notified, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rep, err := s.Run(ctx)
		if err != nil || rep.Scanned != n || rep.Findings[sweep.KindUnused] != n/100 || rep.Notified != 0 {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
}
