package pgstore_test

import (
	"context"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
)

func TestParseInvalidation(t *testing.T) {
	d := testKeys(nil).Digest("kg_live_x")
	tests := []struct {
		name    string
		payload string
		want    pgstore.Invalidation
		wantErr bool
	}{
		{"valid", "key_abc:" + hex.EncodeToString(d[:]), pgstore.Invalidation{KeyID: "key_abc", Digest: d}, false},
		{"upper-case hex", "key_abc:" + strings.ToUpper(hex.EncodeToString(d[:])), pgstore.Invalidation{KeyID: "key_abc", Digest: d}, false},
		{"id with colons", "legacy:42:x:" + hex.EncodeToString(d[:]), pgstore.Invalidation{KeyID: "legacy:42:x", Digest: d}, false},
		{"digest one character short", "key_abc:" + hex.EncodeToString(d[:])[1:], pgstore.Invalidation{}, true},
		{"no separator before the digest", "key_abc" + hex.EncodeToString(d[:]), pgstore.Invalidation{}, true},
		{"no separator", "key_abc", pgstore.Invalidation{}, true},
		{"no id", ":" + hex.EncodeToString(d[:]), pgstore.Invalidation{}, true},
		{"short digest", "key_abc:abcd", pgstore.Invalidation{}, true},
		{"not hex", "key_abc:" + strings.Repeat("z", 64), pgstore.Invalidation{}, true},
		{"empty", "", pgstore.Invalidation{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pgstore.ParseInvalidation(tt.payload)
			if tt.wantErr {
				assert.ErrorIs(t, err, apikey.ErrInvalid)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.want.KeyID+":"+hex.EncodeToString(d[:]), got.String())
		})
	}
}

// An imported key whose ID holds ':' is invalidated on every replica like
// any other: the payload is split at the digest's fixed length.
func TestListenImportedIDWithColon(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	a, _, dsn := newStore(t, keys)
	b := replica(t, dsn, keys)
	l := startListener(t, b, pgstore.ListenConfig{})
	const legacy = "lg_0123456789abcdef0123456789abcdef"
	d := keys.Digest(legacy)
	require.NoError(t, a.Add(ctx, d, &apikey.Key{ID: "legacy:42", Name: "imported", Environment: apikey.EnvLive, CreatedAt: time.Now()}))
	require.NoError(t, a.Revoke(ctx, "legacy:42"))
	inv := l.next(t, "legacy:42", time.Second)
	assert.Equal(t, d, inv.Digest)
}

// TestListenAcrossReplicas: a change made through one pool reaches a
// listener on another pool within a second, for each kind of change.
func TestListenAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	a, _, dsn := newStore(t, keys)
	b := replica(t, dsn, keys)
	l := startListener(t, b, pgstore.ListenConfig{})
	create := func(name string) (*apikey.Key, apikey.Secret) {
		k, secret, err := a.Create(ctx, apikey.KeySpec{Name: name})
		require.NoError(t, err)
		// A new key is announced too (a replica may hold a "not found"
		// for an imported key's digest).
		assert.Equal(t, keys.Digest(secret.Reveal()), l.next(t, k.ID, time.Second).Digest, "creation of %s", name)
		return k, secret
	}

	k, secret := create("revoked")
	start := time.Now()
	require.NoError(t, a.Revoke(ctx, k.ID))
	inv := l.next(t, k.ID, time.Second)
	t.Logf("revoke → invalidation on another pool: %v", time.Since(start))
	assert.Equal(t, keys.Digest(secret.Reveal()), inv.Digest)

	r, rsecret := create("rolled")
	_, _, err := a.Roll(ctx, r.ID, 24*time.Hour)
	require.NoError(t, err)
	inv = l.next(t, r.ID, time.Second)
	assert.Equal(t, keys.Digest(rsecret.Reveal()), inv.Digest, "the old key's digest")

	p, psecret := create("rehashed")
	pepper, err := apikey.NewPepper("p1", []byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	peppered := keys
	peppered.Peppers = []apikey.Pepper{pepper}
	require.NoError(t, a.Rehash(ctx, p.ID, peppered.Digest(psecret.Reveal()), "p1"))
	got := map[apikey.Digest]bool{
		l.next(t, p.ID, time.Second).Digest: true,
		l.next(t, p.ID, time.Second).Digest: true,
	}
	assert.Equal(t, map[apikey.Digest]bool{keys.Digest(psecret.Reveal()): true, peppered.Digest(psecret.Reveal()): true}, got,
		"rehash invalidates the old and the new digest")

	// A failed change publishes nothing: the log row is part of the
	// transaction.
	_, _, err = a.Roll(ctx, k.ID, 24*time.Hour)
	require.ErrorIs(t, err, apikey.ErrRevoked)
	select {
	case inv := <-l.C:
		t.Fatalf("unexpected invalidation %v", inv)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestListenPlainSQL: a change made with plain SQL, not through the Go
// API (the natural move during an incident), reaches the replicas like any
// other: the triggers log it.
func TestListenPlainSQL(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	a, pool, _ := newStore(t, keys)
	l := startListener(t, a, pgstore.ListenConfig{})
	k, secret, err := a.Create(ctx, apikey.KeySpec{Name: "incident"})
	require.NoError(t, err)
	l.next(t, k.ID, time.Second)
	tests := []struct{ name, sql string }{
		{"revoke", `UPDATE apikey_keys SET revoked_at = now() WHERE id = $1`},
		{"scopes", `UPDATE apikey_keys SET scopes = '{admin}' WHERE id = $1`},
		{"limits", `UPDATE apikey_keys SET limits = '[{"name": "requests", "count": 1, "per": 1000000000}]' WHERE id = $1`},
		{"delete", `DELETE FROM apikey_keys WHERE id = $1`},
	}
	for _, tt := range tests {
		start := time.Now()
		_, err := pool.Exec(ctx, tt.sql, k.ID)
		require.NoError(t, err, tt.name)
		inv := l.next(t, k.ID, time.Second)
		t.Logf("%s by plain SQL → invalidation: %v", tt.name, time.Since(start))
		assert.Equal(t, keys.Digest(secret.Reveal()), inv.Digest, tt.name)
	}
}

// TestListenCatchesUpAfterTerminate: changes committed while the listening
// connection is down (its backend killed) are read from the log once it
// is back, without forgetting everything (no OnGap).
func TestListenCatchesUpAfterTerminate(t *testing.T) {
	ctx := context.Background()
	a, pool, _ := newStore(t, testKeys(nil))
	l := startListener(t, a, pgstore.ListenConfig{MinBackoff: 200 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ids := createKeys(t, a, 20)
	for range ids {
		<-l.C // their creations
	}
	require.EqualValues(t, 1, l.gaps.Load(), "OnGap once, at the first read")

	var killed int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'apikey_listen' AND datname = current_database()`).Scan(&killed))
	require.Equal(t, 1, killed, "the listening connection is named apikey_listen")
	start := time.Now()
	for _, id := range ids { // while the listener waits to reconnect
		require.NoError(t, a.Revoke(ctx, id))
	}
	got := map[string]bool{}
	for len(got) < len(ids) {
		select {
		case inv := <-l.C:
			got[inv.KeyID] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d revocations delivered after the reconnect", len(got), len(ids))
		}
	}
	t.Logf("all %d revocations made during the reconnect delivered %v after the kill", len(ids), time.Since(start))
	assert.EqualValues(t, 1, l.gaps.Load(), "caught up from the log: no OnGap")
}

// TestListenSurvivesRestart: the listener reconnects after the server is
// stopped and started again, and catches up; nothing it started outlives
// it.
func TestListenSurvivesRestart(t *testing.T) {
	srv := pgtest.Shared(t)
	if srv.External() {
		t.Skip("needs the throwaway server: cannot restart " + pgtest.EnvDSN)
	}
	ctx := context.Background()
	a, _, dsn := newStore(t, testKeys(nil))
	b := replica(t, dsn, testKeys(nil))
	checkGoroutines := goroutines(t)
	l := startListener(t, b, pgstore.ListenConfig{})

	k1, _, err := a.Create(ctx, apikey.KeySpec{Name: "before"})
	require.NoError(t, err)
	require.NoError(t, a.Revoke(ctx, k1.ID))
	l.next(t, k1.ID, time.Second)

	require.NoError(t, srv.Stop(ctx))
	time.Sleep(300 * time.Millisecond) // a few failed reconnects
	require.NoError(t, srv.Start(ctx))

	// The pool's connections died with the server; the pool replaces them.
	var k2 *apikey.Key
	require.Eventually(t, func() bool {
		k2, _, err = a.Create(ctx, apikey.KeySpec{Name: "after"})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	start := time.Now()
	require.NoError(t, a.Revoke(ctx, k2.ID)) // maybe before the listener is back
	l.next(t, k2.ID, 3*time.Second)
	l.next(t, k2.ID, 3*time.Second)
	t.Logf("after restart: revoke → invalidation in %v", time.Since(start))
	assert.EqualValues(t, 1, l.gaps.Load(), "caught up from the log: no OnGap")

	l.Stop(t)
	checkGoroutines()
}

// TestListenPrunedGap: a listener whose next rows were pruned from the
// log while it was away cannot tell what it missed: it calls OnGap and
// goes on from the newest row.
func TestListenPrunedGap(t *testing.T) {
	ctx := context.Background()
	a, pool, _ := newStore(t, testKeys(nil))
	l := startListener(t, a, pgstore.ListenConfig{MinBackoff: time.Second, MaxBackoff: time.Second})
	_, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'apikey_listen' AND datname = current_database()`)
	require.NoError(t, err)
	// While it waits to reconnect: a change, and a pruning that takes it
	// (as if an hour had passed).
	missed, _, err := a.Create(ctx, apikey.KeySpec{Name: "missed"})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE apikey_invalidations SET at = at - interval '2 hours'`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `WITH d AS (DELETE FROM apikey_invalidations WHERE at < now() - interval '1 hour' RETURNING seq)
		UPDATE apikey_invalidations_pruned SET up_to = GREATEST(up_to, (SELECT COALESCE(max(seq), 0) FROM d))`)
	require.NoError(t, err)

	require.Eventually(t, func() bool { return l.gaps.Load() == 2 }, 5*time.Second, 10*time.Millisecond, "OnGap after the pruned gap")
	k, _, err := a.Create(ctx, apikey.KeySpec{Name: "after the gap"})
	require.NoError(t, err)
	inv := l.next(t, k.ID, 2*time.Second)
	assert.NotEqual(t, missed.ID, inv.KeyID)
}

// TestListenModes: polling through the pool (no LISTEN, as behind
// PgBouncer in transaction mode), and listening on a connection of its own
// while the pool points elsewhere.
func TestListenModes(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	a, pool, dsn := newStore(t, keys)
	broken := newStoreOn(t, newPool(t, dsn, func(c *pgxpool.Config) { c.ConnConfig.Port = 1 }), keys)
	tests := []struct {
		name  string
		store *pgstore.Store
		cfg   pgstore.ListenConfig
	}{
		{"poll", a, pgstore.ListenConfig{Poll: true, PollInterval: 50 * time.Millisecond}},
		{"own connection", broken, pgstore.ListenConfig{ConnConfig: pool.Config().ConnConfig}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := startListener(t, tt.store, tt.cfg)
			k, _, err := a.Create(ctx, apikey.KeySpec{Name: tt.name})
			require.NoError(t, err)
			l.next(t, k.ID, time.Second)
			require.NoError(t, a.Revoke(ctx, k.ID))
			l.next(t, k.ID, time.Second)
		})
	}
}

// TestListenStopsWhileDisconnected: cancelling Listen while it waits to
// reconnect returns at once.
func TestListenStopsWhileDisconnected(t *testing.T) {
	dsn := pgtest.Database(t)
	// A port nothing listens on: every attempt fails.
	pool := newPool(t, dsn, func(c *pgxpool.Config) { c.ConnConfig.Port = 1 })
	checkGoroutines := goroutines(t)
	bad := newStoreOn(t, pool, testKeys(nil))
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	failures := make(chan error, 100)
	go func() {
		errs <- bad.Listen(ctx, pgstore.ListenConfig{
			OnInvalidate: func(pgstore.Invalidation) {},
			MinBackoff:   10 * time.Millisecond,
			MaxBackoff:   40 * time.Millisecond,
			OnError: func(err error) {
				select {
				case failures <- err:
				default:
				}
			},
		})
	}()
	for range 3 {
		select {
		case err := <-failures:
			require.Error(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("no connection failure reported")
		}
	}
	cancel()
	select {
	case err := <-errs:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(time.Second):
		t.Fatal("Listen did not return")
	}
	checkGoroutines()
}

// TestListenIdleAndMalformed: an idle feed keeps its connection and keeps
// syncing, a stray notification is harmless, and a malformed log row is
// reported while its key is still invalidated.
func TestListenIdleAndMalformed(t *testing.T) {
	ctx := context.Background()
	s, pool, _ := newStore(t, testKeys(nil))
	errs := make(chan error, 16)
	l := startListener(t, s, pgstore.ListenConfig{
		PollInterval: 20 * time.Millisecond,
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	for range 5 {
		l.WaitSynced(t) // idle reads
	}
	_, err := pool.Exec(ctx, `SELECT pg_notify($1, 'garbage')`, pgstore.Channel)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO apikey_invalidations (key_id, digest) VALUES ('key_bad', '\x00')`)
	require.NoError(t, err)
	select {
	case err := <-errs:
		assert.ErrorIs(t, err, apikey.ErrInvalid)
	case <-time.After(time.Second):
		t.Fatal("malformed row not reported")
	}
	l.next(t, "key_bad", time.Second)
	k, _, err := s.Create(ctx, apikey.KeySpec{Name: "idle"})
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, k.ID))
	l.next(t, k.ID, time.Second)
	assert.EqualValues(t, 1, l.gaps.Load(), "the connection was kept")
	assert.Empty(t, errs, "no connection errors")
}

// TestListenConfigErrors: a ListenConfig that cannot work is an error
// wrapping apikey.ErrInvalid, returned at once (not a panic, not a retry
// loop), naming the field to change.
func TestListenConfigErrors(t *testing.T) {
	// Listen checks its configuration before it connects: a pool on a port
	// nothing listens on shows that no attempt is made.
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/none?sslmode=disable")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := newStoreOn(t, pool, testKeys(nil))
	noop := func(pgstore.Invalidation) {}
	tests := []struct {
		name  string
		cfg   pgstore.ListenConfig
		field string
	}{
		{"nil OnInvalidate", pgstore.ListenConfig{OnGap: func() {}}, "OnInvalidate"},
		{"zero config", pgstore.ListenConfig{}, "OnInvalidate"},
		{"negative MinBackoff", pgstore.ListenConfig{OnInvalidate: noop, MinBackoff: -time.Millisecond}, "MinBackoff"},
		{"negative MaxBackoff", pgstore.ListenConfig{OnInvalidate: noop, MaxBackoff: -time.Millisecond}, "MaxBackoff"},
		{"negative PollInterval", pgstore.ListenConfig{OnInvalidate: noop, PollInterval: -time.Second}, "PollInterval"},
		{"negative Timeout", pgstore.ListenConfig{OnInvalidate: noop, Timeout: -time.Second}, "Timeout"},
		{"MaxBackoff below MinBackoff", pgstore.ListenConfig{OnInvalidate: noop, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff"},
		{"Poll with ConnConfig", pgstore.ListenConfig{OnInvalidate: noop, Poll: true, ConnConfig: pool.Config().ConnConfig}, "ConnConfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errorsSeen atomic.Int64
			tt.cfg.OnError = func(error) { errorsSeen.Add(1) }
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			require.NotPanics(t, func() { err = s.Listen(ctx, tt.cfg) })
			require.ErrorIs(t, err, apikey.ErrInvalid)
			assert.NoError(t, ctx.Err(), "returned at once, not when ctx ended")
			assert.Contains(t, err.Error(), "ListenConfig."+tt.field, "the error names the field to change")
			assert.Zero(t, errorsSeen.Load(), "no connection was attempted")
		})
	}
}
