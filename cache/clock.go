package cache

import (
	"math"
	"math/rand/v2"
	"time"
)

// Times inside the cache are durations since c.base, an instant read from
// the clock in New. With the default clock (time.Now) both readings carry
// Go's monotonic clock, so their difference ignores steps of the wall
// clock: setting the system time back cannot make an entry live longer.

// now is the time since c.base.
func (c *Cache) now() time.Duration { return c.clock().Sub(c.base) }

// jitter draws a lifetime from [0.85·ttl, ttl], so that entries filled
// together do not all expire, and come back to the store, together.
func jitter(ttl time.Duration) time.Duration {
	spread := ttl / 20 * 3
	if spread <= 0 {
		return ttl
	}
	return ttl - rand.N(spread+1)
}

// refreshWindow is the last part of an entry's lifetime in which a hit
// starts a background refresh: 15%.
func refreshWindow(lifetime time.Duration) time.Duration { return lifetime / 20 * 3 }

// addSat is a+b, saturated at the largest Duration (for huge TTLs).
func addSat(a, b time.Duration) time.Duration {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
