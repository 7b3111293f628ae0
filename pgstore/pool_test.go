package pgstore_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
	"github.com/keygate/apikey/pgstore/internal/replicas"
)

// TestPoolConfigRecoversFromAHang: a pool made with PoolConfig, through a
// network that drops everything for a few seconds and never gives back
// the connections it held, answers again within 3 s of the network's
// return, although lookups timed out and pgx gave up on connections
// meanwhile.
func TestPoolConfigRecoversFromAHang(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(nil)
	dsn := pgtest.Database(t)
	s := newStoreAt(t, dsn, keys, nil)
	require.NoError(t, s.Migrate(ctx))
	_, secret, err := s.Create(ctx, apikey.KeySpec{Name: "hang"})
	require.NoError(t, err)
	d := keys.Digest(secret.Reveal())

	u, err := url.Parse(dsn)
	require.NoError(t, err)
	proxy, err := replicas.NewProxy(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	through := newStoreAt(t, u.String(), keys, &pgstore.Config{Keys: keys, LookupTimeout: 300 * time.Millisecond})
	for range 8 { // a few connections in the pool
		_, err := through.Lookup(ctx, d)
		require.NoError(t, err)
	}

	proxy.Blackhole()
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		_, err := through.Lookup(ctx, d)
		require.Error(t, err)
		require.False(t, errors.Is(err, apikey.ErrNotFound), "a hang is not a 401")
	}
	proxy.Restore()
	restored := time.Now()
	var lastErr error
	for time.Since(restored) < 3*time.Second {
		if _, lastErr = through.Lookup(ctx, d); lastErr == nil {
			t.Logf("lookups answer again %v after the network's return", time.Since(restored).Round(time.Millisecond))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no answer within 3 s of the network's return: %v", lastErr)
}

// newStoreAt returns a store on a PoolConfig pool to dsn, closed when the
// test ends; cfg defaults to Config{Keys: keys}.
func newStoreAt(t *testing.T, dsn string, keys apikey.KeyConfig, cfg *pgstore.Config) *pgstore.Store {
	t.Helper()
	poolCfg, err := pgstore.PoolConfig(dsn)
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	if cfg == nil {
		cfg = &pgstore.Config{Keys: keys}
	}
	s, err := pgstore.New(pool, *cfg)
	require.NoError(t, err)
	return s
}
