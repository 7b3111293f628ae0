package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
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
// hex>".
func ParseInvalidation(payload string) (Invalidation, error) {
	id, digest, ok := strings.Cut(payload, ":")
	if !ok || id == "" {
		return Invalidation{}, fmt.Errorf("pgstore: %w: invalidation payload has no key id", apikey.ErrInvalid)
	}
	inv := Invalidation{KeyID: id}
	if err := inv.Digest.UnmarshalText([]byte(digest)); err != nil {
		return Invalidation{}, fmt.Errorf("pgstore: invalidation of %s: %w", id, err)
	}
	return inv, nil
}

// String returns the notification payload.
func (inv Invalidation) String() string { return payload(inv.KeyID, inv.Digest[:]) }

// ListenOption configures Listen.
type ListenOption func(*listenOptions)

type listenOptions struct {
	onListening  func()
	onReconnect  func()
	onError      func(error)
	minBackoff   time.Duration
	maxBackoff   time.Duration
	healthCheck  time.Duration
	dialDeadline time.Duration
}

// OnReconnect sets a function that Listen calls each time it is listening
// again after a gap: after a lost connection, or when its first attempt to
// connect failed. Notifications published during the gap are lost, so the
// function should purge whatever the invalidations keep fresh (a cache's
// Purge). Listen calls it after LISTEN is in effect, so nothing published
// afterwards is missed.
func OnReconnect(fn func()) ListenOption { return func(o *listenOptions) { o.onReconnect = fn } }

// OnListening sets a function that Listen calls each time LISTEN takes
// effect, the first time included: from then on, every invalidation
// committed is delivered. A server can use it to report itself ready only
// once its invalidation feed is up.
func OnListening(fn func()) ListenOption { return func(o *listenOptions) { o.onListening = fn } }

// OnListenError sets a function that receives every error Listen recovers
// from: a failed or lost connection, a malformed payload. Use it to log;
// Listen retries by itself. The errors never contain secrets.
func OnListenError(fn func(error)) ListenOption { return func(o *listenOptions) { o.onError = fn } }

// ListenBackoff sets how long Listen waits between attempts to reconnect:
// first after the first failure, doubling up to limit, each wait drawn at
// random from its upper half (jitter). Default 50 ms doubling to 5 s.
func ListenBackoff(first, limit time.Duration) ListenOption {
	return func(o *listenOptions) { o.minBackoff, o.maxBackoff = first, limit }
}

// ListenHealthCheck sets how long the listening connection may stay idle
// before Listen pings the server to find out whether it is still there.
// Default 30 s; 0 disables the pings.
func ListenHealthCheck(d time.Duration) ListenOption {
	return func(o *listenOptions) { o.healthCheck = d }
}

// Listen receives the invalidations published by every Store on the same
// database, through a dedicated connection made with the pool's
// configuration (it does not take a connection from the pool), and calls
// fn for each, one at a time, in the order the database delivered them.
//
// When the connection fails, Listen reconnects with exponential backoff and
// jitter (see ListenBackoff), then calls the OnReconnect function. The
// options' functions run on Listen's goroutine, like fn. It
// returns only when ctx is done, with ctx's error; it starts no goroutine
// that outlives it. Run it in a goroutine of its own:
//
//	go store.Listen(ctx, func(inv pgstore.Invalidation) {
//		cache.Invalidate(inv.Digest)
//		cache.InvalidateKey(inv.KeyID)
//	}, pgstore.OnReconnect(cache.Purge))
func (s *Store) Listen(ctx context.Context, fn func(Invalidation), opts ...ListenOption) error {
	if fn == nil {
		panic("pgstore: Listen: nil fn")
	}
	o := listenOptions{
		minBackoff:   50 * time.Millisecond,
		maxBackoff:   5 * time.Second,
		healthCheck:  30 * time.Second,
		dialDeadline: 10 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.minBackoff <= 0 {
		o.minBackoff = time.Millisecond
	}
	if o.maxBackoff < o.minBackoff {
		o.maxBackoff = o.minBackoff
	}
	backoff := o.minBackoff
	gap := false // true once an attempt failed or a connection was lost
	for {
		listening := func() {
			if gap && o.onReconnect != nil {
				o.onReconnect()
			}
			if o.onListening != nil {
				o.onListening()
			}
			gap = false
			backoff = o.minBackoff
		}
		err := s.listenOnce(ctx, fn, &o, listening)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		gap = true
		if o.onError != nil {
			o.onError(err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, o.maxBackoff)
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
func (s *Store) listenOnce(ctx context.Context, fn func(Invalidation), o *listenOptions, listening func()) error {
	dialCtx, cancel := context.WithTimeout(ctx, o.dialDeadline)
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
		waitCtx, cancel := ctx, context.CancelFunc(func() {})
		if o.healthCheck > 0 {
			waitCtx, cancel = context.WithTimeout(ctx, o.healthCheck)
		}
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle for a while: make sure the server is still there.
			pingCtx, cancel := context.WithTimeout(ctx, o.dialDeadline)
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
				if o.onError != nil {
					o.onError(err)
				}
				continue
			}
			fn(inv)
		}
	}
}
