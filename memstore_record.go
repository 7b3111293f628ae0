package apikey

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"time"
	"unsafe"
)

// A resident key is a record: bytes in a shard's arena, no pointer for the
// GC to scan. Little endian, at an 8-byte aligned offset:
//
//	 0  digest       [32]byte
//	32  length       uint32, the record's, unpadded
//	36  key number   uint32 (MemoryStore.where)
//	40  Requests     uint64
//	48  flags        uint8: environment (2 bits), Disabled, Metadata non-nil, Limits non-nil
//	49  times        uint8: which of RolledAt, ExpiresAt, RevokedAt, LastUsedAt follow
//	50  CreatedAt    a time: wall uint64, ext int64, location uint16
//	68  ID           uvarint length and bytes, as every string
//	    the times of the times byte, in that order
//	    Name, Owner, Lineage, Hint, PepperID, RolledFrom, RolledTo
//	    Scopes       uvarint count, strings
//	    Metadata     uvarint count, key and value strings, by key
//	    Limits       uvarint count, each Name, Count, Per, Burst (varints),
//	                 Period, Zone, flags (Credits, Owner)
//
// A time is its Unix seconds, its nanoseconds and the index of its
// location in the store's table (0: UTC); see zeroSeconds.
const (
	recDigest   = 0
	recLen      = 32
	recNo       = 36
	recRequests = 40
	recFlags    = 48
	recTimes    = 49
	recCreated  = 50
	recID       = recCreated + timeLen
	timeLen     = 18

	flagEnvMask  = 3
	flagDisabled = 1 << 2
	flagMetadata = 1 << 3
	flagLimits   = 1 << 4

	limitCredits = 1
	limitOwner   = 2
)

// A time is kept as its Unix seconds, its nanoseconds and the index of its
// location in the store's table (0: UTC); the zero time as zeroSeconds. A
// monotonic clock reading is not kept: it means nothing outside the
// process's run that took it, and Time.Equal ignores it.
const zeroSeconds = math.MinInt64

// zeroWord is zeroSeconds as stored.
const zeroWord = 1 << 63

// recordTimes returns RolledAt, ExpiresAt, RevokedAt and LastUsedAt: the
// optional times, in record order.
func recordTimes(k *Key) [4]*time.Time {
	return [4]*time.Time{&k.RolledAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt}
}

// encoder appends records; loc returns the index of a location in the
// store's table.
type encoder struct {
	b   []byte
	loc func(time.Time) uint16
}

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.b = binary.LittleEndian.AppendUint64(e.b, zeroWord)
		e.b = binary.LittleEndian.AppendUint64(e.b, 0)
		e.b = binary.LittleEndian.AppendUint16(e.b, 0)
		return
	}
	var l uint16
	if t.Location() != time.UTC {
		if l = e.loc(t); l == 0 { // no room for another location: as UTC
			t = t.UTC()
		}
	}
	sec := t.Unix()
	if sec == zeroSeconds {
		sec++ // the zero time's mark; a second later, still long past
	}
	e.b = binary.LittleEndian.AppendUint64(e.b, uint64(sec))
	e.b = binary.LittleEndian.AppendUint64(e.b, uint64(t.Nanosecond()))
	e.b = binary.LittleEndian.AppendUint16(e.b, l)
}

// record encodes k, filed under d as key number no, into e.b (reset).
func (e *encoder) record(d Digest, no uint32, k *Key) []byte {
	e.b = append(e.b[:0], d[:]...)
	e.b = binary.LittleEndian.AppendUint32(e.b, 0) // length, below
	e.b = binary.LittleEndian.AppendUint32(e.b, no)
	e.b = binary.LittleEndian.AppendUint64(e.b, k.Requests)
	flags := byte(k.Environment) & flagEnvMask
	if k.Disabled {
		flags |= flagDisabled
	}
	if k.Metadata != nil {
		flags |= flagMetadata
	}
	if k.Limits != nil {
		flags |= flagLimits
	}
	var present byte
	for i, t := range recordTimes(k) {
		if !t.IsZero() {
			present |= 1 << i
		}
	}
	e.b = append(e.b, flags, present)
	e.time(k.CreatedAt)
	e.str(k.ID)
	for i, t := range recordTimes(k) {
		if present&(1<<i) != 0 {
			e.time(*t)
		}
	}
	for _, s := range [...]string{k.Name, k.Owner, k.Lineage, k.Hint, k.PepperID, k.RolledFrom, k.RolledTo} {
		e.str(s)
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(k.Scopes)))
	for _, sc := range k.Scopes {
		e.str(string(sc))
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(k.Metadata)))
	for _, name := range slices.Sorted(maps.Keys(k.Metadata)) {
		e.str(name)
		e.str(k.Metadata[name])
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(k.Limits)))
	for _, l := range k.Limits {
		e.str(l.Name)
		e.b = binary.AppendVarint(e.b, l.Count)
		e.b = binary.AppendVarint(e.b, int64(l.Per))
		e.b = binary.AppendVarint(e.b, l.Burst)
		e.str(l.Period)
		e.str(l.Zone)
		var lf byte
		if l.Credits {
			lf |= limitCredits
		}
		if l.Owner {
			lf |= limitOwner
		}
		e.b = append(e.b, lf)
	}
	binary.LittleEndian.PutUint32(e.b[recLen:], uint32(len(e.b)))
	return e.b
}

// rec is a record in an arena. Its bytes never change: strings decoded
// from it are views of the arena, which the GC keeps while they live.
type rec []byte

func (r rec) digest() Digest   { return Digest(r[recDigest : recDigest+len(Digest{})]) }
func (r rec) length() int      { return int(binary.LittleEndian.Uint32(r[recLen:])) }
func (r rec) keyNo() uint32    { return binary.LittleEndian.Uint32(r[recNo:]) }
func (r rec) requests() uint64 { return binary.LittleEndian.Uint64(r[recRequests:]) }

// timeAt decodes the time at offset i.
func (r rec) timeAt(i int, locs []*time.Location) time.Time {
	sec := int64(binary.LittleEndian.Uint64(r[i:]))
	if sec == zeroSeconds {
		return time.Time{}
	}
	t := time.Unix(sec, int64(binary.LittleEndian.Uint64(r[i+8:])))
	if l := binary.LittleEndian.Uint16(r[i+16:]); l != 0 {
		return t.In(locs[l])
	}
	return t.UTC()
}

// str decodes the string at offset i and returns the next offset.
func (r rec) str(i int) (string, int) {
	n, i := r.uvarint(i)
	if n == 0 {
		return "", i
	}
	return unsafe.String(&r[i], int(n)), i + int(n)
}

func (r rec) uvarint(i int) (int, int) {
	if b := r[i]; b < 0x80 { // most lengths and counts
		return int(b), i + 1
	}
	n, w := binary.Uvarint(r[i:])
	return int(n), i + w
}

func (r rec) varint(i int) (int64, int) {
	n, w := binary.Varint(r[i:])
	return n, i + w
}

// id returns the key's ID, a view of the arena.
func (r rec) id() string {
	s, _ := r.str(recID)
	return s
}

// owner returns the key's owner, a view of the arena.
func (r rec) owner() string {
	i := recID
	_, i = r.str(i)
	i += timeLen * popcount4(r[recTimes])
	_, i = r.str(i) // Name
	s, _ := r.str(i)
	return s
}

func popcount4(b byte) int {
	return int(b&1 + b>>1&1 + b>>2&1 + b>>3&1)
}

// decode fills k, whose Scopes may have capacity to reuse, with the key.
func (r rec) decode(k *Key, locs []*time.Location) {
	flags := r[recFlags]
	present := r[recTimes]
	k.Environment = Environment(flags & flagEnvMask)
	k.Disabled = flags&flagDisabled != 0
	k.Requests = r.requests()
	k.CreatedAt = r.timeAt(recCreated, locs)
	i := recID
	k.ID, i = r.str(i)
	for j, t := range recordTimes(k) {
		if present&(1<<j) != 0 {
			*t = r.timeAt(i, locs)
			i += timeLen
		} else {
			*t = time.Time{}
		}
	}
	for _, s := range [...]*string{&k.Name, &k.Owner, &k.Lineage, &k.Hint, &k.PepperID, &k.RolledFrom, &k.RolledTo} {
		*s, i = r.str(i)
	}
	var n int
	n, i = r.uvarint(i)
	k.Scopes = k.Scopes[:0]
	if n == 0 {
		k.Scopes = nil
	} else if cap(k.Scopes) < n {
		k.Scopes = make([]Scope, 0, n)
	}
	for range n {
		var s string
		s, i = r.str(i)
		k.Scopes = append(k.Scopes, Scope(s))
	}
	n, i = r.uvarint(i)
	k.Metadata = nil
	if flags&flagMetadata != 0 {
		k.Metadata = make(map[string]string, n)
	}
	for range n {
		var name, v string
		name, i = r.str(i)
		v, i = r.str(i)
		k.Metadata[name] = v
	}
	n, i = r.uvarint(i)
	k.Limits = nil
	if flags&flagLimits != 0 {
		k.Limits = make([]Limit, n)
	}
	for j := range n {
		l := &k.Limits[j]
		l.Name, i = r.str(i)
		l.Count, i = r.varint(i)
		var per int64
		per, i = r.varint(i)
		l.Per = time.Duration(per)
		l.Burst, i = r.varint(i)
		l.Period, i = r.str(i)
		l.Zone, i = r.str(i)
		l.Credits = r[i]&limitCredits != 0
		l.Owner = r[i]&limitOwner != 0
		i++
	}
}

// newKey decodes the key into a Key of its own.
func (r rec) newKey(locs []*time.Location) *Key {
	k := new(Key)
	r.decode(k, locs)
	return k
}
