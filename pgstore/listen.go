package pgstore

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keygate/apikey"
)

// Channel is the LISTEN/NOTIFY channel on which every change of a key is
// announced, whether made through the Go API or by plain SQL: schema
// version 3's triggers notify it for each row they log in
// apikey_invalidations. The payload is "<key id>:<digest hex>". Listen
// treats a notification only as a signal to read the log.
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
	if _, err := hex.Decode(inv.Digest[:], []byte(payload[sep+1:])); err != nil {
		return Invalidation{}, fmt.Errorf("pgstore: %w: invalidation of %s: digest: %w", apikey.ErrInvalid, inv.KeyID, err)
	}
	return inv, nil
}

// String returns the notification payload.
func (inv Invalidation) String() string { return payload(inv.KeyID, inv.Digest[:]) }

// ListenConfig configures Listen. OnInvalidate is required; every other
// field's zero value means its documented default. The functions run on
// Listen's goroutine, one at a time, so they need no locking between them;
// keep them fast, as the feed waits while they run.
type ListenConfig struct {
	// OnInvalidate is called for each change of a key, in the order the
	// changes committed. Required.
	OnInvalidate func(Invalidation)
	// OnSync is called after each read of the log: every change committed
	// before asOf has been handed to OnInvalidate. It comes at least every
	// PollInterval while the feed is healthy and stops when it is not: a
	// cache's Synced, which then stops trusting its entries. The first call
	// also says the feed is up (a server can report itself ready then).
	// Default nil.
	OnSync func(asOf time.Time)
	// OnGap is called when Listen cannot tell which changes it missed, so
	// whatever they keep fresh must be forgotten (a cache's Purge): when it
	// first reads the log, and when it was cut off for longer than the log
	// keeps its rows (one hour). A reconnection within that time reads what
	// it missed from the log instead. Default nil.
	OnGap func()
	// OnError receives every error Listen recovers from: a failed or lost
	// connection, a log read that failed or timed out, a malformed log row
	// (wrapping apikey.ErrInvalid). Use it to log; Listen retries by
	// itself. The errors never contain secrets. Default nil: not reported.
	OnError func(error)
	// ConnConfig is the connection Listen opens for LISTEN and for reading
	// the log, for when the pool goes through a pooler in transaction mode
	// (PgBouncer), where LISTEN does not work: give a direct connection
	// here. Its application_name is "apikey_listen" unless it sets one.
	// Default: the pool's connection settings.
	ConnConfig *pgx.ConnConfig
	// Poll reads the log through the pool every PollInterval instead of
	// listening: for when no direct connection is available. Changes then
	// reach this replica within PollInterval.
	Poll bool
	// PollInterval is the longest time between two reads of the log: with
	// LISTEN, when no notification arrives; it also bounds how soon a
	// silent connection is noticed, with Timeout. Default 500 ms.
	PollInterval time.Duration
	// Timeout bounds each connection attempt and each read of the log; a
	// read that takes longer means the connection is lost. Default 2 s.
	Timeout time.Duration
	// MinBackoff is the wait before the first attempt to reconnect after a
	// failure; each further failure doubles it, up to MaxBackoff, and each
	// wait is drawn at random from the upper half of its value (jitter).
	// Default 50 ms.
	MinBackoff time.Duration
	// MaxBackoff is the longest wait between attempts to reconnect.
	// Default 1 s, or MinBackoff when that is longer.
	MaxBackoff time.Duration
}

// The defaults of ListenConfig, and the log's bounds.
const (
	defaultPollInterval  = 500 * time.Millisecond
	defaultListenTimeout = 2 * time.Second
	defaultMinBackoff    = 50 * time.Millisecond
	defaultMaxBackoff    = time.Second
	// logRetention is how long the log keeps a row; Listen prunes older
	// ones every pruneEvery.
	logRetention = time.Hour
	pruneEvery   = time.Minute
	// readBatch is how many log rows one query reads.
	readBatch = 1000
	// listenApplication names the listening connection in pg_stat_activity.
	listenApplication = "apikey_listen"
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
	}{{"PollInterval", cfg.PollInterval}, {"Timeout", cfg.Timeout}, {"MinBackoff", cfg.MinBackoff}, {"MaxBackoff", cfg.MaxBackoff}} {
		if d.v < 0 {
			return cfg, fmt.Errorf("pgstore: Listen: %w: ListenConfig.%s is negative", apikey.ErrInvalid, d.name)
		}
	}
	if cfg.Poll && cfg.ConnConfig != nil {
		return cfg, fmt.Errorf("pgstore: Listen: %w: ListenConfig.ConnConfig is for listening; Poll reads through the pool", apikey.ErrInvalid)
	}
	cfg.PollInterval = cmp.Or(cfg.PollInterval, defaultPollInterval)
	cfg.Timeout = cmp.Or(cfg.Timeout, defaultListenTimeout)
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, defaultMinBackoff)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, max(defaultMaxBackoff, cfg.MinBackoff))
	if cfg.MaxBackoff < cfg.MinBackoff {
		return cfg, fmt.Errorf("pgstore: Listen: %w: ListenConfig.MaxBackoff %v is shorter than MinBackoff %v", apikey.ErrInvalid, cfg.MaxBackoff, cfg.MinBackoff)
	}
	return cfg, nil
}

// Listen follows the log of key changes that every Store on the same
// database writes (schema version 3 logs each change of apikey_keys in the
// transaction that makes it, Go API and plain SQL alike), and calls
// cfg.OnInvalidate for each. It listens on Channel through a dedicated
// connection (cfg.ConnConfig, by default made with the pool's settings; it
// does not take a connection from the pool) and reads the log when a
// notification arrives, and at least every cfg.PollInterval; with cfg.Poll
// it only reads the log, through the pool.
//
// Nothing is missed across reconnections: Listen keeps its position in the
// log and, once connected again, reads what was committed meanwhile. Only
// when it cannot (the first read, or a gap longer than the log keeps rows)
// does it call cfg.OnGap. After every read it calls cfg.OnSync, which lets
// a cache stop trusting its entries as soon as the feed falls behind; a
// silent connection is noticed within PollInterval + Timeout.
//
// When the connection fails, Listen reconnects with exponential backoff
// and jitter (cfg.MinBackoff, cfg.MaxBackoff). It returns only when ctx is
// done, with ctx's error, or at once with an error wrapping
// apikey.ErrInvalid when cfg is invalid; it starts no goroutine that
// outlives it. Run it in a goroutine of its own; with a cache (package
// github.com/keygate/apikey/cache):
//
//	go store.Listen(ctx, pgstore.ListenConfig{
//		OnInvalidate: func(inv pgstore.Invalidation) {
//			c.Invalidate(inv.Digest)
//			c.InvalidateKey(inv.KeyID)
//		},
//		OnSync: c.Synced,
//		OnGap:  c.Purge,
//	})
func (s *Store) Listen(ctx context.Context, cfg ListenConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	f := &follower{store: s, cfg: &cfg, cursor: -1}
	backoff := cfg.MinBackoff
	for {
		f.progressed = false
		if cfg.Poll {
			err = f.poll(ctx)
		} else {
			err = f.listen(ctx)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.report(err)
		if f.progressed {
			backoff = cfg.MinBackoff
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

// follower is Listen's state: its position in the log.
type follower struct {
	store      *Store
	cfg        *ListenConfig
	cursor     int64 // seq of the last row delivered; -1: no position yet
	pending    bool  // a notification arrived since the last read
	progressed bool  // a read succeeded since the last (re)connection
	lastPrune  time.Time
}

func (f *follower) report(err error) {
	if f.cfg.OnError != nil && err != nil {
		f.cfg.OnError(err)
	}
}

// querier is what reading the log needs: a connection or the pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const (
	// sqlHead is the position of the newest row, or of the newest pruned
	// one when pruning emptied the log.
	sqlHead = `SELECT GREATEST(COALESCE(max(seq), 0), (SELECT up_to FROM apikey_invalidations_pruned))
	FROM apikey_invalidations`
	// sqlFollow reads the rows after a position, with how far pruning has
	// gone: always at least one row.
	sqlFollow = `SELECT p.up_to, l.seq, l.key_id, l.digest FROM apikey_invalidations_pruned p
	LEFT JOIN LATERAL (SELECT seq, key_id, digest FROM apikey_invalidations
		WHERE seq > $1 ORDER BY seq LIMIT $2) l ON true`
	// sqlPrune deletes rows older than the retention and records the
	// highest seq deleted.
	sqlPrune = `WITH d AS (DELETE FROM apikey_invalidations WHERE at < now() - make_interval(secs => $1) RETURNING seq)
	UPDATE apikey_invalidations_pruned SET up_to = GREATEST(up_to, (SELECT COALESCE(max(seq), 0) FROM d))`
)

// listen connects, listens and reads the log on every notification and
// every PollInterval, until the connection fails or ctx is done.
func (f *follower) listen(ctx context.Context) error {
	cc := f.store.pool.Config().ConnConfig
	if f.cfg.ConnConfig != nil {
		cc = f.cfg.ConnConfig
	}
	cc = cc.Copy()
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = listenApplication
	}
	cc.OnNotification = func(*pgconn.PgConn, *pgconn.Notification) { f.pending = true }
	dialCtx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(dialCtx, cc)
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
	for {
		// LISTEN is in effect before the read: a change committed after
		// the read's snapshot is notified.
		f.pending = false
		if err := f.read(ctx, conn); err != nil {
			return err
		}
		if f.pending {
			continue
		}
		waitCtx, cancel := context.WithTimeout(ctx, f.cfg.PollInterval)
		err := conn.PgConn().WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// No notification: read anyway, which also checks the connection.
		case err != nil:
			return fmt.Errorf("pgstore: listen: %w", err)
		}
	}
}

// poll reads the log through the pool every PollInterval until a read
// fails or ctx is done.
func (f *follower) poll(ctx context.Context) error {
	t := time.NewTicker(f.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := f.read(ctx, f.store.pool); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// read delivers every row committed after the position, then calls
// OnSync; without a position it takes the newest and calls OnGap. It
// prunes the log every pruneEvery.
func (f *follower) read(ctx context.Context, q querier) error {
	for {
		asOf := time.Now() // before the query: its snapshot holds every change committed by now
		n, err := f.readOnce(ctx, q)
		if err != nil {
			return fmt.Errorf("pgstore: listen: read the log: %w", err)
		}
		if n < readBatch {
			f.progressed = true
			if f.cfg.OnSync != nil {
				f.cfg.OnSync(asOf)
			}
			break
		}
	}
	if time.Since(f.lastPrune) >= pruneEvery {
		f.lastPrune = time.Now()
		pruneCtx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
		_, err := q.Exec(pruneCtx, sqlPrune, logRetention.Seconds())
		cancel()
		if err != nil && ctx.Err() == nil {
			f.report(fmt.Errorf("pgstore: listen: prune the log: %w", err))
		}
	}
	return nil
}

// readOnce runs one query of the log and delivers its rows; it returns
// how many rows it delivered.
func (f *follower) readOnce(ctx context.Context, q querier) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	if f.cursor < 0 {
		var head int64
		if err := q.QueryRow(ctx, sqlHead).Scan(&head); err != nil {
			return 0, err
		}
		f.cursor = head
		if f.cfg.OnGap != nil {
			f.cfg.OnGap()
		}
		return 0, nil
	}
	type row struct {
		seq    int64
		keyID  string
		digest []byte
	}
	var (
		upTo int64
		got  []row
	)
	rows, err := q.Query(ctx, sqlFollow, f.cursor, readBatch)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var (
			seq    *int64
			keyID  *string
			digest []byte
		)
		if err := rows.Scan(&upTo, &seq, &keyID, &digest); err != nil {
			rows.Close()
			return 0, err
		}
		if seq != nil && keyID != nil {
			got = append(got, row{*seq, *keyID, digest})
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if upTo > f.cursor {
		// Rows after the position were pruned: start again from the newest.
		f.cursor = -1
		return f.readOnce(ctx, q)
	}
	for _, r := range got {
		inv := Invalidation{KeyID: r.keyID}
		if len(r.digest) != len(inv.Digest) {
			f.report(fmt.Errorf("pgstore: listen: %w: log row %d of key %s has a %d-byte digest", apikey.ErrInvalid, r.seq, r.keyID, len(r.digest)))
		}
		copy(inv.Digest[:], r.digest)
		f.cfg.OnInvalidate(inv)
		f.cursor = r.seq
	}
	return len(got), nil
}
