package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
)

// BenchmarkLookup measures one uncached Lookup: a round trip to the
// server on loopback and an index scan.
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	keys := testKeys(nil)
	s, _, _ := newStore(b, keys)
	createKeys(b, s, 1000) // an index with more than one entry
	_, secret, err := s.Create(ctx, apikey.KeySpec{Name: "bench", Scopes: []apikey.Scope{"read"}})
	if err != nil {
		b.Fatal(err)
	}
	d := keys.Digest(secret.Reveal())
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
	s, _, _ := newStore(b, testKeys(nil))
	ids := createKeys(b, s, 1000)
	batch := make([]apikey.Usage, len(ids))
	now := time.Now()
	for i, id := range ids {
		batch[i] = apikey.Usage{KeyID: id, Environment: apikey.EnvLive, Count: 3, LastUsed: now}
	}
	for b.Loop() {
		if err := s.RecordUsage(ctx, "", batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/key")
}

// BenchmarkConcurrentFlushes: five replicas, each with a pool of its own,
// flush a batch of the same 20,000 keys at the same moment. Flushes take
// no key-row lock, so they do not queue behind each other; the metrics are
// the median and the slowest flush of all rounds, and the totals are
// checked to be exact.
func BenchmarkConcurrentFlushes(b *testing.B) {
	const replicas, n = 5, 20_000
	ctx := context.Background()
	s, pool, dsn := newStore(b, testKeys(nil))
	if _, err := pool.Exec(ctx, `INSERT INTO apikey_keys (id, digest, name, environment, created_at)
		SELECT 'key_' || g, sha256(g::text::bytea), 'bench', 'live', now() FROM generate_series(1, $1) g`, n); err != nil {
		b.Fatal(err)
	}
	batch := make([]apikey.Usage, n)
	now := time.Now()
	for i := range batch {
		batch[i] = apikey.Usage{KeyID: fmt.Sprintf("key_%d", i+1), Environment: apikey.EnvLive, Count: 1, LastUsed: now}
	}
	stores := make([]*pgstore.Store, replicas)
	for i := range stores {
		stores[i] = replica(b, dsn, testKeys(nil))
	}
	var took []time.Duration
	rounds := 0
	for b.Loop() {
		rounds++
		times := make([]time.Duration, replicas)
		var wg sync.WaitGroup
		for i, st := range stores {
			wg.Go(func() {
				start := time.Now()
				if err := st.RecordUsage(ctx, "", batch); err != nil {
					b.Error(err)
				}
				times[i] = time.Since(start)
			})
		}
		wg.Wait()
		took = append(took, times...)
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
	b.ReportMetric(0, "ns/op")
	k, err := s.Get(ctx, "key_1")
	if err != nil {
		b.Fatal(err)
	}
	if want := uint64(replicas * rounds); k.Requests != want {
		b.Fatalf("key_1 counted %d requests, want %d", k.Requests, want)
	}
}

// BenchmarkCachedVerify compares Middleware.Verify through a cache (package
// cache) in front of pgstore with Verify on the in-memory store. Both
// answer from memory; the cache should cost about the same.
func BenchmarkCachedVerify(b *testing.B) {
	ctx := context.Background()
	spec := apikey.KeySpec{Name: "bench", Scopes: []apikey.Scope{"read"}}
	keys := testKeys(nil)

	b.Run("memory", func(b *testing.B) {
		m, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
		if err != nil {
			b.Fatal(err)
		}
		_, secret, err := m.Create(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		benchVerify(b, newMiddleware(b, keys, m), secret.Reveal())
	})
	b.Run("pgstore+cache", func(b *testing.B) {
		s, _, _ := newStore(b, keys)
		_, secret, err := s.Create(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		c := newCache(b, s, cache.Config{TTL: time.Hour})
		benchVerify(b, newMiddleware(b, keys, c), secret.Reveal())
	})
}

func benchVerify(b *testing.B, mw *apikey.Middleware, secret string) {
	ctx := context.Background()
	if _, err := mw.Verify(ctx, secret); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mw.Verify(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListOwnerPage lists one owner's 50 keys, and the page after the
// 25th of them, out of 1,000,000 keys (20,000 owners of 50): one index
// range scan per page, and one more query to place the cursor. The keys
// are loaded in one statement with the logging trigger off.
func BenchmarkListOwnerPage(b *testing.B) {
	const n, perOwner = 1_000_000, 50
	ctx := context.Background()
	dsn := pgtest.Database(b)
	counter, tweak := countQueries("apikey_keys")
	s := newStoreOn(b, newPool(b, dsn, tweak), testKeys(nil))
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	pool := newPool(b, dsn, nil)
	for _, sql := range []string{
		`ALTER TABLE apikey_keys DISABLE TRIGGER apikey_keys_log_insert`,
		fmt.Sprintf(`INSERT INTO apikey_keys (id, digest, name, environment, owner, scopes, created_at)
		SELECT 'key_' || lpad(g::text, 8, '0'), sha256(g::text::bytea), 'Production Backend', 'live',
			'acct_' || (g %% %d), '{read,write}', timestamptz '2026-01-01' + g * interval '1 second'
		FROM generate_series(1, %d) g`, n/perOwner, n),
		`ALTER TABLE apikey_keys ENABLE TRIGGER apikey_keys_log_insert`,
		`ANALYZE apikey_keys`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	first, err := s.List(ctx, apikey.Filter{Owner: "acct_777", Limit: perOwner})
	if err != nil || len(first) != perOwner {
		b.Fatalf("List: %d keys, %v", len(first), err)
	}
	for _, tt := range []struct {
		name string
		f    apikey.Filter
		want int
	}{
		{"first", apikey.Filter{Owner: "acct_777", Limit: perOwner}, perOwner},
		{"after", apikey.Filter{Owner: "acct_777", Limit: perOwner, After: first[24].ID}, perOwner - 25},
	} {
		b.Run("page="+tt.name, func(b *testing.B) {
			before := counter.n.Load()
			for b.Loop() {
				page, err := s.List(ctx, tt.f)
				if err != nil || len(page) != tt.want {
					b.Fatalf("List: %d keys, %v", len(page), err)
				}
			}
			b.ReportMetric(float64(counter.n.Load()-before)/float64(b.N), "queries/op")
		})
	}
}
