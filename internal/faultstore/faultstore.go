// Package faultstore wraps an apikey.KeyStore with injectable faults, for
// tests that prove the middleware fails closed: errors, latency, lookups
// that hang until their context ends, a client that goes away mid-lookup,
// and panics.
//
//	fs := faultstore.New(memStore)
//	fs.Set(faultstore.Fault{Err: errors.New("connection refused")})
//	mw, err := apikey.New(apikey.Config{Keys: keys, Store: fs})
//
// A Store with no fault set answers exactly as the wrapped store does. It
// counts every call, is safe for concurrent use, and its fault can be
// changed while lookups are in flight (each lookup uses the fault that was
// set when it started). It is an apikey.Rehasher too, with its own fault
// (SetRehash), forwarding to the wrapped store when that is one.
package faultstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/apikey"
)

// Fault describes what a call does instead of, or before, asking the
// wrapped store. The zero Fault injects nothing. The steps run in this
// order: Before, then Panic, then the wait (Hang, or Latency), then Err;
// only a call that survives all of them reaches the wrapped store.
type Fault struct {
	// Before, when set, is called at the start of each call with the
	// call's context: a test uses it to learn that a lookup has started,
	// or to cancel the client's request in the middle of one.
	Before func(ctx context.Context)
	// Panic, when non-nil, makes the call panic with this value.
	Panic any
	// PanicNil makes the call execute panic(nil) (which Go 1.21+ turns
	// into a *runtime.PanicNilError).
	PanicNil bool
	// Hang makes the call wait until its context is done and return the
	// context's error, as a store that never answers would.
	Hang bool
	// Latency makes the call wait this long before going on; if the
	// context ends first, the call returns the context's error.
	Latency time.Duration
	// Err, when non-nil, is returned instead of asking the wrapped store.
	Err error
}

// Store is a KeyStore with injectable faults. Create it with New.
type Store struct {
	next apikey.KeyStore

	mu     sync.RWMutex
	lookup Fault
	rehash Fault

	calls       atomic.Int64 // Lookup calls started
	completed   atomic.Int64 // Lookup calls that returned (not panicked)
	panics      atomic.Int64 // Lookup and Rehash calls that panicked
	inFlight    atomic.Int64 // Lookup calls not yet returned
	rehashCalls atomic.Int64
}

// New wraps next. It panics if next is nil.
func New(next apikey.KeyStore) *Store {
	if next == nil {
		panic("faultstore: New: nil KeyStore")
	}
	return &Store{next: next}
}

// Set makes every Lookup that starts from now on apply f.
func (s *Store) Set(f Fault) {
	s.mu.Lock()
	s.lookup = f
	s.mu.Unlock()
}

// SetRehash makes every Rehash that starts from now on apply f.
func (s *Store) SetRehash(f Fault) {
	s.mu.Lock()
	s.rehash = f
	s.mu.Unlock()
}

// Clear removes every fault: calls go straight to the wrapped store.
func (s *Store) Clear() {
	s.mu.Lock()
	s.lookup, s.rehash = Fault{}, Fault{}
	s.mu.Unlock()
}

// Calls returns how many Lookup calls have started.
func (s *Store) Calls() int64 { return s.calls.Load() }

// Completed returns how many Lookup calls have returned without panicking.
func (s *Store) Completed() int64 { return s.completed.Load() }

// Panics returns how many calls (Lookup or Rehash) have panicked.
func (s *Store) Panics() int64 { return s.panics.Load() }

// InFlight returns how many Lookup calls have started and not yet returned
// or panicked.
func (s *Store) InFlight() int64 { return s.inFlight.Load() }

// RehashCalls returns how many Rehash calls have started.
func (s *Store) RehashCalls() int64 { return s.rehashCalls.Load() }

// Lookup applies the current fault, then asks the wrapped store.
func (s *Store) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	s.calls.Add(1)
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.mu.RLock()
	f := s.lookup
	s.mu.RUnlock()
	if err := s.apply(ctx, f); err != nil {
		s.completed.Add(1)
		return nil, err
	}
	k, err := s.next.Lookup(ctx, d)
	s.completed.Add(1)
	return k, err
}

// ErrNoRehash is returned by Rehash when the wrapped store is not an
// apikey.Rehasher.
var ErrNoRehash = errors.New("faultstore: wrapped store cannot rehash")

// Rehash applies the rehash fault, then asks the wrapped store if it is an
// apikey.Rehasher, else returns ErrNoRehash.
func (s *Store) Rehash(ctx context.Context, id string, d apikey.Digest, pepperID string) error {
	s.rehashCalls.Add(1)
	s.mu.RLock()
	f := s.rehash
	s.mu.RUnlock()
	if err := s.apply(ctx, f); err != nil {
		return err
	}
	r, ok := s.next.(apikey.Rehasher)
	if !ok {
		return ErrNoRehash
	}
	return r.Rehash(ctx, id, d, pepperID)
}

// apply runs the steps of f; a non-nil error ends the call.
func (s *Store) apply(ctx context.Context, f Fault) error {
	if f.Before != nil {
		f.Before(ctx)
	}
	if f.PanicNil {
		s.panics.Add(1)
		panic(nil) // deliberate: the middleware must survive it too
	}
	if f.Panic != nil {
		s.panics.Add(1)
		panic(f.Panic)
	}
	switch {
	case f.Hang:
		<-ctx.Done()
		return ctx.Err()
	case f.Latency > 0:
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.Err
}

// Compile-time checks.
var (
	_ apikey.KeyStore = (*Store)(nil)
	_ apikey.Rehasher = (*Store)(nil)
)
