package apikey

import (
	"context"
	"time"
)

// readme:keystore

// KeyStore finds a key, whatever its state, by the digest of its secret:
// the one interface a store must implement (package storetest checks it).
// Unknown is an error wrapping ErrNotFound (401), any other error a 503.
// Lookup is safe for concurrent use and bounds its own time; the Key may
// be shared: nobody modifies it.
type KeyStore interface {
	Lookup(ctx context.Context, digest Digest) (*Key, error)
}

// readme:end

// Manager is the management ability of a store. Create returns the secret,
// never available again; List returns keys oldest first; Revoke is at once
// and for ever (again: no error, the first time kept); Roll replaces a key
// by KeyConfig.Successor, the old one working for grace (0: not at all);
// Update applies KeyConfig.Update under the key's lock (change sees the
// current key), effective at once. An unknown ID is ErrNotFound.
type Manager interface {
	Create(ctx context.Context, spec KeySpec) (*Key, Secret, error)
	Get(ctx context.Context, id string) (*Key, error)
	List(ctx context.Context, filter Filter) ([]*Key, error)
	Revoke(ctx context.Context, id string) error
	Roll(ctx context.Context, id string, grace time.Duration) (*Key, Secret, error)
	Update(ctx context.Context, id string, change func(*Key) error) (*Key, error)
}

// UsageStore is the usage ability of a store: for each record it adds
// Count to the key's requests and moves its last use forward (never back)
// to LastUsed; unknown keys are skipped. A retried batch comes with the
// same flush id ("" for none), so a store can apply it once.
type UsageStore interface {
	RecordUsage(ctx context.Context, flush string, batch []Usage) error
}

// Usage is the coalesced usage of one key since the last flush.
type Usage struct {
	KeyID       string
	Environment Environment
	Count       uint64
	LastUsed    time.Time
}

// Rehasher is the pepper-rotation ability of a store: re-file a key under a
// digest made with another pepper. The middleware's store, when one,
// re-files a key found under a retiring pepper.
type Rehasher interface {
	Rehash(ctx context.Context, id string, digest Digest, pepperID string) error
}

// Filter selects keys in Manager.List. Zero fields match everything: any
// environment, owner and state. A page is the Limit keys (0: all) after
// the key with ID After ("": the first), in List's order; After naming no
// key is ErrNotFound.
type Filter struct {
	Environment Environment
	Owner       string
	State       State
	After       string
	Limit       int
}

// match reports whether k passes the filter at now; its state is
// Key.State's.
func (f Filter) match(k *Key, now time.Time) bool {
	return (f.Environment == 0 || k.Environment == f.Environment) &&
		(f.Owner == "" || k.Owner == f.Owner) &&
		(f.State == 0 || k.State(now) == f.State)
}
