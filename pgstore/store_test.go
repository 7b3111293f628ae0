package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
	"github.com/keygate/apikey/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, cfg apikey.StoreConfig) storetest.Store {
		s, _ := newStore(t, cfg)
		return s
	})
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, apikey.StoreConfig{}) // migrated once
	require.NoError(t, s.Migrate(ctx), "twice is a no-op")
	require.NoError(t, s.Migrate(ctx), "three times too")

	var versions []int
	rows, err := s.Pool().Query(ctx, `SELECT version FROM apikey_schema_migrations ORDER BY version`)
	require.NoError(t, err)
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	want := []int{}
	for v := 1; v <= pgstore.SchemaVersion(); v++ {
		want = append(want, v)
	}
	assert.Equal(t, want, versions, "each version applied once")

	_, _, err = s.Create(ctx, apikey.KeySpec{Name: "after re-migrating"})
	require.NoError(t, err)
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const replicas = 4
	stores := make([]*pgstore.Store, replicas)
	for i := range stores {
		stores[i] = replica(t, dsn, apikey.StoreConfig{})
	}
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(ctx)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "replica %d", i)
	}
	var n, latest int
	require.NoError(t, stores[0].Pool().QueryRow(ctx,
		`SELECT count(*), max(version) FROM apikey_schema_migrations`).Scan(&n, &latest))
	assert.Equal(t, pgstore.SchemaVersion(), n)
	assert.Equal(t, pgstore.SchemaVersion(), latest)
}

func TestConcurrentRollOneWins(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, apikey.StoreConfig{})
	other := replica(t, dsn, apikey.StoreConfig{})
	k, _, err := s.Create(ctx, apikey.KeySpec{Name: "contested"})
	require.NoError(t, err)

	const rollers = 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   []*apikey.Key
		losers []error
	)
	start := make(chan struct{})
	for i := range rollers {
		st := s
		if i%2 == 1 {
			st = other // half of them on another replica's pool
		}
		wg.Go(func() {
			<-start
			nk, _, err := st.Roll(ctx, k.ID, apikey.WithGrace(time.Hour))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins = append(wins, nk)
			} else {
				losers = append(losers, err)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Len(t, wins, 1, "exactly one roll succeeds")
	require.Len(t, losers, rollers-1)
	for _, err := range losers {
		assert.ErrorIs(t, err, apikey.ErrAlreadyRolled)
	}
	old, err := s.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, wins[0].ID, old.RolledTo)
	list, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.Len(t, list, 2, "one successor, not several")
}

func TestRecordUsageBatchIsOneStatement(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	counter, tweak := countQueries("unnest(")
	s := pgstore.New(newPool(t, dsn, tweak), apikey.StoreConfig{})
	require.NoError(t, s.Migrate(ctx))

	ids := createKeys(t, s, 1000)
	t0 := storetest.Epoch
	batch := make([]apikey.Usage, 0, len(ids)+1)
	for i, id := range ids {
		batch = append(batch, apikey.Usage{KeyID: id, Environment: apikey.EnvLive, Count: uint64(i + 1), LastUsed: t0.Add(time.Duration(i) * time.Second)})
	}
	batch = append(batch, apikey.Usage{KeyID: "key_unknown", Count: 5, LastUsed: t0})
	require.NoError(t, s.RecordUsage(ctx, batch))
	assert.EqualValues(t, 1, counter.n.Load(), "the batch of 1,000 keys is one statement")

	// An older batch adds counts but never moves last-used back; records
	// of one key in one batch are merged.
	require.NoError(t, s.RecordUsage(ctx, []apikey.Usage{
		{KeyID: ids[10], Count: 1, LastUsed: t0},
		{KeyID: ids[10], Count: 2, LastUsed: t0.Add(time.Hour)},
		{KeyID: ids[20], Count: 7, LastUsed: t0},
	}))
	tests := []struct {
		id       string
		requests uint64
		lastUsed time.Time
	}{
		{ids[0], 1, t0},
		{ids[10], 11 + 3, t0.Add(time.Hour)},
		{ids[20], 21 + 7, t0.Add(20 * time.Second)},
		{ids[999], 1000, t0.Add(999 * time.Second)},
	}
	for _, tt := range tests {
		k, err := s.Get(ctx, tt.id)
		require.NoError(t, err)
		assert.Equal(t, tt.requests, k.Requests, tt.id)
		assert.Equal(t, tt.lastUsed, k.LastUsedAt, tt.id)
	}
	totals, err := s.Totals(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.EqualValues(t, 1000*1001/2+3+7, totals.Live)
	assert.Zero(t, totals.Test)
}

// createKeys makes n keys quickly and returns their IDs.
func createKeys(t testing.TB, s *pgstore.Store, n int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				k, _, err := s.Create(ctx, apikey.KeySpec{Name: fmt.Sprintf("k%d", i)})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = k.ID
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return ids
}

func TestTimesAreMicrosecondsUTC(t *testing.T) {
	ctx := context.Background()
	local := time.FixedZone("UTC+3", 3*3600)
	now := time.Date(2026, 5, 6, 7, 8, 9, 123456789, local)
	s, _ := newStore(t, apikey.StoreConfig{Clock: apikey.ClockFunc(func() time.Time { return now })})
	k, _, err := s.Create(ctx, apikey.KeySpec{Name: "t", ExpiresAt: now.Add(time.Hour)})
	require.NoError(t, err)
	want := time.Date(2026, 5, 6, 4, 8, 9, 123456000, time.UTC)
	assert.Equal(t, want, k.CreatedAt, "returned as stored")
	got, err := s.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, want, got.CreatedAt)
	assert.Equal(t, want.Add(time.Hour), got.ExpiresAt)
	assert.Equal(t, k, got, "Create returns what Get returns")
}

func TestStoreFailuresAreNotNotFound(t *testing.T) {
	s, dsn := newStore(t, apikey.StoreConfig{})
	var h apikey.Hasher
	d := h.Digest("kg_live_whatever")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	closed := replica(t, dsn, apikey.StoreConfig{})
	closed.Pool().Close()

	tests := []struct {
		name  string
		store *pgstore.Store
		ctx   context.Context
	}{
		{"canceled context", s, canceled},
		{"closed pool", closed, context.Background()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.store.Lookup(tt.ctx, d)
			require.Error(t, err)
			assert.False(t, errors.Is(err, apikey.ErrNotFound), "a store failure, not an unknown key: %v", err)
			assert.True(t, isStoreFailure(err))
		})
	}
	_, err := s.Lookup(context.Background(), d)
	assert.ErrorIs(t, err, apikey.ErrNotFound, "the store itself works")
}

func TestAddAndDuplicates(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, apikey.StoreConfig{})
	var h apikey.Hasher
	d := h.Digest("kg_live_imported")
	k := &apikey.Key{ID: "key_imported", Name: "imported", Environment: apikey.EnvLive, CreatedAt: storetest.Epoch}
	require.NoError(t, s.Add(ctx, d, k))
	got, err := s.Lookup(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, k, got)

	assert.ErrorIs(t, s.Add(ctx, d, &apikey.Key{ID: "key_other", Name: "x", Environment: apikey.EnvLive, CreatedAt: storetest.Epoch}),
		apikey.ErrInvalid, "digest taken")
	assert.ErrorIs(t, s.Add(ctx, h.Digest("other"), k), apikey.ErrInvalid, "id taken")
	assert.ErrorIs(t, s.Add(ctx, d, &apikey.Key{}), apikey.ErrInvalid, "no id")
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, apikey.StoreConfig{})
	k, secret, err := s.Create(ctx, apikey.KeySpec{Name: "s"})
	require.NoError(t, err)
	other := pgstore.New(s.Pool(), apikey.StoreConfig{})
	// A duplicate digest is the one failure that involves a secret's
	// digest; neither the secret nor the digest appears in the error.
	var h apikey.Hasher
	err = other.Add(ctx, h.Digest(secret.Reveal()), &apikey.Key{ID: "key_dup", Name: "d", Environment: apikey.EnvLive, CreatedAt: storetest.Epoch})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret.Reveal())
	assert.NotContains(t, err.Error(), h.Digest(secret.Reveal()).String())
	assert.NotContains(t, fmt.Sprintf("%v %+v", k, secret), secret.Reveal())
}

// TestRecordUsageConcurrentReplicas: replicas flushing overlapping batches
// at once, in opposite orders, neither deadlock nor lose counts.
func TestRecordUsageConcurrentReplicas(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, apikey.StoreConfig{})
	ids := createKeys(t, s, 200)
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	stores := []*pgstore.Store{s, replica(t, dsn, apikey.StoreConfig{}), replica(t, dsn, apikey.StoreConfig{})}
	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*rounds)
	for i, st := range stores {
		order := ids
		if i%2 == 1 {
			order = reversed
		}
		batch := make([]apikey.Usage, len(order))
		for j, id := range order {
			batch[j] = apikey.Usage{KeyID: id, Count: 1, LastUsed: storetest.Epoch}
		}
		wg.Go(func() {
			for range rounds {
				errs <- st.RecordUsage(ctx, batch)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	totals, err := s.Totals(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.EqualValues(t, len(ids)*len(stores)*rounds, totals.Live)
}
