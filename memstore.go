package apikey

import (
	"context"
	"fmt"
	"hash/maphash"
	"os"
	"sync"
	"time"
)

// MemoryStore is the embedded store: keys in memory, O(1) lookups, a
// Manager, UsageStore and Rehasher. With a file each change rewrites it:
// fit for thousands of keys. A change replaces a Key, never modifies it.
type MemoryStore struct {
	keys   KeyConfig
	shards [memShards]memShard

	mu       sync.Mutex // serialises changes, management reads and the file
	ids      idIndex    // key ID → location
	order    listIndex  // every key ID, in List's order
	owners   map[string]*listIndex
	scopes   map[string][]Scope // interned scope lists, shared by keys
	file     string             // "" when not persisted
	lock     *os.File           // holds the file's lock (lockFile)
	lockPath string
	closed   bool
}

// MemoryStoreConfig configures a MemoryStore.
type MemoryStoreConfig struct {
	// Keys: the KeyConfig the middleware gets too. Required.
	Keys KeyConfig
	// Path persists the store: loaded if it exists, rewritten atomically
	// at every change, digests never secrets, mode 0600; a file it cannot
	// trust is left untouched (an error wrapping ErrInvalid). One store at a time opens
	// it: it holds the lock Path+".lock" until Close. Default: memory only.
	Path string
}

// NewMemoryStore returns a store with the keys of cfg.Path, or an empty
// one.
func NewMemoryStore(cfg MemoryStoreConfig) (*MemoryStore, error) {
	keys, err := cfg.Keys.check()
	if err != nil {
		return nil, fmt.Errorf("apikey: NewMemoryStore: MemoryStoreConfig.Keys: %w", err)
	}
	s := &MemoryStore{
		keys:   keys,
		ids:    idIndex{seed: maphash.MakeSeed()},
		owners: make(map[string]*listIndex),
		scopes: make(map[string][]Scope),
	}
	if cfg.Path != "" {
		if err := s.open(cfg.Path); err != nil {
			return nil, err
		}
	}
	return s, nil
}

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

// Create makes a key with KeyConfig.NewKey, stores its digest and returns
// the key and its secret.
func (s *MemoryStore) Create(ctx context.Context, spec KeySpec) (*Key, Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, Secret{}, err
	}
	is, err := s.keys.NewKey(spec)
	if err != nil {
		return nil, Secret{}, fmt.Errorf("create key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, Secret{}, errClosed
	}
	if err := s.insertLocked(is.Digest, is.Key); err != nil {
		return nil, Secret{}, err
	}
	if err := s.saveLocked(); err != nil {
		s.removeLocked(is.Key.ID)
		return nil, Secret{}, err
	}
	return is.Key.Clone(), is.Secret, nil
}

// Add imports a key under KeyConfig.Digest of its plaintext: an ID of 1 to
// 128 visible ASCII characters, an environment, both ID and digest free.
func (s *MemoryStore) Add(ctx context.Context, d Digest, k *Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkRecord(d, k); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if err := s.insertLocked(d, k.Clone()); err != nil {
		return err
	}
	if err := s.saveLocked(); err != nil {
		s.removeLocked(k.ID)
		return err
	}
	return nil
}

// checkRecord refuses what the store could not file, or could not load
// again from its file: a zero digest, an ID that is empty, over 128 bytes
// or not visible ASCII, an unknown environment, a malformed scope.
func checkRecord(d Digest, k *Key) error {
	switch {
	case k == nil:
		return fmt.Errorf("%w: no key", ErrInvalid)
	case !validKeyID(k.ID):
		return fmt.Errorf("%w: key id %q must be 1 to %d visible ASCII characters", ErrInvalid, k.ID, maxKeyIDLength)
	case d == Digest{}:
		return fmt.Errorf("%w: key %s has a zero digest", ErrInvalid, k.ID)
	case k.Environment != EnvLive && k.Environment != EnvTest:
		return fmt.Errorf("%w: key %s has no environment (EnvLive or EnvTest)", ErrInvalid, k.ID)
	}
	for _, sc := range k.Scopes {
		if !sc.valid() {
			return fmt.Errorf("%w: key %s: scope %q is not a valid scope name", ErrInvalid, k.ID, sc)
		}
	}
	return nil
}

func (s *MemoryStore) insertLocked(d Digest, k *Key) error {
	if _, dup := s.findID(k.ID); dup {
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
	s.order.insert(k, s.keyLocked)
	if k.Owner != "" {
		ix := s.owners[k.Owner]
		if ix == nil {
			ix = &listIndex{}
			s.owners[k.Owner] = ix
		}
		ix.insert(k, s.keyLocked)
	}
	return nil
}

// keyLocked returns the current snapshot of a key by ID, nil if unknown.
func (s *MemoryStore) keyLocked(id string) *Key {
	_, k, _ := s.getLocked(id)
	return k
}

// getLocked returns the digest and current snapshot of a key by ID.
func (s *MemoryStore) getLocked(id string) (Digest, *Key, bool) {
	l, ok := s.findID(id)
	if !ok {
		return Digest{}, nil, false
	}
	e := s.entry(l)
	return e.digest, e.key, true
}

func (s *MemoryStore) removeLocked(id string) {
	l, ok := s.findID(id)
	if !ok {
		return
	}
	e := s.entry(l)
	d, k := e.digest, e.key
	s.order.remove(k, s.keyLocked)
	if ix := s.owners[k.Owner]; ix != nil {
		ix.remove(k, s.keyLocked)
		if len(ix.ids) == 0 {
			delete(s.owners, k.Owner)
		}
	}
	s.dropID(id)
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

// List returns copies of the keys matching the filter, oldest first (ties
// by ID), a page at a time (Filter.After, Filter.Limit). It walks an
// ordered index, of the owner's keys when Filter.Owner is set, from the
// page's start: a page of one owner's keys costs the same with a million
// keys in the store.
func (s *MemoryStore) List(ctx context.Context, f Filter) ([]*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Limit < 0 {
		return nil, fmt.Errorf("list: %w: Filter.Limit is negative", ErrInvalid)
	}
	now := s.keys.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := &s.order
	if f.Owner != "" {
		if ix = s.owners[f.Owner]; ix == nil {
			ix = &listIndex{}
		}
	}
	start := 0
	if f.After != "" {
		after := s.keyLocked(f.After)
		if after == nil {
			return nil, fmt.Errorf("list after %q: %w", f.After, ErrNotFound)
		}
		start = ix.after(after, s.keyLocked)
	}
	var out []*Key
	for _, id := range ix.ids[start:] {
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		if k := s.keyLocked(id); f.match(k, now) {
			out = append(out, k.Clone())
		}
	}
	return out, nil
}

// Update changes the key in place by KeyConfig.Update; see Manager.
func (s *MemoryStore) Update(ctx context.Context, id string, change func(*Key) error) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	d, cur, ok := s.getLocked(id)
	if !ok {
		return nil, fmt.Errorf("update %q: %w", id, ErrNotFound)
	}
	k, err := s.keys.Update(cur, change)
	if err != nil {
		return nil, err
	}
	k.Scopes = s.intern(k.Scopes)
	s.replaceLocked(d, k)
	if err := s.saveLocked(); err != nil {
		s.replaceLocked(d, cur)
		return nil, err
	}
	return k.Clone(), nil
}

// Revoke revokes the key: no Lookup after it returns finds it active.
func (s *MemoryStore) Revoke(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	d, cur, ok := s.getLocked(id)
	if !ok {
		return fmt.Errorf("revoke %q: %w", id, ErrNotFound)
	}
	if !cur.RevokedAt.IsZero() {
		return nil
	}
	k := *cur // snapshots are immutable: a shallow copy is a new one
	k.RevokedAt = s.keys.Clock()
	s.replaceLocked(d, &k)
	if err := s.saveLocked(); err != nil {
		// The revocation stays in effect in memory: failing open on a
		// revocation is never acceptable. The caller learns the file lags.
		return fmt.Errorf("revoke %q: revoked in memory, not persisted: %w", id, err)
	}
	return nil
}

// Roll replaces the key with a successor; see Manager.Roll.
func (s *MemoryStore) Roll(ctx context.Context, id string, grace time.Duration) (*Key, Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, Secret{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, Secret{}, errClosed
	}
	d, prev, ok := s.getLocked(id)
	if !ok {
		return nil, Secret{}, fmt.Errorf("roll %q: %w", id, ErrNotFound)
	}
	is, retired, err := s.keys.Successor(prev, grace)
	if err != nil {
		return nil, Secret{}, err
	}
	if err := s.insertLocked(is.Digest, is.Key); err != nil {
		return nil, Secret{}, err
	}
	s.replaceLocked(d, retired)
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
	if s.closed {
		return errClosed
	}
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
	s.dropID(id)
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

// RecordUsage applies a batch of usage records (see UsageStore). A call
// that fails applies nothing, so flush is not needed to apply a batch
// once.
func (s *MemoryStore) RecordUsage(ctx context.Context, flush string, batch []Usage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
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

// compile-time checks
var (
	_ KeyStore   = (*MemoryStore)(nil)
	_ Manager    = (*MemoryStore)(nil)
	_ UsageStore = (*MemoryStore)(nil)
	_ Rehasher   = (*MemoryStore)(nil)
)
