package apikey

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slotModel drives a slotTable the way the store does: the table holds
// values (here indices into keys), and finds them through the hash and
// match functions of their keys.
type slotModel struct {
	t    *testing.T
	tab  slotTable[uint32]
	keys []uint64 // value → key
	hash func(k uint64) uint64
}

func (m *slotModel) hashOf(v uint32) uint64 { return m.hash(m.keys[v]) }

func (m *slotModel) match(k uint64) func(uint32) bool {
	return func(v uint32) bool { return m.keys[v] == k }
}

func (m *slotModel) insert(k uint64) uint32 {
	v := uint32(len(m.keys))
	m.keys = append(m.keys, k)
	m.tab.insert(m.hash(k), v, m.hashOf)
	return v
}

func (m *slotModel) find(k uint64) (uint32, bool) {
	i, ok := m.tab.find(m.hash(k), m.match(k))
	if !ok {
		return 0, false
	}
	return m.tab.slots[i] - 1, true
}

func (m *slotModel) remove(k uint64) (uint32, bool) {
	i, ok := m.tab.find(m.hash(k), m.match(k))
	if !ok {
		return 0, false
	}
	return m.tab.remove(i), true
}

// check verifies the table's bookkeeping against its slots.
func (m *slotModel) check() {
	m.t.Helper()
	n := len(m.tab.slots)
	require.True(m.t, n == 0 || bits.OnesCount(uint(n)) == 1, "size %d is a power of two", n)
	live, deleted := 0, 0
	for _, s := range m.tab.slots {
		switch s {
		case slotEmpty:
		case slotDeleted:
			deleted++
		default:
			live++
		}
	}
	require.Equal(m.t, live, m.tab.live, "live count")
	require.Equal(m.t, deleted, m.tab.deleted, "tombstone count")
	require.LessOrEqual(m.t, (live+deleted)*4, n*3, "load (tombstones included) stays at most 3/4")
}

// A random sequence of inserts and removals agrees with a map, with a good
// hash and with one so poor that every probe walks long chains and wraps
// around the table.
func TestSlotTableAgreesWithMap(t *testing.T) {
	hashes := map[string]func(uint64) uint64{
		"mixed":    func(k uint64) uint64 { return k * 0x9e3779b97f4a7c15 },
		"8 values": func(k uint64) uint64 { return k % 8 },
		"constant": func(uint64) uint64 { return 1<<64 - 1 },
	}
	for name, hash := range hashes {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 9))
			m := &slotModel{t: t, hash: hash}
			ref := map[uint64]uint32{}
			var present []uint64
			ops := 20000
			if name == "constant" {
				ops = 3000 // every operation walks the whole cluster
			}
			for i := range ops {
				switch op := r.IntN(10); {
				case op < 4 && len(present) > 0: // remove a present key
					j := r.IntN(len(present))
					k := present[j]
					present[j] = present[len(present)-1]
					present = present[:len(present)-1]
					v, ok := m.remove(k)
					require.True(t, ok)
					require.Equal(t, ref[k], v)
					delete(ref, k)
				case op == 4: // remove an absent key
					_, ok := m.remove(1<<40 + uint64(i))
					require.False(t, ok)
				case op == 5 && len(present) > 0: // find a present key
					k := present[r.IntN(len(present))]
					v, ok := m.find(k)
					require.True(t, ok)
					require.Equal(t, ref[k], v)
				default:
					k := uint64(i) // distinct keys
					ref[k] = m.insert(k)
					present = append(present, k)
				}
				if i%97 == 0 {
					m.check()
				}
			}
			m.check()
			require.Equal(t, len(ref), m.tab.live)
			for k, v := range ref {
				got, ok := m.find(k)
				require.True(t, ok)
				require.Equal(t, v, got)
			}
			for i := range 1000 {
				_, ok := m.find(1<<41 + uint64(i))
				require.False(t, ok)
			}
		})
	}
}

func TestSlotTableEmpty(t *testing.T) {
	var tab slotTable[uint32]
	never := func(uint32) bool { t.Fatal("an empty table matches nothing"); return false }
	_, ok := tab.find(42, never)
	assert.False(t, ok)
	assert.Empty(t, tab.slots, "no allocation before the first insert")

	m := &slotModel{t: t, hash: func(k uint64) uint64 { return k }}
	m.insert(5)
	assert.Len(t, m.tab.slots, minTableSize)
	_, ok = m.remove(5)
	require.True(t, ok)
	_, ok = m.find(5)
	assert.False(t, ok)
	m.check()
}

// A removal leaves a tombstone that the next insert on the same probe path
// takes, without growing the table.
func TestSlotTableReusesTombstones(t *testing.T) {
	m := &slotModel{t: t, hash: func(k uint64) uint64 { return k % 4 }}
	for k := range uint64(8) { // slots 0..7: chains over 0..3 spill into 4..7
		m.insert(k)
	}
	size := len(m.tab.slots)
	k := uint64(1)
	v, _ := m.find(k)
	slot := -1
	for i, s := range m.tab.slots {
		if s == v+1 {
			slot = i
		}
	}
	require.GreaterOrEqual(t, slot, 0)

	_, ok := m.remove(k)
	require.True(t, ok)
	assert.Equal(t, uint32(slotDeleted), m.tab.slots[slot])
	assert.Equal(t, 1, m.tab.deleted)
	m.check()

	// Another key on the same probe path (hash 1) lands on the tombstone.
	nv := m.insert(9)
	assert.Equal(t, nv+1, m.tab.slots[slot], "the tombstone is reused")
	assert.Zero(t, m.tab.deleted)
	assert.Len(t, m.tab.slots, size, "no growth")
	m.check()
	for k := range uint64(10) {
		_, ok := m.find(k)
		assert.Equal(t, k != 1 && k != 8, ok, "key %d", k)
	}
}

// Inserting and removing keys for ever, with few of them live at a time,
// neither grows the table nor fills it with tombstones: a rebuild drops
// them.
func TestSlotTableChurnStaysSmall(t *testing.T) {
	m := &slotModel{t: t, hash: func(k uint64) uint64 { return k * 0x9e3779b97f4a7c15 }}
	for i := range uint64(100_000) {
		m.insert(i)
		if i >= 3 {
			_, ok := m.remove(i - 3)
			require.True(t, ok)
		}
		if i%1000 == 0 {
			m.check()
		}
	}
	m.check()
	assert.Equal(t, 3, m.tab.live)
	assert.Equal(t, minTableSize, len(m.tab.slots), "a few live values fit the smallest table")
}

// Locations keep a shard and any handle; a handle + 1 never collides with
// the markers.
func TestLocations(t *testing.T) {
	maxHandle := uint32(maxChunks-1)<<offBits | (maxChunkLen - 8)
	for _, c := range []struct {
		shard int
		h     uint32
	}{{0, 0}, {0, maxHandle}, {memShards - 1, 0}, {memShards - 1, maxHandle}, {17, 12345}} {
		l := makeLoc(c.shard, c.h)
		assert.Equal(t, c.shard, l.shard())
		assert.Equal(t, c.h, l.handle())
		stored := c.h + 1
		assert.NotEqual(t, uint32(slotEmpty), stored)
		assert.NotEqual(t, uint32(slotDeleted), stored)
	}
}

// shardModel drives a shard as the store does, with key numbers as IDs.
type shardModel struct {
	sh    memShard
	enc   encoder
	where map[uint32]uint32 // key number → handle
}

func (m *shardModel) record(d Digest, no uint32, name string) uint32 {
	h, err := m.sh.append(m.enc.record(d, no, &Key{ID: fmt.Sprint(no), Name: name}))
	if err != nil {
		panic(err)
	}
	return h
}

func (m *shardModel) compact() {
	m.sh.compact(func(no, h uint32) { m.where[no] = h })
}

// lookup finds d as Lookup does, through the published view.
func (m *shardModel) lookup(d Digest) *Key {
	v := m.sh.view.Load()
	if v == nil {
		return nil
	}
	var locs atomic.Pointer[[]*time.Location]
	locs.Store(&[]*time.Location{nil})
	k, stale := v.lookup(d, &locs)
	if stale {
		panic("the writer's own view is never stale")
	}
	return k
}

// The shard's arena and digest table agree with a reference map through a
// random sequence of inserts, changes and removals, across growth,
// tombstones, new chunks and compaction.
func TestShardTableAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	m := &shardModel{enc: encoder{loc: func(time.Time) uint16 { return 0 }}, where: map[uint32]uint32{}}
	ref := map[Digest]string{} // digest → name
	nos := map[Digest]uint32{}
	var digests []Digest
	compactions := 0
	for i := range 30000 {
		switch op := r.IntN(6); {
		case len(digests) > 0 && op == 0:
			j := r.IntN(len(digests))
			d := digests[j]
			digests[j] = digests[len(digests)-1]
			digests = digests[:len(digests)-1]
			m.sh.unfile(d)
			delete(ref, d)
			delete(m.where, nos[d])
			assert.Nil(t, m.lookup(d))
		case len(digests) > 0 && op <= 2:
			d := digests[r.IntN(len(digests))]
			slot, _, ok := m.sh.find(d)
			require.True(t, ok)
			name := fmt.Sprint("changed ", i)
			h := m.record(d, nos[d], name)
			m.sh.refile(slot, h)
			m.where[nos[d]] = h
			ref[d] = name
		default:
			d := sha256.Sum256([]byte(fmt.Sprint(i)))
			no := uint32(i)
			h := m.record(d, no, fmt.Sprint("key ", i))
			m.sh.file(h)
			m.where[no] = h
			nos[d] = no
			ref[d] = fmt.Sprint("key ", i)
			digests = append(digests, d)
		}
		before := len(m.sh.chunks)
		dead := m.sh.dead
		m.compact()
		if m.sh.dead < dead {
			compactions++
			assert.LessOrEqual(t, len(m.sh.chunks), before)
		}
	}
	assert.Positive(t, compactions)
	assert.Equal(t, len(ref), m.sh.table.live)
	for d, name := range ref {
		k := m.lookup(d)
		require.NotNil(t, k)
		assert.Equal(t, name, k.Name)
		assert.Same(t, k, m.lookup(d), "the hot set keeps the Key")
		_, h, ok := m.sh.find(d)
		require.True(t, ok)
		assert.Equal(t, m.where[nos[d]], h, "compaction reports moves")
		assert.Equal(t, d, m.sh.rec(h).digest())
	}
	for i := range 1000 {
		assert.Nil(t, m.lookup(sha256.Sum256([]byte(fmt.Sprint("absent", i)))))
	}
	m.sh.unfile(sha256.Sum256([]byte("absent"))) // unfiling an absent digest changes nothing
	assert.Equal(t, len(ref), m.sh.table.live)
	assert.LessOrEqual(t, (m.sh.table.live+m.sh.table.deleted)*4, len(m.sh.table.slots)*3, "load stays under 3/4")
	assert.LessOrEqual(t, len(m.sh.hot), hotMax)
}

// The ID index follows keys through creation, rehash and removal.
func TestIDIndexFollowsKeys(t *testing.T) {
	ctx := context.Background()
	s, err := NewMemoryStore(MemoryStoreConfig{Keys: KeyConfig{Formats: []*Format{FormatDefault}}})
	require.NoError(t, err)
	ids := map[string]Digest{}
	for range 3000 {
		k, sec, err := s.Create(ctx, KeySpec{Name: "k"})
		require.NoError(t, err)
		ids[k.ID] = s.keys.Digest(sec.Reveal())
	}
	n := 0
	for id, d := range ids {
		switch n % 3 {
		case 0:
			nd := sha256.Sum256([]byte(id))
			require.NoError(t, s.Rehash(ctx, id, nd, "p"))
			ids[id] = nd
			_, err := s.Lookup(ctx, d)
			assert.ErrorIs(t, err, ErrNotFound, "the old digest is unfiled")
		case 1:
			s.mu.Lock()
			s.removeLocked(id)
			s.mu.Unlock()
			delete(ids, id)
			_, err := s.Lookup(ctx, d)
			assert.ErrorIs(t, err, ErrNotFound)
			_, err = s.Get(ctx, id)
			assert.ErrorIs(t, err, ErrNotFound)
		}
		n++
	}
	assert.Equal(t, len(ids), s.ids.table.live)
	entries := 0
	s.mu.Lock()
	s.eachLocked(func(Digest, *Key) { entries++ })
	s.mu.Unlock()
	assert.Equal(t, len(ids), entries)
	for id, d := range ids {
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, id, got.ID)
		byDigest, err := s.Lookup(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, id, byDigest.ID)
	}
}
