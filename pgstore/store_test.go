package pgstore_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
	"github.com/keygate/apikey/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, keys apikey.KeyConfig) apikey.KeyStore {
		s, _, _ := newStore(t, keys)
		return s
	})
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, pool, _ := newStore(t, testKeys(nil)) // migrated once
	require.NoError(t, s.Migrate(ctx), "twice is a no-op")
	require.NoError(t, s.Migrate(ctx), "three times too")

	var versions []int
	rows, err := pool.Query(ctx, `SELECT version FROM apikey_schema_migrations ORDER BY version`)
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

// A database at schema version 1, with a rolled key and usage: version 2
// records each roll's time as its successor's creation, so the rolled key
// stays retired whatever the clock does; version 3 moves the usage out of
// the keys table and logs every later change, plain SQL included.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	pool := newPool(t, dsn, nil)
	v1, err := pgstore.Migrations.ReadFile("migrations/0001_keys.up.sql")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, string(v1)+`;
		CREATE TABLE apikey_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO apikey_schema_migrations (version) VALUES (1);
		INSERT INTO apikey_keys (id, digest, name, environment, created_at, expires_at, rolled_to, requests, last_used_at) VALUES
			('key_old', '\x01', 'old', 'live', '2026-01-01Z', '2026-01-03Z', 'key_next', 7, '2026-01-02Z'),
			('key_next', '\x02', 'old', 'live', '2026-01-02Z', NULL, NULL, 0, NULL),
			('key_plain', '\x03', 'plain', 'test', '2026-01-01Z', NULL, NULL, 0, NULL)`)
	require.NoError(t, err)

	s := newStoreOn(t, pool, testKeys(nil))
	require.NoError(t, s.Migrate(ctx))
	next := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	got, err := s.Get(ctx, "key_old")
	require.NoError(t, err)
	assert.True(t, got.RolledAt.Equal(next), "rolled_at %v, want the successor's creation %v", got.RolledAt, next)
	assert.Equal(t, apikey.StateRolled, got.State(next.Add(-time.Hour)), "retired even with the clock far back")
	assert.EqualValues(t, 7, got.Requests, "usage moved to apikey_usage")
	assert.True(t, got.LastUsedAt.Equal(next))
	got, err = s.Get(ctx, "key_plain")
	require.NoError(t, err)
	assert.True(t, got.RolledAt.IsZero())
	assert.Zero(t, got.Requests)

	_, err = pool.Exec(ctx, `UPDATE apikey_keys SET revoked_at = now() WHERE id = 'key_plain'`)
	require.NoError(t, err)
	var logged int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM apikey_invalidations WHERE key_id = 'key_plain'`).Scan(&logged))
	assert.Equal(t, 1, logged, "a plain SQL change is logged")
}

// A database at schema version 5, with roll chains: version 6 adds the
// limits (none) and gives each successor made before it the first key of
// its chain as its lineage, which the successors it rolls to keep.
func TestMigrateFromVersion5(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	pool := newPool(t, dsn, nil)
	files, err := fs.Glob(pgstore.Migrations, "migrations/*.up.sql")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 6)
	_, err = pool.Exec(ctx, `CREATE TABLE apikey_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	for v, f := range files[:5] {
		b, err := pgstore.Migrations.ReadFile(f)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, string(b)+fmt.Sprintf(";\nINSERT INTO apikey_schema_migrations (version) VALUES (%d)", v+1))
		require.NoError(t, err, f)
	}
	_, err = pool.Exec(ctx, `INSERT INTO apikey_keys (id, digest, name, environment, created_at, expires_at, rolled_from, rolled_to, rolled_at) VALUES
		('key_a', '\x01', 'chain', 'live', '2026-01-01Z', '2026-01-02Z', NULL, 'key_b', '2026-01-01Z'),
		('key_b', '\x02', 'chain', 'live', '2026-01-01Z', '2026-01-03Z', 'key_a', 'key_c', '2026-01-02Z'),
		('key_c', '\x03', 'chain', 'live', '2026-01-02Z', NULL, 'key_b', NULL, NULL),
		('key_orphan', '\x04', 'orphan', 'live', '2026-01-01Z', NULL, 'key_gone', NULL, NULL),
		('key_x', '\x05', 'loop', 'live', '2026-01-01Z', NULL, 'key_y', NULL, NULL),
		('key_y', '\x06', 'loop', 'live', '2026-01-01Z', NULL, 'key_x', NULL, NULL),
		('key_plain', '\x07', 'plain', 'test', '2026-01-01Z', NULL, NULL, NULL, NULL)`)
	require.NoError(t, err)

	s := newStoreOn(t, pool, testKeys(nil))
	require.NoError(t, s.Migrate(ctx))
	for id, want := range map[string]string{
		"key_a":      "",
		"key_b":      "key_a",
		"key_c":      "key_a",
		"key_orphan": "key_gone", // its first key is gone, but was the first
		"key_x":      "",         // a loop has no first key
		"key_y":      "",
		"key_plain":  "",
	} {
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, got.Lineage, "lineage of %s", id)
		assert.Nil(t, got.Limits, "limits of %s", id)
	}
	next, _, err := s.Roll(ctx, "key_c", 0)
	require.NoError(t, err)
	assert.Equal(t, "key_a", next.Lineage, "a successor rolled from a migrated key")
	got, err := s.Get(ctx, next.ID)
	require.NoError(t, err)
	assert.Equal(t, "key_a", got.Lineage)
}

// The migration files run unchanged with psql, for teams that migrate
// with their own tools, and give the schema Migrate gives.
func TestMigrationsRunWithPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
		if len(matches) == 0 {
			t.Skip("psql not found")
		}
		psql = matches[len(matches)-1]
	}
	ctx := context.Background()
	dsn := pgtest.Database(t)
	files, err := fs.Glob(pgstore.Migrations, "migrations/*.up.sql")
	require.NoError(t, err)
	require.Len(t, files, pgstore.SchemaVersion())
	for _, f := range files {
		b, err := pgstore.Migrations.ReadFile(f)
		require.NoError(t, err)
		cmd := exec.CommandContext(ctx, psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-", dsn)
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", f, out)
	}
	s := newStoreOn(t, newPool(t, dsn, nil), testKeys(nil))
	l := startListener(t, s, pgstore.ListenConfig{})
	k, _, err := s.Create(ctx, apikey.KeySpec{Name: "psql"})
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, k.ID))
	l.next(t, k.ID, time.Second)
	l.next(t, k.ID, time.Second)
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	const replicas = 4
	stores := make([]*pgstore.Store, replicas)
	for i := range stores {
		stores[i] = replica(t, dsn, testKeys(nil))
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
	require.NoError(t, newPool(t, dsn, nil).QueryRow(ctx,
		`SELECT count(*), max(version) FROM apikey_schema_migrations`).Scan(&n, &latest))
	assert.Equal(t, pgstore.SchemaVersion(), n)
	assert.Equal(t, pgstore.SchemaVersion(), latest)
}

func TestConcurrentRollOneWins(t *testing.T) {
	ctx := context.Background()
	s, _, dsn := newStore(t, testKeys(nil))
	other := replica(t, dsn, testKeys(nil))
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
			nk, _, err := st.Roll(ctx, k.ID, time.Hour)
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
	s := newStoreOn(t, newPool(t, dsn, tweak), testKeys(nil))
	require.NoError(t, s.Migrate(ctx))

	ids := createKeys(t, s, 1000)
	t0 := storetest.Epoch
	batch := make([]apikey.Usage, 0, len(ids)+1)
	for i, id := range ids {
		batch = append(batch, apikey.Usage{KeyID: id, Environment: apikey.EnvLive, Count: uint64(i + 1), LastUsed: t0.Add(time.Duration(i) * time.Second)})
	}
	batch = append(batch, apikey.Usage{KeyID: "key_unknown", Count: 5, LastUsed: t0})
	require.NoError(t, s.RecordUsage(ctx, "", batch))
	assert.EqualValues(t, 1, counter.n.Load(), "the batch of 1,000 keys is one statement")

	// An older batch adds counts but never moves last-used back; records
	// of one key in one batch are merged.
	require.NoError(t, s.RecordUsage(ctx, "", []apikey.Usage{
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
	live, test := usageTotals(t, s)
	assert.EqualValues(t, 1000*1001/2+3+7, live)
	assert.Zero(t, test)
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
	s, _, _ := newStore(t, testKeys(func() time.Time { return now }))
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
	keys := testKeys(nil)
	s, _, dsn := newStore(t, keys)
	d := keys.Digest("kg_live_whatever")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	closedPool := newPool(t, dsn, nil)
	closed := newStoreOn(t, closedPool, keys)
	closedPool.Close()

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
	keys := testKeys(nil)
	s, _, _ := newStore(t, keys)
	d := keys.Digest("kg_live_imported")
	k := &apikey.Key{ID: "key_imported", Name: "imported", Environment: apikey.EnvLive, CreatedAt: storetest.Epoch}
	require.NoError(t, s.Add(ctx, d, k))
	got, err := s.Lookup(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, k, got)

	assert.ErrorIs(t, s.Add(ctx, d, &apikey.Key{ID: "key_other", Name: "x", Environment: apikey.EnvLive, CreatedAt: storetest.Epoch}),
		apikey.ErrInvalid, "digest taken")
	assert.ErrorIs(t, s.Add(ctx, keys.Digest("other"), k), apikey.ErrInvalid, "id taken")
	assert.ErrorIs(t, s.Add(ctx, keys.Digest("another"), &apikey.Key{}), apikey.ErrInvalid, "no id")
	assert.ErrorIs(t, s.Add(ctx, keys.Digest("another"), nil), apikey.ErrInvalid, "no key")
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	s, pool, _ := newStore(t, keys)
	k, secret, err := s.Create(ctx, apikey.KeySpec{Name: "s"})
	require.NoError(t, err)
	other := newStoreOn(t, pool, keys)
	// A duplicate digest is the one failure that involves a secret's
	// digest; neither the secret nor the digest appears in the error.
	err = other.Add(ctx, keys.Digest(secret.Reveal()), &apikey.Key{ID: "key_dup", Name: "d", Environment: apikey.EnvLive, CreatedAt: storetest.Epoch})
	require.ErrorIs(t, err, apikey.ErrInvalid)
	assert.NotContains(t, err.Error(), secret.Reveal())
	d := keys.Digest(secret.Reveal())
	assert.NotContains(t, err.Error(), hex.EncodeToString(d[:]))
	assert.NotContains(t, fmt.Sprintf("%v %+v", k, secret), secret.Reveal())
}

// TestRecordUsageConcurrentReplicas: replicas flushing overlapping batches
// at once, in opposite orders, neither deadlock nor lose counts.
func TestRecordUsageConcurrentReplicas(t *testing.T) {
	ctx := context.Background()
	s, _, dsn := newStore(t, testKeys(nil))
	ids := createKeys(t, s, 200)
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	stores := []*pgstore.Store{s, replica(t, dsn, testKeys(nil)), replica(t, dsn, testKeys(nil))}
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
				errs <- st.RecordUsage(ctx, "", batch)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	live, _ := usageTotals(t, s)
	assert.EqualValues(t, len(ids)*len(stores)*rounds, live)
}

func TestNewChecksConfig(t *testing.T) {
	// The pool connects lazily: nothing here needs a server.
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/none?sslmode=disable")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	keys := testKeys(nil)
	tests := []struct {
		name  string
		pool  *pgxpool.Pool
		cfg   pgstore.Config
		field string // the error names it; "" for no error
	}{
		{"valid", pool, pgstore.Config{Keys: keys}, ""},
		{"valid with a timeout", pool, pgstore.Config{Keys: keys, LookupTimeout: time.Second}, ""},
		{"nil pool", nil, pgstore.Config{Keys: keys}, "pool"},
		{"zero Keys", pool, pgstore.Config{}, "Config.Keys"},
		{"nil format", pool, pgstore.Config{Keys: apikey.KeyConfig{Formats: []*apikey.Format{nil}}}, "Config.Keys"},
		{"zero pepper", pool, pgstore.Config{Keys: apikey.KeyConfig{Formats: keys.Formats, Peppers: []apikey.Pepper{{}}}}, "Config.Keys"},
		{"negative LookupTimeout", pool, pgstore.Config{Keys: keys, LookupTimeout: -time.Second}, "Config.LookupTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pgstore.New(tt.pool, tt.cfg)
			if tt.field == "" {
				require.NoError(t, err)
				assert.NotNil(t, s)
				return
			}
			require.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), tt.field, "the error names the field to change")
			assert.Nil(t, s)
		})
	}
}

// TestLookupTimeout: a Lookup that the database does not answer (its
// table is locked by another transaction) ends at Config.LookupTimeout,
// its default included, as a store failure wrapping
// context.DeadlineExceeded, which the middleware answers with 503.
func TestLookupTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration // configured
		want    time.Duration // at least this long
	}{
		{"configured", 100 * time.Millisecond, 100 * time.Millisecond},
		{"default", 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			keys := testKeys(nil)
			dsn := pgtest.Database(t)
			pool := newPool(t, dsn, nil)
			s, err := pgstore.New(pool, pgstore.Config{Keys: keys, LookupTimeout: tt.timeout})
			require.NoError(t, err)
			require.NoError(t, s.Migrate(ctx))
			_, secret, err := s.Create(ctx, apikey.KeySpec{Name: "blocked", Scopes: []apikey.Scope{"read"}})
			require.NoError(t, err)

			tx, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(ctx) }()
			_, err = tx.Exec(ctx, `LOCK TABLE apikey_keys IN ACCESS EXCLUSIVE MODE`)
			require.NoError(t, err)

			start := time.Now()
			_, err = s.Lookup(ctx, keys.Digest(secret.Reveal()))
			elapsed := time.Since(start)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.True(t, isStoreFailure(err), "a store failure, not an unknown key: %v", err)
			assert.GreaterOrEqual(t, elapsed, tt.want, "the lookup waited for its deadline")

			if tt.timeout != 0 {
				mw, err := apikey.New(apikey.Config{Keys: keys, Store: s})
				require.NoError(t, err)
				_, err = mw.Verify(ctx, secret.Reveal())
				var ae apikey.AuthError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, apikey.ReasonStoreFailure, ae.Reason)
				assert.Equal(t, http.StatusServiceUnavailable, ae.Reason.Status())
				assert.ErrorIs(t, ae.Err, context.DeadlineExceeded)
			}

			require.NoError(t, tx.Rollback(ctx))
			k, err := s.Lookup(ctx, keys.Digest(secret.Reveal()))
			require.NoError(t, err, "the store answers again once the lock is gone")
			assert.Equal(t, "blocked", k.Name)
		})
	}
}

// TestListUnknownState: a Filter state that Key.State never returns
// matches no key, as apikey.Filter.Match says; it does not match all.
func TestListUnknownState(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, testKeys(nil))
	_, _, err := s.Create(ctx, apikey.KeySpec{Name: "a"})
	require.NoError(t, err)
	all, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 1)
	none, err := s.List(ctx, apikey.Filter{State: apikey.StateRolled + 1})
	require.NoError(t, err)
	assert.Empty(t, none)
}

// A flush retried under the same id adds nothing: the case where the first
// attempt committed although its caller gave up. Even when the two
// attempts race, the second waits for the first and adds nothing.
func TestRecordUsageFlushIsAppliedOnce(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, testKeys(nil))
	ids := createKeys(t, s, 3)
	batch := []apikey.Usage{
		{KeyID: ids[0], Environment: apikey.EnvLive, Count: 5, LastUsed: storetest.Epoch},
		{KeyID: ids[1], Environment: apikey.EnvLive, Count: 2, LastUsed: storetest.Epoch},
	}
	require.NoError(t, s.RecordUsage(ctx, "flush-1", batch))
	require.NoError(t, s.RecordUsage(ctx, "flush-1", batch), "a retry succeeds")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { assert.NoError(t, s.RecordUsage(ctx, "flush-2", batch[:1])) })
	}
	wg.Wait()
	require.NoError(t, s.RecordUsage(ctx, "", batch[1:]), "no id: always applied")
	require.NoError(t, s.RecordUsage(ctx, "", batch[1:]), "no id: always applied")
	for _, tt := range []struct {
		id   string
		want uint64
	}{{ids[0], 5 + 5}, {ids[1], 2 + 2 + 2}, {ids[2], 0}} {
		k, err := s.Get(ctx, tt.id)
		require.NoError(t, err)
		assert.Equal(t, tt.want, k.Requests, tt.id)
	}
}

// Usage never waits on a key: with another session holding every key's
// row lock (a long management transaction), a flush completes; and a
// revocation never waits on the usage tables.
func TestUsageAndRevocationDoNotWaitForEachOther(t *testing.T) {
	ctx := context.Background()
	s, pool, _ := newStore(t, testKeys(nil))
	ids := createKeys(t, s, 50)
	batch := make([]apikey.Usage, len(ids))
	for i, id := range ids {
		batch[i] = apikey.Usage{KeyID: id, Environment: apikey.EnvLive, Count: 1, LastUsed: storetest.Epoch}
	}
	require.NoError(t, s.RecordUsage(ctx, "", batch)) // rows in apikey_usage

	hold := func(sql string) func() {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, sql)
		require.NoError(t, err)
		return func() { require.NoError(t, tx.Rollback(ctx)) }
	}
	release := hold(`SELECT id FROM apikey_keys FOR UPDATE`)
	short, cancel := context.WithTimeout(ctx, time.Second)
	start := time.Now()
	err := s.RecordUsage(short, "", batch)
	cancel()
	require.NoError(t, err, "a flush while every key's row is locked")
	t.Logf("flush of %d keys with their rows locked: %v", len(ids), time.Since(start))
	release()

	release = hold(`SELECT key_id FROM apikey_usage FOR UPDATE; LOCK TABLE apikey_usage_deltas IN ACCESS EXCLUSIVE MODE`)
	short, cancel = context.WithTimeout(ctx, time.Second)
	start = time.Now()
	err = s.Revoke(short, ids[0])
	cancel()
	require.NoError(t, err, "a revocation while the usage tables are locked")
	t.Logf("revocation with the usage tables locked: %v", time.Since(start))
	release()

	k, err := s.Get(ctx, ids[1])
	require.NoError(t, err)
	assert.EqualValues(t, 2, k.Requests)
}
