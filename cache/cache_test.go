package cache_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
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
	f.clock.Advance(time.Minute - time.Nanosecond)
	_, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	assert.EqualValues(t, 1, f.slow.Calls(), "still within the TTL")
	f.clock.Advance(time.Nanosecond)
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
	assert.Zero(t, st.StaleServed)
	assert.Zero(t, st.Evictions)
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

func TestCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{Size: 64})
	for i := 0; i < 1000; i++ {
		_, err := f.cache.Lookup(ctx, digestN(i))
		require.ErrorIs(t, err, apikey.ErrNotFound)
	}
	st := f.cache.Stats()
	assert.LessOrEqual(t, st.Entries, 64)
	assert.Positive(t, st.Entries)
	assert.Positive(t, st.Evictions)
	assert.EqualValues(t, 1000, st.StoreCalls)
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

func TestCacheWithoutStaleReturnsErrors(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, cache.Config{TTL: time.Second})
	_, d, _ := f.key(t)
	_, err := f.cache.Lookup(ctx, d)
	require.NoError(t, err)
	f.slow.Set(faultstore.Fault{Err: errUnreachable})
	f.clock.Advance(2 * time.Second)
	_, err = f.cache.Lookup(ctx, d)
	assert.ErrorIs(t, err, errUnreachable)
	assert.NotErrorIs(t, err, apikey.ErrNotFound)
	assert.Zero(t, f.cache.Stats().StaleServed, "StaleIfError is off by default")
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
	c, err := cache.New(apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
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
	c, err = cache.New(apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, nil }), cache.Config{})
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

	plain, err := cache.New(apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, apikey.ErrNotFound }), cache.Config{})
	require.NoError(t, err)
	assert.ErrorIs(t, plain.Rehash(ctx, "key_x", apikey.Digest{}, "cur"), errors.ErrUnsupported,
		"a store that cannot rehash says so: the middleware logs that the key stays under its old pepper")
}

func TestCacheNewErrors(t *testing.T) {
	store := apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, apikey.ErrNotFound })
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

// The zero Config means TTL 30 s, negative TTL 5 s, lookup timeout 2 s,
// 100,000 entries and no stale answers.
func TestCacheDefaults(t *testing.T) {
	ctx := context.Background()

	t.Run("TTL", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{})
		_, d, _ := f.key(t)
		_, err := f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		f.clock.Advance(30*time.Second - time.Nanosecond)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.EqualValues(t, 1, f.slow.Calls())
		f.clock.Advance(time.Nanosecond)
		_, err = f.cache.Lookup(ctx, d)
		require.NoError(t, err)
		assert.EqualValues(t, 2, f.slow.Calls())
	})

	t.Run("NegativeTTL", func(t *testing.T) {
		f := newCacheFixture(t, cache.Config{})
		unknown := f.keys.Digest("kg_live_unknown")
		_, err := f.cache.Lookup(ctx, unknown)
		require.ErrorIs(t, err, apikey.ErrNotFound)
		f.clock.Advance(5*time.Second - time.Nanosecond)
		_, err = f.cache.Lookup(ctx, unknown)
		require.ErrorIs(t, err, apikey.ErrNotFound)
		assert.EqualValues(t, 1, f.slow.Calls())
		f.clock.Advance(time.Nanosecond)
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

	t.Run("Size", func(t *testing.T) {
		if testing.Short() {
			t.Skip("fills 130,000 entries")
		}
		c, err := cache.New(apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, apikey.ErrNotFound }), cache.Config{})
		require.NoError(t, err)
		i := 0
		for ; i < 60_000; i++ {
			_, _ = c.Lookup(ctx, digestN(i))
		}
		st := c.Stats()
		assert.Equal(t, 60_000, st.Entries, "far below the default size: nothing evicted")
		assert.Zero(t, st.Evictions)
		for ; i < 130_000; i++ {
			_, _ = c.Lookup(ctx, digestN(i))
		}
		st = c.Stats()
		assert.LessOrEqual(t, st.Entries, 100_000)
		assert.Greater(t, st.Entries, 90_000)
		assert.Positive(t, st.Evictions)
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
