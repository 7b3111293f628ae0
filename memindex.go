package apikey

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"iter"
	"math"
	"sync/atomic"
	"time"
	"unsafe"
)

// The memory store's index: where each key lives and how it is found by
// digest, by ID and in List's order, with no pointer per key for the GC
// to scan.
//
// Each key is a record of bytes (memstore_record.go) in its shard's arena:
// append-only chunks of at most 64 KiB (a record larger than that has a
// chunk of its own), found by a 4-byte handle, chunk and offset. A change
// appends a new record and refiles the digest to it; the old one is dead
// and its bytes never change, so strings decoded from a record may be
// views of the arena. When the dead bytes outweigh the live ones, the
// shard is compacted into new chunks (the old ones live on while a view or
// a reader holds them). Each shard has an open-addressing table of handles
// keyed by the digest, each with 32 bits of its digest, so that a probe
// reads a record only when they agree; one store-wide table of key
// numbers is keyed by the key ID, and MemoryStore.where maps a key number
// to its shard and handle. Key numbers are stable across changes: the
// List indexes hold them. Both tables are a slotTable; the lookup path
// walks the digest table itself, with atomic loads.
//
// Lookups take no lock. A shard publishes a shardView (atomic pointer):
// its digest table, chunks and hot set. Writers store table slots
// atomically, after writing the record they point to; a new table
// (growth, compaction) or chunk list is a new view. A reader that meets a
// handle in a chunk its view lacks loads the newer view. The hot set is a
// small two-way table of Keys materialized by Lookup, keyed by handle and
// holding their digest (a hit reads no record): a changed key has a new
// handle, so a stale Key is never found; compaction, which reuses
// handles, starts an empty one. It has eight ways per digest-table slot
// up to hotMax, so that a small store's keys all stay decoded (two-way
// conflicts would otherwise evict them). Only the hot set holds pointers:
// at most hotMax keys per shard.
//
// Every change holds the store's mutex, which guards the writers' state
// (shard tables and arenas, ID table, where, List indexes).

const (
	slotEmpty    = 0
	slotDeleted  = math.MaxUint32
	minTableSize = 16
	shardBits    = 6 // memShards == 1<<shardBits
)

// slotTable is an open-addressing hash table with linear probing. Each slot
// holds a value + 1, slotEmpty or a tombstone (all ones: slotDeleted for
// uint32); the values (handles with a tag, key numbers) are looked up
// through a match function, since the table does not hold the keys
// themselves. Slots are stored atomically: lookups read a shard's table
// without a lock.
type slotTable[T uint32 | uint64] struct {
	slots   []T
	live    int // occupied slots
	deleted int // tombstones
}

// tomb is the tombstone of T.
func tomb[T uint32 | uint64]() T { return ^T(0) }

// probe is the one probe loop: it yields the slots on hash h's path, each
// with its value (slotEmpty and tombstones as they are, a value as value +
// 1), and ends after the first empty slot. The table always has one: it is
// kept at most 3/4 full, tombstones included. The compiler inlines it into
// each caller. Writers only: it reads without atomics.
func (t *slotTable[T]) probe(h uint64) iter.Seq2[int, T] {
	return func(yield func(int, T) bool) {
		mask := uint64(len(t.slots) - 1)
		for i := h & mask; ; i = (i + 1) & mask {
			s := t.slots[i]
			if !yield(int(i), s) || s == slotEmpty {
				return
			}
		}
	}
}

// find returns the slot of the value for which match is true.
func (t *slotTable[T]) find(h uint64, match func(v T) bool) (int, bool) {
	if t.live == 0 {
		return 0, false
	}
	for i, s := range t.probe(h) {
		if s == slotEmpty {
			break
		}
		if s != tomb[T]() && match(s-1) {
			return i, true
		}
	}
	return 0, false
}

// store sets slot i atomically.
func (t *slotTable[T]) store(i int, s T) {
	switch p := any(&t.slots[i]).(type) {
	case *uint32:
		atomic.StoreUint32(p, uint32(s))
	case *uint64:
		atomic.StoreUint64(p, uint64(s))
	}
}

// insert adds v, which must not be present, growing the table (hash
// returns the hash of a present value) to stay at most 3/4 full.
func (t *slotTable[T]) insert(h uint64, v T, hash func(v T) uint64) {
	if (t.live+t.deleted+1)*4 > len(t.slots)*3 {
		t.rebuild(hash)
	}
	for i, s := range t.probe(h) {
		if s == slotEmpty || s == tomb[T]() {
			if s == tomb[T]() {
				t.deleted--
			}
			t.store(i, v+1)
			t.live++
			return
		}
	}
}

// set replaces the value at slot i, which holds one, with v.
func (t *slotTable[T]) set(i int, v T) { t.store(i, v+1) }

// remove deletes the value at slot i.
func (t *slotTable[T]) remove(i int) T {
	v := t.slots[i] - 1
	t.store(i, tomb[T]())
	t.live--
	t.deleted++
	return v
}

// rebuild rehashes the live values into a table at most half full after
// one more insert, dropping the tombstones.
func (t *slotTable[T]) rebuild(hash func(v T) uint64) {
	size := minTableSize
	for size < 2*(t.live+1) {
		size *= 2
	}
	old := t.slots
	t.slots, t.live, t.deleted = make([]T, size), 0, 0
	for _, s := range old {
		if s != slotEmpty && s != tomb[T]() {
			t.insert(hash(s-1), s-1, nil) // never grows: the new table is large enough
		}
	}
}

// memShards is the number of shards. Each has its own view, so that
// readers on many cores do not share one cache line, and a change copies
// nothing of the other shards.
const memShards = 1 << shardBits

const (
	offBits     = 16
	maxChunkLen = 1 << offBits // a handle's offset addresses a chunk
	minChunkLen = 1 << 10
	maxChunks   = 1<<(32-offBits) - 1 // a handle is below 1<<32 - 2
	hotMax      = 1024                // materialized keys per shard, at most; even
	compactMin  = 64 << 10            // dead bytes worth a compaction
)

var errShardFull = errors.New("apikey: memory store shard full")

// A digest table slot holds a tag, 32 bits of the digest, above the
// handle: a probe reads a record only when the tags agree.
func tagged(d Digest, h uint32) uint64 {
	return uint64(binary.LittleEndian.Uint32(d[16:20]))<<32 | uint64(h)
}

// shardView is what lookups read of a shard. Its slices are never
// replaced, only their slots (atomically) and hot entries.
type shardView struct {
	slots  []uint64 // digest → tagged handle + 1, slotEmpty or tombstone
	chunks [][]byte // the arena
	hot    []hotSlot
}

// hotSlot holds a Key materialized by Lookup, and its handle + 1, read
// without following the pointer.
type hotSlot struct {
	h   atomic.Uint32
	key atomic.Pointer[hotKey]
}

// hotKey is a Key materialized by Lookup from the record at handle h.
type hotKey struct {
	h      uint32
	digest Digest
	key    Key
	scopes [2]Scope // the Scopes of most keys, in the same allocation
}

type memShard struct {
	view atomic.Pointer[shardView]

	// The writer's state, guarded by the store's mutex.
	table  slotTable[uint64] // digest → tagged handle; its slots are the view's
	chunks [][]byte
	tail   int // bytes used of the last chunk
	live   int // bytes of the records the table files
	dead   int // bytes of the others
	hot    []hotSlot
	moves  int // compactions
}

func pad(n int) int { return (n + 7) &^ 7 }

func recIn(chunks [][]byte, h uint32) rec {
	return rec(chunks[h>>offBits][h&(maxChunkLen-1):])
}

func (sh *memShard) rec(h uint32) rec { return recIn(sh.chunks, h) }

func digestHash(d Digest) uint64 { return binary.LittleEndian.Uint64(d[8:16]) }

func (sh *memShard) hashOf(v uint64) uint64 { return digestHash(sh.rec(uint32(v)).digest()) }

// find returns the table slot and handle of d. Writers only: it reads the
// slots without atomics.
func (sh *memShard) find(d Digest) (int, uint32, bool) {
	if sh.table.live == 0 {
		return 0, 0, false
	}
	tag := tagged(d, 0)
	for i, s := range sh.table.probe(digestHash(d)) {
		if s == slotEmpty {
			break
		}
		if v := s - 1; s != tomb[uint64]() && v&^math.MaxUint32 == tag && sh.rec(uint32(v)).digest() == d {
			return i, uint32(v), true
		}
	}
	return 0, 0, false
}

// each calls fn with the handle of every filed record.
func (sh *memShard) each(fn func(h uint32)) {
	for _, s := range sh.table.slots {
		if s != slotEmpty && s != tomb[uint64]() {
			fn(uint32(s - 1))
		}
	}
}

// lookup returns the Key filed under d: the lookup path. A slot whose tag
// agrees names a candidate: its Key from the hot set if the digest it
// keeps agrees too, else its record's, if the digest agrees, decoded into
// the hot set. stale: a slot names a chunk v lacks, which a newer view has.
func (v *shardView) lookup(d Digest, locs *atomic.Pointer[[]*time.Location]) (k *Key, stale bool) {
	slots := v.slots
	if len(slots) == 0 {
		return nil, false
	}
	tag := tagged(d, 0)
	mask := uint64(len(slots) - 1)
	for i := digestHash(d) & mask; ; i = (i + 1) & mask {
		s := atomic.LoadUint64(&slots[i])
		if s == slotEmpty {
			return nil, false
		}
		if s == tomb[uint64]() || (s-1)&^math.MaxUint32 != tag {
			continue
		}
		h := uint32(s - 1)
		first, second := v.hotPair(h)
		if hk := first.get(h); hk != nil && hk.digest == d {
			return &hk.key, false
		}
		if hk := second.get(h); hk != nil && hk.digest == d {
			return &hk.key, false
		}
		c := int(h >> offBits)
		if c >= len(v.chunks) {
			return nil, true
		}
		if r := rec(v.chunks[c][h&(maxChunkLen-1):]); r.digest() == d {
			return v.materialize(r, h, first, second, *locs.Load()), false
		}
	}
}

// hotPair returns the two hot slots of handle h.
func (v *shardView) hotPair(h uint32) (*hotSlot, *hotSlot) {
	x := uint64(h) * 0x9e3779b97f4a7c15 // handles are multiples of 8: mix
	x ^= x >> 32
	x *= 0xff51afd7ed558ccd
	x ^= x >> 29
	i := int(x) & (len(v.hot) - 2)
	return &v.hot[i], &v.hot[i+1]
}

// get returns the slot's key if it is the record at h's.
func (w *hotSlot) get(h uint32) *hotKey {
	if w.h.Load() != h+1 {
		return nil
	}
	if hk := w.key.Load(); hk != nil && hk.h == h {
		return hk
	}
	return nil
}

// materialize decodes the record r at h into the hot set: the first way
// of its pair, the key it displaces to the second.
func (v *shardView) materialize(r rec, h uint32, first, second *hotSlot, locs []*time.Location) *Key {
	hk := &hotKey{h: h, digest: r.digest()}
	hk.key.Scopes = hk.scopes[:0]
	r.decode(&hk.key, locs)
	hk.key.Scopes = hk.key.Scopes[:len(hk.key.Scopes):len(hk.key.Scopes)]
	if prev := first.key.Load(); prev != nil {
		second.key.Store(prev)
		second.h.Store(prev.h + 1)
	}
	first.key.Store(hk)
	first.h.Store(h + 1)
	return &hk.key
}

// publish makes the writer's state the view lookups see, if it changed.
// A writer publishes before it stores a slot naming a new chunk.
func (sh *memShard) publish() {
	if want := min(hotMax, 8*len(sh.table.slots)); len(sh.hot) < want {
		sh.hot = make([]hotSlot, want)
	}
	v := sh.view.Load()
	if v != nil && unsafe.SliceData(v.slots) == unsafe.SliceData(sh.table.slots) &&
		unsafe.SliceData(v.chunks) == unsafe.SliceData(sh.chunks) && len(v.chunks) == len(sh.chunks) &&
		unsafe.SliceData(v.hot) == unsafe.SliceData(sh.hot) {
		return
	}
	sh.view.Store(&shardView{slots: sh.table.slots, chunks: sh.chunks, hot: sh.hot})
}

// append copies r into the arena and returns its handle. A new chunk is
// not yet in the view: publish.
func (sh *memShard) append(r []byte) (uint32, error) {
	n := pad(len(r))
	last := len(sh.chunks) - 1
	if last < 0 || sh.tail+n > len(sh.chunks[last]) {
		if len(sh.chunks) >= maxChunks {
			return 0, errShardFull
		}
		size := minChunkLen
		if last >= 0 {
			size = min(2*len(sh.chunks[last]), maxChunkLen)
		}
		for size < n && size < maxChunkLen {
			size *= 2
		}
		size = max(size, n) // a large record has a chunk of its own
		sh.chunks = append(sh.chunks[:len(sh.chunks):len(sh.chunks)], make([]byte, size))
		sh.tail = 0
	}
	c := len(sh.chunks) - 1
	copy(sh.chunks[c][sh.tail:], r)
	h := uint32(c)<<offBits | uint32(sh.tail)
	sh.tail += n
	sh.live += n
	return h, nil
}

// file files the record at h under its digest, which must not be filed.
func (sh *memShard) file(h uint32) {
	sh.publish() // the record's chunk
	d := sh.rec(h).digest()
	sh.table.insert(digestHash(d), tagged(d, h), sh.hashOf)
	sh.publish() // the table, if it grew
}

// refile points table slot i, of the record's digest, to the record at h,
// retiring the one it named.
func (sh *memShard) refile(i int, h uint32) {
	sh.publish()
	old := sh.table.slots[i] - 1
	sh.table.set(i, old&^math.MaxUint32|uint64(h))
	sh.retire(uint32(old))
}

// unfile unfiles d and retires its record.
func (sh *memShard) unfile(d Digest) {
	if i, h, ok := sh.find(d); ok {
		sh.table.remove(i)
		sh.retire(h)
	}
}

// retire counts the record at h dead.
func (sh *memShard) retire(h uint32) {
	n := pad(sh.rec(h).length())
	sh.live -= n
	sh.dead += n
}

// compact copies the filed records into new chunks when the dead ones
// outweigh them, and calls moved with each key number's new handle.
// Handles are reused: the new view has an empty hot set.
func (sh *memShard) compact(moved func(no, h uint32)) {
	if sh.dead < compactMin || sh.dead < sh.live {
		return
	}
	old := sh.chunks
	size := minTableSize
	for size < 2*(sh.table.live+1) {
		size *= 2
	}
	t := slotTable[uint64]{slots: make([]uint64, size)}
	sh.chunks, sh.tail, sh.live, sh.dead, sh.hot = nil, 0, 0, 0, nil
	for _, s := range sh.table.slots {
		if s == slotEmpty || s == tomb[uint64]() {
			continue
		}
		r := recIn(old, uint32(s-1))
		h, err := sh.append(r[:r.length()])
		if err != nil {
			panic("apikey: memory store compaction: " + err.Error()) // fewer bytes than before: cannot happen
		}
		d := r.digest()
		t.insert(digestHash(d), tagged(d, h), nil) // never grows: large enough
		moved(r.keyNo(), h)
	}
	sh.table = t
	sh.moves++
	sh.publish()
}

// loc is where a key number's record is: shard in the high 32 bits,
// handle in the low ones.
type loc uint64

const noLoc = ^loc(0)

func makeLoc(shard int, h uint32) loc { return loc(uint64(shard)<<32 | uint64(h)) }
func (l loc) shard() int              { return int(l >> 32) }
func (l loc) handle() uint32          { return uint32(l) }

// idIndex maps key IDs to key numbers.
type idIndex struct {
	seed  maphash.Seed
	table slotTable[uint32]
}

// recOf returns the record of key number no. The caller holds s.mu.
func (s *MemoryStore) recOf(no uint32) rec {
	l := s.where[no]
	return s.shards[l.shard()].rec(l.handle())
}

func (s *MemoryStore) idHash(id string) uint64 { return maphash.String(s.ids.seed, id) }

func (s *MemoryStore) idMatch(id string) func(uint32) bool {
	return func(no uint32) bool { return s.recOf(no).id() == id }
}

// findID returns the key number of the key with this ID. The caller holds
// s.mu.
func (s *MemoryStore) findID(id string) (uint32, bool) {
	i, ok := s.ids.table.find(s.idHash(id), s.idMatch(id))
	if !ok {
		return 0, false
	}
	return s.ids.table.slots[i] - 1, true
}

// addID records the key number of the key with this ID; it must not be
// present.
func (s *MemoryStore) addID(id string, no uint32) {
	s.ids.table.insert(s.idHash(id), no, func(no uint32) uint64 {
		return s.idHash(s.recOf(no).id())
	})
}

// dropID forgets the key with this ID.
func (s *MemoryStore) dropID(id string) {
	if i, ok := s.ids.table.find(s.idHash(id), s.idMatch(id)); ok {
		s.ids.table.remove(i)
	}
}
