package presets_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/presets"
	"github.com/keygate/apikey/storetest"
	"github.com/keygate/apikey/usage"
)

// lastReason returns the reason of the only rejection since the last call,
// or the zero Reason when the request passed.
func (s *apiServer) lastReason(t *testing.T) apikey.Reason {
	t.Helper()
	r := s.takeRejections()
	if len(r) == 0 {
		return 0
	}
	require.Len(t, r, 1)
	return r[0].Reason
}

// A key's secret is shown once, by Create: the store keeps its digest and
// what it returns afterwards (Get, List) never holds the secret; the
// Secret itself prints redacted.
func TestLifecycleSecretShownOnce(t *testing.T) {
	ctx := context.Background()
	for _, p := range allPresets {
		t.Run(p.Name, func(t *testing.T) {
			s := newAPIServer(t, p, nil)
			k, sec, err := s.store.Create(ctx, apikey.KeySpec{Name: "shown-once", Scopes: p.Scopes.Scopes(), Owner: "admin@example.com"})
			require.NoError(t, err)
			key := sec.Reveal()
			_, err = p.Format.Parse(key)
			require.NoError(t, err)
			assert.True(t, k.CreatedAt.Equal(storetest.Epoch))
			assert.True(t, strings.HasSuffix(k.Hint, "…"+key[len(key)-4:]), "hint %q", k.Hint)
			assert.NotContains(t, k.Hint, key[:len(key)-4])

			got, err := s.store.Get(ctx, k.ID)
			require.NoError(t, err)
			list, err := s.store.List(ctx, apikey.Filter{})
			require.NoError(t, err)
			require.Len(t, list, 1)
			for _, v := range []any{k, got, list[0]} {
				j, err := json.Marshal(v)
				require.NoError(t, err)
				assert.NotContains(t, string(j), key)
				assert.NotContains(t, fmt.Sprintf("%+v", v), key)
			}
			for _, out := range []string{fmt.Sprint(sec), fmt.Sprintf("%v %+v %#v %s %q", sec, sec, sec, sec, sec)} {
				assert.NotContains(t, out, key)
				assert.Contains(t, out, "[REDACTED]")
			}
			j, err := json.Marshal(sec)
			require.NoError(t, err)
			assert.Equal(t, "{}", string(j))

			_, sec2, err := s.store.Create(ctx, apikey.KeySpec{Name: "shown-once"})
			require.NoError(t, err)
			assert.NotEqual(t, key, sec2.Reveal(), "every key has its own secret")
		})
	}
}

// Stairoids v1 and v2: create → 200; zero-downtime rotation: a second key
// works beside the first, and once the first is revoked it is 401 at once.
func TestLifecycleStairoids(t *testing.T) {
	ctx := context.Background()
	for _, p := range []presets.Preset{presets.StairoidsV1, presets.StairoidsV2} {
		t.Run(p.Name, func(t *testing.T) {
			s := newAPIServer(t, p, nil)
			k, key := s.create(t, apikey.KeySpec{Name: "hubspot-integration", Scopes: []apikey.Scope{"read_write"}})
			assert.Regexp(t, `^sk_live_[0-9A-Za-z]{32}$`, key)
			assert.Equal(t, 200, apiCall(s.h, "GET", "/v1/accounts", key).Code)
			assert.Equal(t, 200, apiCall(s.h, "POST", "/v1/signals", key).Code)

			_, key2 := s.create(t, apikey.KeySpec{Name: "hubspot-integration-v2", Scopes: []apikey.Scope{"read_write"}})
			assert.Equal(t, 200, apiCall(s.h, "GET", "/v1/accounts", key).Code, "the old key works while clients move")
			assert.Equal(t, 200, apiCall(s.h, "GET", "/v1/accounts", key2).Code, "the new key works at once")

			require.NoError(t, s.store.Revoke(ctx, k.ID))
			s.takeRejections()
			assert.Equal(t, 401, apiCall(s.h, "GET", "/v1/accounts", key).Code, "the old key is invalidated immediately")
			assert.Equal(t, apikey.ReasonRevoked, s.lastReason(t))
			assert.Equal(t, 200, apiCall(s.h, "GET", "/v1/accounts", key2).Code, "the new key works")

			// Test keys are sandbox keys of the same format.
			_, testKey := s.create(t, apikey.KeySpec{Name: "sandbox", Scopes: []apikey.Scope{"read"}, Environment: apikey.EnvTest})
			assert.Regexp(t, `^sk_test_[0-9A-Za-z]{32}$`, testKey)
			rr := apiCall(s.h, "GET", "/v1/accounts", testKey)
			assert.Equal(t, 200, rr.Code)
			assert.Equal(t, "test", apiDecode(t, rr)["environment"])
		})
	}
}

// Stepsies: names, several scopes, optional expiry, permanent revocation,
// created and last-used times.
func TestLifecycleStepsies(t *testing.T) {
	ctx := context.Background()
	s := newAPIServer(t, presets.Stepsies, nil)
	k, key := s.create(t, apikey.KeySpec{Name: "CI/CD Pipeline", Scopes: []apikey.Scope{"read", "write"}, ExpiresAt: storetest.Epoch.Add(30 * 24 * time.Hour)})
	assert.Len(t, key, 51)
	assert.Equal(t, "CI/CD Pipeline", k.Name)
	assert.True(t, k.CreatedAt.Equal(storetest.Epoch))

	s.clock.Advance(time.Hour)
	assert.Equal(t, 200, apiCall(s.h, "POST", "/v1/stepsies", key).Code)
	require.NoError(t, s.usage.Flush(ctx))
	got, err := s.store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.True(t, got.LastUsedAt.Equal(storetest.Epoch.Add(time.Hour)), "last used: %v", got.LastUsedAt)
	assert.EqualValues(t, 1, got.Requests)

	s.clock.Advance(30*24*time.Hour - time.Hour - time.Second)
	assert.Equal(t, 200, apiCall(s.h, "GET", "/v1/stepsies", key).Code, "a second before its expiry")
	s.clock.Advance(time.Second)
	s.takeRejections()
	assert.Equal(t, 401, apiCall(s.h, "GET", "/v1/stepsies", key).Code, "an expired key is 401")
	assert.Equal(t, apikey.ReasonExpired, s.lastReason(t))
	_, _, err = s.store.Roll(ctx, k.ID, 24*time.Hour)
	assert.ErrorIs(t, err, apikey.ErrExpired, "an expired key cannot be rolled")

	_, key2 := s.create(t, apikey.KeySpec{Name: "Zapier", Scopes: []apikey.Scope{"read"}})
	active, err := s.store.List(ctx, apikey.Filter{State: apikey.StateActive})
	require.NoError(t, err)
	require.Len(t, active, 1, "the expired key is not active")
	assert.Equal(t, "Zapier", active[0].Name)
	expired, err := s.store.List(ctx, apikey.Filter{State: apikey.StateExpired})
	require.NoError(t, err)
	require.Len(t, expired, 1)
	assert.Equal(t, k.ID, expired[0].ID)

	assert.Equal(t, 200, apiCall(s.h, "GET", "/v1/stepsies", key2).Code)
	require.NoError(t, s.store.Revoke(ctx, active[0].ID))
	assert.Equal(t, 401, apiCall(s.h, "GET", "/v1/stepsies", key2).Code)
	assert.Equal(t, apikey.ReasonRevoked, s.lastReason(t))
	_, _, err = s.store.Roll(ctx, active[0].ID, 24*time.Hour)
	assert.ErrorIs(t, err, apikey.ErrRevoked, "a revoked key cannot be brought back")
	s.clock.Advance(365 * 24 * time.Hour)
	assert.Equal(t, 401, apiCall(s.h, "GET", "/v1/stepsies", key2).Code, "revoked for ever")
}

// Stax.ai: the key works only with its owner's Email header.
func TestLifecycleStax(t *testing.T) {
	s := newAPIServer(t, presets.Stax, nil)
	k, key := s.create(t, apikey.KeySpec{Name: "dev", Scopes: []apikey.Scope{"admin"}, Owner: "admin@example.com"})
	assert.Len(t, key, 40)
	assert.Equal(t, "admin@example.com", k.Owner)
	rr := apiCall(s.h, "GET", "/", key, "Email", "admin@example.com")
	assert.Equal(t, 200, rr.Code)
	assert.Equal(t, true, apiDecode(t, rr)["authenticated"])

	s.takeRejections()
	rr = apiCall(s.h, "GET", "/", key, "Email", "other@example.com")
	assert.Equal(t, 200, rr.Code, "Stax.ai answers auth failures with 200")
	assert.Equal(t, true, apiDecode(t, rr)["authError"])
	assert.Equal(t, apikey.ReasonOwner, s.lastReason(t))

	require.NoError(t, s.store.Revoke(context.Background(), k.ID))
	rr = apiCall(s.h, "GET", "/", key, "Email", "admin@example.com")
	assert.Equal(t, true, apiDecode(t, rr)["authError"])
	assert.Equal(t, apikey.ReasonRevoked, s.lastReason(t))
}

// quotaStore is a UsageStore that sums the requests it is handed by
// environment before passing them on.
type quotaStore struct {
	next apikey.UsageStore
	mu   sync.Mutex
	sums map[apikey.Environment]uint64
}

func (q *quotaStore) RecordUsage(ctx context.Context, flush string, batch []apikey.Usage) error {
	if err := q.next.RecordUsage(ctx, flush, batch); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, u := range batch {
		q.sums[u.Environment] += u.Count
	}
	return nil
}

// Straply: test keys are sandboxed and never count toward the live quota;
// a roll keeps the old key for 24 hours.
func TestLifecycleStraply(t *testing.T) {
	ctx := context.Background()
	s := newAPIServer(t, presets.Straply, nil)
	quota := &quotaStore{next: s.store, sums: map[apikey.Environment]uint64{}}
	rec, err := usage.New(quota, usage.Config{Interval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rec.Close()) })
	cfg := presets.Straply.Config(s.keys, s.store)
	cfg.Usage = rec
	mw, err := apikey.New(cfg)
	require.NoError(t, err)
	h := mw.Handler(testkit.OKHandler())

	live, liveKey := s.create(t, apikey.KeySpec{Name: "prod", Scopes: []apikey.Scope{"read"}})
	sandbox, testKey := s.create(t, apikey.KeySpec{Name: "ci", Scopes: []apikey.Scope{"read"}, Environment: apikey.EnvTest})
	assert.Regexp(t, `^stp_live_[a-z0-9]{31}$`, liveKey)
	assert.Regexp(t, `^stp_test_[a-z0-9]{31}$`, testKey)
	assert.Equal(t, apikey.EnvLive, live.Environment)
	assert.Equal(t, apikey.EnvTest, sandbox.Environment)

	for i := 0; i < 3; i++ {
		assert.Equal(t, 200, apiCall(h, "GET", "/v1/properties/stp_a3f7c2e91b4d", liveKey).Code)
	}
	rr := apiCall(h, "GET", "/v1/properties/stp_a3f7c2e91b4d", testKey)
	assert.Equal(t, "test", apiDecode(t, rr)["environment"], "the handler sees the sandbox environment")
	require.NoError(t, rec.Flush(ctx))
	assert.Equal(t, map[apikey.Environment]uint64{apikey.EnvLive: 3, apikey.EnvTest: 1}, quota.sums,
		"test requests never count toward the live quota")
	for id, want := range map[string]uint64{live.ID: 3, sandbox.ID: 1} {
		got, err := s.store.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, got.Requests)
	}

	t.Run("live only", func(t *testing.T) {
		lo := newAPIServer(t, presets.Straply, func(c *apikey.Config) { c.Environment = apikey.EnvLive })
		_, l := lo.create(t, apikey.KeySpec{Name: "prod", Scopes: []apikey.Scope{"read"}})
		_, tk := lo.create(t, apikey.KeySpec{Name: "ci", Scopes: []apikey.Scope{"read"}, Environment: apikey.EnvTest})
		assert.Equal(t, 200, apiCall(lo.h, "GET", "/", l).Code)
		rr := apiCall(lo.h, "GET", "/", tk)
		assert.Equal(t, 401, rr.Code, "a live-only server refuses test keys")
		assert.Equal(t, apikey.ReasonEnvironment, lo.lastReason(t))
		assert.Equal(t, map[string]any{"error": map[string]any{"code": "unauthorized", "message": "Invalid or missing API key.", "status": float64(401)}}, apiDecode(t, rr))
	})

	nk, newKey, err := s.store.Roll(ctx, live.ID, 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, live.Scopes, nk.Scopes, "the new key inherits the same permissions")
	assert.Equal(t, live.Name, nk.Name)
	assert.Equal(t, apikey.EnvLive, nk.Environment)
	assert.Equal(t, live.ID, nk.RolledFrom)
	old, err := s.store.Get(ctx, live.ID)
	require.NoError(t, err)
	assert.Equal(t, nk.ID, old.RolledTo)
	assert.True(t, old.ExpiresAt.Equal(storetest.Epoch.Add(24*time.Hour)), "grace ends at %v", old.ExpiresAt)

	s.clock.Advance(23 * time.Hour)
	assert.Equal(t, 200, apiCall(h, "GET", "/", liveKey).Code, "old key valid during the 24 h grace")
	assert.Equal(t, 200, apiCall(h, "GET", "/", newKey.Reveal()).Code)
	s.clock.Advance(time.Hour)
	s.takeRejections()
	assert.Equal(t, 401, apiCall(s.h, "GET", "/", liveKey).Code, "old key rejected after 24 h")
	assert.Equal(t, apikey.ReasonRolled, s.lastReason(t))
	assert.Equal(t, 200, apiCall(h, "GET", "/", newKey.Reveal()).Code)
	_, _, err = s.store.Roll(ctx, live.ID, 24*time.Hour)
	assert.ErrorIs(t, err, apikey.ErrAlreadyRolled, "a rolled key cannot be rolled again, in its grace or after")
}

// Eight goroutines verify while another creates, rolls and revokes. No key
// may be accepted by a verification that started after its revocation
// returned.
func TestLifecycleNoAcceptanceAfterRevocation(t *testing.T) {
	ctx := context.Background()
	p := presets.StairoidsV2
	keys := p.Keys()
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(t, err)
	mw, err := apikey.New(p.Config(keys, store))
	require.NoError(t, err)

	type entry struct {
		secret  string
		id      string
		revoked atomic.Bool // set once Revoke has returned
	}
	var (
		mu      sync.RWMutex
		entries []*entry
		stop    atomic.Bool
		wg      sync.WaitGroup
		checks  atomic.Int64
		late    atomic.Int64
	)
	add := func(id string, s apikey.Secret) {
		mu.Lock()
		entries = append(entries, &entry{secret: s.Reveal(), id: id})
		mu.Unlock()
	}
	for i := 0; i < 8; i++ {
		k, s, err := store.Create(ctx, apikey.KeySpec{Name: "initial"})
		require.NoError(t, err)
		add(k.ID, s)
	}
	stopAll := sync.OnceFunc(func() { stop.Store(true); wg.Wait() })
	defer stopAll()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				mu.RLock()
				e := entries[i%len(entries)]
				mu.RUnlock()
				wasRevoked := e.revoked.Load()
				_, err := mw.Verify(ctx, e.secret)
				checks.Add(1)
				if err == nil && wasRevoked {
					late.Add(1)
				}
				runtime.Gosched() // two cores: let the churn run
			}
		}(w)
	}
	const rounds = 2000
	for i := 0; i < rounds; i++ {
		// Let the verifiers run between changes, whatever the machine's
		// speed.
		for before := checks.Load(); checks.Load() < before+8; {
			runtime.Gosched()
		}
		k, s, err := store.Create(ctx, apikey.KeySpec{Name: "churn"})
		require.NoError(t, err)
		add(k.ID, s)
		if i%3 == 0 {
			nk, ns, err := store.Roll(ctx, k.ID, time.Hour)
			require.NoError(t, err)
			add(nk.ID, ns)
		}
		mu.RLock()
		victim := entries[len(entries)/2+i%(len(entries)/2)]
		mu.RUnlock()
		require.NoError(t, store.Revoke(ctx, victim.id))
		victim.revoked.Store(true)
	}
	stopAll()
	t.Logf("%d verifications, %d keys", checks.Load(), len(entries))
	assert.GreaterOrEqual(t, checks.Load(), int64(8*rounds))
	assert.Zero(t, late.Load(), "keys accepted after their revocation returned")
}
