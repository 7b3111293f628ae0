// Package cache puts a verification cache in front of any apikey.KeyStore,
// for stores that pay a network round trip per lookup (pgstore):
//
//	c, err := cache.New(pg, cache.Config{TTL: 30 * time.Second})
//	mw, err := apikey.New(apikey.Config{Keys: keys, Store: c})
//
// Found keys are kept for the TTL, unknown digests for the shorter negative
// TTL, and concurrent misses on one digest cost one store query. Each
// entry's lifetime is drawn from the last 15% below its TTL, so keys cached
// together are not refilled together, and a key used in the last 15% of its
// lifetime is refreshed in the background while the cached answer is
// served: a key in steady use does not wait for the store.
//
// # Revocation bound
//
// Without an invalidation feed, a key revoked in the store can still be
// accepted through the cache for at most the TTL. With one (pgstore's
// Listen, through LISTEN/NOTIFY), Invalidate and InvalidateKey forget a
// key at once (a lookup already in flight does not put its answer back),
// and the feed calls Synced after each catch-up. While it keeps syncing,
// entries live for their TTL; when it falls behind by more than
// Config.MaxFeedLag (its connection is down, or silent), cached keys are
// checked with the store again, so a revocation is missed for at most
// MaxFeedLag (default 1 s) while the store answers.
//
// # Floods
//
// Unknown digests are remembered in a table of their own, bounded by
// Config.NegativeSize, that forgets its oldest when full: a flood of bad
// keys costs one store query per distinct digest and never evicts a found
// key. Found keys are bounded by Config.Size and evicted by CLOCK (second
// chance), which keeps the keys in use and lets a sweep of once-used ones
// go first.
//
// # Store failures
//
// Each store call is bounded by Config.LookupTimeout; an error, a timeout
// or a panic fails the lookup, so the middleware answers 503, never 401.
// Stale-if-error, on by default: while the store fails for this replica,
// a key the cache knew valid within Config.StaleIfError (default 5 s)
// keeps working from its last known state. So a key revoked elsewhere can
// be accepted for at most StaleIfError after the cache last knew it valid;
// a key this cache has seen invalidated, or an unknown digest, never is.
// Config.NoStale switches this off.
//
// After Config.BreakerFailures consecutive failures (default 5) a circuit
// breaker opens: lookups that need the store fail at once, with an error
// wrapping ErrStoreDown, instead of piling up on a store that is down;
// stale-if-error still serves what it may. One lookup per
// Config.BreakerProbe (default 250 ms) probes the store, and the first
// that succeeds closes the breaker.
//
// # Time
//
// Lifetimes are measured on the monotonic clock when Config.Clock is
// time.Now (the default): a step of the wall clock cannot extend them.
package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keygate/apikey"
)

// Cache is an apikey.KeyStore that answers from memory what its store
// answered recently. It is safe for concurrent use.
type Cache struct {
	store       apikey.KeyStore
	ttl         time.Duration
	negTTL      time.Duration
	timeout     time.Duration
	stale       time.Duration // 0: off
	maxLag      time.Duration
	clock       func() time.Time
	base        time.Time // times are durations since base: clock.go
	size        int       // found keys
	negPerShard int

	shards    [numShards]shard
	index     *keyIndex
	group     singleflight.Group
	br        breaker
	sweepNext atomic.Uint32
	positives atomic.Int64 // found keys held, changed under a shard lock

	epoch    atomic.Uint64 // bumped by every invalidation
	feedAsOf atomic.Int64  // time.Duration since base of the feed's last Synced; noFeed before

	misses, storeCalls, staleServed, evictions, negEvictions, refreshes, fastFails atomic.Uint64
}

// noFeed is feedAsOf before the first Synced.
const noFeed = math.MinInt64

// New wraps store. Its error says which field of cfg to change.
func New(store apikey.KeyStore, cfg Config) (*Cache, error) {
	if store == nil {
		return nil, fmt.Errorf("cache: New: %w: store is nil", apikey.ErrInvalid)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Cache{
		store:   store,
		ttl:     cmp.Or(cfg.TTL, 30*time.Second),
		negTTL:  cmp.Or(cfg.NegativeTTL, 5*time.Second),
		timeout: cmp.Or(cfg.LookupTimeout, 2*time.Second),
		stale:   cmp.Or(cfg.StaleIfError, 5*time.Second),
		maxLag:  cmp.Or(cfg.MaxFeedLag, time.Second),
		clock:   cfg.Clock,
		index:   newKeyIndex(),
		br: breaker{
			threshold:  int64(cmp.Or(cfg.BreakerFailures, 5)),
			probeEvery: cmp.Or(cfg.BreakerProbe, 250*time.Millisecond),
			onChange:   cfg.OnBreaker,
		},
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if cfg.NoStale {
		c.stale = 0
	}
	c.base = c.clock()
	c.feedAsOf.Store(noFeed)
	c.size = cmp.Or(cfg.Size, 100_000)
	c.negPerShard = max(1, (cmp.Or(cfg.NegativeSize, 100_000)+numShards-1)/numShards)
	for i := range c.shards {
		c.shards[i].pos = make(map[apikey.Digest]*entry)
		c.shards[i].neg = make(map[apikey.Digest]negEntry)
	}
	return c, nil
}

// Lookup implements apikey.KeyStore.
func (c *Cache) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	now := c.now()
	epoch := c.epoch.Load() // before reading the entry: see staleKey
	sh := c.shard(d)
	var (
		n     negEntry
		isNeg bool
	)
	sh.mu.RLock()
	e := sh.pos[d]
	if e == nil {
		n, isNeg = sh.neg[d]
	}
	sh.mu.RUnlock()
	if e != nil {
		if now < e.expires && c.current(e, now) {
			if !e.ref.Load() {
				e.ref.Store(true)
			}
			if now >= e.refreshAt && !e.refreshing.Load() {
				c.refreshAhead(d, e, epoch)
			}
			sh.hits.Add(1)
			return e.key, nil
		}
	} else if isNeg && now < n.expires {
		sh.negHits.Add(1)
		return nil, apikey.ErrNotFound
	}
	c.misses.Add(1)
	return c.miss(ctx, d, e, now, epoch)
}

// current says whether the invalidation feed vouches for e at now: always
// before the feed's first Synced; after, while the later of e's validation
// and the feed's last sync is within MaxFeedLag.
func (c *Cache) current(e *entry, now time.Duration) bool {
	asOf := c.feedAsOf.Load()
	return asOf == noFeed || now-max(e.validated, time.Duration(asOf)) <= c.maxLag
}

// knownAt is when the cache last knew e valid: its validation, or the
// feed's last sync if later.
func (c *Cache) knownAt(e *entry) time.Duration {
	if asOf := c.feedAsOf.Load(); asOf != noFeed {
		return max(e.validated, time.Duration(asOf))
	}
	return e.validated
}

// flight names the query for d among those started at epoch: callers that
// arrive after an invalidation start their own query.
func flight(d apikey.Digest, epoch uint64) string {
	return string(d[:]) + strconv.FormatUint(epoch, 36)
}

// miss asks the store once for all concurrent callers, unless the breaker
// is open. It is apart from Lookup so that the variables its closure
// captures are not moved to the heap on the hit path.
func (c *Cache) miss(ctx context.Context, d apikey.Digest, e *entry, now time.Duration, epoch uint64) (*apikey.Key, error) {
	var err error
	if !c.br.allow(now) {
		c.fastFails.Add(1)
		err = errBreakerOpen
	} else {
		ch := c.group.DoChan(flight(d, epoch), func() (any, error) { return c.fetch(ctx, d, epoch, false) })
		var res singleflight.Result
		select {
		case res = <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if res.Err == nil {
			return res.Val.(*apikey.Key), nil
		}
		if errors.Is(res.Err, apikey.ErrNotFound) {
			return nil, res.Err
		}
		err = res.Err
	}
	if k := c.staleKey(e, now, epoch); k != nil {
		return k, nil
	}
	return nil, err
}

// staleKey is e's key if stale-if-error may serve it at now: e is a found
// key the cache knew valid within StaleIfError, and no invalidation ran
// since the lookup read epoch (before it read e).
func (c *Cache) staleKey(e *entry, now time.Duration, epoch uint64) *apikey.Key {
	if e == nil || c.stale == 0 || now-c.knownAt(e) > c.stale || c.epoch.Load() != epoch {
		return nil
	}
	c.staleServed.Add(1)
	return e.key
}

// refreshAhead starts one background refresh of e, a hit in the last 15%
// of its lifetime, unless the breaker is open. It is apart from Lookup (and not inlined) so that the
// goroutine's copy of d is not moved to the heap on the hit path.
//
//go:noinline
func (c *Cache) refreshAhead(d apikey.Digest, e *entry, epoch uint64) {
	if e.refreshing.CompareAndSwap(false, true) && c.br.allow(c.now()) {
		c.refreshes.Add(1)
		go c.refresh(d, epoch)
	}
}

// refresh asks the store for d, through the flight that misses on d
// would join, and caches the answer: a new entry, or, if the key is gone,
// a negative one. A failure leaves the entry to expire; an invalidation
// since epoch wins.
func (c *Cache) refresh(d apikey.Digest, epoch uint64) {
	_, _, _ = c.group.Do(flight(d, epoch), func() (any, error) { return c.fetch(context.Background(), d, epoch, true) })
}

// errNoKey is a store's answer of neither a key nor an error.
var errNoKey = errors.New("cache: store returned no key and no error")

// fetch asks the store, detached from the first caller's cancellation so
// that its departure does not fail the others, and caches the answer unless
// an invalidation happened meanwhile. A refresh asks even if the entry is
// current.
func (c *Cache) fetch(ctx context.Context, d apikey.Digest, epoch uint64, refresh bool) (*apikey.Key, error) {
	start := c.now()
	if !refresh { // a flight that ended just before this one began has filled the entry
		sh := c.shard(d)
		sh.mu.RLock()
		e := sh.pos[d]
		n, isNeg := sh.neg[d]
		sh.mu.RUnlock()
		if e != nil && start < e.expires && c.current(e, start) {
			return e.key, nil
		}
		if e == nil && isNeg && start < n.expires {
			return nil, apikey.ErrNotFound
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	c.storeCalls.Add(1)
	k, err := c.safeLookup(ctx, d)
	if err == nil && k == nil {
		err = errNoKey
	}
	now := c.now()
	switch {
	case err == nil:
		c.br.success()
		// Lifetimes count from the start of the query: the store's answer
		// may be that old.
		life := jitter(c.ttl)
		c.putKey(&entry{
			key: k, d: d, validated: start,
			expires:   addSat(start, life),
			refreshAt: addSat(start, life-refreshWindow(life)),
		}, epoch, now)
		return k, nil
	case errors.Is(err, apikey.ErrNotFound):
		c.br.success()
		c.putNegative(d, addSat(start, jitter(c.negTTL)), epoch, now)
		return nil, err
	default:
		c.br.failure(now)
		return nil, err
	}
}

// safeLookup asks the store and turns a panic into an error: the store runs
// on a goroutine of its own here, where a panic would end the program.
func (c *Cache) safeLookup(ctx context.Context, d apikey.Digest) (k *apikey.Key, err error) {
	defer func() {
		if p := recover(); p != nil {
			k, err = nil, fmt.Errorf("cache: store panicked: %v", p)
		}
	}()
	return c.store.Lookup(ctx, d)
}

// Rehash forwards pepper rotation to the wrapped store and forgets the
// key's entries. A store that is not an apikey.Rehasher cannot re-file a
// key: the error wraps errors.ErrUnsupported, and the key stays filed
// under its old pepper.
func (c *Cache) Rehash(ctx context.Context, id string, d apikey.Digest, pepperID string) error {
	rh, ok := c.store.(apikey.Rehasher)
	if !ok {
		return fmt.Errorf("cache: rehash %s: the wrapped store is not an apikey.Rehasher: %w", id, errors.ErrUnsupported)
	}
	err := rh.Rehash(ctx, id, d, pepperID)
	c.InvalidateKey(id) // the entry under the old digest
	c.Invalidate(d)     // a negative entry under the new one
	return err
}

// Stats counts what the cache did.
type Stats struct {
	Entries           int    // found keys and unknown digests held
	NegativeEntries   int    // of which unknown digests
	Hits              uint64 // found keys served from the cache
	NegativeHits      uint64 // unknown digests answered from the cache
	Misses            uint64 // lookups that needed the store
	StoreCalls        uint64 // queries actually sent (misses coalesce)
	StaleServed       uint64 // keys served stale while the store failed
	Evictions         uint64 // found keys evicted to make room (Size)
	NegativeEvictions uint64 // unknown digests forgotten early to make room (NegativeSize)
	Refreshes         uint64 // background refreshes of keys near the end of their lifetime
	FastFails         uint64 // lookups failed without a store call: the breaker was open
	BreakerOpen       bool   // the circuit breaker is open now
	// FeedLag is how long ago, by the cache's clock, the invalidation feed
	// last synced (see Synced); 0 before the first Synced.
	FeedLag time.Duration
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Misses: c.misses.Load(), StoreCalls: c.storeCalls.Load(), StaleServed: c.staleServed.Load(),
		Evictions: c.evictions.Load(), NegativeEvictions: c.negEvictions.Load(), Refreshes: c.refreshes.Load(),
		FastFails: c.fastFails.Load(), BreakerOpen: c.br.open.Load(),
	}
	if asOf := c.feedAsOf.Load(); asOf != noFeed {
		s.FeedLag = max(0, c.now()-time.Duration(asOf))
	}
	for i := range c.shards {
		sh := &c.shards[i]
		s.Hits += sh.hits.Load()
		s.NegativeHits += sh.negHits.Load()
		sh.mu.RLock()
		s.Entries += len(sh.pos) + len(sh.neg)
		s.NegativeEntries += len(sh.neg)
		sh.mu.RUnlock()
	}
	return s
}
