package cache

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/apikey"
)

const numShards = 32

// shard holds the entries of the digests whose second byte falls on it:
// found keys in pos, evicted by a CLOCK over slots, and unknown digests in
// neg, dropped oldest first through the FIFO ring (negative.go).
type shard struct {
	mu sync.RWMutex
	// Hit counters live next to the lock that the hit path writes anyway
	// (RLock), rather than in one cache line that every core fights over.
	hits, negHits atomic.Uint64

	pos   map[apikey.Digest]*entry
	slots []*entry // the CLOCK: a nil slot is free and listed in free
	free  []int32
	hand  int

	neg  map[apikey.Digest]negEntry
	ring []negSlot // FIFO of negative entries, oldest at head
	head int
	n    int    // slots in use in ring
	seq  uint64 // stamps negative entries, to tell a ring slot's own entry

	_ [64]byte // keeps the next shard's lock off this shard's cache lines
}

// entry is a found key. Its fields are set before it is published and
// never change, except the atomic flags and slot (under the shard lock).
type entry struct {
	key       *apikey.Key
	d         apikey.Digest
	validated time.Duration // when the store was asked (since Cache.base)
	refreshAt time.Duration // from then on, a hit starts a refresh
	expires   time.Duration
	slot      int32

	// ref is the CLOCK's "referenced" bit, set by hits. A hit loads it
	// first, so a hot key does not write its cache line on every hit.
	ref        atomic.Bool
	refreshing atomic.Bool // a refresh of this entry has started
}

func (c *Cache) shard(d apikey.Digest) *shard { return &c.shards[d[1]%numShards] }

// putKey caches e (a found key) unless an invalidation happened since the
// lookup that fetched it read epoch. It reports whether e was cached.
func (c *Cache) putKey(e *entry, epoch uint64, now time.Duration) bool {
	sh := c.shard(e.d)
	sh.mu.Lock()
	defer c.sweepAnother(now)
	defer sh.mu.Unlock()
	// The epoch is checked under the shard lock, so an Invalidate (which
	// bumps the epoch before it takes that lock) either deletes e or makes
	// this check fail; and under the index lock together with the index
	// update, so an InvalidateKey (which bumps the epoch before it reads
	// the index) either finds e.d there or makes this check fail.
	if !c.index.add(e.key.ID, e.d, func() bool { return c.epoch.Load() == epoch }) {
		return false
	}
	c.dropNegative(sh, e.d)
	c.sweepNegative(sh, now)
	if old := sh.pos[e.d]; old != nil { // a refresh: the same slot, hot or not
		e.slot = old.slot
		e.ref.Store(old.ref.Load())
		sh.slots[e.slot] = e
		sh.pos[e.d] = e
		if old.key.ID != e.key.ID {
			c.index.remove(old.key.ID, old.d)
		}
		return true
	}
	e.slot = c.claimSlot(sh, now)
	sh.slots[e.slot] = e
	sh.pos[e.d] = e
	return true
}

// claimSlot returns a free slot of sh for a new found key, first evicting
// a found key if the cache holds Size of them. The count is global, so that
// an unlucky shard does not evict while the cache has room. Called under
// sh.mu.
func (c *Cache) claimSlot(sh *shard, now time.Duration) int32 {
	if c.positives.Load() >= int64(c.size) {
		if len(sh.pos) > 0 {
			slot := c.clockVictim(sh, now)
			c.positives.Add(1) // clockVictim counted its victim out
			return slot
		}
		c.evictElsewhere(sh, now)
	}
	c.positives.Add(1)
	if n := len(sh.free); n > 0 {
		s := sh.free[n-1]
		sh.free = sh.free[:n-1]
		return s
	}
	sh.slots = append(sh.slots, nil)
	return int32(len(sh.slots) - 1)
}

// clockVictim runs sh's CLOCK hand: it clears the referenced bits it
// passes and evicts the first entry whose bit was clear, or that has
// expired, and returns its slot, not freed. Called under sh.mu, with
// entries in sh.
func (c *Cache) clockVictim(sh *shard, now time.Duration) int32 {
	// After one turn every bit is clear, so this ends within two.
	for turn := 0; ; turn++ {
		h := sh.hand
		sh.hand++
		if sh.hand >= len(sh.slots) {
			sh.hand = 0
		}
		v := sh.slots[h]
		if v == nil {
			continue
		}
		if v.ref.Load() && now < v.expires && turn < 2*len(sh.slots) {
			v.ref.Store(false)
			continue
		}
		c.removeKey(sh, v, false)
		c.evictions.Add(1)
		return int32(h)
	}
}

// evictElsewhere evicts a found key from another shard, for a put into sh
// (locked, and empty) while the cache is full. Other shards are only
// tried, never waited for (that could deadlock): under contention the
// cache may exceed Size by a few entries, which only matters for tiny
// sizes.
func (c *Cache) evictElsewhere(sh *shard, now time.Duration) {
	start := c.sweepNext.Load()
	for i := range uint32(numShards) {
		o := &c.shards[(start+i)%numShards]
		if o == sh || !o.mu.TryLock() {
			continue
		}
		if len(o.pos) > 0 {
			o.free = append(o.free, c.clockVictim(o, now))
			o.mu.Unlock()
			return
		}
		o.mu.Unlock()
	}
}

// removeKey forgets the found key e of sh, and frees its slot if
// freeSlot (else the caller reuses it). Called under sh.mu.
func (c *Cache) removeKey(sh *shard, e *entry, freeSlot bool) {
	delete(sh.pos, e.d)
	c.positives.Add(-1)
	sh.slots[e.slot] = nil
	if freeSlot {
		sh.free = append(sh.free, e.slot)
	}
	c.index.remove(e.key.ID, e.d)
}
