package pgstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
)

// cacheFeed is the ListenConfig that keeps c fresh: the one the package
// documentation shows.
func cacheFeed(c *cache.Cache) pgstore.ListenConfig {
	return pgstore.ListenConfig{
		OnInvalidate: func(inv pgstore.Invalidation) {
			c.Invalidate(inv.Digest)
			c.InvalidateKey(inv.KeyID)
		},
		OnSync: c.Synced,
		OnGap:  c.Purge,
	}
}

// newCache wraps s in a cache.
func newCache(t testing.TB, s apikey.KeyStore, cfg cache.Config) *cache.Cache {
	t.Helper()
	c, err := cache.New(s, cfg)
	require.NoError(t, err)
	return c
}

// newMiddleware returns the middleware over store, with the REST method
// policy (GET needs read).
func newMiddleware(t testing.TB, keys apikey.KeyConfig, store apikey.KeyStore) *apikey.Middleware {
	t.Helper()
	mw, err := apikey.New(apikey.Config{Keys: keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()})
	require.NoError(t, err)
	return mw
}

// get sends one authenticated GET and returns the status.
func get(t testing.TB, client *http.Client, url, secret string) int {
	t.Helper()
	code, err := tryGet(client, url, secret)
	require.NoError(t, err)
	return code
}

func tryGet(client *http.Client, url, secret string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

// TestRevocationReachesOtherReplica: two replicas, each with its own pool,
// cache (TTL one hour, so only an invalidation can evict) and listener. A
// key revoked through replica A is rejected by replica B; the delay from
// the revocation to B's first 401 is measured over 100 keys.
func TestRevocationReachesOtherReplica(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	a, _, dsn := newStore(t, keys)
	b := replica(t, dsn, keys)
	servers := make([]*httptest.Server, 2)
	caches := make([]*cache.Cache, 2)
	for i, s := range []*pgstore.Store{a, b} {
		caches[i] = newCache(t, s, cache.Config{TTL: time.Hour, NegativeTTL: time.Hour})
		startListener(t, s, cacheFeed(caches[i]))
		servers[i] = httptest.NewServer(newMiddleware(t, keys, caches[i]).Handler(okHandler))
		t.Cleanup(servers[i].Close)
	}
	srvA, srvB := servers[0], servers[1]

	const n = 100
	delays := make([]time.Duration, 0, n)
	for i := range n {
		k, secret, err := a.Create(ctx, apikey.KeySpec{Name: "replicated", Scopes: []apikey.Scope{"read"}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, get(t, srvA.Client(), srvA.URL, secret.Reveal()))
		require.Equal(t, http.StatusOK, get(t, srvB.Client(), srvB.URL, secret.Reveal()), "key %d", i)
		require.Equal(t, http.StatusOK, get(t, srvB.Client(), srvB.URL, secret.Reveal()), "cached on B")

		start := time.Now()
		require.NoError(t, a.Revoke(ctx, k.ID))
		for {
			code := get(t, srvB.Client(), srvB.URL, secret.Reveal())
			if code == http.StatusUnauthorized {
				break
			}
			require.Equal(t, http.StatusOK, code)
			if time.Since(start) > 5*time.Second {
				t.Fatalf("key %d still accepted by replica B 5 s after its revocation", i)
			}
			time.Sleep(50 * time.Microsecond)
		}
		delays = append(delays, time.Since(start))
		require.Eventually(t, func() bool {
			code, err := tryGet(srvA.Client(), srvA.URL, secret.Reveal())
			return err == nil && code == http.StatusUnauthorized
		}, time.Second, time.Millisecond, "A's own listener invalidates its cache too")
	}
	slices.Sort(delays)
	p50, p99 := delays[n/2-1], delays[n*99/100-1]
	t.Logf("revocation on A → rejection on B over %d keys: p50 %v, p99 %v, max %v", n, p50, p99, delays[n-1])
	assert.Less(t, p99, time.Second, "p99 of the cross-replica revocation delay")
	st := caches[1].Stats()
	assert.GreaterOrEqual(t, st.Hits, uint64(n), "B served the keys from its cache until invalidated")
}

// TestUpdateReachesOtherReplica: a scope upgrade and a disable made through
// replica A apply on replica B, through its cache, at once: the same
// secret gets 200 where it got 403, then 401 while disabled, then 200.
func TestUpdateReachesOtherReplica(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	a, _, dsn := newStore(t, keys)
	b := replica(t, dsn, keys)
	c := newCache(t, b, cache.Config{TTL: time.Hour})
	startListener(t, b, cacheFeed(c))
	srv := httptest.NewServer(newMiddleware(t, keys, c).Handler(okHandler))
	t.Cleanup(srv.Close)
	post := func(secret string) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	k, secret, err := a.Create(ctx, apikey.KeySpec{Name: "upgraded", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, post(secret.Reveal()), "POST needs write")
	within := func(want int, what string) {
		t.Helper()
		start := time.Now()
		require.Eventually(t, func() bool { return post(secret.Reveal()) == want }, 2*time.Second, time.Millisecond, what)
		t.Logf("%s on replica B after %v", what, time.Since(start))
	}

	_, err = a.Update(ctx, k.ID, func(k *apikey.Key) error { k.Scopes = append(k.Scopes, "write"); return nil })
	require.NoError(t, err)
	within(http.StatusOK, "scope upgrade")
	_, err = a.Update(ctx, k.ID, func(k *apikey.Key) error { k.Disabled = true; return nil })
	require.NoError(t, err)
	within(http.StatusUnauthorized, "disabled")
	_, err = a.Update(ctx, k.ID, func(k *apikey.Key) error { k.Disabled = false; return nil })
	require.NoError(t, err)
	within(http.StatusOK, "enabled")
}

// TestLimitsUpdateReachesOtherReplica: limits set, changed and cleared
// through replica A are what replica B's cache (TTL one hour, so only an
// invalidation can evict) hands the middleware at once, for the secret
// the key always had.
func TestLimitsUpdateReachesOtherReplica(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	a, _, dsn := newStore(t, keys)
	b := replica(t, dsn, keys)
	c := newCache(t, b, cache.Config{TTL: time.Hour})
	startListener(t, b, cacheFeed(c))
	k, secret, err := a.Create(ctx, apikey.KeySpec{Name: "limited", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	d := keys.Digest(secret.Reveal())
	onB := func() []apikey.Limit {
		got, err := c.Lookup(ctx, d)
		require.NoError(t, err)
		return got.Limits
	}
	require.Empty(t, onB(), "cached on B without limits")
	within := func(want []apikey.Limit, what string) {
		t.Helper()
		start := time.Now()
		require.Eventually(t, func() bool {
			got := onB()
			return len(got) == len(want) && (len(want) == 0 || slices.Equal(got, want))
		}, 2*time.Second, time.Millisecond, what)
		t.Logf("%s on replica B after %v", what, time.Since(start))
	}

	limits := []apikey.Limit{{Name: "requests", Count: 100, Per: time.Minute, Burst: 20}}
	_, err = a.Update(ctx, k.ID, func(k *apikey.Key) error { k.Limits = limits; return nil })
	require.NoError(t, err)
	within(limits, "limits set")
	changed := []apikey.Limit{{Name: "requests", Count: 10, Per: time.Minute}}
	_, err = a.Update(ctx, k.ID, func(k *apikey.Key) error { k.Limits = changed; return nil })
	require.NoError(t, err)
	within(changed, "limit lowered")
	_, err = a.Update(ctx, k.ID, func(k *apikey.Key) error { k.Limits = nil; return nil })
	require.NoError(t, err)
	within(nil, "limits cleared")
}

// TestDatabaseDownMidTraffic: while the database is down, requests get 503
// (never 401, the handler never called); after the restart answers are
// right again; nothing panics or leaks.
func TestDatabaseDownMidTraffic(t *testing.T) {
	srv := pgtest.Shared(t)
	if srv.External() {
		t.Skip("needs the throwaway server: cannot stop " + pgtest.EnvDSN)
	}
	ctx := context.Background()
	keys := testKeys(nil)
	s, _, _ := newStore(t, keys)
	const ttl = 50 * time.Millisecond
	c := newCache(t, s, cache.Config{TTL: ttl, NegativeTTL: ttl, LookupTimeout: 500 * time.Millisecond, NoStale: true})
	checkGoroutines := goroutines(t)
	l := startListener(t, s, cacheFeed(c))

	var calls atomic.Int64
	handler := newMiddleware(t, keys, c).Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	do := func(secret string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/v1/things", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}
	var valid []string
	for range 5 {
		_, secret, err := s.Create(ctx, apikey.KeySpec{Name: "v", Scopes: []apikey.Scope{"read"}})
		require.NoError(t, err)
		valid = append(valid, secret.Reveal())
	}
	rk, revokedSecret, err := s.Create(ctx, apikey.KeySpec{Name: "r"})
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, rk.ID))
	unknown := func() string { // a well-formed key never stored
		is, err := keys.NewKey(apikey.KeySpec{Name: "never stored"})
		if err != nil {
			panic(err) // crypto/rand failed
		}
		return is.Secret.Reveal()
	}

	// Traffic from four clients throughout: a valid key is never refused
	// with 401, an unknown or revoked one never accepted.
	var (
		stop       = make(chan struct{})
		wg         sync.WaitGroup
		violations atomic.Int64
		statuses   [4][600]atomic.Int64 // per client, per status code
	)
	for c := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var code int
				switch i % 3 {
				case 0:
					code = do(valid[i%len(valid)]).Code
					if code != http.StatusOK && code != http.StatusServiceUnavailable {
						violations.Add(1)
					}
				case 1:
					code = do(unknown()).Code
					if code != http.StatusUnauthorized && code != http.StatusServiceUnavailable {
						violations.Add(1)
					}
				default:
					code = do(revokedSecret.Reveal()).Code
					if code != http.StatusUnauthorized && code != http.StatusServiceUnavailable {
						violations.Add(1)
					}
				}
				statuses[c][code].Add(1)
				time.Sleep(time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)

	require.NoError(t, srv.Stop(ctx))
	time.Sleep(ttl + 250*time.Millisecond) // every cached entry has expired
	before := calls.Load()
	for _, secret := range append(slices.Clone(valid), unknown(), revokedSecret.Reveal()) {
		w := do(secret)
		assert.Equal(t, http.StatusServiceUnavailable, w.Code, "database down")
		assert.NotEmpty(t, w.Header().Get("Retry-After"))
	}
	time.Sleep(200 * time.Millisecond) // traffic goes on against the dead database
	assert.Equal(t, before, calls.Load(), "the handler is never called while the database is down")
	require.NoError(t, srv.Start(ctx))
	l.WaitSynced(t)

	require.Eventually(t, func() bool { return do(valid[0]).Code == http.StatusOK }, 10*time.Second, 10*time.Millisecond)
	for _, secret := range valid {
		assert.Equal(t, http.StatusOK, do(secret).Code)
	}
	assert.Equal(t, http.StatusUnauthorized, do(unknown()).Code)
	assert.Equal(t, http.StatusUnauthorized, do(revokedSecret.Reveal()).Code)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()

	assert.Zero(t, violations.Load(), "no 401 for a valid key, no 200 for a bad one")
	var total [600]int64
	for c := range statuses {
		for code := range statuses[c] {
			total[code] += statuses[c][code].Load()
		}
	}
	t.Logf("traffic: %d × 200, %d × 401, %d × 503", total[200], total[401], total[503])
	assert.Positive(t, total[503], "the outage was seen")
	assert.Positive(t, total[200])

	l.Stop(t)
	checkGoroutines()
}

// TestCacheCoalescesQueries: 64 goroutines × 1,000 verifications of 10
// keys through the cache cost at most 10 database queries while the TTL
// holds.
func TestCacheCoalescesQueries(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	counter, tweak := countQueries("WHERE digest")
	keys := testKeys(nil)
	s := newStoreOn(t, newPool(t, dsn, tweak), keys)
	require.NoError(t, s.Migrate(ctx))
	secrets := make([]string, 10)
	for i := range secrets {
		_, sec, err := s.Create(ctx, apikey.KeySpec{Name: "hot"})
		require.NoError(t, err)
		secrets[i] = sec.Reveal()
	}
	c := newCache(t, s, cache.Config{TTL: time.Minute})
	mw := newMiddleware(t, keys, c)
	counter.n.Store(0)

	const workers, each = 64, 1000
	var (
		wg       sync.WaitGroup
		failures atomic.Int64
	)
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range each {
				if _, err := mw.Verify(ctx, secrets[(w+i)%len(secrets)]); err != nil {
					failures.Add(1)
				}
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	assert.Zero(t, failures.Load())
	queries := counter.n.Load()
	t.Logf("%d verifications in %v: %d database queries; cache %+v", workers*each, elapsed, queries, c.Stats())
	assert.LessOrEqual(t, queries, int64(len(secrets)), "at most one query per key")
	assert.LessOrEqual(t, c.Stats().StoreCalls, uint64(len(secrets)))
}

// TestDecoratorAnswersTheSame: pgstore, and a cache over pgstore, each
// wrapped in a plain apikey.KeyStoreFunc, answer every kind of key with
// the status they answer unwrapped: nothing is learned from a store's
// type.
func TestDecoratorAnswersTheSame(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	s, _, _ := newStore(t, keys)
	_, valid, err := s.Create(ctx, apikey.KeySpec{Name: "valid", Scopes: []apikey.Scope{"read", "write"}})
	require.NoError(t, err)
	_, readOnly, err := s.Create(ctx, apikey.KeySpec{Name: "read only", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	rk, revoked, err := s.Create(ctx, apikey.KeySpec{Name: "revoked", Scopes: []apikey.Scope{"read", "write"}})
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, rk.ID))
	unknown, err := keys.NewKey(apikey.KeySpec{Name: "never stored"})
	require.NoError(t, err)

	keyCases := []struct {
		name, method string
		secret       apikey.Secret
		want         int
	}{
		{"valid", http.MethodGet, valid, http.StatusOK},
		{"valid write", http.MethodPost, valid, http.StatusOK},
		{"unknown", http.MethodGet, unknown.Secret, http.StatusUnauthorized},
		{"revoked", http.MethodGet, revoked, http.StatusUnauthorized},
		{"wrong scope", http.MethodPost, readOnly, http.StatusForbidden},
	}
	stores := []struct {
		name  string
		store apikey.KeyStore
	}{
		{"pgstore", s},
		{"cache over pgstore", newCache(t, s, cache.Config{TTL: time.Minute})},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			var calls atomic.Int64
			wrapped := testkit.StoreFunc(func(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
				calls.Add(1)
				return st.store.Lookup(ctx, d)
			})
			bare, decorated := newMiddleware(t, keys, st.store), newMiddleware(t, keys, wrapped)
			for _, kc := range keyCases {
				t.Run(kc.name, func(t *testing.T) {
					assert.Equal(t, kc.want, serve(bare, kc.method, kc.secret.Reveal()), "unwrapped")
					assert.Equal(t, kc.want, serve(decorated, kc.method, kc.secret.Reveal()), "wrapped in a KeyStoreFunc")
				})
			}
			assert.EqualValues(t, len(keyCases), calls.Load(), "every request went through the decorator")
		})
	}
}

// serve sends one request with the secret through mw and returns the
// status.
func serve(mw *apikey.Middleware, method, secret string) int {
	r := httptest.NewRequest(method, "/v1/things", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	w := httptest.NewRecorder()
	mw.Handler(okHandler).ServeHTTP(w, r)
	return w.Code
}
