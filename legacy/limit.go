package legacy

import (
	"sync"
	"time"
)

// limiter is a token bucket of rate tokens a second, holding at most rate,
// kept as time credit: a token is worth interval. It never waits: a call
// without a token is refused.
type limiter struct {
	mu       sync.Mutex
	clock    func() time.Time
	interval time.Duration // time.Second / rate
	full     time.Duration // rate tokens
	credit   time.Duration
	last     time.Time
	lastWarn time.Time
}

func newLimiter(rate int, clock func() time.Time) *limiter {
	interval := max(time.Second/time.Duration(rate), 1)
	full := interval * time.Duration(rate)
	return &limiter{clock: clock, interval: interval, full: full, credit: full, last: clock()}
}

// allow takes a token if one is left. warn reports, on a refusal, whether
// none was reported in the last second, to keep logs bounded in a flood.
func (l *limiter) allow() (ok, warn bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	if d := now.Sub(l.last); d > 0 {
		l.credit = min(l.full, l.credit+d)
	}
	l.last = now // a clock stepped back refills nothing
	if l.credit >= l.interval {
		l.credit -= l.interval
		return true, false
	}
	if now.Sub(l.lastWarn) >= time.Second || now.Before(l.lastWarn) {
		l.lastWarn = now
		return false, true
	}
	return false, false
}
