package cache

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrStoreDown is wrapped by the error a lookup returns without asking the
// store because the circuit breaker is open: the store failed
// Config.BreakerFailures times in a row and has not answered a probe since.
// The middleware answers 503 to it, as to any store failure.
var ErrStoreDown = errors.New("cache: store down")

// errBreakerOpen is made once: failing fast allocates nothing.
var errBreakerOpen = fmt.Errorf("%w: circuit breaker open after consecutive store failures; lookups fail without a store call until a probe succeeds", ErrStoreDown)

// breaker is a circuit breaker over the store. Closed, every lookup may
// call the store; after threshold consecutive failures it opens, and only
// one probe per probeEvery may call the store until one succeeds.
type breaker struct {
	threshold  int64
	probeEvery time.Duration
	onChange   func(open bool)

	failures  atomic.Int64 // consecutive failures
	open      atomic.Bool
	nextProbe atomic.Int64 // time.Duration since Cache.base

	// Reporting: one goroutine at a time calls onChange (notifying), with
	// the state it has not reported yet.
	notifying atomic.Bool
	reported  bool // guarded by notifying
}

// allow says whether a lookup at now may call the store: always while
// closed; while open, for the first caller once per probeEvery.
func (b *breaker) allow(now time.Duration) bool {
	if !b.open.Load() {
		return true
	}
	next := b.nextProbe.Load()
	return int64(now) >= next && b.nextProbe.CompareAndSwap(next, int64(addSat(now, b.probeEvery)))
}

// success records a store answer (a key, or ErrNotFound): it closes the
// breaker.
func (b *breaker) success() {
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
	if b.open.Load() && b.open.CompareAndSwap(true, false) {
		b.notify()
	}
}

// failure records a store failure at now; the threshold-th in a row opens
// the breaker, whose first probe is due probeEvery later.
func (b *breaker) failure(now time.Duration) {
	if b.failures.Add(1) < b.threshold || b.open.Load() {
		return
	}
	b.nextProbe.Store(int64(addSat(now, b.probeEvery)))
	if b.open.CompareAndSwap(false, true) {
		b.notify()
	}
}

// notify calls onChange with each state not yet reported. Calls never
// overlap and always alternate (open, closed, open…); a transition that
// another goroutine is reporting is picked up when it is done, and one
// undone before it was reported is skipped. No lock is held during the
// call, so onChange may even use the cache.
func (b *breaker) notify() {
	if b.onChange == nil {
		return
	}
	for b.notifying.CompareAndSwap(false, true) {
		cur := b.open.Load()
		if cur != b.reported {
			b.reported = cur
			b.onChange(cur)
		}
		b.notifying.Store(false)
		if b.open.Load() == b.reported {
			return
		}
	}
}
