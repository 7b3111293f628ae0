package usage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/storetest"
	"github.com/keygate/apikey/usage"
)

// usageKeys is the default format on a manual clock.
func usageKeys() apikey.KeyConfig {
	return apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Clock: storetest.NewClock(storetest.Epoch).Now}
}

func newUsageStore(t *testing.T) *apikey.MemoryStore {
	t.Helper()
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: usageKeys()})
	require.NoError(t, err)
	return s
}

func newRecorder(t *testing.T, store apikey.UsageStore, cfg usage.Config) *usage.Recorder {
	t.Helper()
	rec, err := usage.New(store, cfg)
	require.NoError(t, err)
	return rec
}

func createKey(t *testing.T, store *apikey.MemoryStore, spec apikey.KeySpec) (*apikey.Key, apikey.Secret) {
	t.Helper()
	k, s, err := store.Create(context.Background(), spec)
	require.NoError(t, err)
	return k, s
}

// N concurrent verified requests over M keys are counted exactly once each
// after Close, through the middleware, and live and test usage stay apart.
func TestUsageCountsEveryRequestExactly(t *testing.T) {
	const keys, workers, perWorker = 10, 16, 300
	ctx := context.Background()
	kc := usageKeys()
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: kc})
	require.NoError(t, err)
	envs := &envCheck{next: store, want: map[string]apikey.Environment{}}
	rec := newRecorder(t, envs, usage.Config{Interval: 5 * time.Millisecond})
	mw, err := apikey.New(apikey.Config{Keys: kc, Store: store, Usage: rec})
	require.NoError(t, err)
	h := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	secrets := make([]apikey.Secret, keys)
	ids := make([]string, keys)
	for i := range secrets {
		env := []apikey.Environment{apikey.EnvLive, apikey.EnvTest}[i%2]
		k, s := createKey(t, store, apikey.KeySpec{Name: fmt.Sprint(i), Environment: env})
		secrets[i], ids[i] = s, k.ID
		envs.want[k.ID] = env
	}
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Authorization", "Bearer "+secrets[(w+i)%keys].Reveal())
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, r)
				if rr.Code == http.StatusOK {
					accepted.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	require.NoError(t, rec.Close())
	require.EqualValues(t, workers*perWorker, accepted.Load())

	var total uint64
	for _, id := range ids {
		k, err := store.Get(ctx, id)
		require.NoError(t, err)
		assert.EqualValues(t, workers*perWorker/keys, k.Requests, "key %s", id)
		assert.True(t, k.LastUsedAt.Equal(storetest.Epoch), "last used %v", k.LastUsedAt)
		total += k.Requests
	}
	assert.EqualValues(t, workers*perWorker, total)
	st := rec.Stats()
	assert.EqualValues(t, workers*perWorker, st.Flushed)
	assert.Zero(t, st.Dropped)
	assert.Zero(t, st.Pending)
	assert.Zero(t, st.Failures)
	assert.Zero(t, envs.mismatches.Load(), "each record carries its key's environment")

	// Live and test usage are kept apart: a quota counts live alone.
	for _, env := range []apikey.Environment{apikey.EnvLive, apikey.EnvTest} {
		list, err := store.List(ctx, apikey.Filter{Environment: env})
		require.NoError(t, err)
		var n uint64
		for _, k := range list {
			n += k.Requests
		}
		assert.EqualValues(t, workers*perWorker/2, n, "%s requests", env)
		assert.EqualValues(t, workers*perWorker/2, envs.sum(env), "%s requests handed to the store", env)
	}
}

// envCheck is a UsageStore that checks each record's environment and sums
// the counts it passes on by environment.
type envCheck struct {
	next       apikey.UsageStore
	want       map[string]apikey.Environment // written before the recorder runs
	mismatches atomic.Int64
	mu         sync.Mutex
	sums       map[apikey.Environment]uint64
}

func (e *envCheck) RecordUsage(ctx context.Context, flush string, batch []apikey.Usage) error {
	if err := e.next.RecordUsage(ctx, flush, batch); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sums == nil {
		e.sums = map[apikey.Environment]uint64{}
	}
	for _, u := range batch {
		if e.want[u.KeyID] != u.Environment {
			e.mismatches.Add(1)
		}
		e.sums[u.Environment] += u.Count
	}
	return nil
}

func (e *envCheck) sum(env apikey.Environment) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sums[env]
}

func TestUsageLastUsedIsMonotone(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	k, _ := createKey(t, store, apikey.KeySpec{Name: "k"})
	rec := newRecorder(t, store, usage.Config{Interval: time.Hour})
	t0 := storetest.Epoch
	rec.Record(k, t0.Add(3*time.Second))
	rec.Record(k, t0.Add(1*time.Second)) // out of order
	require.NoError(t, rec.Flush(ctx))
	rec.Record(k, t0.Add(2*time.Second)) // older than what the store has
	require.NoError(t, rec.Close())
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 3, got.Requests)
	assert.True(t, got.LastUsedAt.Equal(t0.Add(3*time.Second)), "got %v", got.LastUsedAt)
}

// flakyUsage fails its first fails flushes (before applying anything), and
// blocks while gate is open.
type flakyUsage struct {
	inner apikey.UsageStore
	fails atomic.Int32
	gate  chan struct{}
	calls atomic.Int32

	mu        sync.Mutex
	deadlines []time.Time // of each call's context, zero for none
	flushes   []string    // the flush id of each call
}

var errDown = errors.New("database is down")

func (f *flakyUsage) RecordUsage(ctx context.Context, flush string, b []apikey.Usage) error {
	f.calls.Add(1)
	d, _ := ctx.Deadline()
	f.mu.Lock()
	f.deadlines = append(f.deadlines, d)
	f.flushes = append(f.flushes, flush)
	f.mu.Unlock()
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fails.Add(-1) >= 0 {
		return errDown
	}
	return f.inner.RecordUsage(ctx, flush, b)
}

// A failed flush keeps its batch and retries it unchanged, under the same
// flush id, before the newer tallies: nothing is lost and nothing is
// counted twice.
func TestUsageFailedFlushIsRetried(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	k, _ := createKey(t, store, apikey.KeySpec{Name: "k"})
	k2, _ := createKey(t, store, apikey.KeySpec{Name: "k2", Environment: apikey.EnvTest})
	flaky := &flakyUsage{inner: store}
	flaky.fails.Store(2)
	rec := newRecorder(t, flaky, usage.Config{Interval: time.Hour})
	now := storetest.Epoch
	for i := 0; i < 5; i++ {
		rec.Record(k, now)
	}
	err := rec.Flush(ctx)
	assert.ErrorIs(t, err, errDown)
	assert.ErrorContains(t, err, "database is down")
	for i := 0; i < 5; i++ {
		rec.Record(k, now.Add(time.Second))
	}
	rec.Record(k2, now)
	assert.ErrorIs(t, rec.Flush(ctx), errDown)
	assert.Equal(t, 3, rec.Stats().Pending, "the failed batch (k) and the newer tallies (k, k2)")
	assert.Zero(t, rec.Stats().Flushed)
	require.NoError(t, rec.Flush(ctx))
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 10, got.Requests, "nothing lost across failed flushes")
	assert.True(t, got.LastUsedAt.Equal(now.Add(time.Second)))
	got2, err := store.Get(ctx, k2.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 1, got2.Requests)
	st := rec.Stats()
	assert.EqualValues(t, 2, st.Failures)
	assert.EqualValues(t, 11, st.Flushed)
	assert.Zero(t, st.Pending)

	require.NoError(t, rec.Flush(ctx), "nothing left to flush")
	require.NoError(t, rec.Close())
	got, err = store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 10, got.Requests, "a retried batch is not counted twice")
	assert.EqualValues(t, 4, flaky.calls.Load(), "two failed attempts, the retry, the newer batch")
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	require.Len(t, flaky.flushes, 4)
	assert.NotEmpty(t, flaky.flushes[0])
	assert.Equal(t, flaky.flushes[0], flaky.flushes[1], "a retry carries the failed flush's id")
	assert.Equal(t, flaky.flushes[0], flaky.flushes[2], "a retry carries the failed flush's id")
	assert.NotEqual(t, flaky.flushes[0], flaky.flushes[3], "a new batch gets a new id")
}

// Close retries its final flush: a store that recovers within the attempts
// loses nothing.
func TestUsageCloseRetries(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	k, _ := createKey(t, store, apikey.KeySpec{Name: "k"})
	flaky := &flakyUsage{inner: store}
	flaky.fails.Store(2)
	rec := newRecorder(t, flaky, usage.Config{Interval: time.Hour})
	for i := 0; i < 7; i++ {
		rec.Record(k, storetest.Epoch)
	}
	require.NoError(t, rec.Close())
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 7, got.Requests)
	assert.EqualValues(t, 3, flaky.calls.Load())
	assert.EqualValues(t, 7, rec.Stats().Flushed)
}

func TestUsageFlushDoesNotBlockRequests(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	k, _ := createKey(t, store, apikey.KeySpec{Name: "k"})
	flaky := &flakyUsage{inner: store, gate: make(chan struct{})}
	rec := newRecorder(t, flaky, usage.Config{Interval: time.Millisecond})
	rec.Record(k, storetest.Epoch)
	require.Eventually(t, func() bool { return flaky.calls.Load() > 0 }, 5*time.Second, time.Millisecond, "a flush is in progress and stuck")

	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			rec.Record(k, storetest.Epoch)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Record blocked behind a stuck flush")
	}
	close(flaky.gate)
	require.NoError(t, rec.Close())
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 1001, got.Requests)
}

// At most MaxPending keys are tallied while the store fails; records of
// further keys are dropped, those of tallied keys still counted; Close
// says how many requests it could not deliver.
func TestUsageMemoryIsBounded(t *testing.T) {
	store := newUsageStore(t)
	flaky := &flakyUsage{inner: store}
	flaky.fails.Store(1 << 30) // the store never accepts
	rec := newRecorder(t, flaky, usage.Config{Interval: time.Millisecond, MaxPending: 50})
	for i := 0; i < 5000; i++ {
		rec.Record(&apikey.Key{ID: fmt.Sprintf("key_%d", i), Environment: apikey.EnvLive}, storetest.Epoch)
		require.LessOrEqual(t, rec.Stats().Pending, 50)
	}
	st := rec.Stats()
	assert.Equal(t, 50, st.Pending)
	assert.EqualValues(t, 5000-50, st.Dropped)
	err := rec.Close()
	require.Error(t, err, "Close reports usage it could not deliver")
	assert.ErrorIs(t, err, errDown)
	assert.Contains(t, err.Error(), "50 requests not recorded")
	assert.Contains(t, err.Error(), "requests not counted, more keys than Config.MaxPending being used between flushes: 4950")
	assert.GreaterOrEqual(t, rec.Stats().Failures-st.Failures, uint64(3), "Close tried three times")
}

// When the tally is full, records of keys already tallied are still
// counted; only a new key is dropped.
func TestUsageTalliedKeysAreAlwaysCounted(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	a, _ := createKey(t, store, apikey.KeySpec{Name: "a"})
	b, _ := createKey(t, store, apikey.KeySpec{Name: "b"})
	c, _ := createKey(t, store, apikey.KeySpec{Name: "c"})
	rec := newRecorder(t, store, usage.Config{Interval: time.Hour, MaxPending: 2})
	rec.Record(a, storetest.Epoch)
	rec.Record(b, storetest.Epoch)
	for i := 0; i < 10; i++ {
		rec.Record(a, storetest.Epoch)
	}
	assert.Zero(t, rec.Stats().Dropped)
	assert.Equal(t, 2, rec.Stats().Pending)
	rec.Record(c, storetest.Epoch) // a third key: over MaxPending
	assert.EqualValues(t, 1, rec.Stats().Dropped)
	assert.ErrorContains(t, rec.Close(), "Config.MaxPending being used between flushes: 1", "Close says a request went uncounted")
	for k, want := range map[*apikey.Key]uint64{a: 11, b: 1, c: 0} {
		got, err := store.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, want, got.Requests, k.Name)
	}
	assert.EqualValues(t, 12, rec.Stats().Flushed)
}

// A key over MaxPending triggers an early flush when the store is healthy,
// so the next records fit again.
func TestUsageFullTallyFlushesEarly(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	a, _ := createKey(t, store, apikey.KeySpec{Name: "a"})
	b, _ := createKey(t, store, apikey.KeySpec{Name: "b"})
	rec := newRecorder(t, store, usage.Config{Interval: time.Hour, MaxPending: 1})
	rec.Record(a, storetest.Epoch)
	rec.Record(b, storetest.Epoch) // over MaxPending: dropped, and flushes a
	assert.EqualValues(t, 1, rec.Stats().Dropped)
	require.Eventually(t, func() bool { return rec.Stats().Flushed == 1 }, 5*time.Second, time.Millisecond, "an early flush, long before the interval")
	rec.Record(b, storetest.Epoch)
	assert.ErrorContains(t, rec.Close(), "MaxPending being used between flushes: 1")
	for _, k := range []*apikey.Key{a, b} {
		got, err := store.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.EqualValues(t, 1, got.Requests, k.Name)
	}
}

func TestUsageRecordAfterCloseIsDropped(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	k, _ := createKey(t, store, apikey.KeySpec{Name: "k"})
	rec := newRecorder(t, store, usage.Config{})
	require.NoError(t, rec.Close())
	require.NoError(t, rec.Close(), "Close is idempotent")
	rec.Record(k, storetest.Epoch)
	assert.EqualValues(t, 1, rec.Stats().Dropped)
	assert.Zero(t, rec.Stats().Pending)
	require.NoError(t, rec.Flush(ctx))
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Zero(t, got.Requests)
}

// While the store fails, records over MaxPending do not flush again and
// again: the retry waits for the interval.
func TestUsageFailingStoreIsNotHammered(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	k, _ := createKey(t, store, apikey.KeySpec{Name: "k"})
	flaky := &flakyUsage{inner: store}
	flaky.fails.Store(1 << 30)
	rec := newRecorder(t, flaky, usage.Config{Interval: time.Hour, MaxPending: 1})
	rec.Record(k, storetest.Epoch)
	rec.Record(&apikey.Key{ID: "key_over", Environment: apikey.EnvLive}, storetest.Epoch) // triggers a flush
	require.Eventually(t, func() bool { return rec.Stats().Failures == 1 }, 5*time.Second, time.Millisecond)
	for i := 0; i < 10000; i++ {
		rec.Record(&apikey.Key{ID: fmt.Sprintf("key_%d", i), Environment: apikey.EnvLive}, storetest.Epoch)
	}
	time.Sleep(50 * time.Millisecond) // a flush triggered by these records would have run by now
	assert.EqualValues(t, 1, flaky.calls.Load(), "one early flush fails; the rest wait for the interval")
	assert.EqualValues(t, 1, rec.Stats().Pending)

	flaky.fails.Store(0)
	require.NoError(t, rec.Flush(ctx))
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 1, got.Requests)
	assert.ErrorContains(t, rec.Close(), "MaxPending being used between flushes: 10001")
}

// While the store fails, the keys of the failed batch keep being counted,
// whatever MaxPending says: ten keys, a failed flush, a hundred more
// requests of the same keys, and all 110 arrive once the store is back.
func TestUsageFailedFlushKeepsCountingItsKeys(t *testing.T) {
	ctx := context.Background()
	store := newUsageStore(t)
	flaky := &flakyUsage{inner: store}
	flaky.fails.Store(1)
	rec := newRecorder(t, flaky, usage.Config{Interval: time.Hour, MaxPending: 10})
	var keys []*apikey.Key
	for i := 0; i < 10; i++ {
		k, _ := createKey(t, store, apikey.KeySpec{Name: fmt.Sprint("k", i)})
		keys = append(keys, k)
		rec.Record(k, storetest.Epoch)
	}
	require.ErrorIs(t, rec.Flush(ctx), errDown)
	assert.Equal(t, 10, rec.Stats().Pending, "the failed batch is back in the tallies")
	for i := 0; i < 100; i++ {
		rec.Record(keys[i%10], storetest.Epoch.Add(time.Second))
	}
	assert.Zero(t, rec.Stats().Dropped, "keys of the failed batch are still counted")
	require.NoError(t, rec.Close(), "nothing was lost")
	var total uint64
	for _, k := range keys {
		got, err := store.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.EqualValues(t, 11, got.Requests, k.Name)
		total += got.Requests
	}
	assert.EqualValues(t, 110, total)
	assert.EqualValues(t, 110, rec.Stats().Flushed)
}

func TestUsageLogsFailedFlushes(t *testing.T) {
	var buf testkit.Buffer
	flaky := &flakyUsage{inner: newUsageStore(t)}
	flaky.fails.Store(1 << 30)
	rec := newRecorder(t, flaky, usage.Config{Interval: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	rec.Record(&apikey.Key{ID: "key_x", Environment: apikey.EnvLive}, storetest.Epoch)
	require.Eventually(t, func() bool { return bytes.Contains([]byte(buf.String()), []byte("database is down")) }, 5*time.Second, time.Millisecond)
	assert.Contains(t, buf.String(), "level=WARN")
	assert.Contains(t, buf.String(), "flush failed")
	assert.Error(t, rec.Close())
}

func TestUsageNewErrors(t *testing.T) {
	store := newUsageStore(t)
	for _, tc := range []struct {
		name  string
		store apikey.UsageStore
		cfg   usage.Config
		field string
	}{
		{"nil store", nil, usage.Config{}, "store is nil"},
		{"negative Interval", store, usage.Config{Interval: -time.Second}, "Interval"},
		{"negative FlushTimeout", store, usage.Config{FlushTimeout: -time.Second}, "FlushTimeout"},
		{"negative MaxPending", store, usage.Config{MaxPending: -1}, "MaxPending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := usage.New(tc.store, tc.cfg)
			require.Error(t, err)
			assert.Nil(t, rec)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), tc.field, "the error names what to change")
		})
	}
	rec, err := usage.New(store, usage.Config{})
	require.NoError(t, err, "the zero Config is valid")
	require.NoError(t, rec.Close())
}

// The zero Config means a 5 s timeout per store call and 100,000 pending
// keys.
func TestUsageDefaults(t *testing.T) {
	t.Run("Timeout", func(t *testing.T) {
		store := newUsageStore(t)
		k, _ := createKey(t, store, apikey.KeySpec{Name: "k"})
		flaky := &flakyUsage{inner: store}
		rec := newRecorder(t, flaky, usage.Config{})
		rec.Record(k, storetest.Epoch)
		start := time.Now()
		require.NoError(t, rec.Close())
		end := time.Now()
		flaky.mu.Lock()
		defer flaky.mu.Unlock()
		require.Len(t, flaky.deadlines, 1)
		d := flaky.deadlines[0]
		require.False(t, d.IsZero(), "Close bounds its store call")
		assert.False(t, d.Before(start.Add(5*time.Second)), "deadline %v after Close began", d.Sub(start))
		assert.False(t, d.After(end.Add(5*time.Second)), "deadline %v after Close began", d.Sub(start))
	})

	t.Run("MaxPending", func(t *testing.T) {
		flaky := &flakyUsage{inner: newUsageStore(t)}
		flaky.fails.Store(1 << 30) // so that a flush cannot empty the tally
		rec := newRecorder(t, flaky, usage.Config{})
		for i := 0; i < 100_000; i++ {
			rec.Record(&apikey.Key{ID: fmt.Sprintf("key_%d", i), Environment: apikey.EnvLive}, storetest.Epoch)
		}
		st := rec.Stats()
		assert.Equal(t, 100_000, st.Pending)
		assert.Zero(t, st.Dropped)
		rec.Record(&apikey.Key{ID: "key_over", Environment: apikey.EnvLive}, storetest.Epoch)
		st = rec.Stats()
		assert.Equal(t, 100_000, st.Pending)
		assert.EqualValues(t, 1, st.Dropped)
		assert.Error(t, rec.Close())
	})
}

// While a flush is handing a batch to a slow store, the keys of that batch
// keep being counted, whatever MaxPending says; the store may then accept
// the batch or fail it.
func TestUsageKeysInFlightAreCounted(t *testing.T) {
	for _, fails := range []bool{false, true} {
		t.Run(fmt.Sprint("the flush fails: ", fails), func(t *testing.T) {
			ctx := context.Background()
			store := newUsageStore(t)
			flaky := &flakyUsage{inner: store, gate: make(chan struct{})}
			if fails {
				flaky.fails.Store(1)
			}
			rec := newRecorder(t, flaky, usage.Config{Interval: time.Hour, MaxPending: 10})
			var keys []*apikey.Key
			for i := 0; i < 10; i++ {
				k, _ := createKey(t, store, apikey.KeySpec{Name: fmt.Sprint("k", i)})
				keys = append(keys, k)
				rec.Record(k, storetest.Epoch)
			}
			flushed := make(chan error, 1)
			go func() { flushed <- rec.Flush(ctx) }()
			require.Eventually(t, func() bool { return flaky.calls.Load() == 1 }, 5*time.Second, time.Millisecond, "the flush reached the store")
			for i := 0; i < 100; i++ {
				rec.Record(keys[i%10], storetest.Epoch.Add(time.Second))
			}
			assert.Zero(t, rec.Stats().Dropped, "keys of the batch in flight are still counted")
			close(flaky.gate)
			err := <-flushed
			if fails {
				require.ErrorIs(t, err, errDown)
			} else {
				require.NoError(t, err)
			}
			flaky.gate = nil
			require.NoError(t, rec.Close(), "nothing was lost or dropped")
			for _, k := range keys {
				got, err := store.Get(ctx, k.ID)
				require.NoError(t, err)
				assert.EqualValues(t, 11, got.Requests, k.Name)
			}
		})
	}
}
