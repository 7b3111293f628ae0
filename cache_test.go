package apikey_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/faultstore"
	"github.com/keygate/apikey/storetest"
)

var errUnreachable = errors.New("database unreachable")

type cacheFixture struct {
	clock *storetest.Clock
	mem   *apikey.MemoryStore
	slow  *faultstore.Store
	cache *apikey.Cache
}

func newCacheFixture(t *testing.T, opts ...apikey.CacheOption) *cacheFixture {
	clock := storetest.NewClock(storetest.Epoch)
	mem := apikey.NewMemoryStore(apikey.StoreConfig{Clock: clock})
	slow := faultstore.New(mem)
	return &cacheFixture{clock: clock, mem: mem, slow: slow,
		cache: apikey.NewCache(slow, append([]apikey.CacheOption{apikey.CacheClock(clock)}, opts...)...)}
}

func (f *cacheFixture) key(t *testing.T) (*apikey.Key, apikey.Digest, string) {
	k, s, err := f.mem.Create(context.Background(), apikey.KeySpec{Name: "k", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	var h apikey.Hasher
	return k, h.Digest(s.Reveal()), s.Reveal()
}

func TestCacheHitsAndTTL(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, apikey.CacheTTL(time.Minute), apikey.CacheNegativeTTL(5*time.Second))
	k, d, _ := f.key(t)
	for i := 0; i < 5; i++ {
		got, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, k.ID, got.ID)
	}
	assert.EqualValues(t, 1, f.slow.Calls(), "one query, then hits")
	f.clock.Advance(time.Minute)
	_, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.EqualValues(t, 2, f.slow.Calls(), "the TTL expired: asked again")

	var h apikey.Hasher
	unknown := h.Digest("kg_live_unknown")
	for i := 0; i < 5; i++ {
		_, err := f.cache.Lookup(ctx, unknown)
		assert.ErrorIs(t, err, apikey.ErrNotFound)
	}
	assert.EqualValues(t, 3, f.slow.Calls(), "unknown digests are remembered")
	f.clock.Advance(5 * time.Second)
	_, err = f.cache.Lookup(ctx, unknown)
	assert.ErrorIs(t, err, apikey.ErrNotFound)
	assert.EqualValues(t, 4, f.slow.Calls(), "for the negative TTL only")
	st := f.cache.Stats()
	assert.EqualValues(t, 4, st.StoreCalls)
	assert.EqualValues(t, 4, st.Hits)
	assert.EqualValues(t, 4, st.NegativeHits)
	assert.Equal(t, 2, st.Entries)
}

// 64 goroutines × 1,000 lookups of 10 keys: at most 10 store queries.
func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t)
	f.slow.Set(faultstore.Fault{Latency: 20 * time.Millisecond})
	digests := make([]apikey.Digest, 10)
	for i := range digests {
		_, digests[i], _ = f.key(t)
	}
	var wg sync.WaitGroup
	var failures atomic.Int32
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if _, err := f.cache.Lookup(ctx, digests[(g+i)%len(digests)]); err != nil {
					failures.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	assert.Zero(t, failures.Load())
	assert.LessOrEqual(t, f.slow.Calls(), int64(10))
	t.Logf("64×1000 lookups of 10 keys: %d store queries", f.slow.Calls())
}

func TestCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, apikey.CacheSize(64))
	var h apikey.Hasher
	for i := 0; i < 1000; i++ {
		_, _ = f.cache.Lookup(ctx, h.Digest(string(rune('a'+i%26))+time.Duration(i).String()))
	}
	st := f.cache.Stats()
	assert.LessOrEqual(t, st.Entries, 64)
	assert.Positive(t, st.Evictions)
}

func TestCacheInvalidate(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t)
	k, d, _ := f.key(t)
	_, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	require.NoError(t, f.mem.Revoke(ctx, k.ID))

	got, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.True(t, got.RevokedAt.IsZero(), "without invalidation the cache serves the old state until the TTL")
	f.cache.Invalidate(d)
	got, err = f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero(), "after Invalidate the revocation is seen at once")

	k2, d2, _ := f.key(t)
	_, err = f.cache.Lookup(ctx, d2)
	require.NoError(t, err)
	f.cache.InvalidateKey(k2.ID)
	f.cache.Purge()
	assert.Zero(t, f.cache.Stats().Entries)
}

// A lookup in flight when Invalidate runs does not put its stale answer back.
func TestCacheInvalidateDuringFetch(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t)
	k, d, _ := f.key(t)
	gate := make(chan struct{})
	f.slow.Set(faultstore.Fault{Before: func(context.Context) { <-gate }})
	done := make(chan *apikey.Key)
	go func() {
		got, _ := f.cache.Lookup(ctx, d)
		done <- got
	}()
	require.Eventually(t, func() bool { return f.slow.Calls() == 1 }, time.Second, time.Millisecond)
	f.cache.Invalidate(d) // the fetch started before: its answer must not be cached
	close(gate)
	<-done
	require.NoError(t, f.mem.Revoke(ctx, k.ID))
	got, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero(), "asked the store again")
	assert.EqualValues(t, 2, f.slow.Calls())
}

func TestCacheStaleIfError(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, apikey.CacheTTL(time.Second), apikey.CacheStaleIfError(time.Minute))
	k, d, _ := f.key(t)
	_, other, _ := f.key(t)
	_, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	_, err = f.cache.Lookup(ctx, other)
	require.NoError(t, err)

	f.slow.Set(faultstore.Fault{Err: errUnreachable})
	f.clock.Advance(30 * time.Second)
	got, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err, "validated 30 s ago: served stale while the store fails")
	assert.Equal(t, k.ID, got.ID)
	assert.EqualValues(t, 1, f.cache.Stats().StaleServed)

	f.cache.Invalidate(other)
	_, err = f.cache.Lookup(ctx, other)
	assert.ErrorContains(t, err, "database unreachable", "never stale after an invalidation")

	f.clock.Advance(31 * time.Second)
	_, err = f.cache.Lookup(ctx, d)
	assert.ErrorContains(t, err, "database unreachable", "too old to serve stale")

	f.slow.Clear()
	_, err = f.cache.Lookup(ctx, d)
	assert.NoError(t, err)
}

func TestCacheWithoutStaleReturnsErrors(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, apikey.CacheTTL(time.Second))
	_, d, _ := f.key(t)
	_, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	f.slow.Set(faultstore.Fault{Err: errUnreachable})
	f.clock.Advance(2 * time.Second)
	_, err = f.cache.Lookup(ctx, d)
	assert.Error(t, err)
	assert.NotErrorIs(t, err, apikey.ErrNotFound)
}

func TestCacheTimeoutAndCancellation(t *testing.T) {
	f := newCacheFixture(t, apikey.CacheLookupTimeout(20*time.Millisecond))
	_, d, _ := f.key(t)
	f.slow.Set(faultstore.Fault{Latency: time.Second})
	_, err := f.cache.Lookup(context.Background(), d)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f.cache.Lookup(ctx, d)
	assert.ErrorIs(t, err, context.Canceled)
}

// Through the middleware: a store fault is 503 (never 401), a revocation is
// seen after Invalidate, and the cache forwards the store's configuration.
func TestCacheBehindMiddleware(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t)
	k, d, secret := f.key(t)
	h := apikey.Middleware(f.cache, apikey.WithClock(f.clock))(okHandler())
	assert.Equal(t, 200, call(h, "GET", "/", secret).Code)
	require.NoError(t, f.mem.Revoke(ctx, k.ID))
	assert.Equal(t, 200, call(h, "GET", "/", secret).Code, "within the revocation bound (TTL)")
	f.cache.Invalidate(d)
	assert.Equal(t, 401, call(h, "GET", "/", secret).Code)

	_, _, other := f.key(t)
	f.slow.Set(faultstore.Fault{Err: errUnreachable})
	called := false
	h = apikey.Middleware(f.cache)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	assert.Equal(t, 503, call(h, "GET", "/", other).Code)
	assert.False(t, called)

	panicky := apikey.NewCache(apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { panic("boom") }))
	var reason apikey.Reason
	h = apikey.Middleware(panicky, apikey.OnRejected(func(_ *http.Request, e apikey.AuthError) { reason = e.Reason }))(okHandler())
	assert.Equal(t, 503, call(h, "GET", "/", other).Code)
	assert.Equal(t, apikey.ReasonStorePanic, reason)
	assert.Panics(t, func() { apikey.NewCache(nil) })
}

func BenchmarkVerifyCachedVsMemory(b *testing.B) {
	ctx := context.Background()
	mem := apikey.NewMemoryStore(apikey.StoreConfig{})
	_, s, err := mem.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(b, err)
	for _, c := range []struct {
		name  string
		store apikey.KeyStore
	}{{"memory", mem}, {"cache-over-memory", apikey.NewCache(mem)}} {
		auth := apikey.New(c.store)
		b.Run("store="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := auth.Verify(ctx, s.Reveal()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestCacheForwardsRehash(t *testing.T) {
	ctx := context.Background()
	old, err := apikey.NewPepper("old", make([]byte, 32))
	require.NoError(t, err)
	cur, err := apikey.NewPepper("cur", append(make([]byte, 31), 1))
	require.NoError(t, err)
	oldHasher, _ := apikey.NewHasher(old)
	mem := apikey.NewMemoryStore(apikey.StoreConfig{Hasher: oldHasher})
	k, s, err := mem.Create(ctx, apikey.KeySpec{Name: "k", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	rotating, _ := apikey.NewHasher(cur, old)
	cache := apikey.NewCache(mem)
	h := apikey.Middleware(cache, apikey.WithHasher(rotating))(okHandler())
	assert.Equal(t, 200, call(h, "GET", "/", s.Reveal()).Code)
	got, err := mem.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "cur", got.PepperID, "re-filed through the cache")
	assert.Equal(t, 200, call(h, "GET", "/", s.Reveal()).Code)

	plain := apikey.NewCache(apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, apikey.ErrNotFound }))
	assert.NoError(t, plain.Rehash(ctx, "key_x", apikey.Digest{}, "cur"), "no capability: nothing to do")
}
