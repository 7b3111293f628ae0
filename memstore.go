package apikey

import (
	"context"
	"fmt"
	"hash/maphash"
	"sort"
	"sync"
)

// MemoryStore is the embedded default KeyStore: every key in memory, O(1)
// lookup by digest, safe for concurrent use. It implements KeyStore,
// Manager, UsageStore, Rehasher and Configured.
//
// Lookups take one read lock out of 64, chosen by the digest, so they scale
// across cores. The index costs about 60 bytes per key beside the Key (see
// memindex.go). Management operations serialise on one mutex; with a file
// (OpenMemoryStore) each one rewrites the file atomically, which suits the
// thousands of keys of a small server, not millions.
//
// Keys returned by Lookup are shared snapshots: the store never modifies a
// Key it has handed out, it replaces it.
type MemoryStore struct {
	cfg    StoreConfig
	shards [memShards]memShard

	mu     sync.Mutex         // serialises changes, management reads and the file
	ids    idIndex            // key ID → location
	scopes map[string][]Scope // interned scope lists, shared by keys
	file   string             // "" when not persisted
}

// NewMemoryStore returns an empty in-memory store that is not persisted.
func NewMemoryStore(cfg StoreConfig) *MemoryStore {
	return &MemoryStore{
		cfg:    cfg.WithDefaults(),
		ids:    idIndex{seed: maphash.MakeSeed()},
		scopes: make(map[string][]Scope),
	}
}

// Config returns the store's configuration, defaults applied.
func (s *MemoryStore) Config() StoreConfig { return s.cfg }

// FastLookup reports true: lookups never block.
func (s *MemoryStore) FastLookup() bool { return true }

func shardOf(d Digest) int { return int(d[0] % memShards) }

// Lookup returns the key filed under digest, or ErrNotFound.
func (s *MemoryStore) Lookup(_ context.Context, d Digest) (*Key, error) {
	sh := &s.shards[shardOf(d)]
	sh.mu.RLock()
	k := sh.lookup(d)
	sh.mu.RUnlock()
	if k == nil {
		return nil, ErrNotFound
	}
	return k, nil
}

// Len returns the number of keys held, in every state.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids.live
}

// Create makes, stores and returns a new key and its secret.
func (s *MemoryStore) Create(ctx context.Context, spec KeySpec) (*Key, Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, Secret{}, err
	}
	is, err := s.cfg.Issue(spec)
	if err != nil {
		return nil, Secret{}, fmt.Errorf("create key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.insertLocked(is.Digest, is.Key); err != nil {
		return nil, Secret{}, err
	}
	if err := s.saveLocked(); err != nil {
		s.removeLocked(is.Key.ID)
		return nil, Secret{}, err
	}
	return is.Key.Clone(), is.Secret, nil
}

// Add files an existing key under a digest, for imports and tests; the
// secret stays with the caller. It fails if the ID or digest is taken.
func (s *MemoryStore) Add(ctx context.Context, d Digest, k *Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k == nil || k.ID == "" {
		return fmt.Errorf("%w: key needs an ID", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.insertLocked(d, k.Clone()); err != nil {
		return err
	}
	if err := s.saveLocked(); err != nil {
		s.removeLocked(k.ID)
		return err
	}
	return nil
}

func (s *MemoryStore) insertLocked(d Digest, k *Key) error {
	if _, _, dup := s.findID(k.ID); dup {
		return fmt.Errorf("%w: key id %s already exists", ErrInvalid, k.ID)
	}
	n := shardOf(d)
	sh := &s.shards[n]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, dup := sh.find(d); dup {
		return fmt.Errorf("%w: digest already filed", ErrInvalid)
	}
	k.Scopes = s.intern(k.Scopes)
	pos, ok := sh.insert(d, k)
	if !ok {
		return fmt.Errorf("apikey: memory store shard full (%d keys)", maxPos)
	}
	s.addID(k.ID, makeLoc(n, pos))
	return nil
}

// getLocked returns the digest and current snapshot of a key by ID.
func (s *MemoryStore) getLocked(id string) (Digest, *Key, bool) {
	_, l, ok := s.findID(id)
	if !ok {
		return Digest{}, nil, false
	}
	e := s.entry(l)
	return e.digest, e.key, true
}

func (s *MemoryStore) removeLocked(id string) {
	slot, l, ok := s.findID(id)
	if !ok {
		return
	}
	d := s.entry(l).digest
	s.dropID(slot)
	sh := &s.shards[l.shard()]
	sh.mu.Lock()
	sh.remove(d)
	sh.mu.Unlock()
}

// replaceLocked publishes a new snapshot of the key filed under d.
func (s *MemoryStore) replaceLocked(d Digest, k *Key) {
	sh := &s.shards[shardOf(d)]
	sh.mu.Lock()
	if pos, ok := sh.find(d); ok {
		sh.entries[pos].key = k
	}
	sh.mu.Unlock()
}

// eachLocked calls fn for every key.
func (s *MemoryStore) eachLocked(fn func(Digest, *Key)) {
	for i := range s.shards {
		for _, e := range s.shards[i].entries {
			if e.key != nil {
				fn(e.digest, e.key)
			}
		}
	}
}

// intern shares one backing array among keys with the same scope list.
func (s *MemoryStore) intern(scopes []Scope) []Scope {
	if len(scopes) == 0 {
		return nil
	}
	n := 0
	for _, sc := range scopes {
		n += len(sc) + 1
	}
	b := make([]byte, 0, n)
	for _, sc := range scopes {
		b = append(b, sc...)
		b = append(b, 0)
	}
	if shared, ok := s.scopes[string(b)]; ok {
		return shared
	}
	shared := append([]Scope(nil), scopes...)
	s.scopes[string(b)] = shared
	return shared
}

// Get returns a copy of the key with this ID.
func (s *MemoryStore) Get(ctx context.Context, id string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, k, ok := s.getLocked(id)
	if !ok {
		return nil, fmt.Errorf("get %q: %w", id, ErrNotFound)
	}
	return k.Clone(), nil
}

// List returns copies of the keys matching the filter, oldest first.
func (s *MemoryStore) List(ctx context.Context, f Filter) ([]*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	var out []*Key
	s.eachLocked(func(_ Digest, k *Key) {
		if f.Match(k, now) {
			out = append(out, k.Clone())
		}
	})
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Revoke revokes the key at once. When Revoke returns, no Lookup returns
// the key in an active state any more.
func (s *MemoryStore) Revoke(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, cur, ok := s.getLocked(id)
	if !ok {
		return fmt.Errorf("revoke %q: %w", id, ErrNotFound)
	}
	if !cur.RevokedAt.IsZero() {
		return nil
	}
	k := *cur // snapshots are immutable: a shallow copy is a new one
	k.RevokedAt = s.cfg.Clock.Now()
	s.replaceLocked(d, &k)
	if err := s.saveLocked(); err != nil {
		// The revocation stays in effect in memory: failing open on a
		// revocation is never acceptable. The caller learns the file lags.
		return fmt.Errorf("revoke %q: revoked in memory, not persisted: %w", id, err)
	}
	return nil
}

// Roll replaces the key with a successor; see Manager.Roll.
func (s *MemoryStore) Roll(ctx context.Context, id string, opts ...RollOption) (*Key, Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, Secret{}, err
	}
	grace, err := RollGrace(opts...)
	if err != nil {
		return nil, Secret{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, prev, ok := s.getLocked(id)
	if !ok {
		return nil, Secret{}, fmt.Errorf("roll %q: %w", id, ErrNotFound)
	}
	is, retire, err := s.cfg.Successor(prev, grace)
	if err != nil {
		return nil, Secret{}, err
	}
	if err := s.insertLocked(is.Digest, is.Key); err != nil {
		return nil, Secret{}, err
	}
	old := *prev
	old.RolledTo = is.Key.ID
	old.ExpiresAt = retire
	s.replaceLocked(d, &old)
	if err := s.saveLocked(); err != nil {
		s.replaceLocked(d, prev)
		s.removeLocked(is.Key.ID)
		return nil, Secret{}, err
	}
	return is.Key.Clone(), is.Secret, nil
}

// Rehash files the key under a new digest made with another pepper.
func (s *MemoryStore) Rehash(ctx context.Context, id string, d Digest, pepperID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prevDigest, cur, ok := s.getLocked(id)
	if !ok {
		return fmt.Errorf("rehash %q: %w", id, ErrNotFound)
	}
	if prevDigest == d {
		return nil
	}
	if _, taken := s.shards[shardOf(d)].find(d); taken {
		return fmt.Errorf("%w: rehash %q: digest already filed", ErrInvalid, id)
	}
	k := *cur
	k.PepperID = pepperID
	// File under the new digest before unfiling the old one, so that a
	// concurrent lookup finds the key under one or the other.
	n := shardOf(d)
	sh := &s.shards[n]
	sh.mu.Lock()
	pos, ok := sh.insert(d, &k)
	sh.mu.Unlock()
	if !ok {
		return fmt.Errorf("apikey: memory store shard full (%d keys)", maxPos)
	}
	slot, _, _ := s.findID(id)
	s.dropID(slot)
	s.addID(id, makeLoc(n, pos))
	old := &s.shards[shardOf(prevDigest)]
	old.mu.Lock()
	old.remove(prevDigest)
	old.mu.Unlock()
	if err := s.saveLocked(); err != nil {
		return fmt.Errorf("rehash %q: not persisted: %w", id, err)
	}
	return nil
}

// RecordUsage applies a batch of usage records (see UsageStore).
func (s *MemoryStore) RecordUsage(ctx context.Context, batch []Usage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type applied struct {
		digest Digest
		prev   *Key
	}
	var done []applied
	for _, u := range batch {
		d, prev, ok := s.getLocked(u.KeyID)
		if !ok {
			continue
		}
		k := *prev
		k.Requests += u.Count
		if u.LastUsed.After(k.LastUsedAt) {
			k.LastUsedAt = u.LastUsed
		}
		s.replaceLocked(d, &k)
		done = append(done, applied{d, prev})
	}
	if len(done) == 0 {
		return nil
	}
	if err := s.saveLocked(); err != nil {
		// Undo, so that the caller's retry of the same batch does not
		// count it twice.
		for _, a := range done {
			s.replaceLocked(a.digest, a.prev)
		}
		return err
	}
	return nil
}

// UsageTotals sums request counts by environment.
type UsageTotals struct {
	// Live counts requests made with live keys: what a quota counts.
	Live uint64
	// Test counts requests made with test (sandbox) keys, which never
	// count toward a quota (seed 004).
	Test uint64
}

// Totals sums the recorded usage of the keys matching the filter, live and
// test apart.
func (s *MemoryStore) Totals(ctx context.Context, f Filter) (UsageTotals, error) {
	if err := ctx.Err(); err != nil {
		return UsageTotals{}, err
	}
	now := s.cfg.Clock.Now()
	var t UsageTotals
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eachLocked(func(_ Digest, k *Key) {
		switch {
		case !f.Match(k, now):
		case k.Environment == EnvTest:
			t.Test += k.Requests
		default:
			t.Live += k.Requests
		}
	})
	return t, nil
}

// compile-time checks
var (
	_ KeyStore   = (*MemoryStore)(nil)
	_ Manager    = (*MemoryStore)(nil)
	_ UsageStore = (*MemoryStore)(nil)
	_ Rehasher   = (*MemoryStore)(nil)
	_ Configured = (*MemoryStore)(nil)
)
