package redislimit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/apikey"
)

// The rate of the concurrency tests: T = 1 ms, 50 at once.
var hammered = apikey.Limit{Name: "rps", Count: 100, Per: 100 * time.Millisecond, Burst: 50}

const (
	replicas   = 4
	goroutines = 2 // per replica
	hammerFor  = time.Second
)

// hammerResult is what hammering saw.
type hammerResult struct {
	Admitted int64   `json:"admitted"`
	Attempts int64   `json:"attempts"`
	MaxLat   int64   `json:"max_lat_ns"` // the slowest Take
	Times    []int64 `json:"times"`      // unix ns at which each admitting Take returned
}

// hammer calls l.Take for k from n goroutines until end.
func hammer(l *Limiter, k *apikey.Key, n int, end time.Time) (hammerResult, error) {
	var mu sync.Mutex
	var r hammerResult
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			var mine hammerResult
			for time.Now().Before(end) {
				s := time.Now()
				ok, err := l.Take(context.Background(), k, 1, nil)
				e := time.Now()
				if err != nil {
					errs <- err
					return
				}
				mine.Attempts++
				mine.MaxLat = max(mine.MaxLat, int64(e.Sub(s)))
				if ok {
					mine.Admitted++
					mine.Times = append(mine.Times, e.UnixNano())
				}
			}
			mu.Lock()
			r.Admitted += mine.Admitted
			r.Attempts += mine.Attempts
			r.MaxLat = max(r.MaxLat, mine.MaxLat)
			r.Times = append(r.Times, mine.Times...)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	return r, <-errs
}

func (r *hammerResult) merge(o hammerResult) {
	r.Admitted += o.Admitted
	r.Attempts += o.Attempts
	r.MaxLat = max(r.MaxLat, o.MaxLat)
	r.Times = append(r.Times, o.Times...)
}

// checkExact checks what replicas admitted from a whole bucket between
// start and end: at most Burst + elapsed·Count/Per, where elapsed ends a
// Take's latency after end (the last decisions); and close to it: at
// least 90% of what the rate offered while someone was asking. A pause
// longer than the bucket holds (Burst intervals: a busy machine stalling
// Redis or the test) loses tokens by design, so the lower figure counts
// each gap between admissions up to Burst intervals only.
func checkExact(t *testing.T, r hammerResult, start, end time.Time) {
	t.Helper()
	T := float64(hammered.Per) / float64(hammered.Count)
	elapsed := end.Sub(start) + time.Duration(r.MaxLat)
	bound := float64(hammered.Burst) + float64(elapsed)/T
	times := slices.Sorted(slices.Values(r.Times))
	offered := float64(hammered.Burst)
	prev := start.UnixNano()
	for _, x := range append(times, end.UnixNano()) {
		offered += min(float64(x-prev), float64(hammered.Burst)*T) / T
		prev = max(prev, x)
	}
	t.Logf("admitted %d of %d attempts; bound %.0f (Burst + elapsed·Count/Per, elapsed %v); offered while asked %.0f; slowest Take %v",
		r.Admitted, r.Attempts, bound, elapsed, offered, time.Duration(r.MaxLat))
	if float64(r.Admitted) > bound {
		t.Errorf("admitted %d > bound %.0f", r.Admitted, bound)
	}
	if float64(r.Admitted) < 0.9*offered {
		t.Errorf("admitted %d < 90%% of %.0f: far below the rate", r.Admitted, offered)
	}
}

// hammerAll runs hammer on every limiter at once, for hammerFor, and
// checks the whole run against the bound without leases.
func hammerAll(t *testing.T, ls []*Limiter, k *apikey.Key) hammerResult {
	t.Helper()
	start := time.Now()
	end := start.Add(hammerFor)
	var total hammerResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			r, err := hammer(l, k, goroutines, end)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total.merge(r)
			mu.Unlock()
		})
	}
	wg.Wait()
	checkExact(t, total, start, end)
	return total
}

// Four limiters (four servers' worth) on one Redis, hammering one key.
func TestRateReplicas(t *testing.T) {
	needRedis(t)
	prefix := fmt.Sprintf("replicas%d:", prefixes.Add(1))
	k := live("key_hammered")
	var ls []*Limiter
	for range replicas {
		ls = append(ls, newLimiter(t, newClient(t, shared.addr), Config{Prefix: prefix, Timeout: 10 * time.Second, Live: []apikey.Limit{hammered}}))
	}
	hammerAll(t, ls, k)
}

// The same with leases: over the run, from empty pools, still at most
// Burst + elapsed·Count/Per; in every window of Per, at most Burst +
// Count + replicas×(Lease-1) (the package doc's bound; windows here are
// widened by the slowest Take, as admissions are timed when Take returns).
func TestRateReplicasLeased(t *testing.T) {
	needRedis(t)
	const lease = 20
	prefix := fmt.Sprintf("leased%d:", prefixes.Add(1))
	k := live("key_leased")
	var ls []*Limiter
	for range replicas {
		ls = append(ls, newLimiter(t, newClient(t, shared.addr), Config{
			Prefix: prefix, Timeout: 10 * time.Second, Live: []apikey.Limit{hammered}, Lease: lease, LeaseTTL: 50 * time.Millisecond,
		}))
	}
	total := hammerAll(t, ls, k)

	T := hammered.Per / time.Duration(hammered.Count)
	window := hammered.Per + time.Duration(total.MaxLat)
	bound := hammered.Burst + hammered.Count + replicas*(lease-1) + int64(time.Duration(total.MaxLat)/T) + 1
	times := total.Times
	slices.Sort(times)
	var most int64
	for i, j := 0, 0; i < len(times); i++ {
		for times[j] <= times[i]-int64(window) {
			j++
		}
		most = max(most, int64(i-j+1))
	}
	t.Logf("at most %d admitted in a window of %v (Per and the slowest Take); bound %d", most, window, bound)
	if most > bound {
		t.Errorf("%d admitted in a window of %v > bound %d", most, window, bound)
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The leases' rests are back: nothing is held, so the bucket is
	// whole again once a Burst's worth of time has passed.
	time.Sleep(time.Duration(hammered.Burst) * T)
	if n := remaining(t, ls[0], k)["rps"]; n != hammered.Burst {
		t.Errorf("after Close and %v, remaining %d, want %d", time.Duration(hammered.Burst)*T, n, hammered.Burst)
	}
}

// Leasing, step by step at a fixed server time: one call takes Lease
// tokens, the next Lease-1 requests are served here, the rest goes back
// after LeaseTTL or on Close; quotas and credits are never leased.
func TestLease(t *testing.T) {
	c := sharedClient(t)
	l := newLimiter(t, c, Config{Lease: 5, LeaseTTL: 100 * time.Millisecond, Live: []apikey.Limit{{Name: "rph", Count: 100, Per: time.Hour}}})
	fake(l, t0)
	T := time.Hour / 100
	k := live("key_lease")
	key := l.prefix + "{k:key_lease}:rph"
	h := mustTake(t, l, k, 1, true)
	wantHeader(t, h, "Ratelimit", `"rph";r=99;t=180`)
	if got, want := rawTAT(t, c, key), t0.Add(5*T).UnixNano(); got != want {
		t.Fatalf("after the first Take, TAT %v, want 5 tokens taken", time.Duration(got-t0.UnixNano()))
	}
	for range 4 {
		mustTake(t, l, k, 1, true)
	}
	if got, want := rawTAT(t, c, key), t0.Add(5*T).UnixNano(); got != want {
		t.Fatalf("the lease did not serve 4 more: TAT %v", time.Duration(got-t0.UnixNano()))
	}
	h = mustTake(t, l, k, 3, true) // a new lease: 5, of which 3 used
	wantHeader(t, h, "Ratelimit", `"rph";r=92;t=360`)
	if got, want := rawTAT(t, c, key), t0.Add(10*T).UnixNano(); got != want {
		t.Fatalf("TAT %v, want 10 tokens taken", time.Duration(got-t0.UnixNano()))
	}
	// The rest (2) goes back after LeaseTTL.
	deadline := time.Now().Add(2 * time.Second)
	for rawTAT(t, c, key) != t0.Add(8*T).UnixNano() {
		if time.Now().After(deadline) {
			t.Fatalf("the lease's rest did not come back: TAT %v", time.Duration(rawTAT(t, c, key)-t0.UnixNano()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	mustTake(t, l, k, 1, true) // a new lease of 5
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := rawTAT(t, c, key), t0.Add(9*T).UnixNano(); got != want {
		t.Fatalf("after Close, TAT %v, want 9 tokens taken", time.Duration(got-t0.UnixNano()))
	}
	l.leases.mu.Lock()
	if n := len(l.leases.pools); n != 0 {
		t.Errorf("after Close, %d pools are left to lease into", n)
	}
	l.leases.mu.Unlock()
	mustTake(t, l, k, 1, true) // after Close: no lease
	if got, want := rawTAT(t, c, key), t0.Add(10*T).UnixNano(); got != want {
		t.Fatalf("after Close, TAT %v, want 10 tokens taken", time.Duration(got-t0.UnixNano()))
	}

	// A key with a quota is decided in Redis each time, rates included.
	l2 := newLimiter(t, c, Config{Lease: 5, Live: []apikey.Limit{{Name: "rph", Count: 100, Per: time.Hour}, {Name: "daily", Count: 2, Period: "day"}}})
	fake(l2, t0)
	mustTake(t, l2, k, 1, true)
	wantRemaining(t, l2, k, map[string]int64{"rph": 99, "daily": 1})
	// Two limits leased at once, and an owner's counter shared by two keys.
	l3 := newLimiter(t, c, Config{Lease: 5, Live: []apikey.Limit{{Name: "rph", Count: 100, Per: time.Hour}, {Name: "org", Count: 12, Per: time.Hour, Owner: true}}})
	fake(l3, t0)
	a := &apikey.Key{ID: "key_la", Environment: apikey.EnvLive, Owner: "acct_l"}
	b := &apikey.Key{ID: "key_lb", Environment: apikey.EnvLive, Owner: "acct_l"}
	for range 6 {
		mustTake(t, l3, a, 1, true)
		mustTake(t, l3, b, 1, true)
	}
	mustTake(t, l3, a, 1, false) // the owner's 12 are spent (leased and used)
	// The refused request's token of a's own rate, taken from its lease,
	// went back to the lease: 10 leased, 6 used, 4 left.
	l3.leases.mu.Lock()
	rph := l3.leases.pools[l3.prefix+"{k:key_la}:rph"]
	l3.leases.mu.Unlock()
	if rph == nil {
		t.Fatal("no lease of key_la's rph")
	}
	rph.mu.Lock()
	if rph.tokens != 4 {
		t.Errorf("key_la's rph lease holds %d tokens after a refusal, want 4", rph.tokens)
	}
	rph.mu.Unlock()
	// Status counts leases as spent: each key took two leases of 5.
	wantRemaining(t, l3, a, map[string]int64{"rph": 90, "org": 0})
	wantRemaining(t, l3, b, map[string]int64{"rph": 90, "org": 0})
}

// credits: many replicas, many goroutines, exactly the balance.
func TestCreditsExact(t *testing.T) {
	needRedis(t)
	const balance = 5000
	attempts := int64(1_000_000)
	if raceEnabled {
		attempts = 150_000 // about 10 s under the race detector on 2 cores
	}
	if s := os.Getenv("REDISLIMIT_CREDIT_ATTEMPTS"); s != "" {
		attempts, _ = strconv.ParseInt(s, 10, 64)
	}
	prefix := fmt.Sprintf("credits%d:", prefixes.Add(1))
	k := live("key_credits")
	// A generous Timeout: this is about exactness, not latency (a Take that
	// timed out may be charged all the same, and admit one fewer).
	cfg := Config{Prefix: prefix, Timeout: 10 * time.Second, Live: []apikey.Limit{{Name: "credits", Count: balance, Credits: true}}}
	var ls []*Limiter
	for range replicas {
		// Each replica its own client, through its auto-pipeliner:
		// concurrent scripts share round trips.
		ap, err := newClient(t, shared.addr).AutoPipeline()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ap.Close() })
		ls = append(ls, newLimiter(t, ap, cfg))
	}
	var next, admitted, refused atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for _, l := range ls {
		for range 8 {
			wg.Go(func() {
				for next.Add(1) <= attempts {
					ok, err := l.Take(context.Background(), k, 1, nil)
					switch {
					case err != nil:
						t.Error(err)
						return
					case ok:
						admitted.Add(1)
					default:
						refused.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d attempts from %d replicas × 8 goroutines in %v: %d admitted, %d refused",
		admitted.Load()+refused.Load(), replicas, time.Since(start).Round(time.Millisecond), admitted.Load(), refused.Load())
	if admitted.Load() != balance || admitted.Load()+refused.Load() != attempts {
		t.Fatalf("admitted %d of %d attempts, want exactly %d", admitted.Load(), admitted.Load()+refused.Load(), balance)
	}
	// What requests did not use comes back, and is spent again, exactly.
	for i := range 100 {
		ls[i%replicas].Give(context.Background(), k, 1)
	}
	if n := remaining(t, ls[0], k)["credits"]; n != 100 {
		t.Fatalf("after 100 Gives, remaining %d", n)
	}
	admitted.Store(0)
	next.Store(0)
	for _, l := range ls {
		for range 8 {
			wg.Go(func() {
				for next.Add(1) <= 2000 {
					if ok, err := l.Take(context.Background(), k, 1, nil); ok && err == nil {
						admitted.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if admitted.Load() != 100 {
		t.Fatalf("after Give(100): admitted %d, want 100", admitted.Load())
	}
}

// Four processes hammering one key, each with its own limiter and client.
func TestRateProcesses(t *testing.T) {
	needRedis(t)
	prefix := fmt.Sprintf("processes%d:", prefixes.Add(1))
	start := time.Now().Add(1500 * time.Millisecond) // after the processes have started
	end := start.Add(hammerFor)
	var cmds []*exec.Cmd
	for range replicas {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			helperEnv+"=rate",
			"REDISLIMIT_HELPER_ADDR="+shared.addr,
			"REDISLIMIT_HELPER_PREFIX="+prefix,
			"REDISLIMIT_HELPER_START="+strconv.FormatInt(start.UnixNano(), 10),
			"REDISLIMIT_HELPER_END="+strconv.FormatInt(end.UnixNano(), 10),
		)
		cmd.Stderr = os.Stderr
		cmds = append(cmds, cmd)
	}
	outs := make([][]byte, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() {
			var err error
			if outs[i], err = cmd.Output(); err != nil {
				t.Errorf("helper process %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var total hammerResult
	for i, out := range outs {
		var r hammerResult
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("helper process %d: %v: %q", i, err, out)
		}
		if len(r.Times) > 0 && r.Times[0] < start.UnixNano() {
			t.Errorf("helper process %d started early", i)
		}
		total.merge(r)
	}
	if time.Now().Before(end) || total.Attempts == 0 {
		t.Fatalf("the helpers did not run")
	}
	checkExact(t, total, start, end)
}

const helperEnv = "REDISLIMIT_HELPER"

// helperMain is a helper process of TestRateProcesses (TestMain runs it
// instead of the tests): it hammers one key from its start to its end
// and prints what it saw as JSON.
func helperMain() int {
	start, _ := strconv.ParseInt(os.Getenv("REDISLIMIT_HELPER_START"), 10, 64)
	end, _ := strconv.ParseInt(os.Getenv("REDISLIMIT_HELPER_END"), 10, 64)
	c := redis.NewClient(&redis.Options{Addr: os.Getenv("REDISLIMIT_HELPER_ADDR")})
	defer c.Close()
	l, err := New(c, Config{Prefix: os.Getenv("REDISLIMIT_HELPER_PREFIX"), Timeout: 10 * time.Second, Live: []apikey.Limit{hammered}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := c.Ping(context.Background()).Err(); err != nil { // connect before the start
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	time.Sleep(time.Until(time.Unix(0, start)))
	r, err := hammer(l, live("key_processes"), goroutines, time.Unix(0, end))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}
