package cache

import (
	"time"

	"github.com/keygate/apikey"
)

// Invalidate forgets the digest at once: the next lookup asks the store, and
// stale-if-error never serves it again from this entry.
func (c *Cache) Invalidate(d apikey.Digest) {
	c.epoch.Add(1)
	sh := c.shard(d)
	sh.mu.Lock()
	if e := sh.pos[d]; e != nil {
		c.removeKey(sh, e, true)
	}
	c.dropNegative(sh, d)
	sh.mu.Unlock()
}

// InvalidateKey forgets every entry of the key with this ID (after a pepper
// rehash a key may be cached under two digests), at the cost of a map
// lookup per entry.
func (c *Cache) InvalidateKey(id string) {
	c.epoch.Add(1) // before reading the index: see putKey
	var buf [4]apikey.Digest
	for _, d := range c.index.digests(id, buf[:0]) {
		sh := c.shard(d)
		sh.mu.Lock()
		if e := sh.pos[d]; e != nil && e.key.ID == id {
			c.removeKey(sh, e, true)
		}
		sh.mu.Unlock()
	}
}

// Purge empties the cache, for example after the invalidation feed was
// interrupted and notifications may have been missed. It takes time in
// proportion to the entries held.
func (c *Cache) Purge() {
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, e := range sh.pos {
			c.index.remove(e.key.ID, e.d)
		}
		c.positives.Add(-int64(len(sh.pos)))
		clear(sh.pos)
		sh.slots, sh.free, sh.hand = nil, nil, 0
		clear(sh.neg)
		sh.ring, sh.head, sh.n = nil, 0, 0
		sh.mu.Unlock()
	}
}

// Synced tells the cache that every invalidation committed before asOf has
// been delivered to Invalidate or InvalidateKey. An invalidation feed
// (pgstore's Listen) calls it after each catch-up, at least every
// Config.MaxFeedLag while it is healthy. From the first call on, a cached
// key is served only while the later of its validation and the last asOf
// is within MaxFeedLag; past that, the store is asked again. An asOf older
// than one already given is ignored.
func (c *Cache) Synced(asOf time.Time) {
	v := int64(asOf.Sub(c.base))
	if v == noFeed {
		v++
	}
	for {
		cur := c.feedAsOf.Load()
		if cur != noFeed && v <= cur {
			return
		}
		if c.feedAsOf.CompareAndSwap(cur, v) {
			return
		}
	}
}
