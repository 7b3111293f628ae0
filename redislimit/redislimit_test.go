package redislimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/limits"
)

var prefixes atomic.Int64

// newLimiter returns a limiter on client with a prefix of its own (unless
// cfg sets one), closed at the end of the test.
func newLimiter(t testing.TB, client redis.Scripter, cfg Config) *Limiter {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("test%d:", prefixes.Add(1))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// clock is the tests' stand-in for the server's TIME.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// fake makes l decide at the clock's time instead of the server's.
func fake(l *Limiter, t time.Time) *clock {
	c := &clock{t: t}
	l.now = c.now
	return c
}

func live(id string, own ...apikey.Limit) *apikey.Key {
	return &apikey.Key{ID: id, Environment: apikey.EnvLive, Limits: own}
}

// take calls Take and fails the test on an error.
func take(t testing.TB, l *Limiter, k *apikey.Key, cost int64) (bool, http.Header) {
	t.Helper()
	h := http.Header{}
	ok, err := l.Take(context.Background(), k, cost, h)
	if err != nil {
		t.Fatalf("Take(%s, %d): %v", k.ID, cost, err)
	}
	return ok, h
}

func mustTake(t testing.TB, l *Limiter, k *apikey.Key, cost int64, want bool) http.Header {
	t.Helper()
	ok, h := take(t, l, k, cost)
	if ok != want {
		t.Fatalf("Take(%s, %d) = %v, want %v (headers %v)", k.ID, cost, ok, want, h)
	}
	return h
}

// remaining returns Status's Remaining per limit name.
func remaining(t testing.TB, l *Limiter, k *apikey.Key) map[string]int64 {
	t.Helper()
	st, err := l.Status(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]int64)
	for _, s := range st {
		m[s.Limit.Name] = s.Remaining
	}
	return m
}

func wantRemaining(t testing.TB, l *Limiter, k *apikey.Key, want map[string]int64) {
	t.Helper()
	if got := remaining(t, l, k); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Status(%s) remaining = %v, want %v", k.ID, got, want)
	}
}

func wantHeader(t testing.TB, h http.Header, name, want string) {
	t.Helper()
	got := h[name]
	switch {
	case want == "" && len(got) != 0:
		t.Fatalf("%s = %q, want none", name, got)
	case want != "" && (len(got) != 1 || got[0] != want):
		t.Fatalf("%s = %q, want %q", name, got, want)
	}
}

// rawTAT reads a rate's counter: its TAT in ns, 0 when absent.
func rawTAT(t testing.TB, c *redis.Client, key string) int64 {
	t.Helper()
	v, err := c.Get(context.Background(), key).Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var us, ns int64
	if _, err := fmt.Sscanf(v, "r:%d:%d", &us, &ns); err != nil {
		t.Fatalf("counter %s = %q: %v", key, v, err)
	}
	return us*1000 + ns
}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Prefix: "a{b"}, "Prefix"},
		{Config{Timeout: -1}, "Timeout"},
		{Config{Lease: -1}, "Lease"},
		{Config{Lease: limits.MaxCount + 1}, "Lease"},
		{Config{Lease: 1, LeaseTTL: -1}, "LeaseTTL"},
		{Config{LeaseTTL: time.Second}, "LeaseTTL"},
		{Config{Live: []apikey.Limit{{Name: "Bad name", Count: 1, Per: time.Second}}}, "Live"},
		{Config{Test: []apikey.Limit{{Name: "x", Count: 1}}}, "Test"},
		{Config{Live: []apikey.Limit{{Name: "x", Count: -1}}}, "Live"},
		{Config{Live: []apikey.Limit{{Name: "x", Count: 1, Per: time.Second}, {Name: "x", Count: 1, Per: time.Second}}}, "Live"},
	} {
		_, err := New(c, tc.cfg)
		if !errors.Is(err, apikey.ErrInvalid) || !strings.Contains(err.Error(), "Config."+tc.field) {
			t.Errorf("New(%+v) = %v, want ErrInvalid naming Config.%s", tc.cfg, err, tc.field)
		}
	}
	if _, err := New(nil, Config{}); !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("New(nil) = %v, want ErrInvalid", err)
	}
	l, err := New(c, Config{Lease: 10})
	if err != nil {
		t.Fatal(err)
	}
	if l.prefix != DefaultPrefix || l.timeout != DefaultTimeout || l.leaseTTL != DefaultLeaseTTL || l.logger == nil {
		t.Errorf("defaults: prefix %q timeout %v leaseTTL %v logger %v", l.prefix, l.timeout, l.leaseTTL, l.logger)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Without limits, Take passes without asking Redis (here there is none
// to ask): test keys have no default limits unless Config.Test sets some.
func TestNoLimits(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	l := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "rps", Count: 1, Per: time.Second}}})
	sandbox := &apikey.Key{ID: "key_sandbox", Environment: apikey.EnvTest}
	h := mustTake(t, l, sandbox, 1, true)
	if len(h) != 0 {
		t.Errorf("headers for a key without limits: %v", h)
	}
	lifted := live("key_lifted", apikey.Limit{Name: "rps", Count: -1})
	mustTake(t, l, lifted, 1, true)
	if st, err := l.Status(context.Background(), sandbox); st != nil || err != nil {
		t.Errorf("Status of a key without limits = %v, %v", st, err)
	}
	if _, err := l.Take(context.Background(), live("key_x"), 0, nil); !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("Take with cost 0: %v, want ErrInvalid", err)
	}
	unspecified := &apikey.Key{ID: "key_noenv"}
	mustTake(t, l, unspecified, 1, true)
	// A key's own limits that do not pass the checks (a store edited by
	// hand) fail closed, as in package limit: a 503 in the middleware.
	bad := live("key_bad", apikey.Limit{Name: "x", Count: 1}, apikey.Limit{Name: "rps", Count: 5, Per: time.Second})
	if ok, err := l.Take(context.Background(), bad, 1, nil); ok || err == nil || !strings.Contains(err.Error(), "key_bad") {
		t.Errorf("Take of a key with a broken limit: %v, %v; want false and an error naming the key", ok, err)
	}
}

// A scope cannot leave its hash tag nor pass for another one.
func TestEscape(t *testing.T) {
	for _, s := range []string{"key_01jd5y4m2pf3qx8v9b7c6n0rtw", "acct_1", "a-b.c"} {
		if escape(s) != s {
			t.Errorf("escape(%q) = %q, want it unchanged", s, escape(s))
		}
	}
	seen := map[string]string{}
	for _, s := range []string{"", "a}b", "a{b", "a:b", "#a", "a b", "é", strings.Repeat("x", 129), "}:x", "{o:live:a}"} {
		e := escape(s)
		if strings.ContainsAny(e, "{}: ") || !strings.HasPrefix(e, "#") || len(e) != 65 {
			t.Errorf("escape(%q) = %q", s, e)
		}
		if o, dup := seen[e]; dup {
			t.Errorf("escape(%q) = escape(%q)", s, o)
		}
		seen[e] = s
	}

	c := sharedClient(t)
	l := newLimiter(t, c, Config{Prefix: "esc:", Live: []apikey.Limit{
		{Name: "own", Count: 5, Per: time.Hour},
		{Name: "org", Count: 5, Per: time.Hour, Owner: true},
	}})
	keys := []*apikey.Key{
		{ID: "key_{x}:y", Environment: apikey.EnvLive, Owner: "acct}:{z"},
		{ID: "key_plain", Environment: apikey.EnvLive, Owner: "acct_plain"},
	}
	for _, k := range keys {
		mustTake(t, l, k, 1, true)
	}
	names, err := c.Keys(context.Background(), "esc:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	want := []string{
		"esc:{k:" + escape("key_{x}:y") + "}:own",
		"esc:{k:key_plain}:own",
		"esc:{o:live:" + escape("acct}:{z") + "}:org",
		"esc:{o:live:acct_plain}:org",
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("Redis keys = %q, want %q", names, want)
	}
}

// GCRA, exactly: the interval Per/Count rounded up to the ns, Burst at
// once, remaining, reset and Retry-After; Give; the state vanishes when
// the bucket is whole.
func TestRate(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "rps", Count: 10, Per: time.Second, Burst: 5}}})
	clk := fake(l, t0)
	k := live("key_rate")
	key := l.prefix + "{k:key_rate}:rps"
	for i := range 5 {
		h := mustTake(t, l, k, 1, true)
		// After i+1 tokens the bucket is whole again (i+1)×100 ms later.
		wantHeader(t, h, "Ratelimit", fmt.Sprintf(`"rps";r=%d;t=1`, 4-i))
	}
	if got, want := rawTAT(t, c, key), t0.Add(500*time.Millisecond).UnixNano(); got != want {
		t.Fatalf("TAT = %d, want %d", got, want)
	}
	if ttl := c.PTTL(context.Background(), key).Val(); ttl <= 400*time.Millisecond || ttl > 501*time.Millisecond {
		t.Errorf("PTTL = %v, want about 500 ms: the counter vanishes when the bucket is whole", ttl)
	}
	h := mustTake(t, l, k, 1, false)
	wantHeader(t, h, "Ratelimit", `"rps";r=0;t=1`)
	wantHeader(t, h, "Retry-After", "1")
	wantHeader(t, h, "Ratelimit-Policy", `"rps";q=10;w=1`)

	clk.add(250 * time.Millisecond) // 2.5 tokens back
	mustTake(t, l, k, 2, true)
	mustTake(t, l, k, 1, false)
	wantRemaining(t, l, k, map[string]int64{"rps": 0})
	clk.add(50 * time.Millisecond)
	wantRemaining(t, l, k, map[string]int64{"rps": 1})

	// More than the burst never fits: no Retry-After.
	h = mustTake(t, l, k, 6, false)
	wantHeader(t, h, "Retry-After", "")

	l.Give(context.Background(), k, 2)
	wantRemaining(t, l, k, map[string]int64{"rps": 3})
	l.Give(context.Background(), k, 100) // never past whole
	wantRemaining(t, l, k, map[string]int64{"rps": 5})
	if n := c.Exists(context.Background(), key).Val(); n != 0 {
		t.Errorf("a whole bucket's counter still exists")
	}
	st, err := l.Status(context.Background(), k)
	if err != nil || len(st) != 1 || !st[0].Reset.Equal(clk.now()) {
		t.Errorf("Status = %+v, %v: a whole bucket resets now", st, err)
	}
}

// The interval is rounded up to the ns, and sums stay exact beyond 2^53
// ns (104 days): a 400-day rolling quota.
func TestRateExactArithmetic(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{
		{Name: "thirds", Count: 3, Per: time.Second},
		{Name: "long", Count: 1000, Per: 400 * 24 * time.Hour},
	}})
	start := t0.Add(123456 * time.Microsecond) // TIME counts µs
	clk := fake(l, start)
	k := live("key_exact")
	mustTake(t, l, k, 3, true)
	thirds := limits.Spec{Count: 3, Per: time.Second}
	T := int64(thirds.Interval()) // 333333334
	if got, want := rawTAT(t, c, l.prefix+"{k:key_exact}:thirds"), clk.now().UnixNano()+3*T; got != want {
		t.Errorf("thirds TAT = %d, want %d", got, want)
	}
	long := limits.Spec{Count: 1000, Per: 400 * 24 * time.Hour}
	L := int64(long.Interval())
	if got, want := rawTAT(t, c, l.prefix+"{k:key_exact}:long"), clk.now().UnixNano()+3*L; got != want {
		t.Errorf("long TAT = %d, want %d", got, want)
	}
	clk.set(start.Add(time.Second)) // 2 ns short of 3 tokens back
	wantRemaining(t, l, k, map[string]int64{"thirds": 2, "long": 997})
	clk.set(start.Add(time.Second + time.Microsecond))
	wantRemaining(t, l, k, map[string]int64{"thirds": 3, "long": 997})
	h := mustTake(t, l, k, 998, false)
	wantHeader(t, h, "Ratelimit", `"thirds";r=3;t=0`) // the refusing one never fits: cost > burst
	mustTake(t, l, k, 3, true)
	mustTake(t, l, k, 1, false)
	wantRemaining(t, l, k, map[string]int64{"thirds": 0, "long": 994})
	// 994 at once on the long one: its TAT is 4+994 = 998 intervals (over
	// 2^53 ns) ahead, exactly.
	l2 := newLimiter(t, c, Config{Prefix: l.prefix, Live: []apikey.Limit{{Name: "long", Count: 1000, Per: 400 * 24 * time.Hour}}})
	l2.now = clk.now
	before := rawTAT(t, c, l.prefix+"{k:key_exact}:long")
	mustTake(t, l2, k, 994, true)
	if got, want := rawTAT(t, c, l.prefix+"{k:key_exact}:long"), before+994*L; got != want {
		t.Errorf("long TAT = %d, want %d", got, want)
	}
	h = mustTake(t, l2, k, 1, false)
	// It takes L ns for the next token: retry after exactly that, in seconds.
	wantHeader(t, h, "Retry-After", strconv.FormatInt(limits.CeilSeconds(time.Duration(before+995*L-long.BurstOrCount()*L-clk.now().UnixNano())), 10))
}

// A calendar quota in a zone: used up at the end of January in New York,
// whole again at midnight there; Give only within the period charged.
func TestQuotaMonthRollover(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "monthly", Count: 3, Period: "month", Zone: "America/New_York"}}})
	ny, _ := time.LoadLocation("America/New_York")
	clk := fake(l, time.Date(2030, 1, 31, 23, 59, 58, 0, ny))
	k := live("key_quota")
	h := mustTake(t, l, k, 1, true)
	wantHeader(t, h, "Ratelimit-Policy", `"monthly";q=3`)
	wantHeader(t, h, "Ratelimit", `"monthly";r=2;t=2`)
	mustTake(t, l, k, 2, true)
	h = mustTake(t, l, k, 1, false)
	wantHeader(t, h, "Ratelimit", `"monthly";r=0;t=2`)
	wantHeader(t, h, "Retry-After", "2")
	key := l.prefix + "{k:key_quota}:monthly"
	if ttl := c.PTTL(context.Background(), key).Val(); ttl < 61*time.Second || ttl > 62*time.Second {
		t.Errorf("PTTL = %v, want the period's end and a minute", ttl)
	}

	clk.set(time.Date(2030, 1, 31, 23, 59, 59, 999_999_000, ny)) // still January there (February in UTC)
	mustTake(t, l, k, 1, false)
	clk.set(time.Date(2030, 2, 1, 0, 0, 0, 0, ny))
	h = mustTake(t, l, k, 1, true)
	wantHeader(t, h, "Ratelimit", fmt.Sprintf(`"monthly";r=2;t=%d`, 28*24*3600))
	st, err := l.Status(context.Background(), k)
	if err != nil || !st[0].Reset.Equal(time.Date(2030, 3, 1, 0, 0, 0, 0, ny)) || st[0].Remaining != 2 {
		t.Errorf("Status = %+v, %v", st, err)
	}
	l.Give(context.Background(), k, 5) // not below 0
	wantRemaining(t, l, k, map[string]int64{"monthly": 3})
	mustTake(t, l, k, 2, true)
	clk.set(time.Date(2030, 3, 1, 0, 0, 0, 0, ny))
	l.Give(context.Background(), k, 2) // February's charge: March starts whole anyway
	wantRemaining(t, l, k, map[string]int64{"monthly": 3})
	mustTake(t, l, k, 3, true)
	mustTake(t, l, k, 1, false)
}

// A daily quota over a DST change: the day of the change in New York is
// 23 hours long.
func TestQuotaDay(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "daily", Count: 1, Period: "day", Zone: "America/New_York"}}})
	ny, _ := time.LoadLocation("America/New_York")
	fake(l, time.Date(2030, 3, 10, 0, 0, 0, 0, ny))
	k := live("key_daily")
	h := mustTake(t, l, k, 1, true)
	wantHeader(t, h, "Ratelimit-Policy", `"daily";q=1;w=86400`)
	wantHeader(t, h, "Ratelimit", fmt.Sprintf(`"daily";r=0;t=%d`, 23*3600))
}

// When the replica's idea of the server's clock is off (here by 40 days),
// the script finds the server's time outside the period computed and the
// decision is made again at the server's time (real TIME here).
func TestPeriodFromServerTime(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{
		{Name: "monthly", Count: 5, Period: "month"},
		{Name: "daily", Count: 5, Period: "day", Zone: "Asia/Tokyo"},
	}})
	k := live("key_skew")
	for _, skew := range []time.Duration{-40 * 24 * time.Hour, 40 * 24 * time.Hour} {
		l.offset.Store(int64(skew))
		mustTake(t, l, k, 1, true)
		if off := time.Duration(l.offset.Load()); off > time.Second || off < -time.Second {
			t.Errorf("offset after a decision = %v, want about 0", off)
		}
	}
	wantRemaining(t, l, k, map[string]int64{"monthly": 3, "daily": 3})
}

// Credits: exactly Count, no Retry-After when spent (waiting will not
// help), Give returns them.
func TestCredits(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "credits", Count: 10, Credits: true}}})
	k := live("key_credits")
	h := mustTake(t, l, k, 7, true)
	wantHeader(t, h, "Ratelimit-Policy", `"credits";q=10`)
	wantHeader(t, h, "Ratelimit", `"credits";r=3`)
	h = mustTake(t, l, k, 4, false)
	wantHeader(t, h, "Ratelimit", `"credits";r=3`)
	wantHeader(t, h, "Retry-After", "")
	mustTake(t, l, k, 3, true)
	l.Give(context.Background(), k, 2)
	mustTake(t, l, k, 2, true)
	mustTake(t, l, k, 1, false)
	if ttl := c.PTTL(context.Background(), l.prefix+"{k:key_credits}:credits").Val(); ttl != -1 {
		t.Errorf("PTTL of credits without a period = %v, want none (-1)", ttl)
	}
	st, err := l.Status(context.Background(), k)
	if err != nil || len(st) != 1 || st[0].Remaining != 0 || !st[0].Reset.IsZero() {
		t.Errorf("Status = %+v, %v", st, err)
	}

	// Monthly credits refill each month.
	l2 := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "credits", Count: 2, Credits: true, Period: "month"}}})
	clk := fake(l2, t0)
	mustTake(t, l2, k, 2, true)
	h = mustTake(t, l2, k, 1, false)
	wantHeader(t, h, "Retry-After", strconv.Itoa(31*24*3600))
	clk.set(t0.AddDate(0, 1, 0))
	mustTake(t, l2, k, 2, true)
}

// A request is charged to every limit or to none.
func TestAllOrNothing(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{
		{Name: "rps", Count: 100, Per: time.Second, Burst: 5},
		{Name: "daily", Count: 4, Period: "day"},
		{Name: "credits", Count: 3, Credits: true},
	}})
	clk := fake(l, t0)
	k := live("key_aon")
	mustTake(t, l, k, 4, false) // credits refuse
	wantRemaining(t, l, k, map[string]int64{"rps": 5, "daily": 4, "credits": 3})
	mustTake(t, l, k, 6, false) // all refuse; rps never fits
	wantRemaining(t, l, k, map[string]int64{"rps": 5, "daily": 4, "credits": 3})
	mustTake(t, l, k, 2, true)
	wantRemaining(t, l, k, map[string]int64{"rps": 3, "daily": 2, "credits": 1})
	mustTake(t, l, k, 1, true)
	mustTake(t, l, k, 1, false) // credits spent
	clk.add(time.Second)
	wantRemaining(t, l, k, map[string]int64{"rps": 5, "daily": 1, "credits": 0})
	l.Give(context.Background(), k, 1)
	wantRemaining(t, l, k, map[string]int64{"rps": 5, "daily": 2, "credits": 1})
	l.Give(context.Background(), k, 10)
	wantRemaining(t, l, k, map[string]int64{"rps": 5, "daily": 4, "credits": 3})

	// Key limits laid over the defaults: a replaced default, a lifted one,
	// an added one.
	own := live("key_own",
		apikey.Limit{Name: "daily", Count: 1, Period: "day"},
		apikey.Limit{Name: "credits", Count: -1},
		apikey.Limit{Name: "hourly", Count: 9, Per: time.Hour},
	)
	mustTake(t, l, own, 1, true)
	wantRemaining(t, l, own, map[string]int64{"rps": 4, "daily": 0, "hourly": 8})
	h := mustTake(t, l, own, 1, false)
	wantHeader(t, h, "Ratelimit-Policy", `"rps";q=100;w=1, "daily";q=1;w=86400, "hourly";q=9;w=3600`)
	wantRemaining(t, l, own, map[string]int64{"rps": 4, "daily": 0, "hourly": 8})
}

// Limits with Owner count over all of an owner's keys, per environment;
// a key without an owner counts them alone.
func TestOwnerShared(t *testing.T) {
	c := sharedClient(t)
	limitsOf := []apikey.Limit{
		{Name: "org", Count: 3, Per: time.Hour, Owner: true},
		{Name: "own", Count: 2, Per: time.Hour},
	}
	l := newLimiter(t, c, Config{Live: limitsOf, Test: limitsOf})
	fake(l, t0)
	a := &apikey.Key{ID: "key_a", Environment: apikey.EnvLive, Owner: "acct_1"}
	b := &apikey.Key{ID: "key_b", Environment: apikey.EnvLive, Owner: "acct_1"}
	sandbox := &apikey.Key{ID: "key_t", Environment: apikey.EnvTest, Owner: "acct_1"}
	lone := &apikey.Key{ID: "key_lone", Environment: apikey.EnvLive}
	mustTake(t, l, a, 2, true)
	mustTake(t, l, a, 1, false) // its own limit
	mustTake(t, l, b, 1, true)
	h := mustTake(t, l, b, 1, false) // the owner's
	wantHeader(t, h, "Ratelimit", `"org";r=0;t=3600`)
	wantHeader(t, h, "Retry-After", "1200")
	wantRemaining(t, l, b, map[string]int64{"org": 0, "own": 1})
	mustTake(t, l, sandbox, 2, true) // test keys count apart
	mustTake(t, l, lone, 2, true)
	wantRemaining(t, l, lone, map[string]int64{"org": 1, "own": 0})
}

// A rolled key's successor goes on with its counters (Key.Lineage).
func TestRollSharesCounters(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "hourly", Count: 3, Per: time.Hour}}})
	fake(l, t0)
	old := live("key_first")
	mustTake(t, l, old, 2, true)
	next := live("key_second")
	next.Lineage, next.RolledFrom = "key_first", "key_first"
	third := live("key_third")
	third.Lineage, third.RolledFrom = "key_first", "key_second"
	mustTake(t, l, next, 1, true)
	mustTake(t, l, third, 1, false)
	mustTake(t, l, old, 1, false)
	wantRemaining(t, l, third, map[string]int64{"hourly": 0})
}

// The RateLimit fields, pinned: an allowed and a refused request.
func TestHeaders(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{
		{Name: "rps", Count: 10, Per: time.Second, Burst: 2},
		{Name: "monthly", Count: 1000, Period: "month"},
	}})
	fake(l, t0.Add(10*24*time.Hour+500*time.Millisecond))
	k := live("key_headers")
	h := mustTake(t, l, k, 1, true)
	if want := (http.Header{
		"Ratelimit-Policy": {`"rps";q=10;w=1, "monthly";q=1000`},
		"Ratelimit":        {`"rps";r=1;t=1`},
	}); fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("allowed: headers\n%v\nwant\n%v", h, want)
	}
	mustTake(t, l, k, 1, true)
	h = mustTake(t, l, k, 1, false)
	if want := (http.Header{
		"Ratelimit-Policy": {`"rps";q=10;w=1, "monthly";q=1000`},
		"Ratelimit":        {`"rps";r=0;t=1`},
		"Retry-After":      {"1"},
	}); fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("refused: headers\n%v\nwant\n%v", h, want)
	}

	// Refused by two: the longer wait wins; a limit that never fits wins
	// over any wait.
	l2 := newLimiter(t, c, Config{Live: []apikey.Limit{
		{Name: "rps", Count: 10, Per: time.Second, Burst: 1},
		{Name: "daily", Count: 1, Period: "day"},
		{Name: "credits", Count: 5, Credits: true},
	}})
	fake(l2, t0.Add(12*time.Hour))
	mustTake(t, l2, k, 1, true)
	h = mustTake(t, l2, k, 1, false)
	wantHeader(t, h, "Ratelimit", `"daily";r=0;t=43200`)
	wantHeader(t, h, "Retry-After", "43200")
	h = mustTake(t, l2, k, 5, false)
	wantHeader(t, h, "Ratelimit", `"rps";r=0;t=1`)
	wantHeader(t, h, "Retry-After", "")

	// A quota a cost can never fit: no Retry-After, as package limit
	// (TestHugeCosts); a cost that overflows a sum still names the quota.
	l4 := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "daily", Count: 10, Period: "day"}}})
	fake(l4, t0.Add(12*time.Hour))
	mustTake(t, l4, k, 4, true)
	for _, cost := range []int64{7, 11, 1<<63 - 1} {
		h = mustTake(t, l4, k, cost, false)
		wantHeader(t, h, "Ratelimit", `"daily";r=6;t=43200`)
		if cost <= 10 {
			wantHeader(t, h, "Retry-After", "43200")
		} else {
			wantHeader(t, h, "Retry-After", "")
		}
	}

	// NoHeaders: none on allowed requests; refused ones carry them.
	l3 := newLimiter(t, c, Config{NoHeaders: true, Live: []apikey.Limit{{Name: "rps", Count: 1, Per: time.Second}}})
	fake(l3, t0)
	if h := mustTake(t, l3, k, 1, true); len(h) != 0 {
		t.Errorf("NoHeaders, allowed: %v", h)
	}
	h = mustTake(t, l3, k, 1, false)
	wantHeader(t, h, "Ratelimit", `"rps";r=0;t=1`)
	wantHeader(t, h, "Retry-After", "1")
}

// The case of package limit's TestHeaders, with the same answers: the
// state of the limit with the smallest share left.
func TestHeadersAsPackageLimit(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{
		{Name: "requests", Count: 100, Per: time.Minute, Burst: 10},
		{Name: "daily", Count: 1000, Period: "day"},
		{Name: "credits", Count: 4, Credits: true},
	}})
	fake(l, t0)
	k := live("key_h")
	h := mustTake(t, l, k, 2, true)
	wantHeader(t, h, "Ratelimit-Policy", `"requests";q=100;w=60, "daily";q=1000;w=86400, "credits";q=4`)
	wantHeader(t, h, "Ratelimit", `"credits";r=2`)
	wantHeader(t, h, "Retry-After", "")
	h = mustTake(t, l, k, 3, false)
	wantHeader(t, h, "Ratelimit", `"credits";r=2`)
	wantHeader(t, h, "Retry-After", "")

	r := live("key_r", apikey.Limit{Name: "credits", Count: -1})
	mustTake(t, l, r, 5, true)
	mustTake(t, l, r, 5, true)
	h = mustTake(t, l, r, 1, false)
	wantHeader(t, h, "Ratelimit", `"requests";r=0;t=6`)
	wantHeader(t, h, "Retry-After", "1")
}

// Redis forgets its scripts (SCRIPT FLUSH, a restart): EVALSHA fails,
// EVAL runs it again.
func TestScriptFlushed(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Live: []apikey.Limit{{Name: "hourly", Count: 3, Per: time.Hour}}})
	k := live("key_flush")
	mustTake(t, l, k, 1, true)
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	mustTake(t, l, k, 2, true)
	mustTake(t, l, k, 1, false)
}

// syncBuffer collects log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (b *logLines) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, string(p))
	return len(p), nil
}

func (b *logLines) get() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.lines)
}

func (b *logLines) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
