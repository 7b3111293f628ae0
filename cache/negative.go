package cache

import (
	"time"

	"github.com/keygate/apikey"
)

// Unknown digests are kept apart from found keys, so that a flood of them
// cannot evict a key. All have the same TTL (up to jitter), so the order
// they were put in is, near enough, the order they expire in: a FIFO ring
// per shard, oldest at its head. Each put pops the expired heads (each
// entry is popped once: amortized O(1), with no goroutine) and, when the
// shard's table is full, the oldest entry.
//
// A digest removed or put again leaves its old ring slot behind; seq tells
// a slot whose entry is still the one in the map from such a leftover.

type negEntry struct {
	expires time.Duration
	seq     uint64
}

type negSlot struct {
	d       apikey.Digest
	seq     uint64
	expires time.Duration
}

// putNegative remembers d as unknown until expires, unless an
// invalidation happened since the lookup read epoch. A found key cached
// under d is forgotten: the store no longer has it.
func (c *Cache) putNegative(d apikey.Digest, expires time.Duration, epoch uint64, now time.Duration) {
	sh := c.shard(d)
	sh.mu.Lock()
	defer c.sweepAnother(now)
	defer sh.mu.Unlock()
	if c.epoch.Load() != epoch {
		return
	}
	if e := sh.pos[d]; e != nil {
		c.removeKey(sh, e, true)
	}
	c.sweepNegative(sh, now)
	if sh.n == c.negPerShard { // full: forget the oldest
		if c.popNegative(sh) {
			c.negEvictions.Add(1)
		}
	}
	if sh.n == len(sh.ring) { // grow up to negPerShard, oldest first
		ring := make([]negSlot, min(c.negPerShard, 2*len(sh.ring)+16))
		for i := 0; i < sh.n; i++ {
			ring[i] = sh.ring[(sh.head+i)%len(sh.ring)]
		}
		sh.ring, sh.head = ring, 0
	}
	sh.seq++
	sh.ring[(sh.head+sh.n)%len(sh.ring)] = negSlot{d: d, seq: sh.seq, expires: expires}
	sh.n++
	sh.neg[d] = negEntry{expires: expires, seq: sh.seq}
}

// popNegative removes the ring's head and, if it is still current, its
// entry, which it reports. Called under sh.mu with sh.n > 0.
func (c *Cache) popNegative(sh *shard) bool {
	s := &sh.ring[sh.head]
	cur, ok := sh.neg[s.d]
	live := ok && cur.seq == s.seq
	if live {
		delete(sh.neg, s.d)
	}
	*s = negSlot{}
	sh.head++
	if sh.head == len(sh.ring) {
		sh.head = 0
	}
	sh.n--
	return live
}

// sweepNegative pops the ring's heads that have expired or were left
// behind. Called under sh.mu.
func (c *Cache) sweepNegative(sh *shard, now time.Duration) {
	for sh.n > 0 {
		s := &sh.ring[sh.head]
		if cur, ok := sh.neg[s.d]; ok && cur.seq == s.seq && now < s.expires {
			return
		}
		c.popNegative(sh)
	}
}

// sweepAnother sweeps the negative entries of one more shard, each put the
// next in turn, so that a few puts anywhere sweep every shard. It skips a
// shard that is busy.
func (c *Cache) sweepAnother(now time.Duration) {
	sh := &c.shards[c.sweepNext.Add(1)%numShards]
	if sh.mu.TryLock() {
		c.sweepNegative(sh, now)
		sh.mu.Unlock()
	}
}

// dropNegative forgets that d is unknown; its ring slot is left behind.
// Called under sh.mu.
func (c *Cache) dropNegative(sh *shard, d apikey.Digest) {
	delete(sh.neg, d)
}
