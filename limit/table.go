package limit

// table is a shard's state: an open-addressing hash table of 24-byte
// slots, probed linearly from the key's first word, which is already a
// hash. A Go map would hash the 16-byte key again on every access, and a
// read-modify-write would cost it two probes; here it is one short walk,
// under the shard's lock.
type table struct {
	slots []slot
	used  int // slots not empty: live entries and tombstones
	live  int
}

type slot struct {
	k stateKey
	v packed
}

// An empty slot, and a deleted one. Neither is a value an entry packs
// to: a counter's has its top bit set, and a rate's until of 0 or 1 ns
// after 1970 is in the past, so it is dropped instead of stored.
const (
	empty packed = 0
	tomb  packed = 1
)

// minSlots is a table's smallest size once it holds anything.
const minSlots = 16

// get returns k's value, or empty.
func (t *table) get(k stateKey) packed {
	if len(t.slots) == 0 {
		return empty
	}
	mask := uint64(len(t.slots) - 1)
	for i := k.a & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.v == empty {
			return empty
		}
		if s.v != tomb && s.k == k {
			return s.v
		}
	}
}

// set stores v under k; empty deletes k. The table is kept at most 3/4
// full, tombstones included, so a walk always ends.
func (t *table) set(k stateKey, v packed) {
	if len(t.slots) == 0 {
		if v == empty {
			return
		}
		t.slots = make([]slot, minSlots)
	}
	mask := uint64(len(t.slots) - 1)
	var free *slot // the first tombstone on the way
	for i := k.a & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		switch {
		case s.v == empty:
			if v == empty {
				return
			}
			if free == nil {
				free = s
				t.used++
			}
			free.k, free.v = k, v
			t.live++
			if 4*t.used > 3*len(t.slots) {
				t.rehash()
			}
			return
		case s.v == tomb:
			if free == nil {
				free = s
			}
		case s.k == k:
			if v == empty {
				s.v = tomb
				t.live--
			} else {
				s.v = v
			}
			return
		}
	}
}

// sweep deletes the entries worth nothing at t (see entry.until) and
// rebuilds the table when tombstones or empty room dominate.
func (t *table) sweep(now int64) {
	for i := range t.slots {
		s := &t.slots[i]
		if s.v != empty && s.v != tomb && s.v.entry().until <= now {
			s.v = tomb
			t.live--
		}
	}
	if t.used > 2*t.live || len(t.slots) > minSlots && 8*t.live < len(t.slots) {
		t.rehash()
	}
}

// rehash moves the live entries to a table half full at most, dropping
// the tombstones.
func (t *table) rehash() {
	n := minSlots
	for n < 2*t.live {
		n *= 2
	}
	if t.live == 0 {
		*t = table{}
		return
	}
	old := t.slots
	*t = table{slots: make([]slot, n)}
	mask := uint64(n - 1)
	for _, s := range old {
		if s.v == empty || s.v == tomb {
			continue
		}
		i := s.k.a & mask
		for t.slots[i].v != empty {
			i = (i + 1) & mask
		}
		t.slots[i] = s
		t.used++
		t.live++
	}
}
