package apikey

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is the embedded store: keys in memory, O(1) lookups, a
// Manager, UsageStore and Rehasher. With a file each change rewrites it:
// fit for thousands of keys. A change replaces a Key, never modifies it.
type MemoryStore struct {
	// Resident keys are records of bytes, which the GC does not scan;
	// Lookup takes no lock and keeps the Keys it materializes in a bounded
	// hot set (memindex.go).

	keys   KeyConfig
	shards [memShards]memShard
	locs   atomic.Pointer[[]*time.Location] // the records' locations by index; 0: nil (UTC)

	mu       sync.Mutex // serialises changes, management reads and the file
	ids      idIndex    // key ID → key number
	where    []loc      // key number → record; noLoc when free
	freeNos  []uint32   // free key numbers
	order    listIndex  // every key number, in List's order
	owners   map[string]*listIndex
	locIdx   map[locKey]uint16 // locs' indexes
	enc      encoder
	file     string   // "" when not persisted
	lock     *os.File // holds the file's lock (lockFile)
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
		locIdx: map[locKey]uint16{{"UTC", 0}: 0},
	}
	s.locs.Store(&[]*time.Location{nil})
	s.enc.loc = s.locIndex
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
	sh := &s.shards[shardOf(d)] // no lock: see memindex.go
	for v := sh.view.Load(); v != nil; v = sh.view.Load() {
		k, stale := v.lookup(d, &s.locs)
		if k != nil {
			return k, nil
		}
		if !stale {
			break
		}
	}
	return nil, ErrNotFound
}

// locIndex returns the index in s.locs of t's location, adding it. A
// location is known by its name and t's offset, not by its pointer:
// time.LoadLocation and time.Parse make a new one each time, and the table
// would grow with every update. It holds maxLocations; beyond, 0 (the time
// is filed in UTC, the same instant).
func (s *MemoryStore) locIndex(t time.Time) uint16 {
	_, off := t.Zone()
	key := locKey{t.Location().String(), off}
	if i, ok := s.locIdx[key]; ok {
		return i
	}
	cur := *s.locs.Load()
	if len(cur) >= maxLocations {
		return 0
	}
	next := append(cur[:len(cur):len(cur)], t.Location())
	s.locs.Store(&next) // before any record names it
	s.locIdx[key] = uint16(len(cur))
	return uint16(len(cur))
}

// locKey is a location as locIndex knows it.
type locKey struct {
	name   string
	offset int
}

// maxLocations bounds the location table; keys' times come in a handful.
const maxLocations = 256

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
	return ownKey(is.Key), is.Secret, nil
}

// ownKey returns a key the store made and does not keep, as a reader
// would find it: no empty scope list.
func ownKey(k *Key) *Key {
	if len(k.Scopes) == 0 {
		k.Scopes = nil
	}
	return k
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
	if err := s.insertLocked(d, k); err != nil {
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

// insertLocked files a record of k under d; k is not kept.
func (s *MemoryStore) insertLocked(d Digest, k *Key) error {
	if _, dup := s.findID(k.ID); dup {
		return fmt.Errorf("%w: key id %s already exists", ErrInvalid, k.ID)
	}
	n := shardOf(d)
	sh := &s.shards[n]
	if _, _, dup := sh.find(d); dup {
		return fmt.Errorf("%w: digest already filed", ErrInvalid)
	}
	no := s.newNo()
	h, err := sh.append(s.enc.record(d, no, k))
	if err != nil {
		s.freeNos = append(s.freeNos, no)
		return err
	}
	sh.file(h)
	s.where[no] = makeLoc(n, h)
	s.addID(k.ID, no)
	s.order.insert(no, s.listCmp)
	if k.Owner != "" {
		ix := s.owners[k.Owner]
		if ix == nil {
			ix = &listIndex{}
			s.owners[strings.Clone(k.Owner)] = ix
		}
		ix.insert(no, s.listCmp)
	}
	return nil
}

// newNo returns a free key number.
func (s *MemoryStore) newNo() uint32 {
	if n := len(s.freeNos); n > 0 {
		no := s.freeNos[n-1]
		s.freeNos = s.freeNos[:n-1]
		return no
	}
	s.where = append(s.where, noLoc)
	return uint32(len(s.where) - 1)
}

// listCmp compares two key numbers in List's order (listOrder).
func (s *MemoryStore) listCmp(a, b uint32) int {
	ra, rb := s.recOf(a), s.recOf(b)
	locs := *s.locs.Load()
	if c := ra.timeAt(recCreated, locs).Compare(rb.timeAt(recCreated, locs)); c != 0 {
		return c
	}
	return strings.Compare(ra.id(), rb.id())
}

// getLocked returns the digest and a copy of the key with this ID, the
// caller's to modify.
func (s *MemoryStore) getLocked(id string) (Digest, *Key, bool) {
	no, ok := s.findID(id)
	if !ok {
		return Digest{}, nil, false
	}
	r := s.recOf(no)
	return r.digest(), r.newKey(*s.locs.Load()), true
}

func (s *MemoryStore) removeLocked(id string) {
	no, ok := s.findID(id)
	if !ok {
		return
	}
	r := s.recOf(no)
	d, owner := r.digest(), r.owner()
	s.order.remove(no, s.listCmp)
	if ix := s.owners[owner]; ix != nil {
		ix.remove(no, s.listCmp)
		if len(ix.ids) == 0 {
			delete(s.owners, owner)
		}
	}
	s.dropID(id)
	n := s.where[no].shard()
	s.shards[n].unfile(d)
	s.where[no] = noLoc
	s.freeNos = append(s.freeNos, no)
	s.tidy(n)
}

// replaceLocked files a new record of k, the key filed under d with the
// same ID, creation time and owner.
func (s *MemoryStore) replaceLocked(d Digest, k *Key) error {
	n := shardOf(d)
	sh := &s.shards[n]
	i, old, ok := sh.find(d)
	if !ok {
		return nil
	}
	no := sh.rec(old).keyNo()
	h, err := sh.append(s.enc.record(d, no, k))
	if err != nil {
		return err
	}
	sh.refile(i, h)
	s.where[no] = makeLoc(n, h)
	s.tidy(n)
	return nil
}

// tidy compacts shard n if it is mostly dead records.
func (s *MemoryStore) tidy(n int) {
	s.shards[n].compact(func(no, h uint32) { s.where[no] = makeLoc(n, h) })
}

// eachLocked calls fn for every key, with a copy of it.
func (s *MemoryStore) eachLocked(fn func(Digest, *Key)) {
	locs := *s.locs.Load()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.each(func(h uint32) {
			r := sh.rec(h)
			fn(r.digest(), r.newKey(locs))
		})
	}
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
	return k, nil
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
		after, ok := s.findID(f.After)
		if !ok {
			return nil, fmt.Errorf("list after %q: %w", f.After, ErrNotFound)
		}
		start = ix.after(after, s.listCmp)
	}
	locs := *s.locs.Load()
	var out []*Key
	for _, no := range ix.ids[start:] {
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		if k := s.recOf(no).newKey(locs); f.match(k, now) {
			out = append(out, k)
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
	if err := s.replaceLocked(d, k); err != nil {
		return nil, err
	}
	if err := s.saveLocked(); err != nil {
		// Back to the record before; appending it can fail too (a full
		// shard), and then the caller hears of both.
		return nil, errors.Join(err, s.replaceLocked(d, cur))
	}
	return ownKey(k.Clone()), nil
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
	d, k, ok := s.getLocked(id)
	if !ok {
		return fmt.Errorf("revoke %q: %w", id, ErrNotFound)
	}
	if !k.RevokedAt.IsZero() {
		return nil
	}
	k.RevokedAt = s.keys.Clock().Round(0)
	if err := s.replaceLocked(d, k); err != nil {
		return fmt.Errorf("revoke %q: %w", id, err)
	}
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
	if err := s.replaceLocked(d, retired); err != nil {
		s.removeLocked(is.Key.ID)
		return nil, Secret{}, err
	}
	if err := s.saveLocked(); err != nil {
		err = errors.Join(err, s.replaceLocked(d, prev))
		s.removeLocked(is.Key.ID)
		return nil, Secret{}, err
	}
	return ownKey(is.Key), is.Secret, nil
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
	prevDigest, k, ok := s.getLocked(id)
	if !ok {
		return fmt.Errorf("rehash %q: %w", id, ErrNotFound)
	}
	if prevDigest == d {
		return nil
	}
	n := shardOf(d)
	sh := &s.shards[n]
	if _, _, taken := sh.find(d); taken {
		return fmt.Errorf("%w: rehash %q: digest already filed", ErrInvalid, id)
	}
	no, _ := s.findID(id)
	k.PepperID = pepperID
	// File under the new digest before unfiling the old one, so that a
	// concurrent lookup finds the key under one or the other.
	h, err := sh.append(s.enc.record(d, no, k))
	if err != nil {
		return fmt.Errorf("rehash %q: %w", id, err)
	}
	sh.file(h)
	prev := s.where[no].shard()
	s.where[no] = makeLoc(n, h)
	s.shards[prev].unfile(prevDigest)
	s.tidy(prev)
	s.tidy(n)
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
	undo := func() error {
		var errs []error
		for i := len(done) - 1; i >= 0; i-- { // the same key twice: back to the first state
			errs = append(errs, s.replaceLocked(done[i].digest, done[i].prev))
		}
		return errors.Join(errs...)
	}
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
		if err := s.replaceLocked(d, &k); err != nil {
			return errors.Join(err, undo())
		}
		done = append(done, applied{d, prev})
	}
	if len(done) == 0 {
		return nil
	}
	if err := s.saveLocked(); err != nil {
		// Undo, so that the caller's retry of the same batch does not
		// count it twice.
		return errors.Join(err, undo())
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
