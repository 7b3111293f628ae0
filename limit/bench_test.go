package limit_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/limit"
)

// discard is a ResponseWriter that keeps nothing but a header map it
// clears between requests.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkRequest is a valid request through the middleware without
// limits and with one rate limit that never refuses, with and without the
// RateLimit fields: the limiter's cost on the valid path is the
// difference, in the same run.
func BenchmarkRequest(b *testing.B) {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	_, secret, err := store.Create(ctx, apikey.KeySpec{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	never := []apikey.Limit{{Name: "requests", Count: limitsMax, Per: time.Second}}
	for _, tc := range []struct {
		name string
		cfg  *limit.Config
	}{
		{"limits=none", nil},
		{"limits=rate", &limit.Config{Live: never}},
		{"limits=rate-noheaders", &limit.Config{Live: never, NoHeaders: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := apikey.Config{Keys: keys, Store: store}
			if tc.cfg != nil {
				l, err := limit.New(*tc.cfg)
				if err != nil {
					b.Fatal(err)
				}
				cfg.Limiter = l
			}
			m, err := apikey.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			r, _ := http.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+secret.Reveal())
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

// limitsMax is a rate no benchmark reaches: a billion per second.
const limitsMax = 1_000_000_000

// BenchmarkTake is one decision alone, on one key, with and without the
// header fields.
func BenchmarkTake(b *testing.B) {
	l, err := limit.New(limit.Config{Live: []apikey.Limit{{Name: "requests", Count: limitsMax, Per: time.Second}}})
	if err != nil {
		b.Fatal(err)
	}
	k := &apikey.Key{ID: "key_01jd5y4m2pf3qx8v9b7c6n0rtw", Environment: apikey.EnvLive}
	ctx := context.Background()
	b.Run("headers=none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Take(ctx, k, 1, nil)
		}
	})
	b.Run("headers=none/own-limits", func(b *testing.B) {
		own := *k
		own.Limits = []apikey.Limit{{Name: "requests", Count: limitsMax / 2, Per: time.Second}}
		b.ReportAllocs()
		for b.Loop() {
			l.Take(ctx, &own, 1, nil)
		}
	})
	b.Run("headers=ratelimit", func(b *testing.B) {
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			l.Take(ctx, k, 1, h)
		}
	})
	b.Run("headers=none/own-limits-10k-keys", func(b *testing.B) {
		// 10,000 keys on two tiers, each key its own Limits slice, as a
		// store gives them.
		keys := make([]*apikey.Key, 10_000)
		for i := range keys {
			keys[i] = &apikey.Key{ID: fmt.Sprint("key_", i), Environment: apikey.EnvLive,
				Limits: []apikey.Limit{{Name: "requests", Count: limitsMax / int64(1+i%2), Per: time.Second}}}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Take(ctx, keys[i], 1, nil)
			if i++; i == len(keys) {
				i = 0
			}
		}
	})
	b.Run("headers=none/daily-quota", func(b *testing.B) {
		daily := *k
		daily.Limits = []apikey.Limit{{Name: "requests", Count: -1}, {Name: "daily", Count: limitsMax, Period: "day", Zone: "Europe/Paris"}}
		b.ReportAllocs()
		for b.Loop() {
			l.Take(ctx, &daily, 1, nil)
		}
	})
}
