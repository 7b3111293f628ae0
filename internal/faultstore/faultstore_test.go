package faultstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/faultstore"
	"github.com/keygate/apikey/internal/testkit"
)

func TestFaults(t *testing.T) {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(t, err)
	_, sec, err := mem.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(t, err)
	d := keys.Digest(sec.Reveal())
	s := faultstore.New(mem)

	k, err := s.Lookup(ctx, d)
	require.NoError(t, err, "no fault: the wrapped store answers")
	assert.Equal(t, "k", k.Name)

	boom := errors.New("boom")
	s.Set(faultstore.Fault{Err: boom})
	_, err = s.Lookup(ctx, d)
	assert.ErrorIs(t, err, boom)

	s.Set(faultstore.Fault{Latency: time.Hour})
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	_, err = s.Lookup(short, d)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	s.Set(faultstore.Fault{Hang: true})
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Lookup(gone, d)
	assert.ErrorIs(t, err, context.Canceled)

	s.Set(faultstore.Fault{Panic: "kaboom"})
	assert.PanicsWithValue(t, "kaboom", func() { _, _ = s.Lookup(ctx, d) })
	s.Set(faultstore.Fault{PanicNil: true})
	assert.Panics(t, func() { _, _ = s.Lookup(ctx, d) })

	started := false
	s.Set(faultstore.Fault{Before: func(context.Context) { started = true }})
	_, err = s.Lookup(ctx, d)
	assert.NoError(t, err)
	assert.True(t, started)

	s.SetRehash(faultstore.Fault{Err: boom})
	assert.ErrorIs(t, s.Rehash(ctx, "x", d, "p"), boom)
	s.Clear()
	assert.ErrorIs(t, s.Rehash(ctx, "nope", d, "p"), apikey.ErrNotFound, "forwarded to the wrapped Rehasher")
	assert.ErrorIs(t, faultstore.New(testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
		return nil, apikey.ErrNotFound
	})).Rehash(ctx, "x", d, "p"), faultstore.ErrNoRehash)

	assert.EqualValues(t, 7, s.Calls())
	assert.EqualValues(t, 5, s.Completed())
	assert.EqualValues(t, 2, s.Panics())
	assert.Zero(t, s.InFlight())
	assert.EqualValues(t, 2, s.RehashCalls())
	assert.Panics(t, func() { faultstore.New(nil) })
}

func TestConcurrentUse(t *testing.T) {
	mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}})
	require.NoError(t, err)
	s := faultstore.New(mem)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				_, _ = s.Lookup(context.Background(), apikey.Digest{byte(j)})
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if j%2 == 0 {
					s.Set(faultstore.Fault{Err: errors.New("x")})
				} else {
					s.Clear()
				}
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1600, s.Calls())
	assert.EqualValues(t, 1600, s.Completed())
	assert.Zero(t, s.InFlight())
}
