package redislimit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/limits"
	"github.com/keygate/apikey/limit"
)

// Config configures a Limiter. A zero field means its default.
type Config struct {
	// Live and Test are the default limits of the keys of each
	// environment, as in limit.Config; a key's own limits (Key.Limits)
	// are laid over them by name. Default none; leave Test empty to keep
	// sandbox keys outside quotas.
	Live, Test []apikey.Limit
	// Prefix starts the name of every Redis key the limiter writes.
	// Default "apikey:limit:"; no '{' or '}'.
	Prefix string
	// Timeout bounds one decision (one script call, with its wait for a
	// connection): past it, Redis counts as failed. Default 100 ms.
	Timeout time.Duration
	// FailClosed refuses requests whose key has rates or quotas while
	// Redis fails (Take returns an error: 503). Default false: they are
	// admitted (fail open). Credits always fail closed.
	FailClosed bool
	// Lease is how many tokens of a rate a replica takes from Redis at
	// once, to serve that many requests without asking Redis again; each
	// replica may then admit up to Lease-1 more than the rate in a window
	// (see the package doc). Default 0: every decision asks Redis.
	Lease int64
	// LeaseTTL is how long a replica serves from a lease before it gives
	// the unused rest back. Default 1 s when Lease is set.
	LeaseTTL time.Duration
	// NoHeaders leaves the RateLimit fields off allowed requests (refused
	// ones always carry them), as in limit.Config.
	NoHeaders bool
	// Logger gets a Warn line when Redis fails (at most one a second,
	// with the number of failures it stands for). Default slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultPrefix   = "apikey:limit:"
	DefaultTimeout  = 100 * time.Millisecond
	DefaultLeaseTTL = time.Second
)

// Limiter enforces keys' limits with counters in Redis, shared by every
// server that uses the same Redis and Prefix. It is an apikey.Limiter.
type Limiter struct {
	client     redis.Scripter
	live, test []limits.Spec
	prefix     string
	timeout    time.Duration
	failClosed bool
	noHeaders  bool
	logger     *slog.Logger

	lease    int64
	leaseTTL time.Duration
	leases   *leases // nil without Lease

	compiled  sync.Map // key ID -> *compiled
	nCompiled atomic.Int64

	timedOut error // the cause of a decision's deadline

	offset     atomic.Int64 // the server's clock minus ours, ns
	lastWarn   atomic.Int64 // unix ns of the last Warn line
	suppressed atomic.Int64 // failures since then

	// now, in tests only, replaces the server's TIME: decisions use it
	// and send it to the script.
	now func() time.Time
}

var _ apikey.Limiter = (*Limiter)(nil)

// New checks cfg and returns a Limiter deciding in Redis through client:
// a *redis.Client, a Sentinel failover client or any redis.UniversalClient
// on a single primary (see the package doc about Redis Cluster). The
// limiter does not close client. A mistake in cfg returns an error that
// wraps apikey.ErrInvalid and names the field.
func New(client redis.Scripter, cfg Config) (*Limiter, error) {
	if client == nil {
		return nil, fmt.Errorf("redislimit: New: %w: client is nil", apikey.ErrInvalid)
	}
	l := &Limiter{
		client:     client,
		prefix:     cmp.Or(cfg.Prefix, DefaultPrefix),
		timeout:    cmp.Or(cfg.Timeout, DefaultTimeout),
		failClosed: cfg.FailClosed,
		noHeaders:  cfg.NoHeaders,
		logger:     cmp.Or(cfg.Logger, slog.Default()),
		lease:      cfg.Lease,
	}
	var err error
	if l.live, err = specs("Live", cfg.Live); err != nil {
		return nil, err
	}
	if l.test, err = specs("Test", cfg.Test); err != nil {
		return nil, err
	}
	switch {
	case strings.ContainsAny(l.prefix, "{}"):
		return nil, fmt.Errorf("redislimit: New: %w: Config.Prefix %q has '{' or '}'", apikey.ErrInvalid, l.prefix)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("redislimit: New: %w: Config.Timeout %v is negative", apikey.ErrInvalid, cfg.Timeout)
	case cfg.Lease < 0 || cfg.Lease > limits.MaxCount:
		return nil, fmt.Errorf("redislimit: New: %w: Config.Lease %d is outside 0 to %d", apikey.ErrInvalid, cfg.Lease, int64(limits.MaxCount))
	case cfg.LeaseTTL < 0:
		return nil, fmt.Errorf("redislimit: New: %w: Config.LeaseTTL %v is negative", apikey.ErrInvalid, cfg.LeaseTTL)
	case cfg.LeaseTTL > 0 && cfg.Lease == 0:
		return nil, fmt.Errorf("redislimit: New: %w: Config.LeaseTTL is set but Config.Lease is 0 (no leasing)", apikey.ErrInvalid)
	}
	l.timedOut = fmt.Errorf("no answer from Redis within %v (Config.Timeout): %w", l.timeout, context.DeadlineExceeded)
	if l.lease > 0 {
		l.leaseTTL = cmp.Or(cfg.LeaseTTL, DefaultLeaseTTL)
		l.leases = newLeases(l)
	}
	return l, nil
}

// specs checks the default limits of one environment.
func specs(field string, list []apikey.Limit) ([]limits.Spec, error) {
	out := make([]limits.Spec, len(list))
	for i, l := range list {
		out[i] = limits.Spec(l)
	}
	if err := limits.CheckDefaults(out); err != nil {
		return nil, fmt.Errorf("redislimit: New: %w: Config.%s: %w", apikey.ErrInvalid, field, err)
	}
	return out, nil
}

// counter is one effective limit of a key, ready for the script.
type counter struct {
	spec   limits.Spec
	kind   limits.Kind
	key    string // the Redis key
	t, tol int64  // rate: interval and tolerance (Burst×interval), ns
	burst  int64  // rate
}

// compiled is what a key's limits come to, kept per key ID: its
// counters are read-only once made.
type compiled struct {
	lineage, owner string
	env            apikey.Environment
	own            []apikey.Limit
	cs             []counter
	policy         []string // the RateLimit-Policy field of cs, made once
	rates          bool     // every counter is a rate: leases may serve it
	err            error    // the key's own limits do not pass the checks
}

// maxCompiled bounds the keys whose limits are kept compiled; past it
// they are all forgotten and compiled again as they come.
const maxCompiled = 1 << 16

// counters returns k's effective limits: its environment's defaults with
// its own laid over them, never nil. It is shared: do not modify it.
func (l *Limiter) counters(k *apikey.Key) (*compiled, error) {
	if v, ok := l.compiled.Load(k.ID); ok {
		c := v.(*compiled)
		if c.lineage == k.Lineage && c.owner == k.Owner && c.env == k.Environment && slices.Equal(c.own, k.Limits) {
			return c, c.err
		}
	}
	c := &compiled{lineage: k.Lineage, owner: k.Owner, env: k.Environment, own: slices.Clone(k.Limits)}
	c.cs, c.err = l.compile(k)
	if len(c.cs) > 0 {
		c.policy = []string{policy(c.cs)}
		c.rates = allRates(c.cs)
	}
	if l.nCompiled.Add(1) > maxCompiled {
		l.compiled.Clear()
		l.nCompiled.Store(1)
	}
	l.compiled.Store(k.ID, c)
	return c, c.err
}

func (l *Limiter) compile(k *apikey.Key) ([]counter, error) {
	var defaults []limits.Spec
	switch k.Environment {
	case apikey.EnvLive:
		defaults = l.live
	case apikey.EnvTest:
		defaults = l.test
	}
	var own []limits.Spec
	if len(k.Limits) > 0 {
		own = make([]limits.Spec, len(k.Limits))
		for i, x := range k.Limits {
			own[i] = limits.Spec(x)
		}
		// A key's own limits were checked when it was stored; as in
		// package limit, one a store holds anyway (written by hand) fails
		// closed: ignoring it could lift a limit the key was sold with.
		if err := limits.CheckAll(own); err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
	}
	list := limits.Merge(defaults, own)
	if len(list) == 0 {
		return nil, nil
	}
	lineage := l.prefix + "{k:" + escape(cmp.Or(k.Lineage, k.ID)) + "}:"
	var owner string
	cs := make([]counter, len(list))
	for i, s := range list {
		c := counter{spec: s, kind: s.Kind()}
		if s.Owner && k.Owner != "" {
			if owner == "" {
				env := "live"
				if k.Environment == apikey.EnvTest {
					env = "test"
				}
				owner = l.prefix + "{o:" + env + ":" + escape(k.Owner) + "}:"
			}
			c.key = owner + s.Name
		} else {
			c.key = lineage + s.Name
		}
		if c.kind == limits.Rate {
			c.t = int64(s.Interval())
			c.burst = s.BurstOrCount()
			c.tol = c.burst * c.t
		}
		cs[i] = c
	}
	return cs, nil
}

// escape returns s when it is 1 to 128 visible ASCII characters without
// '{', '}', ':' or '#', else '#' and its SHA-256 in hex: a scope can
// neither leave its hash tag nor pass for another.
func escape(s string) string {
	ok := len(s) > 0 && len(s) <= 128
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c > ' ' && c < 0x7f && c != '{' && c != '}' && c != ':' && c != '#'
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:])
}

// The script's operations.
const (
	opTake   = "take"
	opGive   = "give"
	opStatus = "status"
)

// result is the script's answer.
type result struct {
	ok  bool
	now int64   // the server's time, ns
	st  []state // per counter
}

// state is a counter's state after the script.
type state struct {
	tat   int64 // rate: theoretical arrival time, ns (not before now)
	taken int64 // rate: tokens the script took
	used  int64 // quota, credits
	start int64 // quota, credits: the period's bounds, ns since the epoch (end 0: none)
	end   int64
}

// rateArgs are what a take asks of one rate: tokens to give back first
// (a lease's rest), tokens to take (0: none).
type rateArgs struct{ ret, want int64 }

// errPeriod: the server's clock is outside a quota's period as computed
// here (a clock apart, or a period that just ended); retried.
var errPeriod = errors.New("the server's time is outside the period")

// decide runs the script for cs. ra, for a take, says what to take of
// each rate (nil: cost). It computes quotas' periods at the server's time
// as last seen, and again if the server says that was wrong.
func (l *Limiter) decide(ctx context.Context, op string, cs []counter, cost int64, ra []rateArgs) (*result, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, l.timeout, l.timedOut)
	defer cancel()
	cost = min(cost, limits.MaxCount+1) // more never fits; keeps the script's sums exact
	now := l.serverNow()
	for range 3 {
		r, err := l.eval(ctx, op, cs, cost, ra, now)
		if err != errPeriod {
			return r, err
		}
		now = r.now
	}
	return nil, errPeriod
}

// serverNow estimates the server's clock (or is the tests' clock), ns.
func (l *Limiter) serverNow() int64 {
	if l.now != nil {
		return l.now().UnixNano()
	}
	return time.Now().UnixNano() + l.offset.Load()
}

// eval runs the script once with quotas' periods computed at now (ns).
func (l *Limiter) eval(ctx context.Context, op string, cs []counter, cost int64, ra []rateArgs, now int64) (*result, error) {
	keys := make([]string, len(cs))
	args := make([]any, 3, 3+8*len(cs))
	args[0], args[1], args[2] = op, cost, ""
	if l.now != nil {
		args[2] = now / 1000
	}
	st := make([]state, len(cs))
	var t time.Time
	for i := range cs {
		c := &cs[i]
		keys[i] = c.key
		if c.kind == limits.Rate {
			a := rateArgs{want: cost}
			if ra != nil {
				a = ra[i]
			}
			args = append(args, "r", c.t/1000, c.t%1000, c.tol/1000, c.tol%1000, c.burst, a.ret, a.want)
			continue
		}
		if c.spec.Period != "" {
			if t.IsZero() {
				t = time.Unix(0, now)
			}
			start, end := limits.PeriodBounds(c.spec.Period, c.spec.Zone, t)
			st[i].start, st[i].end = start.UnixNano(), end.UnixNano()
		}
		args = append(args, "q", st[i].start/1000, st[i].end/1000, c.spec.Count, 0, 0, 0, 0)
	}
	sent := time.Now()
	v, err := l.run(ctx, keys, args)
	if err != nil {
		return nil, err
	}
	got := time.Now()
	list, ok := v.([]any)
	n := make([]int64, len(list))
	for i, x := range list {
		if n[i], ok = x.(int64); !ok {
			break
		}
	}
	if !ok || len(n) < 2 || n[0] != -1 && len(n) != 2+3*len(cs) {
		return nil, fmt.Errorf("unexpected answer from the script: %v", v)
	}
	r := &result{ok: n[0] == 1, now: n[1] * 1000}
	if l.now == nil {
		l.offset.Store(r.now - (sent.UnixNano()+got.UnixNano())/2)
	}
	if n[0] == -1 {
		return r, errPeriod
	}
	r.st = st
	for i := range cs {
		a, b, c := n[2+3*i], n[3+3*i], n[4+3*i]
		if cs[i].kind == limits.Rate {
			st[i].tat, st[i].taken = a*1000+b, c
		} else {
			st[i].used = a
		}
	}
	return r, nil
}

// run runs the script (EVALSHA, then EVAL if Redis does not know it) and
// returns by ctx's deadline whatever the client does: a client that does
// not watch contexts (Options.ContextTimeoutEnabled false) bounds a
// blocked read by its ReadTimeout only, seconds later.
func (l *Limiter) run(ctx context.Context, keys []string, args []any) (any, error) {
	type answer struct {
		v   any
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		v, err := script.Run(ctx, l.client, keys, args...).Result()
		ch <- answer{v, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return a.v, a.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Take charges cost to every limit of k, or to none, in one script run
// in Redis: false when a limit refuses. Keys without limits pass without
// a call. When Redis fails or does not answer within Config.Timeout, a
// key with credits, or any key under Config.FailClosed, gets an error
// (503); others pass.
func (l *Limiter) Take(ctx context.Context, k *apikey.Key, cost int64, h http.Header) (bool, error) {
	c, err := l.counters(k)
	if err != nil {
		return false, fmt.Errorf("redislimit: %w", err)
	}
	cs := c.cs
	if len(cs) == 0 {
		return true, nil
	}
	if cost < 1 {
		return false, fmt.Errorf("redislimit: %w: cost %d is less than 1", apikey.ErrInvalid, cost)
	}
	if l.leases != nil && c.rates {
		if ok, err, done := l.leases.take(ctx, k, c, cost, h); done {
			return ok, err
		}
	}
	r, err := l.decide(ctx, opTake, cs, cost, nil)
	if err != nil {
		return l.failed(ctx, k, c, h, "take", err)
	}
	if h != nil && (!r.ok || !l.noHeaders) {
		views := make([]view, len(cs))
		for i := range cs {
			views[i] = view{state: r.st[i], fromRedis: true}
		}
		l.headers(h, c, views, r.now, cost, r.ok)
	}
	return r.ok, nil
}

func allRates(cs []counter) bool {
	for i := range cs {
		if cs[i].kind != limits.Rate {
			return false
		}
	}
	return true
}

// failed answers a Take that Redis failed: an error for credits and under
// FailClosed, else admitted; an error, and no log line, when the caller
// gave up.
func (l *Limiter) failed(ctx context.Context, k *apikey.Key, c *compiled, h http.Header, op string, err error) (bool, error) {
	if errors.Is(ctx.Err(), context.Canceled) {
		// The caller gave up (a client that hung up): not a fault of
		// Redis, and nobody waits for the answer.
		return false, fmt.Errorf("redislimit: %w", ctx.Err())
	}
	closed := l.failClosed || slices.ContainsFunc(c.cs, func(c counter) bool { return c.kind == limits.Credits })
	l.warn(ctx, op, k, closed, err)
	if closed {
		return false, fmt.Errorf("redislimit: %w", err)
	}
	if !l.noHeaders && h != nil {
		h[limits.HeaderPolicy] = c.policy
	}
	return true, nil
}

// warn logs a failure of Redis, at most once a second.
func (l *Limiter) warn(ctx context.Context, op string, k *apikey.Key, refused bool, err error) {
	n := l.suppressed.Add(1)
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(time.Second) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.suppressed.Add(-n)
	attrs := []slog.Attr{slog.String("op", op), slog.Any("error", err), slog.Int64("failures", n)}
	if k != nil {
		attrs = append(attrs, slog.String("key_id", k.ID))
		if op == "take" {
			attrs = append(attrs, slog.Bool("refused", refused))
		}
	}
	l.logger.LogAttrs(ctx, slog.LevelWarn, "redislimit: Redis failed", attrs...)
}

// Give returns cost to every limit of k: a charge the request did not
// use. A rate's bucket gets it back (never past whole), a quota's or
// credits' count if its period is still the one charged. Errors are
// logged: the charge stays.
func (l *Limiter) Give(ctx context.Context, k *apikey.Key, cost int64) {
	if cost < 1 {
		return
	}
	c, err := l.counters(k)
	if err != nil || len(c.cs) == 0 {
		return
	}
	if _, err := l.decide(ctx, opGive, c.cs, cost, nil); err != nil {
		l.warn(ctx, "give", k, false, err)
	}
}

// Status returns what remains of each of k's limits, without charging
// anything; nil for a key without limits. Leases a replica holds count
// as spent.
func (l *Limiter) Status(ctx context.Context, k *apikey.Key) ([]limit.Status, error) {
	c, err := l.counters(k)
	if err != nil {
		return nil, fmt.Errorf("redislimit: %w", err)
	}
	cs := c.cs
	if len(cs) == 0 {
		return nil, nil
	}
	r, err := l.decide(ctx, opStatus, cs, 1, nil)
	if err != nil {
		return nil, fmt.Errorf("redislimit: %w", err)
	}
	out := make([]limit.Status, len(cs))
	for i := range cs {
		c := &cs[i]
		v := view{state: r.st[i]}
		rem, _, _ := v.eval(c, r.now, 0)
		s := limit.Status{Limit: apikey.Limit(c.spec), Remaining: rem}
		switch {
		case c.kind == limits.Rate:
			s.Reset = time.Unix(0, max(v.tat, r.now))
		case v.end != 0:
			s.Reset = time.Unix(0, v.end)
		}
		out[i] = s
	}
	return out, nil
}

// Close gives back the rest of every lease and stops leasing: later
// decisions ask Redis each time. It does not close the Redis client.
func (l *Limiter) Close() error {
	if l.leases == nil {
		return nil
	}
	return l.leases.close()
}

// view is what a decision knows of one counter.
type view struct {
	state
	pool      int64 // tokens leased to this replica, not yet used
	fromRedis bool  // state is the script's answer to this decision (else an estimate)
}

// eval returns a counter's remaining, its reset (ns; -1: never), and,
// for a take of cost that this counter refused, how long to wait (-1:
// waiting will not help); wait is -2 when it did not refuse.
func (v *view) eval(c *counter, now, cost int64) (remaining, reset, wait int64) {
	wait = -2
	if c.kind == limits.Rate {
		tat := max(v.tat, now)
		if room := now + c.tol - tat; room > 0 {
			remaining = room / c.t
		}
		remaining += v.pool
		reset = tat - now
		if cost > 0 && v.fromRedis {
			switch {
			case cost > c.burst:
				wait = -1
			case tat+cost*c.t-now > c.tol:
				wait = tat + cost*c.t - c.tol - now
			}
		}
		return remaining, reset, wait
	}
	remaining = c.spec.Count - v.used
	reset = -1
	if v.end != 0 {
		reset = v.end - now
	}
	if cost > 0 && cost > c.spec.Count-v.used { // v.used+cost could overflow
		wait = reset
		if cost > c.spec.Count {
			wait = -1 // never fits, as package limit says
		}
	}
	return remaining, reset, wait
}

// headers sets the RateLimit fields, as package limit does: the policy
// of every limit, the state of the one closest to its end (allowed: the
// smallest share left; refused: the refusing one with the longest wait,
// never the longest) and Retry-After when waiting helps.
func (l *Limiter) headers(h http.Header, set *compiled, views []view, now, cost int64, ok bool) {
	cs := set.cs
	pick, pickRem, pickReset, pickWait := -1, int64(0), int64(0), int64(0)
	for i := range cs {
		c := cost
		if ok {
			c = 0
		}
		rem, reset, wait := views[i].eval(&cs[i], now, c)
		var better bool
		switch {
		case ok:
			better = pick < 0 || limits.LessLeft(rem, cs[i].spec.Capacity(), pickRem, cs[pick].spec.Capacity())
		case wait == -2:
			continue
		default:
			better = pick < 0 || pickWait != -1 && (wait == -1 || wait > pickWait)
		}
		if better {
			pick, pickRem, pickReset, pickWait = i, rem, reset, wait
		}
	}
	h[limits.HeaderPolicy] = set.policy // shared: made once (compiled.policy)
	if pick < 0 {
		return
	}
	h[limits.HeaderRateLimit] = []string{string(limits.AppendState(nil, cs[pick].spec.Name, pickRem, time.Duration(pickReset)))}
	if !ok && pickWait >= 0 {
		h[limits.HeaderRetryAfter] = []string{limits.RetryAfter(time.Duration(pickWait))}
	}
}

// policy is the RateLimit-Policy field of cs.
func policy(cs []counter) string {
	b := make([]byte, 0, 32*len(cs))
	for i := range cs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = limits.AppendPolicy(b, &cs[i].spec)
	}
	return string(b)
}
