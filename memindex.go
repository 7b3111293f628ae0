package apikey

import (
	"encoding/binary"
	"hash/maphash"
	"iter"
	"math"
	"sync"
)

// The memory store's index: where each key lives and how it is found by
// digest and by ID, in about 60 bytes per key beside the Key itself.
//
// Keys live in per-shard slabs of {digest, *Key} entries. Each shard has an
// open-addressing table of 4-byte slab positions, keyed by the digest; one
// store-wide table of 4-byte locations (shard and position) is keyed by the
// key ID. Go maps would hold the same data in 40- and 48-byte slots at
// their load factor, about three times the space. Both tables are a
// slotTable, with one probe loop.
//
// Locking: every change holds the store's mutex, and also the shard's write
// lock for what lookups read (slab, digest table). Lookups hold only the
// shard's read lock. Management code holding the store's mutex may read
// any shard without its lock: nobody else changes it meanwhile.

const (
	slotEmpty    = 0
	slotDeleted  = math.MaxUint32
	minTableSize = 16
	shardBits    = 6 // memShards == 1<<shardBits
	posBits      = 32 - shardBits
	maxPos       = 1<<posBits - 3 // stored +1, a value never reaches slotDeleted
)

// slotTable is an open-addressing hash table with linear probing. Each slot
// holds a value + 1, slotEmpty or slotDeleted; the values (slab positions,
// locations) are looked up through a match function, since the table does
// not hold the keys themselves.
type slotTable struct {
	slots   []uint32
	live    int // occupied slots
	deleted int // slotDeleted slots
}

// probe is the one probe loop: it yields the slots on hash h's path, each
// with its value (slotEmpty and slotDeleted as they are, a value as value +
// 1), and ends after the first empty slot. The table always has one: it is
// kept at most 3/4 full, tombstones included. The compiler inlines it into
// each caller, so the lookup path makes no indirect call.
func (t *slotTable) probe(h uint64) iter.Seq2[int, uint32] {
	return func(yield func(int, uint32) bool) {
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
func (t *slotTable) find(h uint64, match func(v uint32) bool) (int, bool) {
	if t.live == 0 {
		return 0, false
	}
	for i, s := range t.probe(h) {
		if s == slotEmpty {
			break
		}
		if s != slotDeleted && match(s-1) {
			return i, true
		}
	}
	return 0, false
}

// insert adds v, which must not be present, growing the table (hash
// returns the hash of a present value) to stay at most 3/4 full.
func (t *slotTable) insert(h uint64, v uint32, hash func(v uint32) uint64) {
	if (t.live+t.deleted+1)*4 > len(t.slots)*3 {
		t.rebuild(hash)
	}
	for i, s := range t.probe(h) {
		if s == slotEmpty || s == slotDeleted {
			if s == slotDeleted {
				t.deleted--
			}
			t.slots[i] = v + 1
			t.live++
			return
		}
	}
}

// remove deletes the value at slot i.
func (t *slotTable) remove(i int) uint32 {
	v := t.slots[i] - 1
	t.slots[i] = slotDeleted
	t.live--
	t.deleted++
	return v
}

// rebuild rehashes the live values into a table at most half full after
// one more insert, dropping the tombstones.
func (t *slotTable) rebuild(hash func(v uint32) uint64) {
	size := minTableSize
	for size < 2*(t.live+1) {
		size *= 2
	}
	old := t.slots
	t.slots, t.live, t.deleted = make([]uint32, size), 0, 0
	for _, s := range old {
		if s != slotEmpty && s != slotDeleted {
			t.insert(hash(s-1), s-1, nil) // never grows: the new table is large enough
		}
	}
}

// memShards is the number of independently locked digest tables. Lookups of
// different keys rarely share a lock, so readers on many cores do not
// contend on one cache line.
const memShards = 1 << shardBits

type memShard struct {
	mu      sync.RWMutex
	entries []memEntry // the slab; a free entry has a nil key
	free    []uint32   // free slab positions
	table   slotTable  // digest → slab position
}

type memEntry struct {
	digest Digest
	key    *Key
}

func digestHash(d Digest) uint64 { return binary.LittleEndian.Uint64(d[8:16]) }

// find returns the slab position of d. It is the lookup path, so it walks
// the probe itself rather than through slotTable.find's match function,
// which the compiler would call indirectly.
func (sh *memShard) find(d Digest) (uint32, bool) {
	if sh.table.live == 0 {
		return 0, false
	}
	for _, s := range sh.table.probe(digestHash(d)) {
		if s == slotEmpty {
			break
		}
		if s != slotDeleted && sh.entries[s-1].digest == d {
			return s - 1, true
		}
	}
	return 0, false
}

// lookup returns the key filed under d, or nil.
func (sh *memShard) lookup(d Digest) *Key {
	if pos, ok := sh.find(d); ok {
		return sh.entries[pos].key
	}
	return nil
}

// insert files k under d, which must not be present, and returns its slab
// position. The caller holds the shard's write lock.
func (sh *memShard) insert(d Digest, k *Key) (uint32, bool) {
	var pos uint32
	if n := len(sh.free); n > 0 {
		pos = sh.free[n-1]
		sh.free = sh.free[:n-1]
		sh.entries[pos] = memEntry{digest: d, key: k}
	} else {
		if len(sh.entries) > maxPos {
			return 0, false
		}
		pos = uint32(len(sh.entries))
		sh.entries = append(sh.entries, memEntry{digest: d, key: k})
	}
	sh.table.insert(digestHash(d), pos, func(p uint32) uint64 { return digestHash(sh.entries[p].digest) })
	return pos, true
}

// remove unfiles d. The caller holds the shard's write lock.
func (sh *memShard) remove(d Digest) {
	if i, ok := sh.table.find(digestHash(d), func(pos uint32) bool { return sh.entries[pos].digest == d }); ok {
		pos := sh.table.remove(i) // the slot, not the position: find returns slots
		sh.entries[pos] = memEntry{}
		sh.free = append(sh.free, pos)
	}
}

// loc is a key's place in the store: shard in the high bits, slab position
// in the low ones.
type loc uint32

func makeLoc(shard int, pos uint32) loc { return loc(uint32(shard)<<posBits | pos) }
func (l loc) shard() int                { return int(uint32(l) >> posBits) }
func (l loc) pos() uint32               { return uint32(l) & (1<<posBits - 1) }

// idIndex maps key IDs to locations.
type idIndex struct {
	seed  maphash.Seed
	table slotTable
}

func (s *MemoryStore) entry(l loc) *memEntry {
	return &s.shards[l.shard()].entries[l.pos()]
}

func (s *MemoryStore) idHash(id string) uint64 { return maphash.String(s.ids.seed, id) }

func (s *MemoryStore) idMatch(id string) func(uint32) bool {
	return func(v uint32) bool { return s.entry(loc(v)).key.ID == id }
}

// findID returns the location of the key with this ID. The caller holds
// s.mu.
func (s *MemoryStore) findID(id string) (loc, bool) {
	i, ok := s.ids.table.find(s.idHash(id), s.idMatch(id))
	if !ok {
		return 0, false
	}
	return loc(s.ids.table.slots[i] - 1), true
}

// addID records where the key with this ID lives; it must not be present.
func (s *MemoryStore) addID(id string, l loc) {
	s.ids.table.insert(s.idHash(id), uint32(l), func(v uint32) uint64 {
		return s.idHash(s.entry(loc(v)).key.ID)
	})
}

// dropID forgets the key with this ID.
func (s *MemoryStore) dropID(id string) {
	if i, ok := s.ids.table.find(s.idHash(id), s.idMatch(id)); ok {
		s.ids.table.remove(i)
	}
}
