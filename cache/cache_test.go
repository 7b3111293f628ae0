package cache_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/internal/faultstore"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/storetest"
)

var errUnreachable = errors.New("database unreachable")

// cacheFixture is a memory store behind a fault injector behind a cache,
// all on one manual clock.
type cacheFixture struct {
	keys  apikey.KeyConfig
	clock *storetest.Clock
	mem   *apikey.MemoryStore
	slow  *faultstore.Store
	cache *cache.Cache
}

// newCacheFixture makes the fixture; cfg.Clock defaults to the fixture's
// clock.
func newCacheFixture(t testing.TB, cfg cache.Config) *cacheFixture {
	t.Helper()
	f := &cacheFixture{clock: storetest.NewClock(storetest.Epoch)}
	f.keys = apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Clock: f.clock.Now}
	var err error
	f.mem, err = apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: f.keys})
	require.NoError(t, err)
	f.slow = faultstore.New(f.mem)
	if cfg.Clock == nil {
		cfg.Clock = f.clock.Now
	}
	f.cache, err = cache.New(f.slow, cfg)
	require.NoError(t, err)
	return f
}

// key creates a key and returns it with its digest and plaintext.
func (f *cacheFixture) key(t testing.TB) (*apikey.Key, apikey.Digest, string) {
	t.Helper()
	k, s, err := f.mem.Create(context.Background(), apikey.KeySpec{Name: "k", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	return k, f.keys.Digest(s.Reveal()), s.Reveal()
}

// middleware is the fixture's middleware over its cache, around a handler
// that answers 200 and reports whether it ran.
func (f *cacheFixture) middleware(t testing.TB, edit func(*apikey.Config)) (http.Handler, *atomic.Bool) {
	t.Helper()
	cfg := apikey.Config{Keys: f.keys, Store: f.cache}
	if edit != nil {
		edit(&cfg)
	}
	mw, err := apikey.New(cfg)
	require.NoError(t, err)
	called := new(atomic.Bool)
	return mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		called.Store(true)
		w.WriteHeader(http.StatusOK)
	})), called
}

// cacheCall sends a GET with key as a Bearer token and returns the status.
func cacheCall(h http.Handler, key string) int {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr.Code
}

// digestN is a distinct digest for each n.
func digestN(n int) apikey.Digest {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return sha256.Sum256(b[:])
}

func TestCacheHitsAndTTL(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{TTL: time.Minute, NegativeTTL: 5 * time.Second})
	k, d, _ := f.key(t)
	for i := 0; i < 5; i++ {
		got, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, k.ID, got.ID)
	}
	assert.EqualValues(t, 1, f.slow.Calls(), "one query, then hits")
	// Lifetimes are drawn from [0.85·TTL, TTL], and a hit in the last 15%
	// refreshes in the background: 42 s is before both.
	f.clock.Advance(42 * time.Second)
	_, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.EqualValues(t, 1, f.slow.Calls(), "still within the TTL")
	f.clock.Advance(18 * time.Second)
	_, err = f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.EqualValues(t, 2, f.slow.Calls(), "the TTL expired: asked again")

	unknown := f.keys.Digest("kg_live_unknown")
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
	assert.EqualValues(t, 4, st.Misses)
	assert.EqualValues(t, 5, st.Hits)
	assert.EqualValues(t, 4, st.NegativeHits)
	assert.Equal(t, 2, st.Entries)
	assert.Equal(t, 1, st.NegativeEntries)
	assert.Zero(t, st.StaleServed)
	assert.Zero(t, st.Evictions)
	assert.Zero(t, st.Refreshes)
	assert.Zero(t, st.FeedLag, "no feed")
}

// A key created after its digest was remembered as unknown is usable once
// the negative TTL has passed.
func TestCacheNegativeTTLBoundsAKeyCreatedElsewhere(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{NegativeTTL: 2 * time.Second})
	is, err := f.keys.NewKey(apikey.KeySpec{Name: "imported"})
	require.NoError(t, err)
	_, err = f.cache.Lookup(ctx, is.Digest)
	require.ErrorIs(t, err, apikey.ErrNotFound)
	require.NoError(t, f.mem.Add(ctx, is.Digest, is.Key))
	_, err = f.cache.Lookup(ctx, is.Digest)
	assert.ErrorIs(t, err, apikey.ErrNotFound, "remembered as unknown")
	f.clock.Advance(2 * time.Second)
	got, err := f.cache.Lookup(ctx, is.Digest)
	require.NoError(t, err)
	assert.Equal(t, is.Key.ID, got.ID)
}

// 64 goroutines × 1,000 lookups of 10 keys: at most 10 store queries.
func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{})
	digests := make([]apikey.Digest, 10)
	for i := range digests {
		_, digests[i], _ = f.key(t)
	}
	f.slow.Set(faultstore.Fault{Latency: 20 * time.Millisecond})
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
	assert.Equal(t, uint64(f.slow.Calls()), f.cache.Stats().StoreCalls)
	t.Logf("64×1000 lookups of 10 keys: %d store queries", f.slow.Calls())
}

// A lookup whose caller leaves does not fail the others waiting on the same
// query.
func TestCacheCallerCancellationDoesNotFailOthers(t *testing.T) {
	f := newCacheFixture(t, cache.Config{})
	k, d, _ := f.key(t)
	gate := make(chan struct{})
	f.slow.Set(faultstore.Fault{Before: func(context.Context) { <-gate }})
	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := f.cache.Lookup(first, d)
		firstErr <- err
	}()
	require.Eventually(t, func() bool { return f.slow.Calls() == 1 }, 5*time.Second, time.Millisecond)
	second := make(chan *apikey.Key, 1)
	go func() {
		got, err := f.cache.Lookup(context.Background(), d)
		assert.NoError(t, err)
		second <- got
	}()
	cancel()
	assert.ErrorIs(t, <-firstErr, context.Canceled)
	close(gate)
	got := <-second
	require.NotNil(t, got)
	assert.Equal(t, k.ID, got.ID)
	assert.EqualValues(t, 1, f.slow.Calls(), "one query for both")
}

// Found keys are bounded by Size, unknown digests by NegativeSize, each
// on its own: unknown digests used to count against Size.
func TestCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		cfg   cache.Config
		store apikey.KeyStore
		check func(t *testing.T, st cache.Stats)
	}{
		{"found keys", cache.Config{Size: 64}, keyStore(), func(t *testing.T, st cache.Stats) {
			assert.Equal(t, 64, st.Entries)
			assert.Zero(t, st.NegativeEntries)
			assert.Positive(t, st.Evictions)
			assert.Zero(t, st.NegativeEvictions)
		}},
		{"unknown digests", cache.Config{NegativeSize: 64}, unknownStore(), func(t *testing.T, st cache.Stats) {
			assert.LessOrEqual(t, st.Entries, 64)
			assert.Positive(t, st.Entries)
			assert.Equal(t, st.Entries, st.NegativeEntries)
			assert.Positive(t, st.NegativeEvictions)
			assert.Zero(t, st.Evictions)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := storetest.NewClock(storetest.Epoch)
			tc.cfg.Clock = clock.Now
			c, err := cache.New(tc.store, tc.cfg)
			require.NoError(t, err)
			for i := 0; i < 1000; i++ {
				_, _ = c.Lookup(ctx, digestN(i))
			}
			st := c.Stats()
			tc.check(t, st)
			assert.EqualValues(t, 1000, st.StoreCalls)
		})
	}
}

func TestCacheInvalidate(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{})
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
	require.NoError(t, f.mem.Revoke(ctx, k2.ID))
	f.cache.InvalidateKey(k2.ID)
	got, err = f.cache.Lookup(ctx, d2)
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero(), "after InvalidateKey the revocation is seen at once")

	require.Positive(t, f.cache.Stats().Entries)
	calls := f.slow.Calls()
	f.cache.Purge()
	assert.Zero(t, f.cache.Stats().Entries)
	_, err = f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, calls+1, f.slow.Calls(), "after Purge the store is asked again")
}

// A lookup in flight when Invalidate runs does not put its stale answer back.
func TestCacheInvalidateDuringFetch(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{})
	k, d, _ := f.key(t)
	gate := make(chan struct{})
	f.slow.Set(faultstore.Fault{Before: func(context.Context) { <-gate }})
	done := make(chan *apikey.Key)
	go func() {
		got, _ := f.cache.Lookup(ctx, d)
		done <- got
	}()
	require.Eventually(t, func() bool { return f.slow.Calls() == 1 }, 5*time.Second, time.Millisecond)
	f.cache.Invalidate(d) // the fetch started before: its answer must not be cached
	close(gate)
	<-done
	f.slow.Clear()
	require.NoError(t, f.mem.Revoke(ctx, k.ID))
	got, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero(), "asked the store again")
	assert.EqualValues(t, 2, f.slow.Calls())
}

func TestCacheStaleIfError(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{TTL: time.Second, StaleIfError: time.Minute})
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
	assert.ErrorIs(t, err, errUnreachable, "never stale after an invalidation")

	f.clock.Advance(31 * time.Second)
	_, err = f.cache.Lookup(ctx, d)
	assert.ErrorIs(t, err, errUnreachable, "too old to serve stale")
	assert.EqualValues(t, 1, f.cache.Stats().StaleServed)

	f.slow.Clear()
	_, err = f.cache.Lookup(ctx, d)
	assert.NoError(t, err)
}

// A key the store says is unknown is never served stale.
func TestCacheStaleIfErrorNeverServesUnknown(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{TTL: time.Second, NegativeTTL: time.Second, StaleIfError: time.Minute})
	unknown := f.keys.Digest("kg_live_unknown")
	_, err := f.cache.Lookup(ctx, unknown)
	require.ErrorIs(t, err, apikey.ErrNotFound)
	f.slow.Set(faultstore.Fault{Err: errUnreachable})
	f.clock.Advance(2 * time.Second)
	_, err = f.cache.Lookup(ctx, unknown)
	assert.ErrorIs(t, err, errUnreachable)
	assert.NotErrorIs(t, err, apikey.ErrNotFound)
	assert.Zero(t, f.cache.Stats().StaleServed)
}

// With NoStale, a store failure fails the lookup even for a key validated
// a moment ago. (Stale-if-error used to be off by default; it is now on
// for 5 s, see TestCacheDefaults.)
func TestCacheWithoutStaleReturnsErrors(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{TTL: time.Second, NoStale: true})
	_, d, _ := f.key(t)
	_, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	f.slow.Set(faultstore.Fault{Err: errUnreachable})
	f.clock.Advance(2 * time.Second)
	_, err = f.cache.Lookup(ctx, d)
	assert.ErrorIs(t, err, errUnreachable)
	assert.NotErrorIs(t, err, apikey.ErrNotFound)
	assert.Zero(t, f.cache.Stats().StaleServed, "NoStale switches stale-if-error off")
	f.slow.Clear()
	_, err = f.cache.Lookup(ctx, d)
	assert.NoError(t, err, "an error is not cached")
}

func TestCacheTimeoutAndCancellation(t *testing.T) {
	f := newCacheFixture(t, cache.Config{LookupTimeout: 20 * time.Millisecond})
	_, d, _ := f.key(t)
	f.slow.Set(faultstore.Fault{Hang: true})
	_, err := f.cache.Lookup(context.Background(), d)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, apikey.ErrNotFound)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f.cache.Lookup(ctx, d)
	assert.ErrorIs(t, err, context.Canceled)
	require.Eventually(t, func() bool { return f.slow.InFlight() == 0 }, 5*time.Second, time.Millisecond,
		"the detached query ends at the lookup timeout")
}

// A store that panics fails the lookup; the panic does not escape the
// cache's own goroutine, and the failure is not cached.
func TestCachePanicIsAnError(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int32
	c, err := cache.New(testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
		calls.Add(1)
		panic("boom")
	}), cache.Config{})
	require.NoError(t, err)
	for i := 1; i <= 2; i++ {
		_, err = c.Lookup(ctx, digestN(1))
		require.Error(t, err)
		assert.NotErrorIs(t, err, apikey.ErrNotFound)
		assert.Contains(t, err.Error(), "panicked")
		assert.Contains(t, err.Error(), "boom")
		assert.EqualValues(t, i, calls.Load())
	}
	assert.Zero(t, c.Stats().Entries)

	// A store that answers neither a key nor an error fails too.
	c, err = cache.New(testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, nil }), cache.Config{})
	require.NoError(t, err)
	_, err = c.Lookup(ctx, digestN(1))
	require.Error(t, err)
	assert.NotErrorIs(t, err, apikey.ErrNotFound)
}

// Through the middleware: a revocation is seen after Invalidate, and a
// store fault (error or panic) is 503, never 401, without calling the
// handler.
func TestCacheBehindMiddleware(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{})
	k, d, secret := f.key(t)
	h, _ := f.middleware(t, nil)
	assert.Equal(t, 200, cacheCall(h, secret))
	require.NoError(t, f.mem.Revoke(ctx, k.ID))
	assert.Equal(t, 200, cacheCall(h, secret), "within the revocation bound (TTL)")
	f.cache.Invalidate(d)
	assert.Equal(t, 401, cacheCall(h, secret))

	_, _, other := f.key(t)
	f.slow.Set(faultstore.Fault{Err: errUnreachable})
	var rejected apikey.AuthError
	h, called := f.middleware(t, func(c *apikey.Config) {
		c.OnRejected = func(_ *http.Request, e apikey.AuthError) { rejected = e }
	})
	assert.Equal(t, 503, cacheCall(h, other))
	assert.False(t, called.Load())
	assert.Equal(t, apikey.ReasonStoreFailure, rejected.Reason)
	assert.ErrorIs(t, rejected, errUnreachable)

	f.slow.Set(faultstore.Fault{Panic: "boom"})
	rejected = apikey.AuthError{}
	assert.Equal(t, 503, cacheCall(h, other))
	assert.False(t, called.Load())
	assert.Equal(t, apikey.ReasonStoreFailure, rejected.Reason)
	assert.Contains(t, rejected.Error(), "panicked")
	assert.EqualValues(t, 1, f.slow.Panics())

	f.slow.Set(faultstore.Fault{Hang: true})
	c, err := cache.New(f.slow, cache.Config{LookupTimeout: 20 * time.Millisecond, Clock: f.clock.Now})
	require.NoError(t, err)
	h, called = f.middleware(t, func(cfg *apikey.Config) {
		cfg.Store = c
		cfg.OnRejected = func(_ *http.Request, e apikey.AuthError) { rejected = e }
	})
	assert.Equal(t, 503, cacheCall(h, other), "the cache's lookup timeout bounds a hung store")
	assert.False(t, called.Load())
	assert.ErrorIs(t, rejected, context.DeadlineExceeded)
}

func TestCacheForwardsRehash(t *testing.T) {
	ctx := context.Background()
	old, err := apikey.NewPepper("old", []byte(strings.Repeat("o", 32)))
	require.NoError(t, err)
	cur, err := apikey.NewPepper("cur", []byte(strings.Repeat("c", 32)))
	require.NoError(t, err)
	formats := []*apikey.Format{apikey.FormatDefault}
	before := apikey.KeyConfig{Formats: formats, Peppers: []apikey.Pepper{old}}
	rotating := apikey.KeyConfig{Formats: formats, Peppers: []apikey.Pepper{cur, old}}

	// A key made under the old pepper, in a store configured for the
	// rotation.
	is, err := before.NewKey(apikey.KeySpec{Name: "k", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	require.Equal(t, "old", is.Key.PepperID)
	mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: rotating})
	require.NoError(t, err)
	require.NoError(t, mem.Add(ctx, is.Digest, is.Key))

	c, err := cache.New(mem, cache.Config{})
	require.NoError(t, err)
	mw, err := apikey.New(apikey.Config{Keys: rotating, Store: c})
	require.NoError(t, err)
	h := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	assert.Equal(t, 200, cacheCall(h, is.Secret.Reveal()))
	got, err := mem.Get(ctx, is.Key.ID)
	require.NoError(t, err)
	assert.Equal(t, "cur", got.PepperID, "re-filed through the cache")
	assert.Equal(t, 200, cacheCall(h, is.Secret.Reveal()), "and found under the new digest")
	k, err := c.Lookup(ctx, rotating.Digest(is.Secret.Reveal()))
	require.NoError(t, err)
	assert.Equal(t, "cur", k.PepperID)

	plain, err := cache.New(testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, apikey.ErrNotFound }), cache.Config{})
	require.NoError(t, err)
	assert.ErrorIs(t, plain.Rehash(ctx, "key_x", apikey.Digest{}, "cur"), errors.ErrUnsupported,
		"a store that cannot rehash says so: the middleware logs that the key stays under its old pepper")
}

func TestCacheNewErrors(t *testing.T) {
	store := testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, apikey.ErrNotFound })
	for _, tc := range []struct {
		name  string
		store apikey.KeyStore
		cfg   cache.Config
		field string
	}{
		{"nil store", nil, cache.Config{}, "store is nil"},
		{"negative TTL", store, cache.Config{TTL: -time.Second}, "Config.TTL is negative"},
		{"negative NegativeTTL", store, cache.Config{NegativeTTL: -time.Second}, "Config.NegativeTTL is negative"},
		{"negative LookupTimeout", store, cache.Config{LookupTimeout: -time.Second}, "Config.LookupTimeout is negative"},
		{"negative StaleIfError", store, cache.Config{StaleIfError: -time.Second}, "Config.StaleIfError is negative"},
		{"negative Size", store, cache.Config{Size: -1}, "Config.Size is negative"},
		{"negative NegativeSize", store, cache.Config{NegativeSize: -1}, "Config.NegativeSize is negative"},
		{"negative MaxFeedLag", store, cache.Config{MaxFeedLag: -time.Second}, "Config.MaxFeedLag is negative"},
		{"negative BreakerFailures", store, cache.Config{BreakerFailures: -1}, "Config.BreakerFailures is negative"},
		{"negative BreakerProbe", store, cache.Config{BreakerProbe: -time.Second}, "Config.BreakerProbe is negative"},
		{"StaleIfError with NoStale", store, cache.Config{StaleIfError: time.Second, NoStale: true}, "Config.StaleIfError is set with Config.NoStale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.New(tc.store, tc.cfg)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), tc.field, "the error names what to change")
		})
	}
	c, err := cache.New(store, cache.Config{})
	require.NoError(t, err, "the zero Config is valid")
	require.NotNil(t, c)
}

// The zero Config means TTL 30 s, negative TTL 5 s (each jittered down
// by up to 15%), lookup timeout 2 s, 100,000 found keys and 100,000
// unknown digests, stale answers for 5 s, a feed lag of 1 s, and a breaker
// that opens after 5 failures and probes every 250 ms.
func TestCacheDefaults(t *testing.T) {
	ctx := context.Background()

	t.Run("TTL", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{})
		_, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.clock.Advance(21 * time.Second) // before 0.85·0.85·30 s: no refresh yet
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.EqualValues(t, 1, f.slow.Calls())
		f.clock.Advance(9 * time.Second)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.EqualValues(t, 2, f.slow.Calls())
		assert.EqualValues(t, 2, f.cache.Stats().Misses)
	})

	t.Run("NegativeTTL", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{})
		unknown := f.keys.Digest("kg_live_unknown")
		_, err := f.cache.Lookup(ctx, unknown)
		require.ErrorIs(t, err, apikey.ErrNotFound)
		f.clock.Advance(4250*time.Millisecond - time.Nanosecond)
		_, err = f.cache.Lookup(ctx, unknown)
		require.ErrorIs(t, err, apikey.ErrNotFound)
		assert.EqualValues(t, 1, f.slow.Calls())
		f.clock.Advance(750*time.Millisecond + time.Nanosecond)
		_, err = f.cache.Lookup(ctx, unknown)
		require.ErrorIs(t, err, apikey.ErrNotFound)
		assert.EqualValues(t, 2, f.slow.Calls())
	})

	t.Run("LookupTimeout", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{})
		_, d, _ := f.key(t)
		var deadline time.Time
		var hasDeadline bool
		f.slow.Set(faultstore.Fault{Before: func(ctx context.Context) { deadline, hasDeadline = ctx.Deadline() }})
		start := time.Now()
		_, err := f.cache.Lookup(ctx, d)
		end := time.Now()
		require.NoError(t, err)
		require.True(t, hasDeadline, "every store call has a deadline")
		assert.False(t, deadline.Before(start.Add(2*time.Second)), "deadline %v after the call", deadline.Sub(start))
		assert.False(t, deadline.After(end.Add(2*time.Second)), "deadline %v after the call", deadline.Sub(start))
	})

	for _, tc := range []struct {
		name     string
		store    apikey.KeyStore
		entries  func(cache.Stats) int
		evicted  func(cache.Stats) uint64
		exact    bool // the bound is global (found keys) rather than per shard
		lowBound int
	}{
		{"Size", keyStore(), func(s cache.Stats) int { return s.Entries - s.NegativeEntries },
			func(s cache.Stats) uint64 { return s.Evictions }, true, 99_000},
		{"NegativeSize", unknownStore(), func(s cache.Stats) int { return s.NegativeEntries },
			func(s cache.Stats) uint64 { return s.NegativeEvictions }, false, 90_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("fills 130,000 entries")
			}
			clock := storetest.NewClock(storetest.Epoch)
			c, err := cache.New(tc.store, cache.Config{Clock: clock.Now})
			require.NoError(t, err)
			i := 0
			for ; i < 60_000; i++ {
				_, _ = c.Lookup(ctx, digestN(i))
			}
			st := c.Stats()
			assert.Equal(t, 60_000, tc.entries(st), "far below the default size: nothing evicted")
			assert.Zero(t, tc.evicted(st))
			for ; i < 130_000; i++ {
				_, _ = c.Lookup(ctx, digestN(i))
			}
			st = c.Stats()
			assert.LessOrEqual(t, tc.entries(st), 100_000)
			assert.Greater(t, tc.entries(st), tc.lowBound)
			assert.Positive(t, tc.evicted(st))
			if tc.exact {
				assert.Equal(t, 100_000, tc.entries(st))
			}
		})
	}

	t.Run("StaleIfError", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: time.Second})
		_, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.slow.Set(faultstore.Fault{Err: errUnreachable})
		f.clock.Advance(5 * time.Second)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err, "validated 5 s ago: served stale")
		f.clock.Advance(time.Nanosecond)
		_, err = f.cache.Lookup(ctx, d)
		require.ErrorIs(t, err, errUnreachable, "validated more than 5 s ago")
		assert.EqualValues(t, 1, f.cache.Stats().StaleServed)
	})

	t.Run("MaxFeedLag", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{})
		_, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.cache.Synced(f.clock.Now())
		f.clock.Advance(time.Second)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.EqualValues(t, 1, f.slow.Calls(), "1 s behind: trusted")
		f.clock.Advance(time.Nanosecond)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.EqualValues(t, 2, f.slow.Calls(), "more than 1 s behind: asked the store")
	})

	t.Run("Breaker", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{NoStale: true})
		f.slow.Set(faultstore.Fault{Err: errUnreachable})
		for i := 0; i < 5; i++ {
			assert.False(t, f.cache.Stats().BreakerOpen, "after %d failures", i)
			_, err := f.cache.Lookup(ctx, digestN(i))
			require.ErrorIs(t, err, errUnreachable)
		}
		assert.True(t, f.cache.Stats().BreakerOpen, "open after 5")
		f.slow.Clear()
		f.clock.Advance(250*time.Millisecond - time.Nanosecond)
		_, err := f.cache.Lookup(ctx, digestN(0))
		require.ErrorIs(t, err, cache.ErrStoreDown)
		f.clock.Advance(time.Nanosecond)
		_, err = f.cache.Lookup(ctx, digestN(0))
		require.ErrorIs(t, err, apikey.ErrNotFound, "the probe after 250 ms")
		assert.False(t, f.cache.Stats().BreakerOpen)
	})

	t.Run("Clock", func(t *testing.T) {
		mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}})
		require.NoError(t, err)
		k, s, err := mem.Create(ctx, apikey.KeySpec{Name: "k"})
		require.NoError(t, err)
		slow := faultstore.New(mem)
		c, err := cache.New(slow, cache.Config{})
		require.NoError(t, err)
		d := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}.Digest(s.Reveal())
		for i := 0; i < 3; i++ {
			got, err := c.Lookup(ctx, d)
			require.NoError(t, err)
			assert.Equal(t, k.ID, got.ID)
		}
		assert.EqualValues(t, 1, slow.Calls(), "on the real clock, entries live")
	})
}

func BenchmarkVerifyCachedVsMemory(b *testing.B) {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(b, err)
	_, s, err := mem.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(b, err)
	c, err := cache.New(mem, cache.Config{})
	require.NoError(b, err)
	for _, tc := range []struct {
		name  string
		store apikey.KeyStore
	}{{"memory", mem}, {"cache-over-memory", c}} {
		mw, err := apikey.New(apikey.Config{Keys: keys, Store: tc.store})
		require.NoError(b, err)
		b.Run("store="+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := mw.Verify(ctx, s.Reveal()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// keyStore finds a key for every digest, with an ID made of the digest's
// first 8 bytes.
func keyStore() apikey.KeyStore {
	return testkit.StoreFunc(func(_ context.Context, d apikey.Digest) (*apikey.Key, error) {
		return &apikey.Key{ID: keyID(d)}, nil
	})
}

func keyID(d apikey.Digest) string {
	return "key_" + strconv.FormatUint(binary.BigEndian.Uint64(d[:8]), 36)
}

// unknownStore knows no digest.
func unknownStore() apikey.KeyStore {
	return testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, apikey.ErrNotFound })
}

// A flood of distinct unknown digests fills the negative table only: every
// cached key is still a hit afterwards, and once the flood has expired a
// few puts sweep the negative table down to what is unexpired.
func TestCacheNegativeFloodKeepsKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("110,000 lookups")
	}
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	var calls atomic.Int64
	store := testkit.StoreFunc(func(_ context.Context, d apikey.Digest) (*apikey.Key, error) {
		calls.Add(1)
		if d[0]&1 == 0 {
			return &apikey.Key{ID: keyID(d)}, nil
		}
		return nil, apikey.ErrNotFound
	})
	c, err := cache.New(store, cache.Config{Size: 10_000, TTL: time.Hour, NegativeTTL: 5 * time.Second, Clock: clock.Now})
	require.NoError(t, err)
	var valid, unknown []apikey.Digest
	for i := 0; len(valid) < 10_000 || len(unknown) < 100_000; i++ {
		if d := digestN(i); d[0]&1 == 0 {
			valid = append(valid, d)
		} else {
			unknown = append(unknown, d)
		}
	}
	valid, unknown = valid[:10_000], unknown[:100_000]
	for _, d := range valid {
		_, err := c.Lookup(ctx, d)
		require.NoError(t, err)
	}
	require.Equal(t, 10_000, c.Stats().Entries, "Size 10,000: all cached")
	for _, d := range unknown {
		_, err := c.Lookup(ctx, d)
		require.ErrorIs(t, err, apikey.ErrNotFound)
	}
	st := c.Stats()
	assert.Zero(t, st.Evictions, "no key evicted by the flood")
	assert.LessOrEqual(t, st.NegativeEntries, 100_000)
	before := calls.Load()
	hits := 0
	for _, d := range valid {
		if _, err := c.Lookup(ctx, d); err == nil {
			hits++
		}
	}
	assert.Equal(t, before, calls.Load(), "every key answered from the cache")
	assert.GreaterOrEqual(t, hits, 9_500)
	assert.Equal(t, 10_000, hits)

	clock.Advance(7 * time.Second) // the whole flood has expired
	for i := 0; i < 64; i++ {
		_, err := c.Lookup(ctx, digestN(1_000_000+2*i+1))
		_ = err
	}
	st = c.Stats()
	assert.LessOrEqual(t, st.NegativeEntries, 64, "swept down to the unexpired entries")
	assert.Equal(t, 10_000, st.Entries-st.NegativeEntries)
}

// A full cache evicts by CLOCK: keys looked up between two passes of the
// hand survive a sweep of once-used keys (random eviction loses them all).
func TestCacheClockKeepsHotKeys(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	var mu sync.Mutex
	calls := map[apikey.Digest]int{}
	store := testkit.StoreFunc(func(_ context.Context, d apikey.Digest) (*apikey.Key, error) {
		mu.Lock()
		calls[d]++
		mu.Unlock()
		return &apikey.Key{ID: keyID(d)}, nil
	})
	c, err := cache.New(store, cache.Config{Size: 3200, Clock: clock.Now})
	require.NoError(t, err)
	hot := make([]apikey.Digest, 32)
	for i := range hot {
		hot[i] = digestN(-1 - i)
	}
	touch := func() {
		for _, d := range hot {
			_, err := c.Lookup(ctx, d)
			require.NoError(t, err)
		}
	}
	touch()
	for i := 0; i < 20_000; i++ {
		_, err := c.Lookup(ctx, digestN(i))
		require.NoError(t, err)
		if i%320 == 0 {
			touch()
		}
	}
	touch()
	assert.Positive(t, c.Stats().Evictions)
	for _, d := range hot {
		assert.Equal(t, 1, calls[d], "a hot key was never evicted")
	}
}

// InvalidateKey finds every digest a key is cached under, including two at
// once, and leaves other keys alone; an InvalidateKey during a fetch wins
// as Invalidate does.
func TestCacheInvalidateKeyIndex(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	var calls atomic.Int64
	// Digests 0 and 1 are the same key (as under two peppers); others are
	// keys of their own.
	id := func(d apikey.Digest) string {
		if d == digestN(0) || d == digestN(1) {
			return "key_shared"
		}
		return keyID(d)
	}
	store := testkit.StoreFunc(func(_ context.Context, d apikey.Digest) (*apikey.Key, error) {
		calls.Add(1)
		return &apikey.Key{ID: id(d)}, nil
	})
	c, err := cache.New(store, cache.Config{Size: 100, Clock: clock.Now})
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		_, err := c.Lookup(ctx, digestN(i))
		require.NoError(t, err)
	}
	require.Equal(t, 10, c.Stats().Entries)
	c.InvalidateKey("key_shared")
	assert.Equal(t, 8, c.Stats().Entries, "both digests of the key forgotten")
	c.InvalidateKey(keyID(digestN(5)))
	assert.Equal(t, 7, c.Stats().Entries)
	c.InvalidateKey("key_unknown")
	assert.Equal(t, 7, c.Stats().Entries)
	before := calls.Load()
	for i := 0; i < 10; i++ {
		_, err := c.Lookup(ctx, digestN(i))
		require.NoError(t, err)
	}
	assert.Equal(t, before+3, calls.Load(), "only the forgotten entries are asked again")

	// Evicted entries leave the index: InvalidateKey after churn still
	// empties the cache exactly.
	for i := 0; i < 1000; i++ {
		_, err := c.Lookup(ctx, digestN(i))
		require.NoError(t, err)
	}
	for i := 0; i < 1000; i++ {
		c.InvalidateKey(id(digestN(i)))
	}
	assert.Zero(t, c.Stats().Entries)
}

// Lookups, evictions and every kind of invalidation at once: afterwards
// InvalidateKey still reaches every cached entry (the key index is exact).
func TestCacheConcurrentChurn(t *testing.T) {
	ctx := context.Background()
	c, err := cache.New(keyStore(), cache.Config{Size: 200, NegativeSize: 64})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				d := digestN((g*7919 + i*31) % 2000)
				switch i % 97 {
				case 0:
					c.InvalidateKey(keyID(d))
				case 1:
					c.Invalidate(d)
				case 2:
					if g == 0 && i%(97*8) == 2 {
						c.Purge()
					}
				default:
					_, _ = c.Lookup(ctx, d)
				}
			}
		}(g)
	}
	wg.Wait()
	st := c.Stats()
	assert.LessOrEqual(t, st.Entries, 200+32)
	for i := 0; i < 2000; i++ {
		c.InvalidateKey(keyID(digestN(i)))
	}
	assert.Zero(t, c.Stats().Entries)
}

// Lifetimes are drawn from [0.85·TTL, TTL], for found keys and unknown
// digests alike: entries cached together expire over that span.
func TestCacheJitteredTTL(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		store apikey.KeyStore
		cfg   cache.Config
		ttl   time.Duration
	}{
		{"found keys", keyStore(), cache.Config{TTL: 100 * time.Second}, 100 * time.Second},
		{"unknown digests", unknownStore(), cache.Config{NegativeTTL: 100 * time.Second}, 100 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			misses := func(at time.Duration) uint64 {
				clock := storetest.NewClock(storetest.Epoch)
				tc.cfg.Clock = clock.Now
				c, err := cache.New(tc.store, tc.cfg)
				require.NoError(t, err)
				for i := 0; i < 200; i++ {
					_, _ = c.Lookup(ctx, digestN(i))
				}
				clock.Advance(at)
				before := c.Stats().Misses
				for i := 0; i < 200; i++ {
					_, _ = c.Lookup(ctx, digestN(i))
				}
				return c.Stats().Misses - before
			}
			assert.Zero(t, misses(tc.ttl*85/100-time.Nanosecond), "none expires before 0.85·TTL")
			spread := misses(tc.ttl * 925 / 1000)
			assert.Positive(t, spread, "some expire before TTL")
			assert.Less(t, spread, uint64(200), "not all at once")
			assert.EqualValues(t, 200, misses(tc.ttl), "all by TTL")
		})
	}
}

// A hit in the last 15% of an entry's lifetime refreshes it in the
// background: a key in use never misses. A refresh that fails leaves the
// entry; one that finds the key gone replaces it with a negative entry;
// an invalidation during the refresh wins.
func TestCacheRefreshAhead(t *testing.T) {
	ctx := context.Background()
	const ttl = 100 * time.Second
	// refreshWindow moves the clock on from 72 s after the fill (before
	// the window of any jittered lifetime), a second at a time, looking d
	// up, until a hit starts a refresh; every lookup is a hit.
	refreshWindow := func(t *testing.T, f *cacheFixture, d apikey.Digest) {
		t.Helper()
		f.clock.Advance(72 * time.Second)
		for i := 0; i < 20 && f.cache.Stats().Refreshes == 0; i++ {
			f.clock.Advance(time.Second)
			_, err := f.cache.Lookup(ctx, d)
			require.NoError(t, err, "the current entry is served")
		}
		require.EqualValues(t, 1, f.cache.Stats().Refreshes)
		require.EqualValues(t, 1, f.cache.Stats().Misses, "no miss on the way")
	}

	t.Run("success", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: ttl})
		k, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		refreshWindow(t, f, d)
		require.Eventually(t, func() bool { return f.slow.Completed() == 2 }, 5*time.Second, time.Millisecond)
		require.Eventually(t, func() bool { return f.slow.InFlight() == 0 }, 5*time.Second, time.Millisecond)
		for i := 0; i < 3; i++ {
			_, err = f.cache.Lookup(ctx, d)
			require.NoError(t, err)
		}
		f.clock.Advance(50 * time.Second) // past the first entry's expiry
		got, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, k.ID, got.ID)
		st := f.cache.Stats()
		assert.EqualValues(t, 1, st.Misses, "the key never missed after its first lookup")
		assert.EqualValues(t, 1, st.Refreshes)
		assert.EqualValues(t, 2, f.slow.Calls())
	})

	t.Run("failure keeps the entry", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: ttl, NoStale: true})
		_, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.slow.Set(faultstore.Fault{Err: errUnreachable})
		refreshWindow(t, f, d)
		require.Eventually(t, func() bool { return f.slow.Completed() == 2 }, 5*time.Second, time.Millisecond)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err, "still cached")
		assert.EqualValues(t, 2, f.slow.Calls(), "one refresh per entry")
		f.clock.Advance(ttl)
		_, err = f.cache.Lookup(ctx, d)
		assert.ErrorIs(t, err, errUnreachable, "expired normally")
	})

	t.Run("not found removes the entry", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: ttl})
		_, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.slow.Set(faultstore.Fault{Err: apikey.ErrNotFound}) // the key was deleted
		refreshWindow(t, f, d)
		require.Eventually(t, func() bool { return f.cache.Stats().NegativeEntries == 1 }, 5*time.Second, time.Millisecond)
		_, err = f.cache.Lookup(ctx, d)
		assert.ErrorIs(t, err, apikey.ErrNotFound)
		assert.EqualValues(t, 2, f.slow.Calls(), "answered by the negative entry")
		assert.Zero(t, f.cache.Stats().Entries-f.cache.Stats().NegativeEntries)
	})

	t.Run("invalidation wins", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: ttl})
		k, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		gate := make(chan struct{})
		f.slow.Set(faultstore.Fault{Before: func(context.Context) { <-gate }})
		refreshWindow(t, f, d)
		require.Eventually(t, func() bool { return f.slow.Calls() == 2 }, 5*time.Second, time.Millisecond)
		require.NoError(t, f.mem.Revoke(ctx, k.ID))
		f.cache.Invalidate(d)
		close(gate)
		require.Eventually(t, func() bool { return f.slow.InFlight() == 0 }, 5*time.Second, time.Millisecond)
		f.slow.Clear()
		got, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.False(t, got.RevokedAt.IsZero(), "the refresh did not put its answer back")
		assert.EqualValues(t, 3, f.slow.Calls())
	})
}

// After BreakerFailures consecutive failures the breaker opens: lookups
// that need the store fail at once, without calling it, with ErrStoreDown;
// one probe per BreakerProbe goes through, and a success closes it.
func TestCacheBreaker(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		fault faultstore.Fault
		want  error
	}{
		{"errors", faultstore.Fault{Err: errUnreachable}, errUnreachable},
		{"timeouts", faultstore.Fault{Hang: true}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var events []bool
			f := newCacheFixture(t, cache.Config{
				BreakerFailures: 3, BreakerProbe: time.Second, LookupTimeout: 10 * time.Millisecond,
				OnBreaker: func(open bool) { mu.Lock(); events = append(events, open); mu.Unlock() },
			})
			_, d, _ := f.key(t)
			f.slow.Set(tc.fault)
			for i := 0; i < 3; i++ {
				_, err := f.cache.Lookup(ctx, digestN(i))
				require.ErrorIs(t, err, tc.want)
				require.NotErrorIs(t, err, cache.ErrStoreDown)
			}
			st := f.cache.Stats()
			assert.True(t, st.BreakerOpen)
			assert.EqualValues(t, 3, f.slow.Calls())
			for i := 0; i < 10; i++ {
				_, err := f.cache.Lookup(ctx, digestN(i))
				require.ErrorIs(t, err, cache.ErrStoreDown)
				assert.NotErrorIs(t, err, apikey.ErrNotFound)
				assert.Contains(t, err.Error(), "breaker open")
			}
			assert.EqualValues(t, 3, f.slow.Calls(), "no store call while open")
			assert.EqualValues(t, 10, f.cache.Stats().FastFails)

			f.clock.Advance(time.Second)
			_, err := f.cache.Lookup(ctx, d)
			require.ErrorIs(t, err, tc.want, "a probe")
			assert.EqualValues(t, 4, f.slow.Calls())
			_, err = f.cache.Lookup(ctx, d)
			require.ErrorIs(t, err, cache.ErrStoreDown, "one probe per BreakerProbe")
			assert.EqualValues(t, 4, f.slow.Calls())

			f.slow.Clear() // the store answers again
			f.clock.Advance(999 * time.Millisecond)
			_, err = f.cache.Lookup(ctx, d)
			require.ErrorIs(t, err, cache.ErrStoreDown)
			f.clock.Advance(time.Millisecond)
			_, err = f.cache.Lookup(ctx, d)
			require.NoError(t, err, "the probe succeeds")
			assert.False(t, f.cache.Stats().BreakerOpen)
			_, err = f.cache.Lookup(ctx, digestN(7))
			require.ErrorIs(t, err, apikey.ErrNotFound, "closed: the store is asked")
			assert.EqualValues(t, 6, f.slow.Calls())
			mu.Lock()
			assert.Equal(t, []bool{true, false}, events)
			mu.Unlock()
		})
	}

	t.Run("not found and success are not failures", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{BreakerFailures: 3})
		for i := 0; i < 20; i++ {
			_, err := f.cache.Lookup(ctx, digestN(i))
			require.ErrorIs(t, err, apikey.ErrNotFound)
		}
		_, d, _ := f.key(t)
		for round := 0; round < 3; round++ {
			f.slow.Set(faultstore.Fault{Err: errUnreachable})
			for i := 0; i < 2; i++ {
				_, err := f.cache.Lookup(ctx, digestN(100+i))
				require.ErrorIs(t, err, errUnreachable)
			}
			f.slow.Clear()
			f.cache.Invalidate(d)
			_, err := f.cache.Lookup(ctx, d)
			require.NoError(t, err)
		}
		assert.False(t, f.cache.Stats().BreakerOpen, "never 3 failures in a row")
	})

	t.Run("stale while open", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: time.Second, BreakerFailures: 2})
		k, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.slow.Set(faultstore.Fault{Err: errUnreachable})
		f.clock.Advance(2 * time.Second)
		for i := 0; i < 2; i++ {
			_, err := f.cache.Lookup(ctx, digestN(i))
			require.ErrorIs(t, err, errUnreachable)
		}
		require.True(t, f.cache.Stats().BreakerOpen)
		calls := f.slow.Calls()
		got, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err, "stale-if-error still serves")
		assert.Equal(t, k.ID, got.ID)
		assert.Equal(t, calls, f.slow.Calls())
		assert.EqualValues(t, 1, f.cache.Stats().StaleServed)
	})

	t.Run("through the middleware", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{BreakerFailures: 1})
		_, _, secret := f.key(t)
		f.slow.Set(faultstore.Fault{Err: errUnreachable})
		var rejected apikey.AuthError
		h, called := f.middleware(t, func(c *apikey.Config) {
			c.OnRejected = func(_ *http.Request, e apikey.AuthError) { rejected = e }
		})
		assert.Equal(t, 503, cacheCall(h, secret))
		assert.Equal(t, 503, cacheCall(h, secret), "failing fast is a store failure, never 401")
		assert.False(t, called.Load())
		assert.Equal(t, apikey.ReasonStoreFailure, rejected.Reason)
		assert.ErrorIs(t, rejected, cache.ErrStoreDown)
		assert.EqualValues(t, 1, f.slow.Calls())
	})
}

// With an invalidation feed syncing, entries live for their TTL; once it
// stops for more than MaxFeedLag, cached keys are checked with the store,
// so a revocation the feed did not deliver is seen; and stale-if-error
// counts from the later of the validation and the last sync.
func TestCacheFeed(t *testing.T) {
	ctx := context.Background()

	t.Run("syncing, then stopped", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: time.Hour, MaxFeedLag: time.Second})
		k, _, secret := f.key(t)
		h, _ := f.middleware(t, nil)
		require.Equal(t, 200, cacheCall(h, secret))
		for i := 0; i < 60; i++ { // a minute of a healthy feed
			f.clock.Advance(500 * time.Millisecond)
			f.cache.Synced(f.clock.Now())
			require.Equal(t, 200, cacheCall(h, secret))
		}
		assert.EqualValues(t, 1, f.slow.Calls(), "the feed vouches for the entry")
		f.cache.Synced(f.clock.Now().Add(-time.Minute))
		assert.Zero(t, f.cache.Stats().FeedLag, "an older asOf is ignored")

		// The feed stops, and misses a revocation.
		require.NoError(t, f.mem.Revoke(ctx, k.ID))
		f.clock.Advance(time.Second)
		assert.Equal(t, 200, cacheCall(h, secret), "within MaxFeedLag")
		assert.EqualValues(t, 1, f.slow.Calls())
		f.clock.Advance(500 * time.Millisecond)
		assert.Equal(t, 1500*time.Millisecond, f.cache.Stats().FeedLag)
		assert.Equal(t, 401, cacheCall(h, secret), "the feed is behind: the store is asked, and the key is revoked")
		assert.EqualValues(t, 2, f.slow.Calls())
	})

	t.Run("a fresh validation counts", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: time.Hour, MaxFeedLag: time.Second})
		f.cache.Synced(f.clock.Now())
		f.clock.Advance(10 * time.Second)
		_, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.clock.Advance(time.Second)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.EqualValues(t, 1, f.slow.Calls(), "validated 1 s ago")
		f.clock.Advance(time.Nanosecond)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.EqualValues(t, 2, f.slow.Calls())
	})

	t.Run("stale-if-error with the feed stopped", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{TTL: time.Hour, MaxFeedLag: time.Second, StaleIfError: 3 * time.Second})
		k, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.clock.Advance(10 * time.Second)
		f.cache.Synced(f.clock.Now()) // the last sync; then the feed and the store fail
		f.slow.Set(faultstore.Fault{Err: errUnreachable})
		f.clock.Advance(3 * time.Second)
		got, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err, "3 s after the last sync: served stale")
		assert.Equal(t, k.ID, got.ID)
		assert.EqualValues(t, 1, f.cache.Stats().StaleServed)
		f.clock.Advance(time.Nanosecond)
		_, err = f.cache.Lookup(ctx, d)
		assert.ErrorIs(t, err, errUnreachable, "more than StaleIfError after the cache last knew it valid")
	})

	t.Run("concurrent feed", func(t *testing.T) {
		c, err := cache.New(keyStore(), cache.Config{})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 500; i++ {
					c.Synced(time.Now())
					_, _ = c.Lookup(ctx, digestN(i%10))
				}
			}()
		}
		wg.Wait()
		assert.Less(t, c.Stats().FeedLag, time.Minute)
	})
}

// With the default clock, times are differences of monotonic readings.
func TestCacheRealClock(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	c, err := cache.New(testkit.StoreFunc(func(_ context.Context, d apikey.Digest) (*apikey.Key, error) {
		calls.Add(1)
		return &apikey.Key{ID: keyID(d)}, nil
	}), cache.Config{TTL: 40 * time.Millisecond})
	require.NoError(t, err)
	_, err = c.Lookup(ctx, digestN(1))
	require.NoError(t, err)
	_, err = c.Lookup(ctx, digestN(1))
	require.NoError(t, err)
	assert.EqualValues(t, 1, calls.Load())
	time.Sleep(50 * time.Millisecond)
	require.Eventually(t, func() bool {
		_, err := c.Lookup(ctx, digestN(1))
		return err == nil && calls.Load() >= 2
	}, 5*time.Second, 5*time.Millisecond, "expired on the monotonic clock")
}

// BenchmarkCacheHit is the hit path, from all cores: one read-locked map
// read and a few atomics, no allocation.
func BenchmarkCacheHit(b *testing.B) {
	ctx := context.Background()
	c, err := cache.New(keyStore(), cache.Config{})
	require.NoError(b, err)
	ds := make([]apikey.Digest, 1024)
	for i := range ds {
		ds[i] = digestN(i)
		_, err := c.Lookup(ctx, ds[i])
		require.NoError(b, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Lookup(ctx, ds[i&1023]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkInvalidateKey forgets one key of 1,000,000 cached: a look in the
// key index, not a scan.
func BenchmarkInvalidateKey(b *testing.B) {
	ctx := context.Background()
	const n = 1_000_000
	c, err := cache.New(keyStore(), cache.Config{Size: n, TTL: time.Hour})
	require.NoError(b, err)
	ids := make([]string, n)
	for i := range ids {
		k, err := c.Lookup(ctx, digestN(i))
		require.NoError(b, err)
		ids[i] = k.ID
	}
	require.Equal(b, n, c.Stats().Entries)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.InvalidateKey(ids[i%n])
	}
}

// BenchmarkCacheZipf looks keys up from a Zipf distribution (s = 1.1) over
// 100,000 keys through a cache of 10,000 and reports the hit ratio: the
// measure of the eviction policy (random eviction: 0.80; CLOCK: 0.85).
func BenchmarkCacheZipf(b *testing.B) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	c, err := cache.New(keyStore(), cache.Config{Size: 10_000, Clock: clock.Now})
	require.NoError(b, err)
	const keys = 100_000
	ds := make([]apikey.Digest, keys)
	for i := range ds {
		ds[i] = digestN(i)
	}
	z := rand.NewZipf(rand.New(rand.NewSource(1)), 1.1, 1, keys-1)
	for i := 0; i < 200_000; i++ { // warm up
		_, _ = c.Lookup(ctx, ds[z.Uint64()])
	}
	before := c.Stats().Hits
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = c.Lookup(ctx, ds[z.Uint64()])
	}
	b.ReportMetric(float64(c.Stats().Hits-before)/float64(b.N), "hit-ratio")
}
