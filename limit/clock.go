package limit

import (
	"sync/atomic"
	"time"
)

// The default clock. A clock reading costs about 30 ns on a virtual
// machine, a quarter of a decision: a background goroutine reads it every
// tick instead, and decisions read the last reading. It runs only while
// decisions are made: a second without one stops it; the next decision
// starts it again.
//
// The reading follows the wall clock, as calendar periods must (a day
// ends at midnight of the real calendar, as on Redis's clock), and never
// goes back: after a step back of the wall clock it holds still until the
// wall clock catches up. It is never ahead of the wall clock, only behind
// by a tick or so: a rate then sees a little less time gone by and admits
// a little less, never more.

// tick is the clock's resolution.
const tick = 500 * time.Microsecond

// idleTicks without a decision stop the goroutine.
const idleTicks = int(time.Second / tick)

type coarseClock struct {
	unix    int64        // when the clock was made, Unix ns
	now     atomic.Int64 // ns since then, as of the last reading
	running atomic.Bool
	used    atomic.Bool // a decision read the clock since the last tick
}

func newCoarseClock() *coarseClock {
	return &coarseClock{unix: time.Now().UnixNano()}
}

// read returns the time in Unix ns.
func (c *coarseClock) read() int64 {
	if !c.running.Load() && c.running.CompareAndSwap(false, true) {
		c.advance()
		go c.run()
	}
	if !c.used.Load() {
		c.used.Store(true)
	}
	return c.unix + c.now.Load()
}

// advance stores a fresh reading unless another, later one is there.
func (c *coarseClock) advance() {
	t := time.Now().UnixNano() - c.unix // the wall clock's, not the monotonic reading
	for {
		old := c.now.Load()
		if t <= old || c.now.CompareAndSwap(old, t) {
			return
		}
	}
}

func (c *coarseClock) run() {
	t := time.NewTicker(tick)
	defer t.Stop()
	idle := 0
	for range t.C {
		c.advance()
		if c.used.Swap(false) {
			idle = 0
			continue
		}
		if idle++; idle >= idleTicks {
			c.running.Store(false)
			// A decision that saw the clock running just before it
			// stopped reads the last reading: behind, never ahead.
			if !c.used.Load() || !c.running.CompareAndSwap(false, true) {
				return
			}
			idle = 0 // a decision came in between: go on
		}
	}
}
