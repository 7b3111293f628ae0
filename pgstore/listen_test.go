package pgstore_test

import (
	"context"
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
		{"valid", "key_abc:" + d.String(), pgstore.Invalidation{KeyID: "key_abc", Digest: d}, false},
		{"upper-case hex", "key_abc:" + strings.ToUpper(d.String()), pgstore.Invalidation{KeyID: "key_abc", Digest: d}, false},
		{"id with colons", "legacy:42:x:" + d.String(), pgstore.Invalidation{KeyID: "legacy:42:x", Digest: d}, false},
		{"digest one character short", "key_abc:" + d.String()[1:], pgstore.Invalidation{}, true},
		{"no separator before the digest", "key_abc" + d.String(), pgstore.Invalidation{}, true},
		{"no separator", "key_abc", pgstore.Invalidation{}, true},
		{"no id", ":" + d.String(), pgstore.Invalidation{}, true},
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
			assert.Equal(t, tt.want.KeyID+":"+d.String(), got.String())
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

	k, secret, err := a.Create(ctx, apikey.KeySpec{Name: "revoked"})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, a.Revoke(ctx, k.ID))
	inv := l.next(t, k.ID, time.Second)
	t.Logf("revoke → invalidation on another pool: %v", time.Since(start))
	assert.Equal(t, keys.Digest(secret.Reveal()), inv.Digest)

	r, rsecret, err := a.Create(ctx, apikey.KeySpec{Name: "rolled"})
	require.NoError(t, err)
	_, _, err = a.Roll(ctx, r.ID, apikey.DefaultGrace)
	require.NoError(t, err)
	inv = l.next(t, r.ID, time.Second)
	assert.Equal(t, keys.Digest(rsecret.Reveal()), inv.Digest, "the old key's digest")

	p, psecret, err := a.Create(ctx, apikey.KeySpec{Name: "rehashed"})
	require.NoError(t, err)
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

	// A failed change publishes nothing: the notification is part of the
	// transaction.
	_, _, err = a.Roll(ctx, k.ID, apikey.DefaultGrace)
	require.ErrorIs(t, err, apikey.ErrRevoked)
	select {
	case inv := <-l.C:
		t.Fatalf("unexpected invalidation %v", inv)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestListenSurvivesRestart: the listener reconnects after the server is
// stopped and started again, tells the caller through OnReconnect, and
// delivers later invalidations; nothing it started outlives it.
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
	l.WaitListening(t)
	assert.Positive(t, l.reconnects.Load(), "OnReconnect after the gap")

	// The pool's connections died with the server; the pool replaces them.
	var k2 *apikey.Key
	require.Eventually(t, func() bool {
		k2, _, err = a.Create(ctx, apikey.KeySpec{Name: "after"})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	start := time.Now()
	require.NoError(t, a.Revoke(ctx, k2.ID))
	l.next(t, k2.ID, time.Second)
	t.Logf("after restart: revoke → invalidation in %v", time.Since(start))

	l.Stop(t)
	checkGoroutines()
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

// TestListenIdleAndMalformed: idle health-check pings keep the connection,
// and a malformed payload is reported and skipped.
func TestListenIdleAndMalformed(t *testing.T) {
	ctx := context.Background()
	s, pool, _ := newStore(t, testKeys(nil))
	errs := make(chan error, 16)
	l := startListener(t, s, pgstore.ListenConfig{
		HealthCheck: 20 * time.Millisecond,
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	time.Sleep(150 * time.Millisecond) // several idle pings

	_, err := pool.Exec(ctx, `SELECT pg_notify($1, 'garbage')`, pgstore.Channel)
	require.NoError(t, err)
	select {
	case err := <-errs:
		assert.ErrorIs(t, err, apikey.ErrInvalid)
	case <-time.After(time.Second):
		t.Fatal("malformed payload not reported")
	}
	k, _, err := s.Create(ctx, apikey.KeySpec{Name: "idle"})
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, k.ID))
	l.next(t, k.ID, time.Second)
	assert.Zero(t, l.reconnects.Load(), "the connection was kept")
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
		{"nil OnInvalidate", pgstore.ListenConfig{OnReconnect: func() {}}, "OnInvalidate"},
		{"zero config", pgstore.ListenConfig{}, "OnInvalidate"},
		{"negative MinBackoff", pgstore.ListenConfig{OnInvalidate: noop, MinBackoff: -time.Millisecond}, "MinBackoff"},
		{"negative MaxBackoff", pgstore.ListenConfig{OnInvalidate: noop, MaxBackoff: -time.Millisecond}, "MaxBackoff"},
		{"negative HealthCheck", pgstore.ListenConfig{OnInvalidate: noop, HealthCheck: -time.Second}, "HealthCheck"},
		{"MaxBackoff below MinBackoff", pgstore.ListenConfig{OnInvalidate: noop, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff"},
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
