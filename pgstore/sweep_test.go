package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
	"github.com/keygate/apikey/storetest"
	"github.com/keygate/apikey/sweep"
)

const sweepDay = 24 * time.Hour

// managerOnly hides the store's Candidates: the sweep takes the generic
// path (List).
type managerOnly struct{ apikey.Manager }

// sweepKey is a key of the sweep tests, relative to the clock's time.
type sweepKey struct {
	name              string
	created, lastUsed time.Duration // ago; lastUsed 0: never used
	expiresIn         time.Duration // 0: never
	revoked, disabled bool
	rolled            bool // rolled a day ago, in its grace period
}

var sweepKeys = []sweepKey{
	{name: "expiring", created: 20 * sweepDay, lastUsed: sweepDay, expiresIn: 10 * sweepDay},
	{name: "expiring-later", created: 20 * sweepDay, lastUsed: sweepDay, expiresIn: 40 * sweepDay},
	{name: "unused-never", created: 100 * sweepDay},
	{name: "unused-old", created: 200 * sweepDay, lastUsed: 95 * sweepDay},
	{name: "used", created: 200 * sweepDay, lastUsed: sweepDay},
	{name: "too-old", created: 400 * sweepDay, lastUsed: sweepDay},
	{name: "disable", created: 500 * sweepDay, lastUsed: 370 * sweepDay},
	{name: "disable-later", created: 500 * sweepDay, lastUsed: 340 * sweepDay},
	{name: "revoked", created: 500 * sweepDay, revoked: true},
	{name: "disabled", created: 500 * sweepDay, disabled: true},
	{name: "expired", created: 500 * sweepDay, expiresIn: -sweepDay},
	{name: "rolled", created: 500 * sweepDay, expiresIn: sweepDay, rolled: true},
	{name: "new", created: sweepDay},
}

// addSweepKeys files sweepKeys in s, at the clock's time.
func addSweepKeys(t testing.TB, s interface {
	Add(context.Context, apikey.Digest, *apikey.Key) error
}, keys apikey.KeyConfig, now time.Time) {
	t.Helper()
	for i, sk := range sweepKeys {
		k := &apikey.Key{ID: fmt.Sprintf("key_sweep_%02d", i), Name: sk.name, Environment: apikey.EnvLive,
			Owner: "acct_1", CreatedAt: now.Add(-sk.created)}
		if sk.lastUsed > 0 {
			k.LastUsedAt, k.Requests = now.Add(-sk.lastUsed), 1
		}
		if sk.expiresIn != 0 {
			k.ExpiresAt = now.Add(sk.expiresIn)
		}
		if sk.revoked {
			k.RevokedAt = now.Add(-sweepDay)
		}
		if sk.rolled {
			k.RolledTo, k.RolledAt = "key_successor", now.Add(-sweepDay)
		}
		k.Disabled = sk.disabled
		require.NoError(t, s.Add(context.Background(), keys.Digest(k.ID), k))
	}
}

// recorder is an OnFinding that records "kind name" and fails for the
// names in failing.
type recorder struct {
	mu      sync.Mutex
	got     []string
	failing map[string]bool
}

func (r *recorder) hook(_ context.Context, f sweep.Finding) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing[f.Key.Name] {
		return errors.New("mail server down")
	}
	r.got = append(r.got, string(f.Kind)+" "+f.Key.Name)
	return nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	slices.Sort(out)
	return out
}

func sweepConfig(keys apikey.KeyConfig, hook func(context.Context, sweep.Finding) error) sweep.Config {
	return sweep.Config{
		Keys:               keys,
		ExpiringWithin:     14 * sweepDay,
		UnusedFor:          90 * sweepDay,
		MaxLifetime:        365 * sweepDay,
		DisableUnusedAfter: 365 * sweepDay,
		OnFinding:          hook,
		PageSize:           2,
	}
}

// TestSweepFastPathMatchesGeneric sweeps two databases holding the same
// keys, one through Store.Candidates, one through List, over a month, a
// failed notification included: the findings are the same.
func TestSweepFastPathMatchesGeneric(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	keys := testKeys(clock.Now)
	fastStore, _, _ := newStore(t, keys)
	slowStore, _, _ := newStore(t, keys)
	addSweepKeys(t, fastStore, keys, clock.Now())
	addSweepKeys(t, slowStore, keys, clock.Now())

	fastRec, slowRec := &recorder{}, &recorder{}
	fast, err := sweep.New(fastStore, sweepConfig(keys, fastRec.hook))
	require.NoError(t, err)
	slow, err := sweep.New(managerOnly{slowStore}, sweepConfig(keys, slowRec.hook))
	require.NoError(t, err)

	for _, step := range []struct {
		advance time.Duration
		failing string
		want    []string
	}{
		{0, "", []string{"disabled-unused disable", "expiring expiring", "too-old disable-later", "too-old too-old",
			"unused disable-later", "unused unused-never", "unused unused-old"}},
		{0, "", nil},
		{30 * sweepDay, "disable-later", []string{"expiring expiring-later"}},
		{0, "", []string{"disabled-unused disable-later"}}, // retried, through the disabled keys
		{60 * sweepDay, "", []string{"unused new", "unused too-old", "unused used"}},
		{sweepDay, "", nil},
	} {
		clock.Advance(step.advance)
		fastRec.failing = map[string]bool{step.failing: true}
		slowRec.failing = fastRec.failing
		fastRep, fastErr := fast.Run(ctx)
		slowRep, slowErr := slow.Run(ctx)
		if step.failing == "" {
			require.NoError(t, fastErr)
			require.NoError(t, slowErr)
		}
		got := fastRec.take()
		assert.Equal(t, step.want, got, "fast path, at %v", clock.Now())
		assert.Equal(t, got, slowRec.take(), "generic path, at %v", clock.Now())
		assert.Equal(t, slowRep.Findings, fastRep.Findings)
		assert.Equal(t, slowRep.Disabled, fastRep.Disabled)
		assert.Less(t, fastRep.Scanned, slowRep.Scanned, "the fast path reads fewer keys")
	}
	// Unused again after a use: the record in the key says for which use.
	k, err := fastStore.Get(ctx, "key_sweep_03")
	require.NoError(t, err)
	assert.Equal(t, k.LastUsedAt.Format(time.RFC3339Nano)+" key_sweep_03", k.Metadata["sweep.unused"])
}

// TestSweepCandidatesPages: the pages of Candidates hold every matching
// key once, in ID order, and no key that matches nothing.
func TestSweepCandidatesPages(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	keys := testKeys(clock.Now)
	s, _, _ := newStore(t, keys)
	addSweepKeys(t, s, keys, clock.Now())
	now := clock.Now()
	q := sweep.Query{ExpiringBefore: now.Add(14 * sweepDay), UnusedSince: now.Add(-90 * sweepDay),
		CreatedBefore: now.Add(-365 * sweepDay), Limit: 2}
	var names []string
	for {
		page, err := s.Candidates(ctx, q)
		require.NoError(t, err)
		for i, k := range page {
			names = append(names, k.Name)
			if i > 0 {
				assert.Less(t, page[i-1].ID, k.ID)
			}
		}
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1].ID
	}
	// IDs are key_sweep_NN in sweepKeys's order: every matching key once,
	// in ID order across the pages.
	assert.Equal(t, []string{"expiring", "unused-never", "unused-old", "too-old", "disable", "disable-later"}, names)

	all, err := s.Candidates(ctx, sweep.Query{ExpiringBefore: now.Add(14 * sweepDay)})
	require.NoError(t, err)
	require.Len(t, all, 1, "Limit 0: all")
	none, err := s.Candidates(ctx, sweep.Query{})
	require.NoError(t, err)
	assert.Empty(t, none)
	_, err = s.Candidates(ctx, sweep.Query{Limit: -1})
	require.ErrorIs(t, err, apikey.ErrInvalid)
}

// TestSweepReplicas: sweepers on two replicas at once deliver each finding
// once in total, and the disabled key is refused by the middleware.
func TestSweepReplicas(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	keys := testKeys(clock.Now)
	s, _, dsn := newStore(t, keys)
	addSweepKeys(t, s, keys, clock.Now())
	rec := &recorder{}
	var wg sync.WaitGroup
	for i := range 4 {
		var m apikey.Manager = replica(t, dsn, keys)
		if i%2 == 1 {
			m = managerOnly{m}
		}
		sw, err := sweep.New(m, sweepConfig(keys, rec.hook))
		require.NoError(t, err)
		wg.Go(func() {
			_, err := sw.Run(ctx)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, []string{"disabled-unused disable", "expiring expiring", "too-old disable-later", "too-old too-old",
		"unused disable-later", "unused unused-never", "unused unused-old"}, rec.take())
	k, err := s.Get(ctx, "key_sweep_06")
	require.NoError(t, err)
	assert.Equal(t, apikey.StateDisabled, k.State(clock.Now()))
}

// argsTracer keeps the statement and arguments of the last query that
// contains match.
type argsTracer struct {
	match string
	mu    sync.Mutex
	sql   string
	args  []any
}

func (a *argsTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, a.match) {
		a.mu.Lock()
		a.sql, a.args = d.SQL, d.Args
		a.mu.Unlock()
	}
	return ctx
}

func (a *argsTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// BenchmarkSweepCandidates1M: Store.Candidates at 1,000,000 keys, of
// which about 3% match (1% expire within the window, 1% were last used
// long ago, 0.75% never used and older than the window, 0.14% too old):
// the first page of 1,000, and every page (a whole fast-path sweep's
// reads). It prints the plan, and fails unless it uses the indexes of
// schema version 5. The keys are loaded in one statement with the logging
// trigger off.
func BenchmarkSweepCandidates1M(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys := testKeys(func() time.Time { return now })
	dsn := pgtest.Database(b)
	tracer := &argsTracer{match: "WITH c AS"}
	s := newStoreOn(b, newPool(b, dsn, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tracer }), keys)
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	pool := newPool(b, dsn, nil)
	for _, sql := range []string{
		`ALTER TABLE apikey_keys DISABLE TRIGGER apikey_keys_log_insert`,
		// Created every 30 s over the year before now; 1 in 50 expires
		// within the next 28 days.
		fmt.Sprintf(`INSERT INTO apikey_keys (id, digest, name, environment, owner, scopes, created_at, expires_at)
		SELECT 'key_' || lpad(g::text, 8, '0'), sha256(g::text::bytea), 'Production Backend', 'live',
			'acct_' || (g %% 20000), '{read}', timestamptz '2025-01-01Z' + g * interval '30 seconds',
			CASE WHEN g %% 50 = 0 THEN timestamptz '2026-01-01Z' + (g %% 28 + 1) * interval '1 day' END
		FROM generate_series(1, %d) g`, n),
		`ALTER TABLE apikey_keys ENABLE TRIGGER apikey_keys_log_insert`,
		// 1 in 100 never used; 1 in 100 last used 200 days ago; the others
		// within the last 30 days.
		// (Every key has its usage row from creation on, never used.)
		`UPDATE apikey_usage SET requests = 10, last_used_at = t, idle_since = t
		FROM (SELECT id, CASE WHEN right(id, 2) = '01' THEN timestamptz '2026-01-01Z' - interval '200 days'
			ELSE timestamptz '2026-01-01Z' - (right(id, 1)::int + 1) * interval '1 day' END AS t
			FROM apikey_keys WHERE right(id, 2) <> '00') u
		WHERE apikey_usage.key_id = u.id`,
		`VACUUM ANALYZE apikey_keys`,
		`VACUUM ANALYZE apikey_usage`, // as autovacuum would after the update
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	q := sweep.Query{
		ExpiringBefore: now.Add(14 * sweepDay),
		UnusedSince:    now.Add(-90 * sweepDay),
		CreatedBefore:  now.Add(-360 * sweepDay),
		Limit:          1000,
	}
	if _, err := s.Candidates(ctx, q); err != nil {
		b.Fatal(err)
	}
	tracer.mu.Lock()
	sql, args := tracer.sql, tracer.args
	tracer.mu.Unlock()
	var plan []string
	rows, err := pool.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	b.Logf("EXPLAIN of a page of Candidates:\n%s", strings.Join(plan, "\n"))
	for _, index := range []string{"apikey_keys_expires_idx", "apikey_usage_idle_idx"} {
		if !strings.Contains(strings.Join(plan, "\n"), index) {
			b.Errorf("the plan does not use %s", index)
		}
	}
	if strings.Contains(strings.Join(plan, "\n"), "Seq Scan") {
		b.Error("the plan reads a table whole (Seq Scan)")
	}

	b.Run("pages=one", func(b *testing.B) { // Limit 0: every candidate in one query
		q := q
		q.Limit = 0
		for b.Loop() {
			all, err := s.Candidates(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(all)), "candidates")
		}
	})
	b.Run("page=first", func(b *testing.B) {
		for b.Loop() {
			page, err := s.Candidates(ctx, q)
			if err != nil || len(page) != q.Limit {
				b.Fatalf("Candidates: %d keys, %v", len(page), err)
			}
		}
	})
	b.Run("pages=all", func(b *testing.B) {
		total := 0
		for b.Loop() {
			q := q
			total = 0
			for {
				page, err := s.Candidates(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				total += len(page)
				if len(page) < q.Limit {
					break
				}
				q.After = page[len(page)-1].ID
			}
		}
		b.ReportMetric(float64(total), "candidates")
	})
}
