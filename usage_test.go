package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/storetest"
)

// N concurrent verified requests over M keys are counted exactly once each
// after Close, through the middleware.
func TestUsageCountsEveryRequestExactly(t *testing.T) {
	const keys, workers, perWorker = 10, 16, 300
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	rec := apikey.NewUsageRecorder(store, apikey.FlushEvery(5*time.Millisecond))
	h := apikey.Middleware(store, apikey.WithUsage(rec), apikey.WithMethodPolicy(nil))(okHandler())

	secrets := make([]apikey.Secret, keys)
	ids := make([]string, keys)
	for i := range secrets {
		k, s, err := store.Create(ctx, apikey.KeySpec{Name: fmt.Sprint(i), Environment: []apikey.Environment{apikey.EnvLive, apikey.EnvTest}[i%2]})
		require.NoError(t, err)
		secrets[i], ids[i] = s, k.ID
	}
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, bearer(httptest.NewRequest("GET", "/", nil), secrets[(w+i)%keys].Reveal()))
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
		assert.False(t, k.LastUsedAt.IsZero())
		total += k.Requests
	}
	assert.EqualValues(t, workers*perWorker, total)
	st := rec.Stats()
	assert.EqualValues(t, workers*perWorker, st.Flushed)
	assert.Zero(t, st.Dropped)
	assert.Zero(t, st.Pending)

	// Live and test usage are kept apart: quota counts live alone.
	totals, err := store.Totals(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.EqualValues(t, workers*perWorker/2, totals.Live)
	assert.EqualValues(t, workers*perWorker/2, totals.Test)
}

func TestUsageLastUsedIsMonotone(t *testing.T) {
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	k, _, err := store.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(t, err)
	rec := apikey.NewUsageRecorder(store, apikey.FlushEvery(time.Hour))
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

// flakyUsage fails its first n flushes, and blocks while gate is closed.
type flakyUsage struct {
	inner apikey.UsageStore
	fails atomic.Int32
	gate  chan struct{}
	calls atomic.Int32
}

func (f *flakyUsage) RecordUsage(ctx context.Context, b []apikey.Usage) error {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fails.Add(-1) >= 0 {
		return errors.New("database is down")
	}
	return f.inner.RecordUsage(ctx, b)
}

func TestUsageFailedFlushIsRetried(t *testing.T) {
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	k, _, err := store.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(t, err)
	flaky := &flakyUsage{inner: store}
	flaky.fails.Store(2)
	rec := apikey.NewUsageRecorder(flaky, apikey.FlushEvery(time.Hour))
	now := storetest.Epoch
	for i := 0; i < 5; i++ {
		rec.Record(k, now)
	}
	assert.ErrorContains(t, rec.Flush(ctx), "database is down")
	for i := 0; i < 5; i++ {
		rec.Record(k, now)
	}
	assert.Error(t, rec.Flush(ctx))
	assert.Equal(t, 1, rec.Stats().Pending, "one key kept for the retry")
	require.NoError(t, rec.Flush(ctx))
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 10, got.Requests, "nothing lost across failed flushes")
	assert.EqualValues(t, 2, rec.Stats().Failures)
	require.NoError(t, rec.Close())
}

func TestUsageFlushDoesNotBlockRequests(t *testing.T) {
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	k, _, err := store.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(t, err)
	flaky := &flakyUsage{inner: store, gate: make(chan struct{})}
	rec := apikey.NewUsageRecorder(flaky, apikey.FlushEvery(time.Millisecond))
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

func TestUsageMemoryIsBounded(t *testing.T) {
	ctx := context.Background()
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	flaky := &flakyUsage{inner: store}
	flaky.fails.Store(1 << 30) // the store never accepts
	rec := apikey.NewUsageRecorder(flaky, apikey.FlushEvery(time.Millisecond), apikey.MaxPending(50))
	for i := 0; i < 5000; i++ {
		rec.Record(&apikey.Key{ID: fmt.Sprintf("key_%d", i), Environment: apikey.EnvLive}, storetest.Epoch)
		require.LessOrEqual(t, rec.Stats().Pending, 50)
	}
	st := rec.Stats()
	assert.GreaterOrEqual(t, st.Dropped, uint64(5000-50))
	err := rec.Close()
	require.Error(t, err, "Close reports usage it could not deliver")
	assert.Contains(t, err.Error(), "not recorded")
	_ = ctx
}

func TestUsageRecordAfterCloseIsDropped(t *testing.T) {
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	rec := apikey.NewUsageRecorder(store)
	require.NoError(t, rec.Close())
	require.NoError(t, rec.Close(), "Close is idempotent")
	rec.Record(&apikey.Key{ID: "key_x"}, storetest.Epoch)
	assert.EqualValues(t, 1, rec.Stats().Dropped)
}

// While the store fails, records over MaxPending do not flush again and
// again: the retry waits for the interval.
func TestUsageFailingStoreIsNotHammered(t *testing.T) {
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	flaky := &flakyUsage{inner: store}
	flaky.fails.Store(1 << 30)
	rec := apikey.NewUsageRecorder(flaky, apikey.FlushEvery(time.Hour), apikey.MaxPending(1))
	deadline := time.Now().Add(200 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		rec.Record(&apikey.Key{ID: fmt.Sprintf("key_%d", i), Environment: apikey.EnvLive}, storetest.Epoch)
	}
	assert.LessOrEqual(t, flaky.calls.Load(), int32(3), "one early flush fails; the rest wait for the interval")
	_ = rec.Close()
}
