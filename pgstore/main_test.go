package pgstore_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
	"github.com/keygate/apikey/storetest"
)

// TestMain starts one throwaway PostgreSQL server for the package (or uses
// APIKEY_TEST_DATABASE_URL) and removes it at the end. Tests do not run in
// parallel: some stop and restart the server.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// newPool connects a pool to dsn, closed when the test ends. tweak, if not
// nil, adjusts the configuration first.
func newPool(t testing.TB, dsn string, tweak func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	if tweak != nil {
		tweak(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// testKeys returns the KeyConfig of the tests: the default format, the
// scopes of the storetest suite, and clock (nil: time.Now).
func testKeys(clock func() time.Time) apikey.KeyConfig {
	return apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: storetest.Scopes, Clock: clock}
}

// newStoreOn returns a store on pool, not migrated.
func newStoreOn(t testing.TB, pool *pgxpool.Pool, keys apikey.KeyConfig) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(pool, pgstore.Config{Keys: keys})
	require.NoError(t, err)
	return s
}

// newStore returns a migrated store on a fresh database, its pool, and the
// database's DSN for more pools (more replicas).
func newStore(t testing.TB, keys apikey.KeyConfig) (*pgstore.Store, *pgxpool.Pool, string) {
	t.Helper()
	dsn := pgtest.Database(t)
	pool := newPool(t, dsn, nil)
	s := newStoreOn(t, pool, keys)
	require.NoError(t, s.Migrate(context.Background()))
	return s, pool, dsn
}

// replica returns another store on the database, through a pool of its
// own, as another server process would have.
func replica(t testing.TB, dsn string, keys apikey.KeyConfig) *pgstore.Store {
	t.Helper()
	return newStoreOn(t, newPool(t, dsn, nil), keys)
}

// listener runs s.Listen until the test ends (or stop is called) and
// delivers invalidations on a channel.
type listener struct {
	C      chan pgstore.Invalidation
	synced chan time.Time // the latest OnSync, when nobody took it yet
	gaps   atomic.Int64   // OnGap calls
	stop   context.CancelFunc
	done   chan error
}

// startListener runs s.Listen with cfg, whose functions it wraps to
// observe the listener (cfg.OnInvalidate may be nil here), and waits until
// it has read the log once.
func startListener(t testing.TB, s *pgstore.Store, cfg pgstore.ListenConfig) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		C:      make(chan pgstore.Invalidation, 1024),
		synced: make(chan time.Time, 1),
		stop:   cancel,
		done:   make(chan error, 1),
	}
	onInv, onSync, onGap, onError := cfg.OnInvalidate, cfg.OnSync, cfg.OnGap, cfg.OnError
	cfg.OnInvalidate = func(inv pgstore.Invalidation) {
		if onInv != nil {
			onInv(inv)
		}
		select {
		case l.C <- inv:
		default:
		}
	}
	cfg.OnSync = func(asOf time.Time) {
		if onSync != nil {
			onSync(asOf)
		}
		select {
		case <-l.synced: // replace an older one nobody took
		default:
		}
		l.synced <- asOf
	}
	cfg.OnGap = func() {
		if onGap != nil {
			onGap()
		}
		l.gaps.Add(1)
	}
	cfg.OnError = func(err error) {
		t.Logf("listener: %v", err)
		if onError != nil {
			onError(err)
		}
	}
	go func() { l.done <- s.Listen(ctx, cfg) }()
	t.Cleanup(func() { l.Stop(t) })
	l.WaitSynced(t)
	return l
}

// WaitSynced waits for a read of the log that starts after the call: once
// it returns, every change committed before the call has been delivered.
func (l *listener) WaitSynced(t testing.TB) {
	t.Helper()
	since := time.Now()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case asOf := <-l.synced:
			if !asOf.Before(since) {
				return
			}
		case <-deadline:
			t.Fatal("the listener did not read the log within 20 s")
		}
	}
}

// Stop cancels Listen and waits for it to return; it may be called twice.
func (l *listener) Stop(t testing.TB) {
	t.Helper()
	l.stop()
	select {
	case err, ok := <-l.done:
		if ok {
			require.ErrorIs(t, err, context.Canceled, "Listen returns ctx's error")
			close(l.done)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return within 5 s of cancellation")
	}
}

// next waits for an invalidation of the key id, skipping others.
func (l *listener) next(t testing.TB, id string, within time.Duration) pgstore.Invalidation {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case inv := <-l.C:
			if inv.KeyID == id {
				return inv
			}
		case <-deadline:
			t.Fatalf("no invalidation of %s within %v", id, within)
		}
	}
}

// goroutines returns a function that checks, when the test is done with
// everything it started, that the goroutine count settles back to what it
// is now. (It polls by itself: require.Eventually runs its condition on a
// goroutine of its own.)
func goroutines(t testing.TB) func() {
	base := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines, %d at the start:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// queryCounter is a pgx tracer that counts the statements a pool sends,
// by the text they contain.
type queryCounter struct {
	match string
	n     atomic.Int64
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, q.match) {
		q.n.Add(1)
	}
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countQueries returns a pool tweak that installs a counter of the
// statements containing match.
func countQueries(match string) (*queryCounter, func(*pgxpool.Config)) {
	q := &queryCounter{match: match}
	return q, func(c *pgxpool.Config) { c.ConnConfig.Tracer = q }
}

// isStoreFailure reports whether err is what the middleware turns into 503.
func isStoreFailure(err error) bool {
	return err != nil && !errors.Is(err, apikey.ErrNotFound)
}

// usageTotals sums the recorded requests of every key, live and test
// apart, as a quota would count them.
func usageTotals(t testing.TB, s *pgstore.Store) (live, test uint64) {
	t.Helper()
	list, err := s.List(context.Background(), apikey.Filter{})
	require.NoError(t, err)
	for _, k := range list {
		switch k.Environment {
		case apikey.EnvLive:
			live += k.Requests
		case apikey.EnvTest:
			test += k.Requests
		}
	}
	return live, test
}
