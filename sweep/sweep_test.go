package sweep_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/storetest"
	"github.com/keygate/apikey/sweep"
)

const day = 24 * time.Hour

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// env is a memory store on a manual clock, and what OnFinding was given.
type env struct {
	t     *testing.T
	clock *storetest.Clock
	keys  apikey.KeyConfig
	store *apikey.MemoryStore

	mu    sync.Mutex
	seen  []sweep.Finding
	fail  atomic.Bool // OnFinding fails while set
	calls atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: storetest.NewClock(t0)}
	e.keys = apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Clock: e.clock.Now}
	var err error
	e.store, err = apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: e.keys})
	require.NoError(t, err)
	return e
}

// hook is the OnFinding of the tests.
func (e *env) hook(_ context.Context, f sweep.Finding) error {
	e.calls.Add(1)
	if e.fail.Load() {
		return errors.New("mail server down")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, f)
	return nil
}

// config is a Config with every finding on: expiring within 14 days,
// unused for 90, too old at 400, disabled when unused for 365.
func (e *env) config() sweep.Config {
	return sweep.Config{
		Keys:               e.keys,
		ExpiringWithin:     14 * day,
		UnusedFor:          90 * day,
		MaxLifetime:        400 * day,
		DisableUnusedAfter: 365 * day,
		OnFinding:          e.hook,
		PageSize:           3, // several pages in every test
	}
}

func (e *env) sweeper(cfg sweep.Config) *sweep.Sweeper {
	e.t.Helper()
	s, err := sweep.New(e.store, cfg)
	require.NoError(e.t, err)
	return s
}

// run sweeps once and returns the findings delivered, as "kind name".
func (e *env) run(s *sweep.Sweeper) []string {
	e.t.Helper()
	before := len(e.delivered())
	_, err := s.Run(context.Background())
	if !e.fail.Load() {
		require.NoError(e.t, err)
	}
	return e.delivered()[before:]
}

func (e *env) delivered() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, len(e.seen))
	for i, f := range e.seen {
		out[i] = string(f.Kind) + " " + f.Key.Name
	}
	return out
}

func (e *env) create(name string, spec apikey.KeySpec) *apikey.Key {
	e.t.Helper()
	spec.Name = name
	k, _, err := e.store.Create(context.Background(), spec)
	require.NoError(e.t, err)
	return k
}

func (e *env) use(k *apikey.Key) {
	e.t.Helper()
	require.NoError(e.t, e.store.RecordUsage(context.Background(), "",
		[]apikey.Usage{{KeyID: k.ID, Environment: k.Environment, Count: 1, LastUsed: e.clock.Now()}}))
}

func (e *env) get(k *apikey.Key) *apikey.Key {
	e.t.Helper()
	k, err := e.store.Get(context.Background(), k.ID)
	require.NoError(e.t, err)
	return k
}

func sorted(s []string) []string { slices.Sort(s); return s }

// TestFindings: each kind is found and delivered once; keys that are not
// active never are.
func TestFindings(t *testing.T) {
	for _, tt := range []struct {
		name string
		// setup makes keys at t0 and moves the clock; the sweep runs then.
		setup func(e *env)
		want  []string
	}{
		{"expiring", func(e *env) {
			e.create("soon", apikey.KeySpec{ExpiresAt: t0.Add(20 * day)})
			e.create("later", apikey.KeySpec{ExpiresAt: t0.Add(30 * day)})
			e.create("never", apikey.KeySpec{})
			e.clock.Advance(6 * day) // soon: in 14 days exactly
		}, []string{"expiring soon"}},
		{"unused, never used", func(e *env) {
			e.create("idle", apikey.KeySpec{})
			e.clock.Advance(90 * day)
		}, []string{"unused idle"}},
		{"unused, used long ago", func(e *env) {
			idle, busy := e.create("idle", apikey.KeySpec{}), e.create("busy", apikey.KeySpec{})
			e.clock.Advance(10 * day)
			e.use(idle)
			e.clock.Advance(80 * day)
			e.use(busy)
			e.clock.Advance(10 * day)
		}, []string{"unused idle"}},
		{"too old", func(e *env) {
			old := e.create("old", apikey.KeySpec{})
			e.clock.Advance(399 * day)
			e.create("young", apikey.KeySpec{})
			e.use(old)
			e.clock.Advance(day)
		}, []string{"too-old old"}},
		{"disabled unused, not also unused", func(e *env) {
			e.create("forgotten", apikey.KeySpec{})
			e.clock.Advance(365 * day)
		}, []string{"disabled-unused forgotten"}},
		{"several findings of one key", func(e *env) {
			k := e.create("both", apikey.KeySpec{ExpiresAt: t0.Add(100 * day)})
			e.clock.Advance(90 * day)
			_ = k
		}, []string{"expiring both", "unused both"}},
		{"not active: revoked, disabled, expired, rolled", func(e *env) {
			ctx := context.Background()
			for _, name := range []string{"revoked", "disabled", "expired", "rolled"} {
				k := e.create(name, apikey.KeySpec{ExpiresAt: t0.Add(91 * day)})
				switch name {
				case "revoked":
					require.NoError(t, e.store.Revoke(ctx, k.ID))
				case "disabled":
					_, err := e.store.Update(ctx, k.ID, func(k *apikey.Key) error { k.Disabled = true; return nil })
					require.NoError(t, err)
				case "expired":
					_, err := e.store.Update(ctx, k.ID, func(k *apikey.Key) error { k.ExpiresAt = t0.Add(day); return nil })
					require.NoError(t, err)
				case "rolled":
					succ, _, err := e.store.Roll(ctx, k.ID, 100*day) // in its grace period: active
					require.NoError(t, err)
					require.NoError(t, e.store.Revoke(ctx, succ.ID)) // the successor is a key of its own
				}
			}
			e.clock.Advance(90 * day)
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(e)
			s := e.sweeper(e.config())
			assert.ElementsMatch(t, tt.want, e.run(s))
			assert.Empty(t, e.run(s), "a second sweep delivers nothing")
			assert.Empty(t, e.run(e.sweeper(e.config())), "nor does another sweeper (a restart)")
		})
	}
}

func TestFindingFields(t *testing.T) {
	e := newEnv(t)
	k := e.create("soon", apikey.KeySpec{Owner: "acct_1", ExpiresAt: t0.Add(10 * day)})
	rep, err := e.sweeper(e.config()).Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Scanned)
	assert.Equal(t, map[sweep.Kind]int{sweep.KindExpiring: 1}, rep.Findings)
	assert.Equal(t, 1, rep.Notified)
	require.Len(t, e.seen, 1)
	f := e.seen[0]
	assert.Equal(t, sweep.KindExpiring, f.Kind)
	assert.Equal(t, k.ID, f.Key.ID)
	assert.Equal(t, "acct_1", f.Key.Owner)
	assert.True(t, f.At.Equal(t0.Add(10*day)), "At is the expiry")
	assert.Equal(t, t0.Add(10*day).Format(time.RFC3339Nano)+" "+k.ID, e.get(k).Metadata["sweep.expiring"],
		"the record is in the key, under the reserved key")

	rep, err = e.sweeper(e.config()).Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, map[sweep.Kind]int{sweep.KindExpiring: 1}, rep.Findings, "still a finding")
	assert.Zero(t, rep.Notified, "delivered before")
}

func TestExpiryExtendedNotifiedAgain(t *testing.T) {
	e := newEnv(t)
	k := e.create("k", apikey.KeySpec{ExpiresAt: t0.Add(10 * day)})
	s := e.sweeper(sweep.Config{Keys: e.keys, ExpiringWithin: 14 * day, OnFinding: e.hook})
	assert.Equal(t, []string{"expiring k"}, e.run(s))
	_, err := e.store.Update(context.Background(), k.ID, func(k *apikey.Key) error {
		k.ExpiresAt = t0.Add(40 * day)
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, e.run(s), "the new expiry is not within 14 days yet")
	e.clock.Advance(26 * day)
	assert.Equal(t, []string{"expiring k"}, e.run(s), "notified again for the new date")
	assert.True(t, e.seen[1].At.Equal(t0.Add(40*day)))
	assert.Empty(t, e.run(s))
}

func TestUsedAgainThenUnusedAgain(t *testing.T) {
	e := newEnv(t)
	k := e.create("k", apikey.KeySpec{})
	s := e.sweeper(sweep.Config{Keys: e.keys, UnusedFor: 90 * day, OnFinding: e.hook})
	e.clock.Advance(90 * day)
	assert.Equal(t, []string{"unused k"}, e.run(s))
	e.use(k)
	e.clock.Advance(89 * day)
	assert.Empty(t, e.run(s), "used again: not unused")
	e.clock.Advance(day)
	assert.Equal(t, []string{"unused k"}, e.run(s), "unused again: notified again")
	assert.True(t, e.seen[1].At.Equal(t0.Add(90*day)), "At is the last use")
	assert.Empty(t, e.run(s))
}

func TestDisablePolicy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, secret, err := e.store.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(t, err)
	mw, err := apikey.New(apikey.Config{Keys: e.keys, Store: e.store})
	require.NoError(t, err)
	_, err = mw.Verify(ctx, secret.Reveal())
	require.NoError(t, err)

	s := e.sweeper(sweep.Config{Keys: e.keys, UnusedFor: 90 * day, DisableUnusedAfter: 365 * day, OnFinding: e.hook})
	e.clock.Advance(90 * day)
	assert.Equal(t, []string{"unused k"}, e.run(s))
	e.clock.Advance(275 * day)
	rep, err := s.Run(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Disabled)
	assert.Equal(t, []string{"unused k", "disabled-unused k"}, e.delivered())
	assert.True(t, e.seen[1].Key.Disabled, "the finding's key is disabled")
	assert.Empty(t, e.run(s))

	_, err = mw.Verify(ctx, secret.Reveal())
	var ae apikey.AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonRevoked, ae.Reason, "the middleware refuses it")

	// An operator enables it again: it stays enabled until it has been
	// used and has gone unused again.
	k, err := e.store.Update(ctx, e.seen[1].Key.ID, func(k *apikey.Key) error { k.Disabled = false; return nil })
	require.NoError(t, err)
	e.clock.Advance(30 * day)
	assert.Empty(t, e.run(s))
	_, err = mw.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	e.use(k)
	e.clock.Advance(365 * day)
	assert.Equal(t, []string{"disabled-unused k"}, e.run(s))
	assert.True(t, e.get(k).Disabled)
}

func TestHookFailureRetried(t *testing.T) {
	for _, tt := range []struct {
		name    string
		advance time.Duration
		want    string
	}{
		{"expiring", 0, "expiring k"},
		{"unused", 90 * day, "unused k"},
		{"too old", 400*day - time.Second, "too-old k"},
		{"disabled unused", 365 * day, "disabled-unused k"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			spec := apikey.KeySpec{}
			if tt.advance == 0 {
				spec.ExpiresAt = t0.Add(day)
			}
			k := e.create("k", spec)
			e.clock.Advance(tt.advance)
			if tt.name == "too old" {
				e.use(k)
				e.clock.Advance(time.Second)
			}
			s := e.sweeper(e.config())

			e.fail.Store(true)
			rep, err := s.Run(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "mail server down")
			assert.Equal(t, 1, rep.Errors)
			assert.Zero(t, rep.Notified)
			assert.Equal(t, int64(1), e.calls.Load())
			if tt.want == "disabled-unused k" {
				assert.True(t, e.get(k).Disabled, "the key is disabled whether or not the owner could be told")
			}

			e.fail.Store(false)
			assert.Equal(t, []string{tt.want}, e.run(s), "retried by the next sweep")
			assert.Empty(t, e.run(s))
		})
	}
}

// TestCrashAfterClaim: a sweeper that died holding a claim delays the
// finding by HookTimeout, never loses it.
func TestCrashAfterClaim(t *testing.T) {
	e := newEnv(t)
	k := e.create("k", apikey.KeySpec{ExpiresAt: t0.Add(day)})
	claim := t0.Add(day).Format(time.RFC3339Nano) + " " + k.ID + " pending " +
		t0.Add(time.Minute).Format(time.RFC3339Nano) + " 0123456789abcdef"
	_, err := e.store.Update(context.Background(), k.ID, func(k *apikey.Key) error {
		k.Metadata = map[string]string{"sweep.expiring": claim}
		return nil
	})
	require.NoError(t, err)
	s := e.sweeper(sweep.Config{Keys: e.keys, ExpiringWithin: 14 * day, OnFinding: e.hook, HookTimeout: time.Minute})
	assert.Empty(t, e.run(s), "another sweeper holds it")
	e.clock.Advance(time.Minute)
	assert.Equal(t, []string{"expiring k"}, e.run(s), "its claim expired")
	assert.Empty(t, e.run(s))
}

// TestRolledSuccessorStartsAfresh: Roll copies the metadata, records
// included; the successor is another key and is told of its own findings.
func TestRolledSuccessorStartsAfresh(t *testing.T) {
	e := newEnv(t)
	k := e.create("k", apikey.KeySpec{ExpiresAt: t0.Add(10 * day)})
	s := e.sweeper(sweep.Config{Keys: e.keys, ExpiringWithin: 14 * day, OnFinding: e.hook})
	assert.Equal(t, []string{"expiring k"}, e.run(s))
	succ, _, err := e.store.Roll(context.Background(), k.ID, 0)
	require.NoError(t, err)
	require.Contains(t, succ.Metadata, "sweep.expiring")
	assert.Equal(t, []string{"expiring k"}, e.run(s))
	assert.Equal(t, succ.ID, e.seen[1].Key.ID)
	assert.Empty(t, e.run(s))
}

// TestConcurrentSweepers: sweepers over one store at once deliver each
// finding once in total.
func TestConcurrentSweepers(t *testing.T) {
	e := newEnv(t)
	const n = 60
	for i := range n {
		spec := apikey.KeySpec{}
		if i%2 == 0 {
			spec.ExpiresAt = t0.Add(370 * day)
		}
		e.create(fmt.Sprintf("k%02d", i), spec)
	}
	e.clock.Advance(200 * day)
	list, err := e.store.List(context.Background(), apikey.Filter{})
	require.NoError(t, err)
	for i, k := range list {
		if i%3 == 0 {
			e.use(k)
		}
	}
	e.clock.Advance(165 * day)
	var want []string
	for i := range n {
		switch {
		case i%3 != 0:
			want = append(want, fmt.Sprintf("disabled-unused k%02d", i))
		default:
			want = append(want, fmt.Sprintf("unused k%02d", i))
			if i%2 == 0 {
				want = append(want, fmt.Sprintf("expiring k%02d", i))
			}
		}
	}
	for round := range 2 {
		var wg sync.WaitGroup
		for range 4 {
			s := e.sweeper(e.config())
			wg.Go(func() {
				_, err := s.Run(context.Background())
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		assert.Equal(t, sorted(want), sorted(e.delivered()), "round %d", round)
	}
}

// finderStore is a memory store with a Finder that selects nothing by
// itself: it returns every key in ID order, a page at a time, and counts
// its calls.
type finderStore struct {
	*apikey.MemoryStore
	calls   atomic.Int64
	queries []sweep.Query
}

func (f *finderStore) Candidates(ctx context.Context, q sweep.Query) ([]*apikey.Key, error) {
	f.calls.Add(1)
	f.queries = append(f.queries, q)
	all, err := f.List(ctx, apikey.Filter{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *apikey.Key) int { return compareStrings(a.ID, b.ID) })
	var out []*apikey.Key
	for _, k := range all {
		if k.ID > q.After && (q.Limit == 0 || len(out) < q.Limit) {
			out = append(out, k)
		}
	}
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestFinderUsed(t *testing.T) {
	e := newEnv(t)
	for i := range 65 {
		e.create(fmt.Sprintf("k%d", i), apikey.KeySpec{ExpiresAt: t0.Add(10 * day)})
	}
	fs := &finderStore{MemoryStore: e.store}
	s, err := sweep.New(fs, e.config())
	require.NoError(t, err)
	rep, err := s.Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 65, rep.Notified)
	assert.Equal(t, int64(3), fs.calls.Load(), "Finder pages are ten List pages (PageSize 3): 30, 30, 5")
	q := fs.queries[0]
	assert.True(t, q.ExpiringBefore.Equal(t0.Add(14*day)))
	assert.True(t, q.UnusedSince.Equal(t0.Add(-90*day)))
	assert.True(t, q.CreatedBefore.Equal(t0.Add(-400*day)))
	assert.True(t, q.PendingDisabled)
	assert.Equal(t, 30, q.Limit)
	assert.Equal(t, fs.queries[1].After > "", true)
}

func TestStartStop(t *testing.T) {
	e := newEnv(t)
	e.create("k", apikey.KeySpec{ExpiresAt: t0.Add(day)})
	runs := make(chan struct{}, 100)
	cfg := e.config()
	cfg.Interval = 5 * time.Millisecond
	cfg.OnFinding = func(ctx context.Context, f sweep.Finding) error {
		select {
		case runs <- struct{}{}:
		default:
		}
		return e.hook(ctx, f)
	}
	s := e.sweeper(cfg)

	stop := s.Start(context.Background())
	select {
	case <-runs:
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not sweep")
	}
	// A key made now is found by a later tick.
	e.create("k2", apikey.KeySpec{ExpiresAt: t0.Add(day)})
	require.Eventually(t, func() bool { return len(e.delivered()) == 2 }, 5*time.Second, time.Millisecond)
	stop()
	stop() // again: nothing
	e.create("k3", apikey.KeySpec{ExpiresAt: t0.Add(day)})
	time.Sleep(30 * time.Millisecond)
	assert.Len(t, e.delivered(), 2, "no sweep after stop")

	// ctx ending stops it too.
	ctx, cancel := context.WithCancel(context.Background())
	stop = s.Start(ctx)
	require.Eventually(t, func() bool { return len(e.delivered()) == 3 }, 5*time.Second, time.Millisecond)
	cancel()
	stop()
}

// TestStopWaitsForSweep: stop returns after the sweep under way.
func TestStopWaitsForSweep(t *testing.T) {
	e := newEnv(t)
	e.create("k", apikey.KeySpec{ExpiresAt: t0.Add(day)})
	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	cfg := e.config()
	cfg.OnFinding = func(ctx context.Context, f sweep.Finding) error {
		close(entered)
		<-release
		finished.Store(true)
		return nil
	}
	stop := e.sweeper(cfg).Start(context.Background())
	<-entered
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned during a sweep")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-stopped
	assert.True(t, finished.Load())
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t)
	ok := e.config()
	for _, tt := range []struct {
		name   string
		store  apikey.Manager
		change func(*sweep.Config)
		want   string
	}{
		{"no store", nil, func(*sweep.Config) {}, "store is nil"},
		{"no keys", e.store, func(c *sweep.Config) { c.Keys = apikey.KeyConfig{} }, "Config.Keys"},
		{"no hook", e.store, func(c *sweep.Config) { c.OnFinding = nil }, "Config.OnFinding"},
		{"nothing to find", e.store, func(c *sweep.Config) {
			c.ExpiringWithin, c.UnusedFor, c.MaxLifetime, c.DisableUnusedAfter = 0, 0, 0, 0
		}, "ExpiringWithin, UnusedFor, MaxLifetime or DisableUnusedAfter"},
		{"disable before warning", e.store, func(c *sweep.Config) { c.DisableUnusedAfter = 30 * day }, "Config.DisableUnusedAfter"},
		{"negative ExpiringWithin", e.store, func(c *sweep.Config) { c.ExpiringWithin = -1 }, "Config.ExpiringWithin is negative"},
		{"negative UnusedFor", e.store, func(c *sweep.Config) { c.UnusedFor = -1 }, "Config.UnusedFor is negative"},
		{"negative MaxLifetime", e.store, func(c *sweep.Config) { c.MaxLifetime = -1 }, "Config.MaxLifetime is negative"},
		{"negative DisableUnusedAfter", e.store, func(c *sweep.Config) { c.DisableUnusedAfter = -1 }, "Config.DisableUnusedAfter is negative"},
		{"negative HookTimeout", e.store, func(c *sweep.Config) { c.HookTimeout = -1 }, "Config.HookTimeout is negative"},
		{"negative Interval", e.store, func(c *sweep.Config) { c.Interval = -1 }, "Config.Interval is negative"},
		{"negative PageSize", e.store, func(c *sweep.Config) { c.PageSize = -1 }, "Config.PageSize is negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			s, err := sweep.New(tt.store, cfg)
			assert.Nil(t, s)
			require.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	t.Run("defaults", func(t *testing.T) {
		_, err := sweep.New(e.store, sweep.Config{Keys: e.keys, UnusedFor: day, OnFinding: e.hook})
		require.NoError(t, err)
		_, err = sweep.New(e.store, sweep.Config{Keys: e.keys, DisableUnusedAfter: day, OnFinding: e.hook})
		require.NoError(t, err, "the policy alone")
	})
}

// failingStore fails List.
type failingStore struct{ *apikey.MemoryStore }

func (failingStore) List(context.Context, apikey.Filter) ([]*apikey.Key, error) {
	return nil, errors.New("connection refused")
}

func TestStoreFailure(t *testing.T) {
	e := newEnv(t)
	s, err := sweep.New(failingStore{e.store}, e.config())
	require.NoError(t, err)
	_, err = s.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection refused")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.sweeper(e.config()).Run(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestHookPanicIsAFailure(t *testing.T) {
	e := newEnv(t)
	e.create("k", apikey.KeySpec{ExpiresAt: t0.Add(day)})
	cfg := e.config()
	cfg.OnFinding = func(context.Context, sweep.Finding) error { panic("boom") }
	rep, err := e.sweeper(cfg).Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "panicked")
	assert.Equal(t, 1, rep.Errors)
	assert.Equal(t, []string{"expiring k"}, e.run(e.sweeper(e.config())), "retried")
}
