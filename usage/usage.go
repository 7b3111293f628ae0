// Package usage counts the requests served per key (authenticated and
// authorized: apikey.Config.Usage says which) off the request path, and
// hands the counts to an apikey.UsageStore in batches:
//
//	rec, err := usage.New(store, usage.Config{Interval: 10 * time.Second})
//	defer rec.Close() // after the server has stopped, before the store closes
//	mw, err := apikey.New(apikey.Config{Keys: keys, Store: store, Usage: rec})
//
// Record only updates an in-memory tally; a background goroutine coalesces
// the tallies and hands them to the store every interval, on Flush and on
// Close.
//
//   - Nothing is lost on a graceful Close: it stops taking records and
//     flushes what remains, retrying a failed flush. A process that is
//     killed loses what it had not flushed.
//   - Memory stays bounded: at most Config.MaxPending keys (give or take one
//     per shard under contention) are tallied between flushes; records of
//     further keys are dropped, and said to be: Stats.Dropped, a log line,
//     Close's error. They trigger an early flush, unless the store is
//     failing. Keys already tallied, a failed flush's among them, are
//     always counted, so a failing store holds at most twice MaxPending
//     keys: the batch waiting to be retried and the newer tallies.
//   - A failed flush never blocks requests: its batch is kept as it is and
//     retried at the next interval, under the same flush id, before
//     anything newer; newer records keep being tallied meanwhile. A store
//     that remembers flush ids (pgstore) therefore never counts a batch
//     twice, even when the failed attempt had committed after its caller
//     gave up.
//   - Live and test usage stay apart: each record carries the key's
//     environment, so a quota can count live usage alone.
package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/apikey"
)

// Recorder counts requests per key; it is an apikey.UsageRecorder. It is
// safe for concurrent use.
type Recorder struct {
	store    apikey.UsageStore
	interval time.Duration
	timeout  time.Duration
	max      int
	logger   *slog.Logger

	shards [usageShards]usageShard
	seed   maphash.Seed
	size   atomic.Int64 // keys tallied across shards

	flushMu  sync.Mutex                              // one flush at a time
	inFlight atomic.Pointer[map[string]apikey.Usage] // the batch being handed to the store, or waiting to be retried
	retry    *batch                                  // a failed flush's batch, retried as is (flushMu)

	kick    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	closed  atomic.Bool
	failing atomic.Bool // the last flush failed; retry at the interval
	once    sync.Once

	dropped  atomic.Uint64
	reported uint64 // dropped requests already logged (loop goroutine only)
	flushed  atomic.Uint64
	failures atomic.Uint64
}

// Config configures a Recorder. A zero field means its default.
type Config struct {
	// Interval between flushes. Default 10 s.
	Interval time.Duration
	// FlushTimeout bounds each call to the store. Default 5 s.
	FlushTimeout time.Duration
	// MaxPending bounds how many distinct keys are tallied between
	// flushes. Default 100,000.
	MaxPending int
	// Logger logs failed flushes. Default nil: not logged.
	Logger *slog.Logger
}

// New starts a recorder that flushes into store. Call Close when the
// server shuts down.
func New(store apikey.UsageStore, cfg Config) (*Recorder, error) {
	if store == nil {
		return nil, fmt.Errorf("usage: New: %w: store is nil", apikey.ErrInvalid)
	}
	for _, f := range []struct {
		name     string
		negative bool
	}{{"Interval", cfg.Interval < 0}, {"FlushTimeout", cfg.FlushTimeout < 0}, {"MaxPending", cfg.MaxPending < 0}} {
		if f.negative {
			return nil, fmt.Errorf("usage: New: %w: Config.%s is negative", apikey.ErrInvalid, f.name)
		}
	}
	u := &Recorder{
		store:    store,
		interval: cmp.Or(cfg.Interval, 10*time.Second),
		timeout:  cmp.Or(cfg.FlushTimeout, 5*time.Second),
		max:      cmp.Or(cfg.MaxPending, 100_000),
		logger:   cfg.Logger,
		seed:     maphash.MakeSeed(),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	for i := range u.shards {
		u.shards[i].m = make(map[string]apikey.Usage)
	}
	go u.loop()
	return u, nil
}

const usageShards = 16

type usageShard struct {
	mu sync.Mutex
	m  map[string]apikey.Usage
	_  [64 - 8 - 8]byte
}

// Record counts one request by k at time at. It never blocks on the store.
// After Close it counts the request as dropped (Stats).
func (u *Recorder) Record(k *apikey.Key, at time.Time) {
	sh := &u.shards[maphash.String(u.seed, k.ID)%usageShards]
	sh.mu.Lock()
	// Checked under the shard lock: Close's final flush takes every shard
	// lock after setting closed, so a record either lands before that
	// flush reads its shard or sees closed.
	if u.closed.Load() {
		sh.mu.Unlock()
		u.dropped.Add(1)
		return
	}
	p, ok := sh.m[k.ID]
	if !ok {
		if u.size.Load() >= int64(u.max) && !u.flying(k.ID) {
			sh.mu.Unlock()
			u.dropped.Add(1)
			if !u.failing.Load() {
				u.trigger() // flush early; but a failing store waits for the interval
			}
			return
		}
		u.size.Add(1)
		p = apikey.Usage{KeyID: k.ID, Environment: k.Environment}
	}
	p.Count++
	if at.After(p.LastUsed) {
		p.LastUsed = at
	}
	sh.m[k.ID] = p
	sh.mu.Unlock()
}

// flying reports whether a flush is handing a tally of this key to the
// store right now: such a key is already counted toward MaxPending, and a
// new tally of it is merged with the batch if the flush fails.
func (u *Recorder) flying(id string) bool {
	if b := u.inFlight.Load(); b != nil {
		_, ok := (*b)[id]
		return ok
	}
	return false
}

func (u *Recorder) trigger() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

func (u *Recorder) loop() {
	defer close(u.stopped)
	t := time.NewTicker(u.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-u.kick:
		case <-u.done:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), u.timeout)
		if err := u.Flush(ctx); err != nil && u.logger != nil {
			u.logger.Warn("usage: flush failed; will retry", slog.Any("error", err))
		}
		cancel()
		if d := u.dropped.Load(); d > u.reported && u.logger != nil {
			u.logger.Warn("usage: requests not counted: more keys than Config.MaxPending were used between flushes",
				slog.Uint64("dropped", d-u.reported), slog.Uint64("dropped_in_all", d))
			u.reported = d
		}
	}
}

// batch is what one flush hands to the store: an id, the same on every
// attempt, and the records.
type batch struct {
	id    string
	keys  map[string]apikey.Usage
	list  []apikey.Usage
	count uint64 // requests in the batch
}

// Flush hands everything tallied so far to the store now. A batch that
// failed earlier goes first, unchanged and under the same flush id; while
// it keeps failing, newer tallies wait. On failure the batch is kept for
// the next flush, its keys keep being counted, and the error is returned.
func (u *Recorder) Flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	if u.retry != nil {
		if err := u.send(ctx, u.retry); err != nil {
			return err
		}
		u.retry = nil
	}
	b := u.take()
	if b == nil {
		return nil
	}
	if err := u.send(ctx, b); err != nil {
		u.retry = b
		return err
	}
	return nil
}

// take empties the tallies into a new batch, or returns nil when there
// is nothing to flush.
func (u *Recorder) take() *batch {
	var all map[string]apikey.Usage
	for i := range u.shards {
		sh := &u.shards[i]
		sh.mu.Lock()
		m, n := sh.m, len(sh.m)
		if n > 0 {
			sh.m = make(map[string]apikey.Usage, n)
		}
		sh.mu.Unlock()
		if n == 0 {
			continue // m is still the shard's live map: never touch it
		}
		if all == nil {
			all = m
			continue
		}
		for id, p := range m {
			all[id] = p // shards hold disjoint keys
		}
	}
	if len(all) == 0 {
		return nil
	}
	b := &batch{id: uuid.NewString(), keys: all, list: make([]apikey.Usage, 0, len(all))}
	for _, p := range all {
		b.list = append(b.list, p)
		b.count += p.Count
	}
	return b
}

// send hands b to the store once. Its keys count as pending (toward
// MaxPending, and as allowed to be tallied again) until it succeeds.
func (u *Recorder) send(ctx context.Context, b *batch) error {
	u.inFlight.Store(&b.keys) // read-only from here on
	err := u.store.RecordUsage(ctx, b.id, b.list)
	if err != nil {
		u.failing.Store(true)
		u.failures.Add(1)
		return fmt.Errorf("usage: flush of %d keys: %w", len(b.list), err)
	}
	u.inFlight.Store(nil)
	u.size.Add(-int64(len(b.list)))
	u.failing.Store(false)
	u.flushed.Add(b.count)
	return nil
}

// closeAttempts is how many times Close tries the final flush.
const closeAttempts = 3

// Close stops the background flusher and flushes what remains, trying up to
// three times. It returns an error when any request went uncounted: the
// final flush failed (the error says how many requests were lost), or
// requests were dropped over Config.MaxPending. Close is idempotent.
func (u *Recorder) Close() error {
	var err error
	u.once.Do(func() {
		u.closed.Store(true)
		close(u.done)
		<-u.stopped
		for attempt := 0; attempt < closeAttempts; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), u.timeout)
			err = u.Flush(ctx)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
		}
		if err != nil {
			var lost uint64
			u.flushMu.Lock()
			if u.retry != nil {
				lost = u.retry.count
			}
			u.flushMu.Unlock()
			for i := range u.shards {
				sh := &u.shards[i]
				sh.mu.Lock()
				for _, p := range sh.m {
					lost += p.Count
				}
				sh.mu.Unlock()
			}
			err = fmt.Errorf("usage: Close: %d requests not recorded: %w", lost, err)
		}
		if d := u.dropped.Load(); d > 0 {
			err = errors.Join(err, fmt.Errorf("usage: Close: requests not counted, more keys than Config.MaxPending being used between flushes: %d", d))
		}
	})
	return err
}

// Stats reports a recorder's counters.
type Stats struct {
	Pending  int    // keys tallied and not yet flushed, a failed flush's batch included
	Flushed  uint64 // requests delivered to the store
	Dropped  uint64 // requests not counted: over Config.MaxPending, or after Close
	Failures uint64 // failed flushes (each retried)
}

// Stats returns the recorder's counters.
func (u *Recorder) Stats() Stats {
	return Stats{
		Pending:  int(u.size.Load()),
		Flushed:  u.flushed.Load(),
		Dropped:  u.dropped.Load(),
		Failures: u.failures.Load(),
	}
}

var _ apikey.UsageRecorder = (*Recorder)(nil)
