package limit

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/limits"
)

// Config configures a Limiter (New). A zero field means its default.
type Config struct {
	// Live and Test are the default limits of live and test keys; a key's
	// own Limits are laid over them by name. Default: none.
	Live []apikey.Limit
	Test []apikey.Limit
	// NoHeaders leaves the RateLimit fields off allowed requests (refused
	// ones always carry them).
	NoHeaders bool
	// Clock is the time source, after 2020 (quota periods are counted
	// from then). Default: the wall clock, read by a background tick.
	Clock func() time.Time
}

// Limiter enforces limits in process. Make one with New; it is safe for
// concurrent use.
type Limiter struct {
	defaults  [3]*plan // by apikey.Environment
	noHeaders bool
	clock     func() time.Time // Config.Clock, or nil
	coarse    *coarseClock     // the default clock
	seeds     [4]maphash.Seed  // lineage (2), owner (2)
	seed      maphash.Seed     // limit names
	ids       [1024]atomic.Pointer[hashedID]
	own       [256]atomic.Pointer[ownPlan] // plans of keys with their own limits
	// byContent shares one plan among the keys with the same own limits
	// (a tier): hash of environment and limits → *sharedPlan.
	byContent sync.Map
	nContent  atomic.Int64
	shards    [shardCount]shard
}

const shardCount = 64

// shard is a part of the state, under its own lock. Each state entry is
// 16 bytes of key and 8 of value.
type shard struct {
	mu    sync.Mutex
	state table
	swept int      // state.live after the last sweep
	next  int64    // when the next sweep is due, Unix ns
	_     [64]byte // no two shards on one cache line (64 B of fields and 64 of padding)
}

// stateKey names one limit's counter: a 128-bit hash of its scope
// (lineage, or owner and environment) mixed with the limit's name.
type stateKey struct{ a, b uint64 }

// entry is a counter. until is when the entry is worth nothing and can be
// dropped: a rate's theoretical arrival time (the bucket is whole from
// then on), a quota's period end, math.MaxInt64 for credits for ever;
// used is a quota's or credits' use in the period.
type entry struct {
	until, used int64
	counter     bool // a quota's or credits', not a rate's
}

// as is e if it is of s's kind, else none: a limit whose kind changed
// under the same name starts afresh.
func (e entry) as(s *limits.Spec) entry {
	if e.counter != (s.Kind() != limits.Rate) {
		return entry{}
	}
	return e
}

// pack is e in 8 bytes.
func (e entry) pack() packed {
	if e.counter {
		return packCounter(e.until, e.used)
	}
	return packRate(e.until)
}

// packed is an entry in 8 bytes. A rate's is its until (positive). A
// quota's or credits' sets the top bit, then its until in 15-minute units
// since 2020 (21 bits: to 2079; all ones for ever), then used (42 bits,
// more than limits.MaxCount).
type packed uint64

const (
	counterBit = 1 << 63
	usedBits   = 42
	unitBits   = 21
	unitsNever = 1<<unitBits - 1
	unit       = int64(15 * time.Minute)
)

// epoch2020 is 2020-01-01T00:00:00Z in Unix nanoseconds.
const epoch2020 = 1577836800 * int64(time.Second)

func packRate(until int64) packed { return packed(until) }

// packCounter packs a counter whose until is a quantized period end (or
// forever).
func packCounter(until, used int64) packed {
	u := int64(unitsNever)
	if until != forever {
		u = min(max((until-epoch2020)/unit, 0), unitsNever-1)
	}
	return packed(counterBit | uint64(u)<<usedBits | uint64(used))
}

func (p packed) entry() entry {
	if p&counterBit == 0 {
		return entry{until: int64(p)}
	}
	u := int64(p>>usedBits) & unitsNever
	e := entry{until: forever, used: int64(p & (1<<usedBits - 1)), counter: true}
	if u != unitsNever {
		e.until = epoch2020 + u*unit
	}
	return e
}

// quantize rounds a period end up to the 15-minute units packed entries
// keep (calendar days and months of every current time zone fall on them).
func quantize(end int64) int64 {
	if end <= epoch2020 {
		return epoch2020
	}
	return epoch2020 + (end-epoch2020+unit-1)/unit*unit
}

// plan is a list of limits compiled for the request path.
type plan struct {
	specs  []limits.Spec
	names  []uint64 // hash of each name, mixed into its stateKey
	policy []string // the RateLimit-Policy value, shared by responses
	owner  bool     // a limit counts per owner
	// periods keeps each quota's current calendar period.
	periods []limits.Period
	// states keeps RateLimit values made lately: under steady traffic the
	// same few (remaining, reset) pairs come back, and a response may
	// share a value slice (net/http never writes into one).
	states [64]atomic.Pointer[stateItem]
}

// stateItem is a RateLimit value and what it says.
type stateItem struct {
	limit            int
	remaining, reset int64 // reset in whole seconds, -1 for none
	v                []string
}

// New checks cfg and returns the limiter.
func New(cfg Config) (*Limiter, error) {
	l := &Limiter{noHeaders: cfg.NoHeaders, clock: cfg.Clock, seed: maphash.MakeSeed()}
	for i := range l.seeds {
		l.seeds[i] = maphash.MakeSeed()
	}
	l.coarse = newCoarseClock()
	for _, d := range [...]struct {
		env  apikey.Environment
		list []apikey.Limit
	}{{apikey.EnvLive, cfg.Live}, {apikey.EnvTest, cfg.Test}} { // in order: the same error for the same Config
		env, specs := d.env, toSpecs(d.list)
		if err := limits.CheckDefaults(specs); err != nil {
			return nil, fmt.Errorf("limit: New: %w: Config.%s: %w", apikey.ErrInvalid, envField(env), err)
		}
		l.defaults[env] = l.compile(specs)
	}
	return l, nil
}

func envField(env apikey.Environment) string {
	if env == apikey.EnvTest {
		return "Test"
	}
	return "Live"
}

func toSpecs(list []apikey.Limit) []limits.Spec {
	specs := make([]limits.Spec, len(list))
	for i, x := range list {
		specs[i] = limits.Spec(x)
	}
	return specs
}

// compile makes the plan of a list of limits; nil for none.
func (l *Limiter) compile(specs []limits.Spec) *plan {
	if len(specs) == 0 {
		return nil
	}
	p := &plan{specs: specs, names: make([]uint64, len(specs)), periods: make([]limits.Period, len(specs))}
	var b []byte
	for i := range specs {
		p.names[i] = maphash.String(l.seed, specs[i].Name)
		p.owner = p.owner || specs[i].Owner
		if i > 0 {
			b = append(b, ", "...)
		}
		b = limits.AppendPolicy(b, &specs[i])
	}
	p.policy = []string{string(b)}
	return p
}

// now is Config.Clock's time, or the coarse clock's (clock.go): the wall
// clock's, a tick behind at most, never going back.
func (l *Limiter) now() int64 {
	if l.clock != nil {
		return l.clock().UnixNano()
	}
	return l.coarse.read()
}

// planFor returns k's plan: its environment's, or that with k's own
// limits laid over it. The plans of keys with their own limits are kept
// by the address of their Limits, as hashID keeps hashes: a store's Key
// is read-only and shared, so the same slice means the same limits, and a
// changed key comes with a new one. Past that small cache, keys with the
// same limits share one plan, found by content (10,000 keys on two tiers:
// a decision 1,030 → 270 ns, 12 → 2 allocations).
func (l *Limiter) planFor(k *apikey.Key) (*plan, error) {
	var def *plan
	if int(k.Environment) < len(l.defaults) {
		def = l.defaults[k.Environment]
	}
	if len(k.Limits) == 0 {
		return def, nil
	}
	data := unsafe.SliceData(k.Limits)
	slot := &l.own[uintptr(unsafe.Pointer(data))>>5%uintptr(len(l.own))]
	if c := slot.Load(); c != nil && unsafe.SliceData(c.limits) == data && len(c.limits) == len(k.Limits) && c.env == k.Environment {
		return c.p, c.err
	}
	c := &ownPlan{limits: k.Limits, env: k.Environment}
	h := maphash.Comparable(l.seed, k.Environment)
	for _, x := range k.Limits {
		h = h*31 + maphash.Comparable(l.seed, x)
	}
	if v, ok := l.byContent.Load(h); ok {
		if sp := v.(*sharedPlan); sp.env == k.Environment && slices.Equal(sp.limits, k.Limits) {
			c.p = sp.p
			slot.Store(c)
			return c.p, nil
		}
	}
	// A key's own limits were checked when it was stored; one a store
	// holds anyway (written by hand) fails closed: ignoring it could
	// lift a limit the key was sold with.
	own := toSpecs(k.Limits)
	if err := limits.CheckAll(own); err != nil {
		c.err = fmt.Errorf("limit: key %s: %w", k.ID, err)
	} else {
		var base []limits.Spec
		if def != nil {
			base = def.specs
		}
		c.p = l.compile(limits.Merge(base, own))
		if l.nContent.Add(1) > maxSharedPlans {
			l.byContent.Clear()
			l.nContent.Store(1)
		}
		l.byContent.Store(h, &sharedPlan{limits: slices.Clone(k.Limits), env: k.Environment, p: c.p})
	}
	slot.Store(c)
	return c.p, c.err
}

// sharedPlan is a plan of own limits that keys with the same limits
// share (Limiter.byContent).
type sharedPlan struct {
	limits []apikey.Limit
	env    apikey.Environment
	p      *plan
}

// maxSharedPlans bounds the distinct own limits whose plans are shared;
// past it they are all forgotten and made again as they come.
const maxSharedPlans = 4096

// ownPlan is the plan of a key's own limits (planFor).
type ownPlan struct {
	limits []apikey.Limit // held, so that its address names these limits only
	env    apikey.Environment
	p      *plan
	err    error
}

// scopes are the two 128-bit scope hashes of a key: its lineage's and its
// owner's in its environment.
type scopes struct{ key, owner stateKey }

func (l *Limiter) scopesOf(k *apikey.Key, p *plan) scopes {
	var s scopes
	s.key = l.hashID(cmp.Or(k.Lineage, k.ID))
	s.owner = s.key
	if p.owner && k.Owner != "" {
		const mix = 0x9e3779b97f4a7c15 // the environment, into both halves
		env := uint64(k.Environment) * mix
		s.owner = stateKey{maphash.String(l.seeds[2], k.Owner) + env, maphash.String(l.seeds[3], k.Owner) ^ env}
	}
	return s
}

// hashID is the 128-bit hash of a lineage. Keys from a store are shared
// and live long, so the hash of recently seen IDs is kept by the address
// of their bytes: a slot holds the string, so its bytes cannot be freed
// and reused for another ID while it is there.
func (l *Limiter) hashID(id string) stateKey {
	if len(id) == 0 {
		return stateKey{maphash.String(l.seeds[0], id), maphash.String(l.seeds[1], id)}
	}
	slot := &l.ids[uintptr(unsafe.Pointer(unsafe.StringData(id)))>>4%uintptr(len(l.ids))]
	if c := slot.Load(); c != nil && unsafe.StringData(c.id) == unsafe.StringData(id) && len(c.id) == len(id) {
		return c.h
	}
	h := stateKey{maphash.String(l.seeds[0], id), maphash.String(l.seeds[1], id)}
	slot.Store(&hashedID{id: id, h: h})
	return h
}

// hashedID is an ID and its hash (Limiter.hashID).
type hashedID struct {
	id string
	h  stateKey
}

// keyOf is the counter of the i-th limit of p.
func (p *plan) keyOf(i int, s *scopes) stateKey {
	sc := s.key
	if p.specs[i].Owner {
		sc = s.owner
	}
	return stateKey{sc.a ^ p.names[i], sc.b}
}

func (s *scopes) shards() (int, int) {
	return int(s.key.b % shardCount), int(s.owner.b % shardCount)
}

// lock takes the shards of a key's scopes in index order and returns the
// unlock.
func (l *Limiter) lock(s *scopes) (a, b *shard) {
	i, j := s.shards()
	if i > j {
		i, j = j, i
	}
	a = &l.shards[i]
	a.mu.Lock()
	if j != i {
		b = &l.shards[j]
		b.mu.Lock()
	}
	return a, b
}

// shardOf is the shard of a counter: its scope's, as keyOf keeps b.
func (l *Limiter) shardOf(k stateKey) *shard { return &l.shards[int(k.b%shardCount)] }

// verdict is one limit's answer to a charge.
type verdict struct {
	ok        bool
	next      entry         // the entry after the charge
	remaining int64         // what is left after it (or now, refused)
	reset     time.Duration // until the limit is whole (-1: never)
	wait      time.Duration // refused: until the charge would fit (-1: never)
}

// Take charges cost to every limit of k, or to none. See apikey.Limiter.
func (l *Limiter) Take(_ context.Context, k *apikey.Key, cost int64, h http.Header) (bool, error) {
	p, err := l.planFor(k)
	if p == nil || err != nil {
		return err == nil, err
	}
	if cost < 1 {
		return false, fmt.Errorf("limit: %w: cost %d", apikey.ErrInvalid, cost)
	}
	now := l.now()
	sc := l.scopesOf(k, p)
	var buf [4]verdict // a few limits a key, as a rule; zeroing more costs
	var vs []verdict
	if len(p.specs) > len(buf) {
		vs = make([]verdict, len(p.specs))
	} else {
		vs = buf[:len(p.specs)]
	}
	a, b := l.lock(&sc)
	ok := true
	for i := range p.specs {
		key := p.keyOf(i, &sc)
		vs[i] = decide(&p.specs[i], &p.periods[i], l.shardOf(key).state.get(key).entry(), cost, now)
		ok = ok && vs[i].ok
	}
	if ok {
		for i := range p.specs {
			key := p.keyOf(i, &sc)
			l.shardOf(key).put(key, vs[i].next, now)
		}
	}
	a.mu.Unlock()
	if b != nil {
		b.mu.Unlock()
	}
	if h != nil && (!ok || !l.noHeaders) {
		l.headers(h, p, vs, ok)
	}
	return ok, nil
}

// Give returns cost to every limit of k: a request refused after it paid.
func (l *Limiter) Give(_ context.Context, k *apikey.Key, cost int64) {
	p, err := l.planFor(k)
	if p == nil || err != nil || cost < 1 {
		return
	}
	now := l.now()
	sc := l.scopesOf(k, p)
	a, b := l.lock(&sc)
	for i := range p.specs {
		key := p.keyOf(i, &sc)
		sh := l.shardOf(key)
		pk := sh.state.get(key)
		if pk == empty {
			continue
		}
		s := &p.specs[i]
		e := pk.entry().as(s)
		if s.Kind() == limits.Rate {
			e.until -= min(cost, s.BurstOrCount()) * int64(s.Interval()) // more makes the bucket no fuller
		} else if e.until > now {
			e.used = max(e.used-cost, 0)
		}
		sh.put(key, e, now)
	}
	a.mu.Unlock()
	if b != nil {
		b.mu.Unlock()
	}
}

// Status reports what remains of each of k's limits.
func (l *Limiter) Status(_ context.Context, k *apikey.Key) ([]Status, error) {
	p, err := l.planFor(k)
	if p == nil || err != nil {
		return nil, err
	}
	now := l.now()
	sc := l.scopesOf(k, p)
	out := make([]Status, len(p.specs))
	a, b := l.lock(&sc)
	for i := range p.specs {
		key := p.keyOf(i, &sc)
		v := peek(&p.specs[i], &p.periods[i], l.shardOf(key).state.get(key).entry(), now)
		out[i] = Status{Limit: apikey.Limit(p.specs[i]), Remaining: v.remaining}
		if v.reset >= 0 {
			out[i].Reset = time.Unix(0, now).Add(v.reset)
		}
	}
	a.mu.Unlock()
	if b != nil {
		b.mu.Unlock()
	}
	return out, nil
}

// sweepEvery is how often a shard drops its idle state at least.
const sweepEvery = 10 * time.Second

// put stores e, or drops it when it is worth nothing at now. The shard
// drops all of its idle state when it has doubled since the last sweep or
// sweepEvery has passed: the work is amortized over the puts, and a shard
// holds at most twice its active state (plus 64).
func (sh *shard) put(k stateKey, e entry, t int64) {
	if e.until <= t {
		sh.state.set(k, empty)
		return
	}
	sh.state.set(k, e.pack())
	if n := sh.state.live; n > 2*sh.swept+64 || t >= sh.next && n > 64 {
		sh.state.sweep(t)
		sh.swept, sh.next = sh.state.live, t+int64(sweepEvery)
	}
}

// headers sets the RateLimit fields: the policy, and the state of the
// limit closest to its end (allowed) or the one refusing longest
// (refused), with Retry-After.
func (l *Limiter) headers(h http.Header, p *plan, vs []verdict, ok bool) {
	pick := -1
	for i := range vs {
		switch {
		case ok && (pick < 0 || limits.LessLeft(vs[i].remaining, p.specs[i].Capacity(), vs[pick].remaining, p.specs[pick].Capacity())):
			pick = i
		case !ok && !vs[i].ok && (pick < 0 || waitLonger(vs[i].wait, vs[pick].wait)):
			pick = i
		}
	}
	h[limits.HeaderPolicy] = p.policy
	h[limits.HeaderRateLimit] = p.stateValue(pick, vs[pick].remaining, vs[pick].reset)
	if !ok && vs[pick].wait >= 0 {
		h[limits.HeaderRetryAfter] = []string{limits.RetryAfter(vs[pick].wait)}
	}
}

// waitLonger reports whether wait a is longer than b; -1 (never) is the
// longest.
func waitLonger(a, b time.Duration) bool {
	if a < 0 {
		return b >= 0
	}
	return b >= 0 && a > b
}

// stateValue returns the one-item RateLimit value of limit i: one made
// lately with the same figures, or a new one, in one allocation (the
// slice and the text live in the same block).
func (p *plan) stateValue(i int, remaining int64, reset time.Duration) []string {
	secs := int64(-1)
	if reset >= 0 {
		secs = limits.CeilSeconds(reset)
	}
	slot := &p.states[uint64(remaining*31+secs*7+int64(i))%uint64(len(p.states))]
	if it := slot.Load(); it != nil && it.limit == i && it.remaining == remaining && it.reset == secs {
		return it.v
	}
	type block struct {
		it  stateItem
		v   [1]string
		buf [limits.MaxNameLength + 48]byte
	}
	blk := &block{it: stateItem{limit: i, remaining: remaining, reset: secs}}
	b := limits.AppendState(blk.buf[:0], p.specs[i].Name, remaining, reset)
	if len(b) > len(blk.buf) {
		blk.v[0] = string(b) // cannot happen with names of 64 bytes
	} else {
		blk.v[0] = unsafe.String(&blk.buf[0], len(b))
	}
	blk.it.v = blk.v[:]
	slot.Store(&blk.it)
	return blk.it.v
}

// decide charges cost to limit s whose counter is e (zero: none) at now;
// pd is s's period, for a quota or credits that refill.
func decide(s *limits.Spec, pd *limits.Period, e entry, cost int64, t int64) verdict {
	e = e.as(s)
	switch s.Kind() {
	case limits.Rate:
		T := int64(s.Interval())
		tol := s.BurstOrCount() * T
		tat := max(e.until, t)
		if cost > s.BurstOrCount() { // never fits (and cost*T could overflow)
			return verdict{next: e, remaining: (t + tol - tat) / T, reset: time.Duration(tat - t), wait: -1}
		}
		next := tat + cost*T
		if next-t > tol {
			return verdict{next: e, remaining: (t + tol - tat) / T, reset: time.Duration(tat - t), wait: time.Duration(next - tol - t)}
		}
		return verdict{ok: true, next: entry{until: next}, remaining: (t + tol - next) / T, reset: time.Duration(next - t)}
	default:
		until, reset := periodEnd(s, pd, t)
		used := e.used
		if e.until != until {
			used = 0 // another period
		}
		if cost > s.Count-used { // used+cost could overflow
			wait := reset
			if cost > s.Count {
				wait = -1 // never fits
			}
			return verdict{next: e, remaining: max(s.Count-used, 0), reset: reset, wait: wait}
		}
		return verdict{ok: true, next: entry{until: until, used: used + cost, counter: true}, remaining: s.Count - used - cost, reset: reset}
	}
}

// peek is decide without a charge.
func peek(s *limits.Spec, pd *limits.Period, e entry, t int64) verdict {
	e = e.as(s)
	if s.Kind() == limits.Rate {
		T := int64(s.Interval())
		tol := s.BurstOrCount() * T
		tat := max(e.until, t)
		return verdict{remaining: min((t+tol-tat)/T, s.BurstOrCount()), reset: time.Duration(tat - t)}
	}
	until, reset := periodEnd(s, pd, t)
	used := e.used
	if e.until != until {
		used = 0
	}
	return verdict{remaining: max(s.Count-used, 0), reset: reset} // a Count lowered below what was used
}

// forever is the period end of credits that never refill.
const forever = 1<<63 - 1

// periodEnd is the end of a quota's or credits' current period, in Unix
// nanoseconds, and the time until it (-1 for never).
func periodEnd(s *limits.Spec, pd *limits.Period, t int64) (int64, time.Duration) {
	if s.Period == "" {
		return forever, -1
	}
	_, end := pd.Bounds(s.Period, s.Zone, t)
	until := quantize(end)
	return until, time.Duration(until - t)
}

var _ apikey.Limiter = (*Limiter)(nil)
