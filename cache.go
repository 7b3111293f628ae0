package apikey

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Cache wraps any KeyStore with a verification cache, for stores that pay a
// network round trip per lookup (pgstore). Put it between the store and the
// middleware:
//
//	cache := apikey.NewCache(pg, apikey.CacheTTL(30*time.Second))
//	handler := apikey.Middleware(cache, opts...)(mux)
//
// Found keys are kept for the TTL, unknown digests for the shorter negative
// TTL (so a flood of bad keys does not reach the database), and many
// concurrent misses on one digest cost one store query. The cache holds at
// most CacheSize entries, evicting arbitrary ones when full.
//
// Revocation bound: a key revoked in the store can still be accepted through
// the cache for at most the TTL — unless something tells the cache sooner.
// Call Invalidate (pgstore's Listen does, through LISTEN/NOTIFY) and the
// entry is gone at once; a lookup that was already in flight when
// Invalidate ran does not put its result back.
//
// Faults: each store call is bounded by the lookup timeout; an error or a
// timeout is returned as is, so the middleware answers 503. With
// CacheStaleIfError(d), while the store is failing, a key that was validated
// within the last d keeps working from its last known state; a key whose
// invalidation this replica has seen never does.
type Cache struct {
	store    KeyStore
	ttl      time.Duration
	negTTL   time.Duration
	timeout  time.Duration
	stale    time.Duration
	clock    Clock
	perShard int

	shards [cacheShards]cacheShard
	group  singleflight.Group
	epoch  atomic.Uint64 // bumped by every invalidation

	hits, negHits, misses, storeCalls, staleServed, evictions atomic.Uint64
}

const cacheShards = 32

type cacheShard struct {
	mu sync.RWMutex
	m  map[Digest]*cacheEntry
}

// cacheEntry is immutable once published.
type cacheEntry struct {
	key       *Key  // nil: the digest is unknown to the store
	expires   int64 // unix nanoseconds
	validated int64 // when the store last confirmed the key
}

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// CacheTTL sets how long a found key is served from the cache. It is the
// revocation bound when nothing invalidates entries. Default 30 s.
func CacheTTL(d time.Duration) CacheOption { return func(c *Cache) { c.ttl = d } }

// CacheNegativeTTL sets how long an unknown digest is remembered. Default
// 5 s: long enough to absorb a flood of one bad key, short enough that a
// key created elsewhere is soon usable.
func CacheNegativeTTL(d time.Duration) CacheOption { return func(c *Cache) { c.negTTL = d } }

// CacheSize bounds the number of entries. Default 100,000.
func CacheSize(n int) CacheOption {
	return func(c *Cache) { c.perShard = (n + cacheShards - 1) / cacheShards }
}

// CacheLookupTimeout bounds each store call. Default 2 s.
func CacheLookupTimeout(d time.Duration) CacheOption { return func(c *Cache) { c.timeout = d } }

// CacheStaleIfError keeps serving a key validated within the last d while
// the store fails. Default 0: off.
func CacheStaleIfError(d time.Duration) CacheOption { return func(c *Cache) { c.stale = d } }

// CacheClock sets the clock for TTLs. Default SystemClock.
func CacheClock(clock Clock) CacheOption { return func(c *Cache) { c.clock = clock } }

// NewCache wraps store. It panics if store is nil.
func NewCache(store KeyStore, opts ...CacheOption) *Cache {
	if store == nil {
		panic("apikey: NewCache: nil KeyStore")
	}
	c := &Cache{
		store:   store,
		ttl:     30 * time.Second,
		negTTL:  5 * time.Second,
		timeout: 2 * time.Second,
		clock:   SystemClock,
	}
	CacheSize(100_000)(c)
	for _, o := range opts {
		o(c)
	}
	if c.perShard < 1 {
		c.perShard = 1
	}
	for i := range c.shards {
		c.shards[i].m = make(map[Digest]*cacheEntry)
	}
	return c
}

func (c *Cache) shard(d Digest) *cacheShard { return &c.shards[d[1]%cacheShards] }

func (c *Cache) get(d Digest) *cacheEntry {
	sh := c.shard(d)
	sh.mu.RLock()
	e := sh.m[d]
	sh.mu.RUnlock()
	return e
}

// FastLookup reports true: hits answer from memory and misses carry the
// cache's own lookup timeout, so the middleware adds no deadline.
func (c *Cache) FastLookup() bool { return true }

// Config forwards the wrapped store's configuration, if it has one.
func (c *Cache) Config() StoreConfig {
	if cfg, ok := c.store.(Configured); ok {
		return cfg.Config()
	}
	return StoreConfig{}.WithDefaults()
}

// Rehash forwards pepper rotation to the wrapped store, when it can, and
// forgets the old entries of the key. It does nothing for a store without
// the Rehasher capability.
func (c *Cache) Rehash(ctx context.Context, id string, d Digest, pepperID string) error {
	rh, ok := c.store.(Rehasher)
	if !ok {
		return nil
	}
	err := rh.Rehash(ctx, id, d, pepperID)
	c.InvalidateKey(id) // the entry under the old digest
	c.Invalidate(d)     // a negative entry under the new one
	return err
}

// Lookup implements KeyStore.
func (c *Cache) Lookup(ctx context.Context, d Digest) (*Key, error) {
	now := c.clock.Now().UnixNano()
	epoch := c.epoch.Load() // before reading the entry: see the stale check
	e := c.get(d)
	if e != nil && now < e.expires {
		if e.key == nil {
			c.negHits.Add(1)
			return nil, ErrNotFound
		}
		c.hits.Add(1)
		return e.key, nil
	}
	c.misses.Add(1)
	return c.miss(ctx, d, e, now, epoch)
}

// miss asks the store once for all concurrent callers. It is apart from
// Lookup so that the variables its closure captures are not moved to the
// heap on the hit path.
func (c *Cache) miss(ctx context.Context, d Digest, e *cacheEntry, now int64, epoch uint64) (*Key, error) {
	// Callers that arrive after an invalidation start their own query.
	flight := string(d[:]) + strconv.FormatUint(epoch, 36)
	ch := c.group.DoChan(flight, func() (any, error) { return c.fetch(ctx, d, epoch) })
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if res.Err == nil {
		return res.Val.(*Key), nil
	}
	if errors.Is(res.Err, ErrNotFound) {
		return nil, res.Err
	}
	// Serve stale only if no invalidation ran since the entry was read.
	if e != nil && e.key != nil && c.stale > 0 && now-e.validated <= int64(c.stale) && c.epoch.Load() == epoch {
		c.staleServed.Add(1)
		return e.key, nil
	}
	return nil, res.Err
}

// fetch asks the store, detached from the first caller's cancellation so
// that its departure does not fail the others, and caches the answer unless
// an invalidation happened meanwhile.
func (c *Cache) fetch(ctx context.Context, d Digest, epoch uint64) (*Key, error) {
	// A flight that ended just before this one began has filled the entry.
	if e := c.get(d); e != nil && c.clock.Now().UnixNano() < e.expires {
		if e.key == nil {
			return nil, ErrNotFound
		}
		return e.key, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	c.storeCalls.Add(1)
	k, err := safeLookup(ctx, c.store, d)
	now := c.clock.Now().UnixNano()
	switch {
	case err == nil && k == nil:
		return nil, errors.New("apikey: cache: store returned no key and no error")
	case err == nil:
		c.put(d, &cacheEntry{key: k, expires: now + int64(c.ttl), validated: now}, epoch)
		return k, nil
	case errors.Is(err, ErrNotFound):
		c.put(d, &cacheEntry{expires: now + int64(c.negTTL)}, epoch)
		return nil, err
	default:
		return nil, err
	}
}

func (c *Cache) put(d Digest, e *cacheEntry, epoch uint64) {
	sh := c.shard(d)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Checked under the shard lock: Invalidate bumps the epoch before it
	// takes the lock, so either it deletes this entry or we see its bump.
	if c.epoch.Load() != epoch {
		return
	}
	if _, exists := sh.m[d]; !exists && len(sh.m) >= c.perShard {
		for victim := range sh.m { // map iteration starts at random
			delete(sh.m, victim)
			c.evictions.Add(1)
			break
		}
	}
	sh.m[d] = e
}

// Invalidate forgets the digest at once: the next lookup asks the store, and
// stale-if-error never serves it again from this entry.
func (c *Cache) Invalidate(d Digest) {
	c.epoch.Add(1)
	sh := c.shard(d)
	sh.mu.Lock()
	delete(sh.m, d)
	sh.mu.Unlock()
}

// InvalidateKey forgets every entry of the key with this ID. It scans the
// whole cache; prefer Invalidate when the digest is known.
func (c *Cache) InvalidateKey(id string) {
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for d, e := range sh.m {
			if e.key != nil && e.key.ID == id {
				delete(sh.m, d)
			}
		}
		sh.mu.Unlock()
	}
}

// Purge empties the cache, for example after the invalidation feed was
// interrupted and notifications may have been missed.
func (c *Cache) Purge() {
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

// CacheStats counts what the cache did.
type CacheStats struct {
	Entries      int
	Hits         uint64 // found keys served from the cache
	NegativeHits uint64 // unknown digests answered from the cache
	Misses       uint64 // lookups that needed the store
	StoreCalls   uint64 // queries actually sent (misses coalesce)
	StaleServed  uint64 // keys served stale while the store failed
	Evictions    uint64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	s := CacheStats{
		Hits: c.hits.Load(), NegativeHits: c.negHits.Load(), Misses: c.misses.Load(),
		StoreCalls: c.storeCalls.Load(), StaleServed: c.staleServed.Load(), Evictions: c.evictions.Load(),
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		s.Entries += len(sh.m)
		sh.mu.RUnlock()
	}
	return s
}
