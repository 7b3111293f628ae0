package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/apikey"
)

// Channel is the LISTEN/NOTIFY channel on which Revoke, Roll and Rehash
// publish invalidations. The payload is "<key id>:<digest hex>".
const Channel = "apikey_invalidate"

// Invalidation says that a key changed in the database: a replica that
// caches keys must forget the key with this ID and whatever it cached
// under this digest (including a cached "not found").
type Invalidation struct {
	KeyID  string
	Digest apikey.Digest
}

// ParseInvalidation decodes a notification payload, "<key id>:<digest
// hex>". The digest has a fixed length, 64 hex characters, so the payload
// is split there: a key ID may hold ':' too (imported keys often do).
func ParseInvalidation(payload string) (Invalidation, error) {
	const digestHex = 2 * len(apikey.Digest{})
	sep := len(payload) - digestHex - 1
	if sep < 1 || payload[sep] != ':' {
		return Invalidation{}, fmt.Errorf("pgstore: %w: invalidation payload is not \"<key id>:<%d hex digits>\"", apikey.ErrInvalid, digestHex)
	}
	inv := Invalidation{KeyID: payload[:sep]}
	if err := inv.Digest.UnmarshalText([]byte(payload[sep+1:])); err != nil {
		return Invalidation{}, fmt.Errorf("pgstore: invalidation of %s: %w", inv.KeyID, err)
	}
	return inv, nil
}

// String returns the notification payload.
func (inv Invalidation) String() string { return payload(inv.KeyID, inv.Digest[:]) }

// ListenConfig configures Listen. OnInvalidate is required; every other
// field's zero value means its documented default. The functions run on
// Listen's goroutine, one at a time, so they need no locking between them;
// keep them fast, as notifications wait while they run.
type ListenConfig struct {
	// OnInvalidate is called for each invalidation, in the order the
	// database delivered them. Required.
	OnInvalidate func(Invalidation)
	// OnReconnect is called each time Listen is listening again after a
	// gap: after a lost connection, or when its first attempt to connect
	// failed. Notifications published during the gap are lost, so it
	// should purge whatever the invalidations keep fresh (a cache's
	// Purge). It is called after LISTEN is in effect, so nothing published
	// afterwards is missed. Default nil.
	OnReconnect func()
	// OnListening is called each time LISTEN takes effect, the first time
	// included: from then on, every invalidation committed is delivered. A
	// server can use it to report itself ready only once its invalidation
	// feed is up. Default nil.
	OnListening func()
	// OnError receives every error Listen recovers from: a failed or lost
	// connection, a malformed payload (wrapping apikey.ErrInvalid). Use it
	// to log; Listen retries by itself. The errors never contain secrets.
	// Default nil: not reported.
	OnError func(error)
	// MinBackoff is the wait before the first attempt to reconnect after a
	// failure; each further failure doubles it, up to MaxBackoff, and each
	// wait is drawn at random from the upper half of its value (jitter).
	// Default 50 ms.
	MinBackoff time.Duration
	// MaxBackoff is the longest wait between attempts to reconnect.
	// Default 5 s, or MinBackoff when that is longer.
	MaxBackoff time.Duration
	// HealthCheck is how long the listening connection may stay idle
	// before Listen pings the server to find out whether it is still
	// there. Default 30 s.
	HealthCheck time.Duration
}

// The defaults of ListenConfig.
const (
	defaultMinBackoff  = 50 * time.Millisecond
	defaultMaxBackoff  = 5 * time.Second
	defaultHealthCheck = 30 * time.Second
	// dialTimeout bounds each attempt to connect and LISTEN, and each ping.
	dialTimeout = 10 * time.Second
)

// withDefaults checks cfg and fills in the defaults. Its error wraps
// apikey.ErrInvalid and names the field to change.
func (cfg ListenConfig) withDefaults() (ListenConfig, error) {
	if cfg.OnInvalidate == nil {
		return cfg, fmt.Errorf("pgstore: Listen: %w: ListenConfig.OnInvalidate is nil: give the function that receives the invalidations", apikey.ErrInvalid)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"MinBackoff", cfg.MinBackoff}, {"MaxBackoff", cfg.MaxBackoff}, {"HealthCheck", cfg.HealthCheck}} {
		if d.v < 0 {
			return cfg, fmt.Errorf("pgstore: Listen: %w: ListenConfig.%s is negative", apikey.ErrInvalid, d.name)
		}
	}
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, defaultMinBackoff)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, max(defaultMaxBackoff, cfg.MinBackoff))
	if cfg.MaxBackoff < cfg.MinBackoff {
		return cfg, fmt.Errorf("pgstore: Listen: %w: ListenConfig.MaxBackoff %v is shorter than MinBackoff %v", apikey.ErrInvalid, cfg.MaxBackoff, cfg.MinBackoff)
	}
	cfg.HealthCheck = cmp.Or(cfg.HealthCheck, defaultHealthCheck)
	return cfg, nil
}

// Listen receives the invalidations published by every Store on the same
// database, through a dedicated connection made with the pool's
// configuration (it does not take a connection from the pool), and calls
// cfg.OnInvalidate for each.
//
// When the connection fails, Listen reconnects with exponential backoff
// and jitter (ListenConfig.MinBackoff, MaxBackoff), then calls
// cfg.OnReconnect. It returns only when ctx is done, with ctx's error, or
// at once with an error wrapping apikey.ErrInvalid when cfg is invalid (a
// nil OnInvalidate); it starts no goroutine that outlives it. Run it in a
// goroutine of its own; with a cache (package
// github.com/keygate/apikey/cache):
//
//	go store.Listen(ctx, pgstore.ListenConfig{
//		OnInvalidate: func(inv pgstore.Invalidation) {
//			c.Invalidate(inv.Digest)
//			c.InvalidateKey(inv.KeyID)
//		},
//		OnReconnect: c.Purge,
//	})
func (s *Store) Listen(ctx context.Context, cfg ListenConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	backoff := cfg.MinBackoff
	gap := false // true once an attempt failed or a connection was lost
	for {
		listening := func() {
			if gap && cfg.OnReconnect != nil {
				cfg.OnReconnect()
			}
			if cfg.OnListening != nil {
				cfg.OnListening()
			}
			gap = false
			backoff = cfg.MinBackoff
		}
		err := s.listenOnce(ctx, &cfg, listening)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		gap = true
		if cfg.OnError != nil {
			cfg.OnError(err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, cfg.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// listenOnce connects, listens and delivers notifications until the
// connection fails or ctx is done. It calls listening once LISTEN is in
// effect.
func (s *Store) listenOnce(ctx context.Context, cfg *ListenConfig, listening func()) error {
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(dialCtx, s.pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("pgstore: listen: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(dialCtx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("pgstore: listen: %w", err)
	}
	cancel()
	listening()

	for {
		waitCtx, cancel := context.WithTimeout(ctx, cfg.HealthCheck)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle for a while: make sure the server is still there.
			pingCtx, cancel := context.WithTimeout(ctx, dialTimeout)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("pgstore: listen: ping: %w", err)
			}
		case err != nil:
			return fmt.Errorf("pgstore: listen: %w", err)
		case n.Channel == Channel:
			inv, err := ParseInvalidation(n.Payload)
			if err != nil {
				if cfg.OnError != nil {
					cfg.OnError(err)
				}
				continue
			}
			cfg.OnInvalidate(inv)
		}
	}
}
