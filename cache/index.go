package cache

import (
	"hash/maphash"
	"sync"

	"github.com/keygate/apikey"
)

// keyIndex maps a key ID to the digests its found entries are cached
// under, so that InvalidateKey costs O(1) rather than a scan. A key has one
// digest, or briefly two after a pepper rehash (the old one until it
// expires). Lock order: a shard's lock, then an index shard's lock.
type keyIndex struct {
	seed   maphash.Seed
	shards [numShards]indexShard
}

type indexShard struct {
	mu sync.Mutex
	m  map[string][]apikey.Digest
	_  [64]byte
}

func newKeyIndex() *keyIndex {
	x := &keyIndex{seed: maphash.MakeSeed()}
	for i := range x.shards {
		x.shards[i].m = make(map[string][]apikey.Digest)
	}
	return x
}

func (x *keyIndex) shard(id string) *indexShard {
	return &x.shards[maphash.String(x.seed, id)%numShards]
}

// add files d under id if ok, called under the index shard's lock, says
// so; it reports ok's answer.
func (x *keyIndex) add(id string, d apikey.Digest, ok func() bool) bool {
	s := x.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok() {
		return false
	}
	ds := s.m[id]
	for _, have := range ds {
		if have == d {
			return true
		}
	}
	s.m[id] = append(ds, d)
	return true
}

// remove unfiles d from id.
func (x *keyIndex) remove(id string, d apikey.Digest) {
	s := x.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := s.m[id]
	for i, have := range ds {
		if have == d {
			last := len(ds) - 1
			ds[i] = ds[last]
			ds = ds[:last]
			break
		}
	}
	if len(ds) == 0 {
		delete(s.m, id)
	} else {
		s.m[id] = ds
	}
}

// digests appends the digests filed under id to buf.
func (x *keyIndex) digests(id string, buf []apikey.Digest) []apikey.Digest {
	s := x.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(buf, s.m[id]...)
}
