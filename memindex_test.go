package apikey

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shard table agrees with a reference map through a random sequence of
// inserts and removals, across growth, tombstones and slab reuse.
func TestShardTableAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	var sh memShard
	ref := map[Digest]*Key{}
	var digests []Digest
	for i := 0; i < 20000; i++ {
		switch {
		case len(digests) > 0 && r.IntN(3) == 0:
			j := r.IntN(len(digests))
			d := digests[j]
			digests[j] = digests[len(digests)-1]
			digests = digests[:len(digests)-1]
			sh.remove(d)
			delete(ref, d)
		default:
			d := sha256.Sum256([]byte(fmt.Sprint(i)))
			k := &Key{ID: fmt.Sprint(i)}
			_, ok := sh.insert(d, k)
			require.True(t, ok)
			ref[d] = k
			digests = append(digests, d)
		}
	}
	assert.Equal(t, len(ref), sh.live)
	for d, k := range ref {
		assert.Same(t, k, sh.lookup(d))
	}
	for i := 0; i < 1000; i++ {
		assert.Nil(t, sh.lookup(sha256.Sum256([]byte(fmt.Sprint("absent", i)))))
	}
	assert.LessOrEqual(t, (sh.live+sh.deleted)*4, len(sh.table)*3, "load stays under 3/4")
	assert.LessOrEqual(t, len(sh.entries), len(ref)+len(sh.free), "freed slab entries are reused")
}

// The ID index follows keys through creation, rehash and removal.
func TestIDIndexFollowsKeys(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(StoreConfig{})
	ids := map[string]Digest{}
	for i := 0; i < 3000; i++ {
		k, sec, err := s.Create(ctx, KeySpec{Name: "k"})
		require.NoError(t, err)
		ids[k.ID] = s.cfg.Hasher.Digest(sec.Reveal())
	}
	n := 0
	s.mu.Lock()
	for id, d := range ids {
		if n%3 == 0 {
			nd := sha256.Sum256([]byte(id))
			s.mu.Unlock()
			require.NoError(t, s.Rehash(ctx, id, nd, "p"))
			s.mu.Lock()
			ids[id] = nd
		} else if n%3 == 1 {
			s.removeLocked(id)
			delete(ids, id)
			_, err := s.Lookup(ctx, d)
			assert.ErrorIs(t, err, ErrNotFound)
		}
		n++
	}
	s.mu.Unlock()
	assert.Equal(t, len(ids), s.Len())
	for id, d := range ids {
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, id, got.ID)
		byDigest, err := s.Lookup(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, id, byDigest.ID)
	}
}
