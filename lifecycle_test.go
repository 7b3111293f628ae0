package apikey_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/storetest"
)

// seedServer is a preset's store and middleware around okHandler, on a
// manual clock.
type seedServer struct {
	clock *storetest.Clock
	store *apikey.MemoryStore
	h     http.Handler
	usage *apikey.UsageRecorder
}

func newSeedServer(t *testing.T, p apikey.Preset, extra ...apikey.Option) *seedServer {
	clock := storetest.NewClock(storetest.Epoch)
	cfg := p.StoreConfig()
	cfg.Clock = clock
	store := apikey.NewMemoryStore(cfg)
	usage := apikey.NewUsageRecorder(store, apikey.FlushEvery(time.Hour))
	t.Cleanup(func() { _ = usage.Close() })
	opts := append(p.Options(), apikey.WithClock(clock), apikey.WithUsage(usage))
	return &seedServer{clock: clock, store: store, usage: usage, h: apikey.Middleware(store, append(opts, extra...)...)(okHandler())}
}

func (s *seedServer) create(t *testing.T, spec apikey.KeySpec) (*apikey.Key, string) {
	t.Helper()
	k, sec, err := s.store.Create(context.Background(), spec)
	require.NoError(t, err)
	return k, sec.Reveal()
}

// Seeds 000 and 001: create → 200; revoke → the old key is 401 at once.
func TestLifecycleStairoids(t *testing.T) {
	for _, p := range []apikey.Preset{apikey.PresetStairoidsV1, apikey.PresetStairoidsV2} {
		t.Run(p.Name, func(t *testing.T) {
			s := newSeedServer(t, p)
			k, key := s.create(t, apikey.KeySpec{Name: "hubspot-integration", Scopes: []apikey.Scope{"read_write"}})
			_, key2 := s.create(t, apikey.KeySpec{Name: "hubspot-integration-v2", Scopes: []apikey.Scope{"read_write"}})
			assert.Equal(t, 200, call(s.h, "GET", "/v1/accounts", key).Code)
			assert.Equal(t, 200, call(s.h, "POST", "/v1/signals", key).Code)
			require.NoError(t, s.store.Revoke(context.Background(), k.ID))
			assert.Equal(t, 401, call(s.h, "GET", "/v1/accounts", key).Code, "the old key is invalidated immediately")
			assert.Equal(t, 200, call(s.h, "GET", "/v1/accounts", key2).Code, "the new key works")
		})
	}
}

// Seed 002: names, several scopes, optional expiry, permanent revocation,
// created and last-used timestamps.
func TestLifecycleStepsies(t *testing.T) {
	ctx := context.Background()
	s := newSeedServer(t, apikey.PresetStepsies)
	k, key := s.create(t, apikey.KeySpec{Name: "CI/CD Pipeline", Scopes: []apikey.Scope{"read", "write"}, ExpiresAt: storetest.Epoch.Add(30 * 24 * time.Hour)})
	assert.Len(t, key, 51)
	assert.True(t, k.CreatedAt.Equal(storetest.Epoch))

	s.clock.Advance(time.Hour)
	assert.Equal(t, 200, call(s.h, "POST", "/v1/stepsies", key).Code)
	require.NoError(t, s.usage.Flush(ctx))
	got, err := s.store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.True(t, got.LastUsedAt.Equal(storetest.Epoch.Add(time.Hour)), "last used: %v", got.LastUsedAt)

	s.clock.Advance(30 * 24 * time.Hour)
	assert.Equal(t, 401, call(s.h, "GET", "/v1/stepsies", key).Code, "an expired key is 401")

	_, key2 := s.create(t, apikey.KeySpec{Name: "Zapier", Scopes: []apikey.Scope{"read"}})
	k2, err := s.store.List(ctx, apikey.Filter{State: apikey.StateActive})
	require.NoError(t, err)
	require.Len(t, k2, 1)
	require.NoError(t, s.store.Revoke(ctx, k2[0].ID))
	assert.Equal(t, 401, call(s.h, "GET", "/v1/stepsies", key2).Code)
	_, _, err = s.store.Roll(ctx, k2[0].ID)
	assert.ErrorIs(t, err, apikey.ErrRevoked, "a revoked key cannot be brought back")
}

// Seed 003: the key works only with its owner's Email header.
func TestLifecycleStax(t *testing.T) {
	s := newSeedServer(t, apikey.PresetStax)
	k, key := s.create(t, apikey.KeySpec{Name: "dev", Scopes: []apikey.Scope{"admin"}, Owner: "admin@example.com"})
	assert.Len(t, key, 40)
	assert.Equal(t, 200, call(s.h, "GET", "/", key, "Email", "admin@example.com").Code)
	rr := call(s.h, "GET", "/", key, "Email", "other@example.com")
	assert.Equal(t, 200, rr.Code, "Stax answers auth failures with 200")
	assert.Equal(t, true, decode(t, rr)["authError"])
	require.NoError(t, s.store.Revoke(context.Background(), k.ID))
	assert.Equal(t, true, decode(t, call(s.h, "GET", "/", key, "Email", "admin@example.com"))["authError"])
}

// Seed 004: test keys are sandboxed and never count toward quota; roll
// keeps the old key for 24 hours.
func TestLifecycleStraply(t *testing.T) {
	ctx := context.Background()
	s := newSeedServer(t, apikey.PresetStraply)
	live, liveKey := s.create(t, apikey.KeySpec{Name: "prod", Scopes: []apikey.Scope{"read"}})
	_, testKey := s.create(t, apikey.KeySpec{Name: "ci", Scopes: []apikey.Scope{"read"}, Environment: apikey.EnvTest})
	assert.Regexp(t, `^stp_live_[a-z0-9]{31}$`, liveKey)
	assert.Regexp(t, `^stp_test_[a-z0-9]{31}$`, testKey)

	for i := 0; i < 3; i++ {
		assert.Equal(t, 200, call(s.h, "GET", "/v1/properties/stp_a3f7c2e91b4d", liveKey).Code)
	}
	rr := call(s.h, "GET", "/v1/properties/stp_a3f7c2e91b4d", testKey)
	assert.Equal(t, "test", decode(t, rr)["environment"], "the handler sees the sandbox environment")
	require.NoError(t, s.usage.Flush(ctx))
	totals, err := s.store.Totals(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.Equal(t, apikey.UsageTotals{Live: 3, Test: 1}, totals, "test requests never count toward the live quota")

	nk, newKey, err := s.store.Roll(ctx, live.ID)
	require.NoError(t, err)
	assert.Equal(t, live.Scopes, nk.Scopes, "the new key inherits the same permissions")
	s.clock.Advance(23 * time.Hour)
	assert.Equal(t, 200, call(s.h, "GET", "/", liveKey).Code, "old key valid during the 24 h grace")
	assert.Equal(t, 200, call(s.h, "GET", "/", newKey.Reveal()).Code)
	s.clock.Advance(time.Hour)
	assert.Equal(t, 401, call(s.h, "GET", "/", liveKey).Code, "old key rejected after 24 h")
	assert.Equal(t, 200, call(s.h, "GET", "/", newKey.Reveal()).Code)
}

// Eight goroutines verify while another creates, rolls and revokes. No key
// may be accepted by a verification that started after its revocation
// returned.
func TestNoAcceptanceAfterRevocation(t *testing.T) {
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	auth := apikey.New(store)

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
		k, s, err := store.Create(ctx, apikey.KeySpec{Name: "seed"})
		require.NoError(t, err)
		add(k.ID, s)
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				mu.RLock()
				e := entries[i%len(entries)]
				mu.RUnlock()
				wasRevoked := e.revoked.Load()
				_, err := auth.Verify(ctx, e.secret)
				checks.Add(1)
				if err == nil && wasRevoked {
					late.Add(1)
				}
			}
		}(w)
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		k, s, err := store.Create(ctx, apikey.KeySpec{Name: "churn"})
		require.NoError(t, err)
		add(k.ID, s)
		if i%3 == 0 {
			nk, ns, err := store.Roll(ctx, k.ID, apikey.WithGrace(time.Hour))
			require.NoError(t, err)
			add(nk.ID, ns)
		}
		mu.RLock()
		victim := entries[len(entries)/2+i%(len(entries)/2)]
		mu.RUnlock()
		require.NoError(t, store.Revoke(ctx, victim.id))
		victim.revoked.Store(true)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d verifications, %d keys", checks.Load(), len(entries))
	assert.Greater(t, checks.Load(), int64(1000))
	assert.Zero(t, late.Load(), "keys accepted after their revocation returned")
}
