package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/apikey"
)

// BenchmarkLookup measures one uncached Lookup: a round trip to the
// server on loopback and an index scan.
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b, apikey.StoreConfig{})
	createKeys(b, s, 1000) // an index with more than one entry
	_, secret, err := s.Create(ctx, apikey.KeySpec{Name: "bench", Scopes: []apikey.Scope{"read"}})
	if err != nil {
		b.Fatal(err)
	}
	var h apikey.Hasher
	d := h.Digest(secret.Reveal())
	for b.Loop() {
		if _, err := s.Lookup(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordUsage1000 measures one usage flush of 1,000 keys: one
// statement. ns/op is the cost per 1,000 keys.
func BenchmarkRecordUsage1000(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b, apikey.StoreConfig{})
	ids := createKeys(b, s, 1000)
	batch := make([]apikey.Usage, len(ids))
	now := time.Now()
	for i, id := range ids {
		batch[i] = apikey.Usage{KeyID: id, Environment: apikey.EnvLive, Count: 3, LastUsed: now}
	}
	for b.Loop() {
		if err := s.RecordUsage(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/key")
}

// BenchmarkCachedVerify compares Authenticator.Verify through an
// apikey.Cache in front of pgstore with Verify on the in-memory store.
// Both answer from memory; the cache should cost about the same.
func BenchmarkCachedVerify(b *testing.B) {
	ctx := context.Background()
	spec := apikey.KeySpec{Name: "bench", Scopes: []apikey.Scope{"read"}}

	b.Run("memory", func(b *testing.B) {
		m := apikey.NewMemoryStore(apikey.StoreConfig{})
		_, secret, err := m.Create(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		benchVerify(b, apikey.New(m), secret.Reveal())
	})
	b.Run("pgstore+cache", func(b *testing.B) {
		s, _ := newStore(b, apikey.StoreConfig{})
		_, secret, err := s.Create(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		cache := apikey.NewCache(s, apikey.CacheTTL(time.Hour))
		benchVerify(b, apikey.New(cache), secret.Reveal())
	})
}

func benchVerify(b *testing.B, auth *apikey.Authenticator, secret string) {
	ctx := context.Background()
	if _, err := auth.Verify(ctx, secret); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auth.Verify(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}
