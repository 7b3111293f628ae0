package legacy_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey/legacy"
)

// BenchmarkVerify is the cost of one Fallback call. <scheme>/<vector>: the
// right key verified by the scheme, at the vector's own parameters (a store
// lookup, the record found, its hash checked; the store then refuses to
// file it, so that every call verifies).
// "migrated": a key already migrated, the normal path. "miss": a
// credential no record matches.
func BenchmarkVerify(b *testing.B) {
	for _, vec := range loadVectors(b) {
		b.Run(vec.Scheme+"/"+vec.Name, func(b *testing.B) {
			e := newEnv(b, legacy.Config{})
			store := &failingStore{Adder: e.store, add: errors.New("not filed")}
			v, err := legacy.New(store, legacy.Config{Keys: e.keys, Records: []legacy.Record{vec.record("key_b")}, MaxSlowPerSecond: 1 << 30})
			require.NoError(b, err)
			for b.Loop() {
				if _, err := v.Fallback(ctx, vec.Key); !errors.Is(err, store.add) {
					b.Fatal(err)
				}
			}
			if st := v.Stats(); st.Slow+st.Fast == 0 || st.Mismatches > 0 {
				b.Fatalf("the key was not verified: %+v", st)
			}
		})
	}
	rec, key := cheapRecord(b, "key_m")
	b.Run("migrated", func(b *testing.B) {
		e := newEnv(b, legacy.Config{Records: []legacy.Record{rec}})
		_, err := e.v.Fallback(ctx, key)
		require.NoError(b, err)
		for b.Loop() {
			if _, err := e.v.Fallback(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		e := newEnv(b, legacy.Config{Records: []legacy.Record{rec}})
		for b.Loop() {
			_, _ = e.v.Fallback(ctx, "lg_nobody_0123456789abcdefghij")
		}
	})
}
