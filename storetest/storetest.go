// Package storetest is the contract suite for apikey stores. Every store
// that ships with apikey runs it, and an integrator's store can too:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, cfg apikey.StoreConfig) storetest.Store {
//			return mystore.New(db, cfg)
//		})
//	}
//
// The suite drives time through cfg.Clock (a *Clock), so it never sleeps.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

// Store is what the suite needs: lookup and management. The usage and
// pepper-rotation capabilities (apikey.UsageStore, apikey.Rehasher) are
// tested when the store has them and skipped otherwise.
type Store interface {
	apikey.KeyStore
	apikey.Manager
}

// Factory returns a new, empty store built with cfg. The suite calls it
// once per subtest.
type Factory func(t *testing.T, cfg apikey.StoreConfig) Store

// Epoch is the suite's starting time, at microsecond precision so that
// stores backed by databases round-trip it exactly.
var Epoch = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// Scopes declares the scopes the suite uses.
var Scopes = apikey.MustDeclareScopes(map[apikey.Scope][]apikey.Scope{
	"read": nil, "write": nil, "admin": {"read", "write"}, "stepsies:write": nil,
})

type env struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	store Store
	auth  *apikey.Authenticator
}

func setup(t *testing.T, factory Factory) *env {
	clock := NewClock(Epoch)
	cfg := apikey.StoreConfig{Format: apikey.FormatDefault, Scopes: Scopes, Clock: clock}
	s := factory(t, cfg)
	return &env{
		t: t, ctx: context.Background(), clock: clock, store: s,
		auth: apikey.New(s, apikey.WithClock(clock), apikey.WithFormats(apikey.FormatDefault)),
	}
}

func (e *env) create(spec apikey.KeySpec) (*apikey.Key, apikey.Secret) {
	e.t.Helper()
	k, s, err := e.store.Create(e.ctx, spec)
	require.NoError(e.t, err)
	return k, s
}

// verify authenticates a secret as the middleware would and returns the
// reason it fails (ReasonNone when accepted).
func (e *env) verify(s apikey.Secret) apikey.Reason {
	e.t.Helper()
	_, err := e.auth.Verify(e.ctx, s.Reveal())
	if err == nil {
		return apikey.ReasonNone
	}
	var ae apikey.AuthError
	require.True(e.t, errors.As(err, &ae), "Verify returns an AuthError: %v", err)
	return ae.Reason
}

// Run runs the whole contract suite against stores from factory.
func Run(t *testing.T, factory Factory) {
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"CreateThenLookup", testCreateThenLookup},
		{"CreateRejectsBadInput", testCreateRejectsBadInput},
		{"UnknownIsNotFound", testUnknownIsNotFound},
		{"GetAndList", testGetAndList},
		{"RevokeIsImmediateAndIdempotent", testRevoke},
		{"RollKeepsOldKeyForGrace", testRollGrace},
		{"RollGraceCappedByExpiry", testRollCappedByExpiry},
		{"RollWithZeroGrace", testRollZeroGrace},
		{"RevokeDuringGrace", testRevokeDuringGrace},
		{"ResultsAreCopies", testResultsAreCopies},
		{"RollRefusals", testRollRefusals},
		{"Expiry", testExpiry},
		{"RecordUsage", testRecordUsage},
		{"ConcurrentCreate", testConcurrentCreate},
		{"Rehash", testRehash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(setup(t, factory)) })
	}
}

func testCreateThenLookup(e *env) {
	t := e.t
	exp := Epoch.Add(48 * time.Hour)
	k, s := e.create(apikey.KeySpec{
		Name: "Production Backend", Environment: apikey.EnvTest,
		Scopes: []apikey.Scope{"read", "write"}, Owner: "ops@example.com",
		Metadata: map[string]string{"team": "core"}, ExpiresAt: exp,
	})
	assert.Regexp(t, `^key_`, k.ID)
	assert.Equal(t, "Production Backend", k.Name)
	assert.Equal(t, apikey.EnvTest, k.Environment)
	assert.Equal(t, []apikey.Scope{"read", "write"}, k.Scopes)
	assert.Equal(t, "ops@example.com", k.Owner)
	assert.Equal(t, map[string]string{"team": "core"}, k.Metadata)
	assert.True(t, k.CreatedAt.Equal(Epoch), "created at the clock's time")
	assert.True(t, k.ExpiresAt.Equal(exp))
	assert.Equal(t, "kg_test_…"+s.Reveal()[len(s.Reveal())-4:], k.Hint)

	env, err := apikey.FormatDefault.Parse(s.Reveal())
	require.NoError(t, err)
	assert.Equal(t, apikey.EnvTest, env)

	var h apikey.Hasher
	got, err := e.store.Lookup(e.ctx, h.Digest(s.Reveal()))
	require.NoError(t, err)
	assert.Equal(t, k.ID, got.ID)
	assert.Equal(t, apikey.ReasonNone, e.verify(s))

	// The store keeps the digest, not the secret: the digest itself is not
	// a credential.
	d := h.Digest(s.Reveal())
	_, err = e.store.Lookup(e.ctx, h.Digest(d.String()))
	assert.ErrorIs(t, err, apikey.ErrNotFound)
}

func testCreateRejectsBadInput(e *env) {
	tests := []struct {
		name string
		spec apikey.KeySpec
		err  error
	}{
		{"empty name", apikey.KeySpec{Scopes: []apikey.Scope{"read"}}, apikey.ErrInvalid},
		{"unknown scope", apikey.KeySpec{Name: "x", Scopes: []apikey.Scope{"superuser"}}, apikey.ErrUnknownScope},
		{"malformed scope", apikey.KeySpec{Name: "x", Scopes: []apikey.Scope{"Read Write"}}, apikey.ErrInvalid},
		{"expiry in the past", apikey.KeySpec{Name: "x", ExpiresAt: Epoch.Add(-time.Second)}, apikey.ErrInvalid},
		{"bad environment", apikey.KeySpec{Name: "x", Environment: 7}, apikey.ErrInvalid},
	}
	for _, tt := range tests {
		e.t.Run(tt.name, func(t *testing.T) {
			k, s, err := e.store.Create(e.ctx, tt.spec)
			assert.ErrorIs(t, err, tt.err)
			assert.Nil(t, k)
			assert.True(t, s.IsZero())
		})
	}
	list, err := e.store.List(e.ctx, apikey.Filter{})
	require.NoError(e.t, err)
	assert.Empty(e.t, list, "nothing stored by failed creates")
}

func testUnknownIsNotFound(e *env) {
	var h apikey.Hasher
	_, err := e.store.Lookup(e.ctx, h.Digest("kg_live_never_issued"))
	assert.ErrorIs(e.t, err, apikey.ErrNotFound)
	_, err = e.store.Get(e.ctx, "key_missing")
	assert.ErrorIs(e.t, err, apikey.ErrNotFound)
	assert.ErrorIs(e.t, e.store.Revoke(e.ctx, "key_missing"), apikey.ErrNotFound)
	_, _, err = e.store.Roll(e.ctx, "key_missing")
	assert.ErrorIs(e.t, err, apikey.ErrNotFound)
}

func testGetAndList(e *env) {
	t := e.t
	a, _ := e.create(apikey.KeySpec{Name: "a", Owner: "o1", Scopes: []apikey.Scope{"read"}})
	e.clock.Advance(time.Second)
	b, _ := e.create(apikey.KeySpec{Name: "b", Owner: "o2", Environment: apikey.EnvTest})
	e.clock.Advance(time.Second)
	c, _ := e.create(apikey.KeySpec{Name: "c", Owner: "o1", ExpiresAt: Epoch.Add(time.Hour)})
	require.NoError(t, e.store.Revoke(e.ctx, a.ID))

	got, err := e.store.Get(e.ctx, b.ID)
	require.NoError(t, err)
	assert.Equal(t, "b", got.Name)

	ids := func(f apikey.Filter) []string {
		list, err := e.store.List(e.ctx, f)
		require.NoError(t, err)
		out := []string{}
		for _, k := range list {
			out = append(out, k.ID)
		}
		return out
	}
	assert.Equal(t, []string{a.ID, b.ID, c.ID}, ids(apikey.Filter{}), "oldest first")
	assert.Equal(t, []string{b.ID}, ids(apikey.Filter{Environment: apikey.EnvTest}))
	assert.Equal(t, []string{a.ID, c.ID}, ids(apikey.Filter{Owner: "o1"}))
	assert.Equal(t, []string{a.ID}, ids(apikey.Filter{State: apikey.StateRevoked}))
	assert.Equal(t, []string{b.ID, c.ID}, ids(apikey.Filter{State: apikey.StateActive}))
	e.clock.Advance(2 * time.Hour)
	assert.Equal(t, []string{c.ID}, ids(apikey.Filter{State: apikey.StateExpired}))
	assert.Equal(t, []string{c.ID}, ids(apikey.Filter{Owner: "o1", State: apikey.StateExpired}))
}

func testRevoke(e *env) {
	t := e.t
	k, s := e.create(apikey.KeySpec{Name: "r"})
	_, otherSecret := e.create(apikey.KeySpec{Name: "other"})
	require.Equal(t, apikey.ReasonNone, e.verify(s))

	e.clock.Advance(time.Minute)
	require.NoError(t, e.store.Revoke(e.ctx, k.ID))
	assert.Equal(t, apikey.ReasonRevoked, e.verify(s), "rejected at once")
	assert.Equal(t, apikey.ReasonNone, e.verify(otherSecret), "other keys unaffected")

	got, err := e.store.Get(e.ctx, k.ID)
	require.NoError(t, err)
	first := got.RevokedAt
	assert.True(t, first.Equal(Epoch.Add(time.Minute)))

	e.clock.Advance(time.Minute)
	require.NoError(t, e.store.Revoke(e.ctx, k.ID), "revoking twice is not an error")
	got, err = e.store.Get(e.ctx, k.ID)
	require.NoError(t, err)
	assert.True(t, got.RevokedAt.Equal(first), "the first revocation time stays")
}

func testRollGrace(e *env) {
	t := e.t
	old, oldSecret := e.create(apikey.KeySpec{
		Name: "rolling", Scopes: []apikey.Scope{"read", "stepsies:write"}, Owner: "o",
		Metadata: map[string]string{"k": "v"}, Environment: apikey.EnvTest,
	})
	e.clock.Advance(time.Hour)
	nk, newSecret, err := e.store.Roll(e.ctx, old.ID) // default grace: 24 h
	require.NoError(t, err)
	assert.NotEqual(t, old.ID, nk.ID)
	assert.NotEqual(t, oldSecret.Reveal(), newSecret.Reveal())
	assert.Equal(t, old.ID, nk.RolledFrom)
	assert.Equal(t, old.Name, nk.Name)
	assert.Equal(t, old.Scopes, nk.Scopes)
	assert.Equal(t, old.Owner, nk.Owner)
	assert.Equal(t, old.Metadata, nk.Metadata)
	assert.Equal(t, old.Environment, nk.Environment)
	assert.True(t, nk.ExpiresAt.IsZero(), "inherits no expiry")

	got, err := e.store.Get(e.ctx, old.ID)
	require.NoError(t, err)
	assert.Equal(t, nk.ID, got.RolledTo)
	assert.True(t, got.ExpiresAt.Equal(Epoch.Add(25*time.Hour)), "old key retires at now + 24 h, got %v", got.ExpiresAt)

	assert.Equal(t, apikey.ReasonNone, e.verify(oldSecret), "both work during the grace period")
	assert.Equal(t, apikey.ReasonNone, e.verify(newSecret))
	e.clock.Advance(24*time.Hour - time.Second)
	assert.Equal(t, apikey.ReasonNone, e.verify(oldSecret))
	e.clock.Advance(time.Second)
	assert.Equal(t, apikey.ReasonRolled, e.verify(oldSecret), "old rejected after the grace period")
	assert.Equal(t, apikey.ReasonNone, e.verify(newSecret), "new keeps working")
}

func testRollCappedByExpiry(e *env) {
	t := e.t
	old, oldSecret := e.create(apikey.KeySpec{Name: "short", ExpiresAt: Epoch.Add(2 * time.Hour)})
	nk, newSecret, err := e.store.Roll(e.ctx, old.ID, apikey.WithGrace(24*time.Hour))
	require.NoError(t, err)
	assert.True(t, nk.ExpiresAt.Equal(Epoch.Add(2*time.Hour)), "the successor inherits the expiry")
	got, err := e.store.Get(e.ctx, old.ID)
	require.NoError(t, err)
	assert.True(t, got.ExpiresAt.Equal(Epoch.Add(2*time.Hour)), "grace never outlives the key's own expiry")
	e.clock.Advance(2 * time.Hour)
	assert.NotEqual(t, apikey.ReasonNone, e.verify(oldSecret))
	assert.Equal(t, apikey.ReasonExpired, e.verify(newSecret))
}

func testRollZeroGrace(e *env) {
	t := e.t
	old, oldSecret := e.create(apikey.KeySpec{Name: "now"})
	_, newSecret, err := e.store.Roll(e.ctx, old.ID, apikey.WithGrace(0))
	require.NoError(t, err)
	assert.Equal(t, apikey.ReasonRolled, e.verify(oldSecret), "grace 0 retires at once")
	assert.Equal(t, apikey.ReasonNone, e.verify(newSecret))
}

// A key rolled with a grace period and then revoked is rejected at once,
// grace or not.
func testRevokeDuringGrace(e *env) {
	t := e.t
	old, oldSecret := e.create(apikey.KeySpec{Name: "rolled then revoked"})
	_, newSecret, err := e.store.Roll(e.ctx, old.ID, apikey.WithGrace(time.Hour))
	require.NoError(t, err)
	require.Equal(t, apikey.ReasonNone, e.verify(oldSecret))
	require.NoError(t, e.store.Revoke(e.ctx, old.ID))
	assert.Equal(t, apikey.ReasonRevoked, e.verify(oldSecret))
	assert.Equal(t, apikey.ReasonNone, e.verify(newSecret), "the successor is not revoked with it")
}

// Keys returned by Create, Get and List belong to the caller: changing
// them changes nothing in the store.
func testResultsAreCopies(e *env) {
	t := e.t
	k, _ := e.create(apikey.KeySpec{Name: "original", Scopes: []apikey.Scope{"read"}, Metadata: map[string]string{"a": "b"}})
	k.Name, k.Scopes[0], k.Metadata["a"] = "changed", "admin", "z"
	got, err := e.store.Get(e.ctx, k.ID)
	require.NoError(t, err)
	got.Scopes[0], got.Metadata["a"] = "write", "y"
	list, err := e.store.List(e.ctx, apikey.Filter{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	list[0].Name = "changed again"
	again, err := e.store.Get(e.ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "original", again.Name)
	assert.Equal(t, []apikey.Scope{"read"}, again.Scopes)
	assert.Equal(t, map[string]string{"a": "b"}, again.Metadata)
}

func testRollRefusals(e *env) {
	t := e.t
	revoked, _ := e.create(apikey.KeySpec{Name: "revoked"})
	require.NoError(t, e.store.Revoke(e.ctx, revoked.ID))
	_, _, err := e.store.Roll(e.ctx, revoked.ID)
	assert.ErrorIs(t, err, apikey.ErrRevoked)

	rolled, _ := e.create(apikey.KeySpec{Name: "rolled"})
	_, _, err = e.store.Roll(e.ctx, rolled.ID)
	require.NoError(t, err)
	_, _, err = e.store.Roll(e.ctx, rolled.ID)
	assert.ErrorIs(t, err, apikey.ErrAlreadyRolled)

	expiring, _ := e.create(apikey.KeySpec{Name: "expiring", ExpiresAt: Epoch.Add(time.Minute)})
	_, _, err = e.store.Roll(e.ctx, expiring.ID, apikey.WithGrace(-time.Second))
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	e.clock.Advance(time.Minute)
	_, _, err = e.store.Roll(e.ctx, expiring.ID)
	assert.ErrorIs(t, err, apikey.ErrExpired)
}

func testExpiry(e *env) {
	t := e.t
	_, s := e.create(apikey.KeySpec{Name: "temp", ExpiresAt: Epoch.Add(time.Hour)})
	assert.Equal(t, apikey.ReasonNone, e.verify(s))
	e.clock.Advance(time.Hour - time.Microsecond)
	assert.Equal(t, apikey.ReasonNone, e.verify(s))
	e.clock.Advance(time.Microsecond)
	assert.Equal(t, apikey.ReasonExpired, e.verify(s))
}

func testRecordUsage(e *env) {
	t := e.t
	us, ok := e.store.(apikey.UsageStore)
	if !ok {
		t.Skip("store does not implement apikey.UsageStore")
	}
	live, _ := e.create(apikey.KeySpec{Name: "live"})
	test, _ := e.create(apikey.KeySpec{Name: "test", Environment: apikey.EnvTest})
	t1, t2 := Epoch.Add(time.Minute), Epoch.Add(2*time.Minute)
	require.NoError(t, us.RecordUsage(e.ctx, []apikey.Usage{
		{KeyID: live.ID, Environment: apikey.EnvLive, Count: 3, LastUsed: t2},
		{KeyID: test.ID, Environment: apikey.EnvTest, Count: 5, LastUsed: t1},
		{KeyID: "key_unknown", Environment: apikey.EnvLive, Count: 1, LastUsed: t1},
	}))
	// An older batch adds its count but never moves last-used back.
	require.NoError(t, us.RecordUsage(e.ctx, []apikey.Usage{
		{KeyID: live.ID, Environment: apikey.EnvLive, Count: 2, LastUsed: t1},
	}))
	got, err := e.store.Get(e.ctx, live.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 5, got.Requests)
	assert.True(t, got.LastUsedAt.Equal(t2), "last used stays at the latest time, got %v", got.LastUsedAt)
	got, err = e.store.Get(e.ctx, test.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 5, got.Requests)
	assert.True(t, got.LastUsedAt.Equal(t1))
	require.NoError(t, us.RecordUsage(e.ctx, nil), "an empty batch is fine")
}

func testConcurrentCreate(e *env) {
	t := e.t
	const workers, each = 8, 10
	var (
		mu      sync.Mutex
		secrets = map[string]apikey.Secret{}
		wg      sync.WaitGroup
		errs    = make(chan error, workers*each)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				k, s, err := e.store.Create(e.ctx, apikey.KeySpec{Name: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				secrets[k.ID] = s
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, secrets, workers*each)
	for id, s := range secrets {
		k, err := e.auth.Verify(e.ctx, s.Reveal())
		require.NoError(t, err)
		assert.Equal(t, id, k.ID)
	}
}

func testRehash(e *env) {
	t := e.t
	rh, ok := e.store.(apikey.Rehasher)
	if !ok {
		t.Skip("store does not implement apikey.Rehasher")
	}
	k, s := e.create(apikey.KeySpec{Name: "pepper"})
	p, err := apikey.NewPepper("p2", []byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	h, err := apikey.NewHasher(p)
	require.NoError(t, err)
	nd := h.Digest(s.Reveal())
	require.NoError(t, rh.Rehash(e.ctx, k.ID, nd, "p2"))
	got, err := e.store.Lookup(e.ctx, nd)
	require.NoError(t, err)
	assert.Equal(t, k.ID, got.ID)
	assert.Equal(t, "p2", got.PepperID)
	var plain apikey.Hasher
	_, err = e.store.Lookup(e.ctx, plain.Digest(s.Reveal()))
	assert.ErrorIs(t, err, apikey.ErrNotFound, "the old digest is gone")
	assert.ErrorIs(t, rh.Rehash(e.ctx, "key_missing", nd, "p2"), apikey.ErrNotFound)
}
