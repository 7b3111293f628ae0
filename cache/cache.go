// Package cache puts a verification cache in front of any apikey.KeyStore,
// for stores that pay a network round trip per lookup (pgstore):
//
//	c, err := cache.New(pg, cache.Config{TTL: 30 * time.Second})
//	mw, err := apikey.New(apikey.Config{Keys: keys, Store: c})
//
// Found keys are kept for the TTL, unknown digests for the shorter negative
// TTL (so a flood of bad keys does not reach the database), and concurrent
// misses on one digest cost one store query.
//
// Revocation bound: a key revoked in the store can still be accepted
// through the cache for at most the TTL, unless something tells the cache
// sooner: Invalidate (pgstore's Listen does, through LISTEN/NOTIFY) forgets
// an entry at once, and a lookup that was already in flight when
// Invalidate ran does not put its result back.
//
// Faults: each store call is bounded by Config.LookupTimeout; an error, a
// timeout or a panic is returned as an error, so the middleware answers 503.
// With Config.StaleIfError, while the store is failing, a key validated
// within that long keeps working from its last known state; a key whose
// invalidation this cache has seen never does.
package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keygate/apikey"
)

// Cache is an apikey.KeyStore that answers from memory what its store
// answered recently. It is safe for concurrent use.
type Cache struct {
	store    apikey.KeyStore
	ttl      time.Duration
	negTTL   time.Duration
	timeout  time.Duration
	stale    time.Duration
	clock    func() time.Time
	perShard int

	shards [cacheShards]cacheShard
	group  singleflight.Group
	epoch  atomic.Uint64 // bumped by every invalidation

	hits, negHits, misses, storeCalls, staleServed, evictions atomic.Uint64
}

// Config configures a Cache. A zero field means its default.
type Config struct {
	// TTL is how long a found key is served from the cache: the revocation
	// bound when nothing invalidates entries. Default 30 s.
	TTL time.Duration
	// NegativeTTL is how long an unknown digest is remembered: long enough
	// to absorb a flood of one bad key, short enough that a key created
	// elsewhere is soon usable. Default 5 s.
	NegativeTTL time.Duration
	// Size bounds the number of entries; a full cache evicts arbitrary
	// ones. Default 100,000.
	Size int
	// LookupTimeout bounds each store call. Default 2 s.
	LookupTimeout time.Duration
	// StaleIfError keeps serving a key validated within this long while the
	// store fails. Default 0: off.
	StaleIfError time.Duration
	// Clock tells the time for TTLs. Default time.Now; give the
	// KeyConfig's Clock in tests.
	Clock func() time.Time
}

// New wraps store. Its error says which field of cfg to change.
func New(store apikey.KeyStore, cfg Config) (*Cache, error) {
	if store == nil {
		return nil, fmt.Errorf("cache: New: %w: store is nil", apikey.ErrInvalid)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TTL", cfg.TTL}, {"NegativeTTL", cfg.NegativeTTL}, {"LookupTimeout", cfg.LookupTimeout}, {"StaleIfError", cfg.StaleIfError}} {
		if d.v < 0 {
			return nil, fmt.Errorf("cache: New: %w: Config.%s is negative", apikey.ErrInvalid, d.name)
		}
	}
	if cfg.Size < 0 {
		return nil, fmt.Errorf("cache: New: %w: Config.Size is negative", apikey.ErrInvalid)
	}
	c := &Cache{
		store:   store,
		ttl:     cmp.Or(cfg.TTL, 30*time.Second),
		negTTL:  cmp.Or(cfg.NegativeTTL, 5*time.Second),
		timeout: cmp.Or(cfg.LookupTimeout, 2*time.Second),
		stale:   cfg.StaleIfError,
		clock:   cfg.Clock,
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	size := cmp.Or(cfg.Size, 100_000)
	c.perShard = max(1, (size+cacheShards-1)/cacheShards)
	for i := range c.shards {
		c.shards[i].m = make(map[apikey.Digest]*cacheEntry)
	}
	return c, nil
}

const cacheShards = 32

type cacheShard struct {
	mu sync.RWMutex
	m  map[apikey.Digest]*cacheEntry
}

// cacheEntry is immutable once published.
type cacheEntry struct {
	key       *apikey.Key // nil: the digest is unknown to the store
	expires   int64       // unix nanoseconds
	validated int64       // when the store last confirmed the key
}

func (c *Cache) shard(d apikey.Digest) *cacheShard { return &c.shards[d[1]%cacheShards] }

func (c *Cache) get(d apikey.Digest) *cacheEntry {
	sh := c.shard(d)
	sh.mu.RLock()
	e := sh.m[d]
	sh.mu.RUnlock()
	return e
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

// Lookup implements apikey.KeyStore.
func (c *Cache) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	now := c.clock().UnixNano()
	epoch := c.epoch.Load() // before reading the entry: see the stale check
	e := c.get(d)
	if e != nil && now < e.expires {
		if e.key == nil {
			c.negHits.Add(1)
			return nil, apikey.ErrNotFound
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
func (c *Cache) miss(ctx context.Context, d apikey.Digest, e *cacheEntry, now int64, epoch uint64) (*apikey.Key, error) {
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
		return res.Val.(*apikey.Key), nil
	}
	if errors.Is(res.Err, apikey.ErrNotFound) {
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
func (c *Cache) fetch(ctx context.Context, d apikey.Digest, epoch uint64) (*apikey.Key, error) {
	// A flight that ended just before this one began has filled the entry.
	if e := c.get(d); e != nil && c.clock().UnixNano() < e.expires {
		if e.key == nil {
			return nil, apikey.ErrNotFound
		}
		return e.key, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	c.storeCalls.Add(1)
	k, err := c.safeLookup(ctx, d)
	now := c.clock().UnixNano()
	switch {
	case err == nil && k == nil:
		return nil, errors.New("apikey: cache: store returned no key and no error")
	case err == nil:
		c.put(d, &cacheEntry{key: k, expires: now + int64(c.ttl), validated: now}, epoch)
		return k, nil
	case errors.Is(err, apikey.ErrNotFound):
		c.put(d, &cacheEntry{expires: now + int64(c.negTTL)}, epoch)
		return nil, err
	default:
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

func (c *Cache) put(d apikey.Digest, e *cacheEntry, epoch uint64) {
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
func (c *Cache) Invalidate(d apikey.Digest) {
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

// Stats counts what the cache did.
type Stats struct {
	Entries      int
	Hits         uint64 // found keys served from the cache
	NegativeHits uint64 // unknown digests answered from the cache
	Misses       uint64 // lookups that needed the store
	StoreCalls   uint64 // queries actually sent (misses coalesce)
	StaleServed  uint64 // keys served stale while the store failed
	Evictions    uint64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	s := Stats{
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
