// Package keyfill fills a MemoryStore with many keys quickly, for the load
// server and the lookup benchmarks.
//
// MemoryStore.Create makes each key properly (a random secret, a UUIDv7
// ID, a digest), about 4.5 µs a key on the benchmark machine; a million
// keys take several seconds. Fill files records of the same shape with
// MemoryStore.Add instead: a pseudo-random digest (no plaintext hashes to
// it, which a lookup cannot tell), an ID of the same length as a real one,
// a hint string of its own, the given name and scopes, the creation time.
// The store holds the same number of strings and slices per key as after
// Create, so its memory per key is comparable.
package keyfill

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/keygate/apikey"
)

// Spec is the shape of the filled keys.
type Spec struct {
	Name   string
	Scopes []apikey.Scope
	// Seed makes the digests; the same seed gives the same digests.
	Seed uint64
}

// Fill adds n keys to s, as Spec says, and returns their digests. The IDs
// ("key_00000000000000000000000001", ...) sort before those Create makes
// (UUIDv7, "key_01..."), and in the order they are added, so that every
// insertion appends to the store's ordered index.
func Fill(ctx context.Context, s *apikey.MemoryStore, n int, spec Spec) ([]apikey.Digest, error) {
	rng := rand.New(rand.NewChaCha8(seed(spec.Seed)))
	digests := make([]apikey.Digest, 0, n)
	created := time.Now()
	for i := 0; i < n; i++ {
		var d apikey.Digest
		for j := 0; j < len(d); j += 8 {
			binary.LittleEndian.PutUint64(d[j:], rng.Uint64())
		}
		k := &apikey.Key{
			ID:          fmt.Sprintf("key_%026d", i+1),
			Name:        spec.Name,
			Environment: apikey.EnvLive,
			Scopes:      spec.Scopes,
			Hint:        "kg_live_…" + strconv.FormatUint(uint64(10000+i%10000), 10)[1:],
			CreatedAt:   created,
		}
		if err := s.Add(ctx, d, k); err != nil {
			return nil, fmt.Errorf("keyfill: key %d of %d: %w", i+1, n, err)
		}
		digests = append(digests, d)
	}
	return digests, nil
}

func seed(v uint64) [32]byte {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], v)
	copy(b[8:], "keygate/apikey/bench/keyfill")
	return b
}
