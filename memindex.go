package apikey

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"sync"
)

// The memory store's index: where each key lives and how it is found by
// digest and by ID, in about 60 bytes per key beside the Key itself.
//
// Keys live in per-shard slabs of {digest, *Key} entries. Each shard has an
// open-addressing table (linear probing) of 4-byte slab positions, keyed by
// the digest; one store-wide table of 4-byte locations (shard and
// position) is keyed by the key ID. Go maps would hold the same data in 40-
// and 48-byte slots at their load factor, about three times the space.
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
	maxPos       = 1<<posBits - 3 // stored +1, a location never reaches slotDeleted
)

// memShards is the number of independently locked digest tables. Lookups of
// different keys rarely share a lock, so readers on many cores do not
// contend on one cache line.
const memShards = 1 << shardBits

type memShard struct {
	mu      sync.RWMutex
	entries []memEntry // the slab; a free entry has a nil key
	free    []uint32   // free slab positions
	table   []uint32   // slab position + 1, slotEmpty or slotDeleted
	live    int        // occupied table slots
	deleted int        // slotDeleted table slots
}

type memEntry struct {
	digest Digest
	key    *Key
}

// loc is a key's place in the store: shard in the high bits, slab position
// in the low ones.
type loc uint32

func makeLoc(shard int, pos uint32) loc { return loc(uint32(shard)<<posBits | pos) }
func (l loc) shard() int                { return int(uint32(l) >> posBits) }
func (l loc) pos() uint32               { return uint32(l) & (1<<posBits - 1) }

// idIndex maps key IDs to locations.
type idIndex struct {
	seed    maphash.Seed
	table   []uint32 // loc + 1, slotEmpty or slotDeleted
	live    int
	deleted int
}

func digestHash(d Digest) uint64 { return binary.LittleEndian.Uint64(d[8:16]) }

// needsGrowth reports whether one more slot would push the table past 3/4
// full, counting tombstones.
func needsGrowth(size, live, deleted int) bool { return (live+deleted+1)*4 > size*3 }

// newTableSize is the size of a rebuilt table for n live slots: at most
// half full afterwards.
func newTableSize(n int) int {
	size := minTableSize
	for size < 2*(n+1) {
		size *= 2
	}
	return size
}

// find returns the slab position of d.
func (sh *memShard) find(d Digest) (uint32, bool) {
	if len(sh.table) == 0 {
		return 0, false
	}
	mask := uint64(len(sh.table) - 1)
	for i := digestHash(d) & mask; ; i = (i + 1) & mask {
		switch v := sh.table[i]; v {
		case slotEmpty:
			return 0, false
		case slotDeleted:
		default:
			if sh.entries[v-1].digest == d {
				return v - 1, true
			}
		}
	}
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
	if needsGrowth(len(sh.table), sh.live, sh.deleted) {
		sh.rebuild(newTableSize(sh.live + 1))
	}
	mask := uint64(len(sh.table) - 1)
	for i := digestHash(d) & mask; ; i = (i + 1) & mask {
		if v := sh.table[i]; v == slotEmpty || v == slotDeleted {
			if v == slotDeleted {
				sh.deleted--
			}
			sh.table[i] = pos + 1
			sh.live++
			return pos, true
		}
	}
}

// remove unfiles d. The caller holds the shard's write lock.
func (sh *memShard) remove(d Digest) {
	if len(sh.table) == 0 {
		return
	}
	mask := uint64(len(sh.table) - 1)
	for i := digestHash(d) & mask; ; i = (i + 1) & mask {
		switch v := sh.table[i]; v {
		case slotEmpty:
			return
		case slotDeleted:
		default:
			if sh.entries[v-1].digest == d {
				sh.table[i] = slotDeleted
				sh.live--
				sh.deleted++
				sh.entries[v-1] = memEntry{}
				sh.free = append(sh.free, v-1)
				return
			}
		}
	}
}

// rebuild rehashes the live slots into a table of the given size.
func (sh *memShard) rebuild(size int) {
	table := make([]uint32, size)
	mask := uint64(size - 1)
	for _, v := range sh.table {
		if v == slotEmpty || v == slotDeleted {
			continue
		}
		i := digestHash(sh.entries[v-1].digest) & mask
		for table[i] != slotEmpty {
			i = (i + 1) & mask
		}
		table[i] = v
	}
	sh.table, sh.deleted = table, 0
}

func (s *MemoryStore) entry(l loc) *memEntry {
	return &s.shards[l.shard()].entries[l.pos()]
}

// findID returns the table slot and location of the key with this ID. The
// caller holds s.mu.
func (s *MemoryStore) findID(id string) (slot int, l loc, ok bool) {
	ix := &s.ids
	if len(ix.table) == 0 {
		return 0, 0, false
	}
	mask := uint64(len(ix.table) - 1)
	for i := maphash.String(ix.seed, id) & mask; ; i = (i + 1) & mask {
		switch v := ix.table[i]; v {
		case slotEmpty:
			return 0, 0, false
		case slotDeleted:
		default:
			if s.entry(loc(v-1)).key.ID == id {
				return int(i), loc(v - 1), true
			}
		}
	}
}

// addID records where the key with this ID lives; it must not be present.
func (s *MemoryStore) addID(id string, l loc) {
	ix := &s.ids
	if needsGrowth(len(ix.table), ix.live, ix.deleted) {
		table := make([]uint32, newTableSize(ix.live+1))
		mask := uint64(len(table) - 1)
		for _, v := range ix.table {
			if v == slotEmpty || v == slotDeleted {
				continue
			}
			i := maphash.String(ix.seed, s.entry(loc(v-1)).key.ID) & mask
			for table[i] != slotEmpty {
				i = (i + 1) & mask
			}
			table[i] = v
		}
		ix.table, ix.deleted = table, 0
	}
	mask := uint64(len(ix.table) - 1)
	for i := maphash.String(ix.seed, id) & mask; ; i = (i + 1) & mask {
		if v := ix.table[i]; v == slotEmpty || v == slotDeleted {
			if v == slotDeleted {
				ix.deleted--
			}
			ix.table[i] = uint32(l) + 1
			ix.live++
			return
		}
	}
}

// dropID forgets the ID's table slot.
func (s *MemoryStore) dropID(slot int) {
	s.ids.table[slot] = slotDeleted
	s.ids.live--
	s.ids.deleted++
}
