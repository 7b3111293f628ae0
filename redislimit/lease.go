package redislimit

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keygate/apikey"
)

// leases holds the tokens this replica took from rates in Redis ahead of
// need: one pool per counter (Redis key), so that a counter shared by
// several keys (an owner's) is leased once per replica.
type leases struct {
	l      *Limiter
	mu     sync.Mutex
	pools  map[string]*pool
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// pool is this replica's lease on one counter.
//
// A decision that the pools can pay takes mu only. One that needs Redis
// (a new lease) holds refill, a lock a context can give up on, from
// before it looks at the pool until it has stored the script's answer;
// so does the janitor to give a rest back. A pool's tokens therefore come
// from one lease at a time, and a decision holding refill can put back
// tokens it reserved from the pool without ever making it hold more than
// it did.
type pool struct {
	refill chan struct{}
	key    string // the counter's Redis key

	mu      sync.Mutex // guards what follows
	tokens  int64      // taken in Redis, not yet used
	expires time.Time  // when the rest goes back
	tat     int64      // the counter's TAT when the lease was taken (server clock, ns), for headers
	c       counter    // the counter, as last used: to give back the rest
	dead    bool       // out of the map: look again
}

func newLeases(l *Limiter) *leases {
	ls := &leases{l: l, pools: make(map[string]*pool), stop: make(chan struct{}), done: make(chan struct{})}
	go ls.janitor()
	return ls
}

// poolSet is the pools of one decision's counters, in the counters'
// order, and the order of their keys, in which they are locked.
type poolSet struct {
	ps    []*pool
	order []int
}

func (s *poolSet) lock() {
	for _, i := range s.order {
		s.ps[i].mu.Lock()
	}
}

func (s *poolSet) unlock() {
	for _, p := range s.ps {
		p.mu.Unlock()
	}
}

func (s *poolSet) dead() bool {
	return slices.ContainsFunc(s.ps, func(p *pool) bool { return p.dead })
}

// get fills s with the pools of cs; false when leasing is closed.
func (ls *leases) get(cs []counter, s *poolSet) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return false
	}
	for i := range cs {
		p := ls.pools[cs[i].key]
		if p == nil {
			p = &pool{refill: make(chan struct{}, 1), key: cs[i].key}
			ls.pools[cs[i].key] = p
		}
		s.ps[i] = p
	}
	return true
}

// lockRefills takes the refill locks of s in key order, by deadline.
func (ls *leases) lockRefills(ctx context.Context, s *poolSet, deadline time.Time) error {
	var done <-chan struct{}
	for n, i := range s.order {
		select {
		case s.ps[i].refill <- struct{}{}:
			continue
		default:
		}
		if done == nil {
			wctx, cancel := context.WithDeadlineCause(ctx, deadline, ls.l.timedOut)
			defer cancel()
			ctx, done = wctx, wctx.Done()
		}
		select {
		case s.ps[i].refill <- struct{}{}:
		case <-done:
			for _, j := range s.order[:n] {
				<-s.ps[j].refill
			}
			return context.Cause(ctx)
		}
	}
	return nil
}

func (s *poolSet) unlockRefills() {
	for _, p := range s.ps {
		<-p.refill
	}
}

// fromPools takes cost from every pool of s if each can pay, under their
// locks (held), and returns the views for the headers; nil if not.
func (s *poolSet) fromPools(cs []counter, cost int64, now time.Time) []view {
	for _, p := range s.ps {
		if p.tokens < cost || !now.Before(p.expires) {
			return nil
		}
	}
	views := make([]view, len(s.ps))
	for i, p := range s.ps {
		p.c = cs[i]
		p.tokens -= cost
		views[i] = view{state: state{tat: p.tat}, pool: p.tokens}
	}
	return views
}

var one = []int{0}

// take decides for a key whose limits are all rates: from this replica's
// pools when each holds cost, else with one script run that gives back
// the rests of the pools that cannot pay and takes a new lease of
// max(Lease, cost) tokens (or as many as fit, at least cost) of each of
// those counters. done is false when leasing is closed: decide without.
func (ls *leases) take(ctx context.Context, k *apikey.Key, c *compiled, cost int64, h http.Header) (ok bool, err error, done bool) {
	l, cs := ls.l, c.cs
	deadline := time.Now().Add(l.timeout)
	s := poolSet{ps: make([]*pool, len(cs)), order: one}
	if len(cs) > 1 {
		s.order = make([]int, len(cs))
		for i := range s.order {
			s.order[i] = i
		}
		slices.SortFunc(s.order, func(a, b int) int { return strings.Compare(cs[a].key, cs[b].key) })
	}
	for {
		if !ls.get(cs, &s) {
			return false, nil, false
		}
		s.lock()
		if s.dead() {
			s.unlock()
			continue
		}
		views := s.fromPools(cs, cost, time.Now())
		s.unlock()
		if views != nil {
			if h != nil && !l.noHeaders {
				l.headers(h, c, views, l.serverNow(), cost, true)
			}
			return true, nil, true
		}

		// A new lease for some: hold their refill locks, and look again.
		if err := ls.lockRefills(ctx, &s, deadline); err != nil {
			ok, err = l.failed(ctx, k, c, h, "take", err)
			return ok, err, true
		}
		s.lock()
		if s.dead() {
			s.unlock()
			s.unlockRefills()
			continue
		}
		ok, err = ls.refill(ctx, k, c, cost, h, &s, deadline)
		s.unlockRefills()
		return ok, err, true
	}
}

// refill runs the script for the pools of s that cannot pay cost; s is
// locked (mu and refill), and refill unlocks mu.
func (ls *leases) refill(ctx context.Context, k *apikey.Key, c *compiled, cost int64, h http.Header, s *poolSet, deadline time.Time) (bool, error) {
	l, cs := ls.l, c.cs
	now := time.Now()
	if views := s.fromPools(cs, cost, now); views != nil { // another decision took a lease meanwhile
		s.unlock()
		if h != nil && !l.noHeaders {
			l.headers(h, c, views, l.serverNow(), cost, true)
		}
		return true, nil
	}
	var short []int // counters whose pool cannot pay
	views := make([]view, len(cs))
	for i, p := range s.ps {
		p.c = cs[i]
		if p.tokens < cost || !now.Before(p.expires) {
			short = append(short, i)
			continue
		}
		// Reserved; put back if the decision refuses or fails.
		p.tokens -= cost
		views[i] = view{state: state{tat: p.tat}, pool: p.tokens}
	}
	sub := make([]counter, len(short))
	ra := make([]rateArgs, len(short))
	for j, i := range short {
		sub[j] = cs[i]
		ra[j] = rateArgs{ret: s.ps[i].tokens, want: max(l.lease, cost)}
		// Given back by the script, or lost if it fails: a lost rest
		// admits less, never more.
		s.ps[i].tokens = 0
	}
	s.unlock()

	ctx, cancel := context.WithDeadlineCause(ctx, deadline, l.timedOut)
	defer cancel()
	r, err := l.decide(ctx, opTake, sub, cost, ra)

	s.lock()
	if err != nil || !r.ok {
		for i, p := range s.ps {
			if !slices.Contains(short, i) {
				p.tokens += cost
				views[i].pool = p.tokens
			}
		}
	}
	if err == nil {
		for j, i := range short {
			p := s.ps[i]
			p.tat = r.st[j].tat
			if r.ok {
				p.tokens = r.st[j].taken - cost
				p.expires = now.Add(l.leaseTTL)
			}
			views[i] = view{state: r.st[j], pool: p.tokens, fromRedis: true}
		}
	}
	s.unlock()
	if err != nil {
		return l.failed(ctx, k, c, h, "take", err)
	}
	if h != nil && (!r.ok || !l.noHeaders) {
		l.headers(h, c, views, r.now, cost, r.ok)
	}
	return r.ok, nil
}

// janitor gives back the rests of expired leases and forgets idle pools.
func (ls *leases) janitor() {
	defer close(ls.done)
	every := max(ls.l.leaseTTL/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ls.stop:
			return
		case <-t.C:
			ls.sweep(false)
		}
	}
}

// sweep gives back the rest of each expired lease (of every lease, when
// all) and drops pools idle for a LeaseTTL. It skips pools being
// refilled, unless all: then it waits for them.
func (ls *leases) sweep(all bool) error {
	now := time.Now()
	ls.mu.Lock()
	list := make([]*pool, 0, len(ls.pools))
	for _, p := range ls.pools {
		list = append(list, p)
	}
	ls.mu.Unlock()
	var back []counter
	var ra []rateArgs
	for _, p := range list {
		if all {
			p.refill <- struct{}{}
		} else {
			select {
			case p.refill <- struct{}{}:
			default:
				continue
			}
		}
		p.mu.Lock()
		if all || !now.Before(p.expires) {
			gave := p.tokens > 0
			if gave {
				back = append(back, p.c)
				ra = append(ra, rateArgs{ret: p.tokens})
				p.tokens = 0
			}
			// Closing, every pool dies, so that no Take that found it
			// before can lease into it again.
			if all || !gave && now.Sub(p.expires) > ls.l.leaseTTL {
				p.dead = true
				ls.mu.Lock()
				if ls.pools[p.key] == p {
					delete(ls.pools, p.key)
				}
				ls.mu.Unlock()
			}
		}
		p.mu.Unlock()
		<-p.refill
	}
	var errs []error
	for len(back) > 0 {
		n := min(len(back), 64)
		if _, err := ls.l.decide(context.Background(), opTake, back[:n], 1, ra[:n]); err != nil {
			ls.l.warn(context.Background(), "give back lease", nil, false, err)
			errs = append(errs, err)
		}
		back, ra = back[n:], ra[n:]
	}
	return errors.Join(errs...)
}

// close stops leasing and gives back every rest.
func (ls *leases) close() error {
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return nil
	}
	ls.closed = true
	ls.mu.Unlock()
	close(ls.stop)
	<-ls.done
	return ls.sweep(true)
}
