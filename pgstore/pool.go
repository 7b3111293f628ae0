package pgstore

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The network settings PoolConfig gives a pool.
const (
	// poolDialTimeout bounds each TCP connection attempt, the cancel
	// requests pgx sends when a query times out included.
	poolDialTimeout = 2 * time.Second
	// poolSetupLimit bounds what happens on a new connection before pgx
	// hands it to the pool (AfterNetConnect): a TLS handshake, or all of a
	// cancel request, which pgx sends on a connection of its own when a
	// query times out.
	poolSetupLimit = 2 * time.Second
	// poolCleanupLimit bounds how long a connection that failed or timed
	// out keeps its pool slot while pgx closes it.
	poolCleanupLimit = time.Second
	// poolConnectTimeout bounds a whole connection attempt (dial, TLS,
	// authentication) when the connection string sets no connect_timeout.
	// pgxpool makes connections on a context of its own, which nothing
	// else would end: a server that accepts and then hangs would hold the
	// pool slot for ever.
	poolConnectTimeout = 5 * time.Second
	// poolHealthCheck is how often idle connections are checked.
	poolHealthCheck = 5 * time.Second
	// poolPingTimeout bounds the ping pgxpool sends before handing out a
	// connection that sat idle (a dead one is then replaced at once).
	poolPingTimeout = 500 * time.Millisecond
)

// PoolConfig parses a connection string like pgxpool.ParseConfig and
// adjusts what decides how fast a replica recovers from a network fault:
//
//   - Each TCP connection attempt gives up after 2 s, and its TLS
//     handshake must be done within 2 s more. The cancel request pgx sends
//     on a connection of its own when a query times out must be done
//     within those 2 s too: pgx allows it 15 s, and a hung server keeps
//     it waiting for all of them.
//   - A connection that failed or timed out is closed within about a
//     second. pgx otherwise gives its clean-up up to 15 s, during which the
//     connection keeps its pool slot: after a network hang, lookups that
//     timed out would hold every slot for that long and the replica would
//     answer 503 for up to 15 s after the network is back.
//   - A connection attempt as a whole gives up after 5 s, unless the
//     connection string sets connect_timeout (pgx waits for ever: a server
//     that accepts and then hangs holds the pool slot for good).
//   - A connection that sat idle is pinged with a 500 ms timeout before
//     it is handed out (pgx waits as long as the caller's deadline), and
//     idle connections are checked every 5 s (pgx: every minute).
//
// Everything else is pgxpool's default or what the connection string says.
// New works with any pool; PoolConfig is for a pool that must recover
// within seconds.
func PoolConfig(connString string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("pgstore: PoolConfig: %w", err)
	}
	d := &net.Dialer{Timeout: poolDialTimeout, KeepAlive: 15 * time.Second}
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// A cancel request never reaches AfterNetConnect: against a hung
		// server, this deadline is what ends it (pgx allows it 15 s).
		if err := c.SetDeadline(time.Now().Add(poolSetupLimit)); err != nil {
			_ = c.Close()
			return nil, err
		}
		return boundedConn{c}, nil
	}
	cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, c net.Conn) (net.Conn, error) {
		return c, c.SetDeadline(time.Time{}) // a connection of the pool: no deadline
	}
	cfg.ConnConfig.ConnectTimeout = cmp.Or(cfg.ConnConfig.ConnectTimeout, poolConnectTimeout)
	cfg.HealthCheckPeriod = poolHealthCheck
	cfg.PingTimeout = poolPingTimeout
	return cfg, nil
}

// boundedConn caps every deadline set on the connection at
// poolCleanupLimit from now. pgx sets a deadline only to interrupt a
// read or write (a cancelled context: "now") and to bound the clean-up of
// a broken connection (15 s), so only the latter changes.
type boundedConn struct{ net.Conn }

func bound(t time.Time) time.Time {
	if limit := time.Now().Add(poolCleanupLimit); !t.IsZero() && t.After(limit) {
		return limit
	}
	return t
}

func (c boundedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(bound(t)) }
func (c boundedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(bound(t)) }
func (c boundedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(bound(t)) }
