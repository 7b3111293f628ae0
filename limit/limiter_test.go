package limit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/limit"
	"github.com/keygate/apikey/storetest"
)

func newLimiter(t testing.TB, clock *storetest.Clock, live ...apikey.Limit) *limit.Limiter {
	t.Helper()
	cfg := limit.Config{Live: live}
	if clock != nil {
		cfg.Clock = clock.Now
	}
	l, err := limit.New(cfg)
	require.NoError(t, err)
	return l
}

func liveKey(id string) *apikey.Key {
	return &apikey.Key{ID: id, Environment: apikey.EnvLive, Owner: "acct_1"}
}

func take(t testing.TB, l *limit.Limiter, k *apikey.Key, cost int64) bool {
	t.Helper()
	ok, err := l.Take(context.Background(), k, cost, nil)
	require.NoError(t, err)
	return ok
}

// takeN takes cost 1 n times and returns how many were admitted.
func takeN(t testing.TB, l *limit.Limiter, k *apikey.Key, n int) int {
	admitted := 0
	for range n {
		if take(t, l, k, 1) {
			admitted++
		}
	}
	return admitted
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string][]apikey.Limit{
		"no kind":       {{Name: "x", Count: 5}},
		"bad name":      {{Name: "Requests", Count: 5, Per: time.Second}},
		"twice":         {{Name: "x", Count: 5, Per: time.Second}, {Name: "x", Count: 5, Per: time.Minute}},
		"rate+period":   {{Name: "x", Count: 5, Per: time.Second, Period: "day"}},
		"bad period":    {{Name: "x", Count: 5, Period: "week"}},
		"bad zone":      {{Name: "x", Count: 5, Period: "day", Zone: "Mars/Olympus"}},
		"zone, no per.": {{Name: "x", Count: 5, Credits: true, Zone: "UTC"}},
		"zero rate":     {{Name: "x", Count: 0, Per: time.Second}},
		"tiny per":      {{Name: "x", Count: 5, Per: time.Microsecond}},
		"burst, quota":  {{Name: "x", Count: 5, Period: "day", Burst: 3}},
		"lift default":  {{Name: "x", Count: -1}},
		"huge burst":    {{Name: "x", Count: 1, Per: 24 * time.Hour, Burst: 1 << 30}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := limit.New(limit.Config{Live: tc})
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), "Config.Live")
		})
	}
}

// GCRA to the letter: a whole bucket of Burst, then one every Per/Count.
func TestRate(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	l := newLimiter(t, clock, apikey.Limit{Name: "requests", Count: 10, Per: time.Second, Burst: 5})
	k := liveKey("key_a")
	assert.Equal(t, 5, takeN(t, l, k, 20), "the burst")
	clock.Advance(99 * time.Millisecond)
	assert.Equal(t, 0, takeN(t, l, k, 1))
	clock.Advance(time.Millisecond)
	assert.Equal(t, 1, takeN(t, l, k, 5), "one every 100 ms")
	clock.Advance(time.Hour)
	assert.Equal(t, 5, takeN(t, l, k, 20), "never more than the burst")
	assert.False(t, take(t, l, liveKey("key_b"), 6), "a cost over the burst never fits")
	assert.True(t, take(t, l, liveKey("key_b"), 5))
}

// With 4 goroutines hammering one key on the real clock, what is admitted
// from a whole bucket over t never exceeds Burst + t·Count/Per.
func TestRateExactUnderConcurrency(t *testing.T) {
	const count, burst, per = 2000, 50, time.Second
	l := newLimiter(t, nil, apikey.Limit{Name: "requests", Count: count, Per: per, Burst: burst})
	k := liveKey("key_hot")
	var admitted atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Since(start) < 700*time.Millisecond {
				if ok, _ := l.Take(context.Background(), k, 1, nil); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	bound := burst + int64(float64(count)*elapsed.Seconds()) + 1
	got := admitted.Load()
	t.Logf("admitted %d in %v; bound %d", got, elapsed, bound)
	assert.LessOrEqual(t, got, bound)
	assert.GreaterOrEqual(t, got, int64(float64(count)*0.6*0.7), "the limiter admits near its rate")
}

// Credits: a million concurrent attempts admit exactly the balance.
func TestCreditsExact(t *testing.T) {
	const balance = 5000
	l := newLimiter(t, nil, apikey.Limit{Name: "credits", Count: balance, Credits: true})
	k := liveKey("key_c")
	var admitted, attempts atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for attempts.Add(1) <= 1_000_000 {
				if ok, _ := l.Take(context.Background(), k, 1, nil); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(balance), admitted.Load())
	st, err := l.Status(context.Background(), k)
	require.NoError(t, err)
	assert.Equal(t, int64(0), st[0].Remaining)
	assert.True(t, st[0].Reset.IsZero(), "credits without a period never refill")
	l.Give(context.Background(), k, 3)
	assert.Equal(t, 3, takeN(t, l, k, 10), "what was given back, no more")
}

// A monthly quota in a stated zone starts again at midnight on the 1st
// there, not in UTC.
func TestQuotaCalendarMonth(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	clock := storetest.NewClock(time.Date(2026, 11, 30, 23, 0, 0, 0, ny))
	l := newLimiter(t, clock, apikey.Limit{Name: "monthly", Count: 3, Period: "month", Zone: "America/New_York"})
	k := liveKey("key_q")
	h := http.Header{}
	assert.Equal(t, 3, takeN(t, l, k, 5))
	ok, err := l.Take(context.Background(), k, 1, h)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, "3600", h.Get("Retry-After"), "an hour to midnight in New York")
	assert.Equal(t, `"monthly";q=3`, h.Get("RateLimit-Policy"))
	assert.Equal(t, `"monthly";r=0;t=3600`, h.Get("RateLimit"))

	clock.Advance(59 * time.Minute) // 04:59 UTC on Dec 1: still November in New York
	assert.Equal(t, 0, takeN(t, l, k, 1))
	clock.Advance(time.Minute)
	assert.Equal(t, 3, takeN(t, l, k, 5), "December")
}

// A daily quota says its window; credits refilled each day too.
func TestDailyCreditsRefill(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC))
	l := newLimiter(t, clock, apikey.Limit{Name: "credits", Count: 2, Credits: true, Period: "day"})
	k := liveKey("key_d")
	assert.Equal(t, 2, takeN(t, l, k, 3))
	clock.Advance(12 * time.Hour)
	assert.Equal(t, 2, takeN(t, l, k, 3))
}

// All or nothing: a limit that refuses leaves the others untouched.
func TestAllOrNothing(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	l := newLimiter(t, clock,
		apikey.Limit{Name: "requests", Count: 10, Per: time.Minute},
		apikey.Limit{Name: "credits", Count: 3, Credits: true})
	k := liveKey("key_e")
	assert.True(t, take(t, l, k, 3))
	assert.False(t, take(t, l, k, 1), "no credits")
	st, err := l.Status(context.Background(), k)
	require.NoError(t, err)
	assert.Equal(t, int64(7), st[0].Remaining, "the refused request took no rate")
	assert.Equal(t, int64(0), st[1].Remaining)
}

// With both default lists invalid, the error names the same one every
// time (Live, checked first).
func TestConfigErrorIsStable(t *testing.T) {
	bad := []apikey.Limit{{Name: "x", Count: 5}}
	for range 20 {
		_, err := limit.New(limit.Config{Live: bad, Test: bad})
		require.ErrorIs(t, err, apikey.ErrInvalid)
		require.Contains(t, err.Error(), "Config.Live")
	}
}

// A key whose Count was lowered below what it used reports nothing left,
// never a negative remainder.
func TestStatusAfterCountLowered(t *testing.T) {
	l := newLimiter(t, storetest.NewClock(storetest.Epoch))
	k := liveKey("key_lowered")
	k.Limits = []apikey.Limit{{Name: "daily", Count: 10, Period: "day"}}
	assert.Equal(t, 8, takeN(t, l, k, 8))
	lowered := *k
	lowered.Limits = []apikey.Limit{{Name: "daily", Count: 5, Period: "day"}}
	st, err := l.Status(context.Background(), &lowered)
	require.NoError(t, err)
	require.Len(t, st, 1)
	assert.Zero(t, st[0].Remaining)
	assert.False(t, take(t, l, &lowered, 1))
}

// Owner limits are shared by all of an owner's keys in one environment;
// other limits count per lineage, so a successor goes on with them.
func TestScopes(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	l := newLimiter(t, clock,
		apikey.Limit{Name: "account", Count: 5, Period: "day", Owner: true},
		apikey.Limit{Name: "requests", Count: 3, Per: time.Hour})
	a, b := liveKey("key_1"), liveKey("key_2")
	assert.Equal(t, 3, takeN(t, l, a, 5))
	assert.Equal(t, 2, takeN(t, l, b, 5), "the account's 5 are spent")
	other := liveKey("key_3")
	other.Owner = "acct_2"
	assert.Equal(t, 3, takeN(t, l, other, 5))
	// An owner's test keys count apart from its live ones.
	both, err := limit.New(limit.Config{Clock: clock.Now,
		Live: []apikey.Limit{{Name: "account", Count: 2, Period: "day", Owner: true}},
		Test: []apikey.Limit{{Name: "account", Count: 2, Period: "day", Owner: true}}})
	require.NoError(t, err)
	sandbox := liveKey("key_4")
	sandbox.Environment = apikey.EnvTest
	assert.Equal(t, 2, takeN(t, both, a, 5))
	assert.Equal(t, 2, takeN(t, both, sandbox, 5), "acct_1's test keys have their own 2")

	keys, _ := testKeys()
	is, err := keys.NewKey(apikey.KeySpec{Name: "x", Owner: "acct_9"})
	require.NoError(t, err)
	first := is.Key
	assert.Equal(t, 2, takeN(t, l, first, 2))
	next, _, err := keys.Successor(first, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 1, takeN(t, l, next.Key, 5), "the successor inherits the counters")
	third, _, err := keys.Successor(next.Key, 0)
	require.NoError(t, err)
	assert.Equal(t, first.ID, third.Key.Lineage)
	assert.Equal(t, 0, takeN(t, l, third.Key, 1))
}

func testKeys() (apikey.KeyConfig, *storetest.Clock) {
	clock := storetest.NewClock(storetest.Epoch)
	return apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Clock: clock.Now}, clock
}

// Test keys are outside the defaults unless Config.Test says otherwise; a
// key's own limits replace a default of the same name, or lift it.
func TestDefaultsAndOwnLimits(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	l := newLimiter(t, clock, apikey.Limit{Name: "requests", Count: 2, Per: time.Hour})
	sandbox := &apikey.Key{ID: "key_t", Environment: apikey.EnvTest}
	assert.Equal(t, 50, takeN(t, l, sandbox, 50))

	big := liveKey("key_big")
	big.Limits = []apikey.Limit{{Name: "requests", Count: 4, Per: time.Hour}}
	assert.Equal(t, 4, takeN(t, l, big, 10))
	free := liveKey("key_free")
	free.Limits = []apikey.Limit{{Name: "requests", Count: -1}}
	assert.Equal(t, 20, takeN(t, l, free, 20))
	extra := liveKey("key_extra")
	extra.Limits = []apikey.Limit{{Name: "credits", Count: 1, Credits: true}}
	assert.Equal(t, 1, takeN(t, l, extra, 10))
	st, err := l.Status(context.Background(), extra)
	require.NoError(t, err)
	require.Len(t, st, 2)
	assert.Equal(t, "requests", st[0].Limit.Name)
	assert.Equal(t, int64(1), st[0].Remaining)

	// A bad limit stored by hand fails closed (a 503 in the middleware):
	// ignoring it could lift a limit the key was sold with.
	bad := liveKey("key_bad")
	bad.Limits = []apikey.Limit{{Name: "BAD"}}
	ok, err := l.Take(context.Background(), bad, 1, nil)
	assert.False(t, ok)
	assert.ErrorContains(t, err, "key_bad")
	_, err = l.Status(context.Background(), bad)
	assert.Error(t, err)

	withTest, err := limit.New(limit.Config{Test: []apikey.Limit{{Name: "sandbox", Count: 1, Per: time.Hour}}, Clock: clock.Now})
	require.NoError(t, err)
	assert.Equal(t, 1, takeN(t, withTest, sandbox, 3))
	assert.Equal(t, 3, takeN(t, withTest, liveKey("key_l"), 3), "no live defaults")
}

// The headers: the policy of every limit, the state of the one with the
// smallest share left; Retry-After only on a refusal that waiting fixes.
func TestHeaders(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	l := newLimiter(t, clock,
		apikey.Limit{Name: "requests", Count: 100, Per: time.Minute, Burst: 10},
		apikey.Limit{Name: "daily", Count: 1000, Period: "day"},
		apikey.Limit{Name: "credits", Count: 4, Credits: true})
	k := liveKey("key_h")
	h := http.Header{}
	ok, err := l.Take(context.Background(), k, 2, h)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, `"requests";q=100;w=60, "daily";q=1000;w=86400, "credits";q=4`, h.Get("RateLimit-Policy"))
	assert.Equal(t, `"credits";r=2`, h.Get("RateLimit"), "half the credits left: the smallest share")
	assert.Empty(t, h.Get("Retry-After"))

	h = http.Header{}
	ok, err = l.Take(context.Background(), k, 3, h)
	require.NoError(t, err)
	require.False(t, ok)
	assert.Equal(t, `"credits";r=2`, h.Get("RateLimit"))
	assert.Empty(t, h.Get("Retry-After"), "credits that never refill: no point in waiting")

	h = http.Header{}
	r := liveKey("key_r")
	r.Limits = []apikey.Limit{{Name: "credits", Count: -1}}
	for range 2 {
		ok, err = l.Take(context.Background(), r, 5, h)
		require.NoError(t, err)
	}
	require.True(t, ok)
	ok, err = l.Take(context.Background(), r, 1, h)
	require.NoError(t, err)
	require.False(t, ok)
	assert.Equal(t, `"requests";r=0;t=6`, h.Get("RateLimit"))
	assert.Equal(t, "1", h.Get("Retry-After"), "600 ms to the next token, rounded up")
}

func TestCostMustBePositive(t *testing.T) {
	l := newLimiter(t, nil, apikey.Limit{Name: "requests", Count: 1, Per: time.Second})
	_, err := l.Take(context.Background(), liveKey("key_x"), 0, nil)
	assert.True(t, errors.Is(err, apikey.ErrInvalid))
}

func ExampleNew() {
	lim, err := limit.New(limit.Config{Live: []apikey.Limit{
		{Name: "requests", Count: 100, Per: time.Second, Burst: 200},
		{Name: "monthly", Count: 1_000_000, Period: "month", Zone: "America/New_York", Owner: true},
	}})
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	ok, _ := lim.Take(context.Background(), &apikey.Key{ID: "key_1", Environment: apikey.EnvLive, Owner: "acct_1"}, 1, h)
	fmt.Println(ok)
	fmt.Println(h.Get("RateLimit-Policy"))
	// Output:
	// true
	// "requests";q=100;w=1, "monthly";q=1000000
}

// Costs beyond any limit never fit, and never wrap around into a pass.
func TestHugeCosts(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	l := newLimiter(t, clock,
		apikey.Limit{Name: "requests", Count: 10, Per: 24 * time.Hour})
	k := liveKey("key_big")
	for _, cost := range []int64{11, 2_000_000, 1 << 40, 1<<62 + 1, 1<<63 - 1} {
		h := http.Header{}
		ok, err := l.Take(context.Background(), k, cost, h)
		require.NoError(t, err)
		assert.False(t, ok, "cost %d", cost)
		assert.Empty(t, h.Get("Retry-After"), "cost %d never fits: no point in waiting", cost)
	}
	assert.Equal(t, 10, takeN(t, l, k, 20), "the refusals took nothing")

	credits := newLimiter(t, clock, apikey.Limit{Name: "credits", Count: 10, Credits: true})
	c := liveKey("key_credits")
	assert.True(t, take(t, credits, c, 1))
	assert.False(t, take(t, credits, c, 1<<63-1))
	assert.False(t, take(t, credits, c, 10))
	assert.Equal(t, 9, takeN(t, credits, c, 20), "never more than the balance")
	credits.Give(context.Background(), c, 1<<63-1)
	assert.Equal(t, 10, takeN(t, credits, c, 20), "a huge refund gives back what was used, no more")
}

// More limits than one list may hold, defaults and a key's own together,
// still decide (and do not panic).
func TestManyLimits(t *testing.T) {
	var defaults, own []apikey.Limit
	for i := range limitsPerList {
		defaults = append(defaults, apikey.Limit{Name: fmt.Sprintf("d%d", i), Count: 5, Per: time.Minute})
		own = append(own, apikey.Limit{Name: fmt.Sprintf("o%d", i), Count: 3, Per: time.Minute})
	}
	l := newLimiter(t, storetest.NewClock(storetest.Epoch), defaults...)
	k := liveKey("key_many")
	k.Limits = own
	assert.Equal(t, 3, takeN(t, l, k, 5))
	st, err := l.Status(context.Background(), k)
	require.NoError(t, err)
	assert.Len(t, st, 2*limitsPerList)
}

// limitsPerList is the most limits one list may hold.
const limitsPerList = 16

// Keys with the same own limits (a tier) share one plan, each with its own
// counters; the same limits on a key of the other environment are laid
// over that environment's defaults.
func TestOwnLimitsSharedByContent(t *testing.T) {
	l, err := limit.New(limit.Config{Clock: storetest.NewClock(storetest.Epoch).Now,
		Live: []apikey.Limit{{Name: "burst", Count: 1, Per: time.Hour}}})
	require.NoError(t, err)
	own := func() []apikey.Limit { return []apikey.Limit{{Name: "requests", Count: 3, Per: time.Hour}} }
	a, b := liveKey("key_a"), liveKey("key_b")
	a.Limits, b.Limits = own(), own()
	assert.Equal(t, 1, takeN(t, l, a, 5), "the live default of 1 holds")
	assert.Equal(t, 1, takeN(t, l, b, 5), "b's counters are its own")
	sandbox := liveKey("key_c")
	sandbox.Environment, sandbox.Limits = apikey.EnvTest, own()
	assert.Equal(t, 3, takeN(t, l, sandbox, 5), "no live default for a test key")
}

// A key's own limits are compiled once, and a changed key (a new Limits
// slice, as every store gives) is decided by its new limits at once.
func TestOwnLimitsChange(t *testing.T) {
	l := newLimiter(t, storetest.NewClock(storetest.Epoch))
	k := liveKey("key_own")
	k.Limits = []apikey.Limit{{Name: "requests", Count: 5, Per: time.Hour}}
	assert.Equal(t, 2, takeN(t, l, k, 2))
	changed := *k
	changed.Limits = []apikey.Limit{{Name: "requests", Count: 3, Per: time.Hour}}
	// GCRA's state is a time: 2 of 5 an hour spent 24 of 60 minutes; 3
	// an hour leaves room for one more (44 minutes), and the old limits
	// for one more still (56).
	assert.Equal(t, 1, takeN(t, l, &changed, 5), "3 an hour now")
	assert.Equal(t, 1, takeN(t, l, k, 5), "one counter, whichever limits ask")
}
