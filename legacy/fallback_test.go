package legacy_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/legacy"
	"github.com/keygate/apikey/storetest"
)

// A flood of random credentials, and of credentials that merely look
// like keys of the old systems, costs no slow hash.
func TestRandomCredentialsCostNoSlowHash(t *testing.T) {
	rec, _ := cheapRecord(t, "key_a")
	var records []legacy.Record
	records = append(records, rec)
	for i, vec := range loadVectors(t) {
		if vec.Scheme != legacy.SchemeBcrypt { // keep the slow ones cheap
			records = append(records, vec.record(fmt.Sprintf("key_v%d", i)))
		}
	}
	e := newEnv(t, legacy.Config{Records: records})
	for i := range 1000 {
		cred := rand.Text()
		if i%2 == 1 {
			cred = "lg_" + cred // the common beginning of every prefix, not a whole one
		}
		_, err := e.v.Fallback(ctx, cred)
		require.True(t, isNotFound(err), "%v", err)
	}
	_, err := e.v.Fallback(ctx, "")
	assert.True(t, isNotFound(err))
	st := e.v.Stats()
	assert.Zero(t, st.Slow)
	assert.Zero(t, st.Fast)
	assert.EqualValues(t, 1001, st.Misses)
}

// A credential with a record's prefix and a wrong secret costs exactly one
// slow hash, and is refused as unknown.
func TestOneSlowVerificationPerRequest(t *testing.T) {
	rec, key := cheapRecord(t, "key_a")
	e := newEnv(t, legacy.Config{Records: []legacy.Record{rec}})
	for i := 1; i <= 5; i++ {
		_, err := e.v.Fallback(ctx, wrong(key)+fmt.Sprint(i))
		require.True(t, isNotFound(err))
		assert.EqualValues(t, i, e.v.Stats().Slow)
		assert.EqualValues(t, i, e.v.Stats().Mismatches)
	}
	// The prefix alone, with no secret after it, is not worth a hash.
	_, err := e.v.Fallback(ctx, rec.Prefix)
	assert.True(t, isNotFound(err))
	assert.EqualValues(t, 5, e.v.Stats().Slow)
}

// Beyond MaxSlowPerSecond Fallback refuses at once with ErrBusy, which is
// no ErrNotFound (the middleware answers 503); a second later it verifies
// again. Fast hashes are not bounded.
func TestMaxSlowPerSecond(t *testing.T) {
	rec, key := cheapRecord(t, "key_a")
	var fastRec legacy.Record
	for _, vec := range loadVectors(t) {
		if vec.Scheme == legacy.SchemeUnkey {
			fastRec = vec.record("key_fast")
		}
	}
	e := newEnv(t, legacy.Config{Records: []legacy.Record{rec, fastRec}, MaxSlowPerSecond: 3})
	for range 3 {
		_, err := e.v.Fallback(ctx, wrong(key))
		require.True(t, isNotFound(err))
	}
	_, err := e.v.Fallback(ctx, key)
	assert.ErrorIs(t, err, legacy.ErrBusy)
	assert.False(t, isNotFound(err))
	for range 10 {
		_, err := e.v.Fallback(ctx, wrong(fastRec.Hash))
		require.True(t, isNotFound(err), "fast hashes are not bounded: %v", err)
	}
	st := e.v.Stats()
	assert.EqualValues(t, 3, st.Slow)
	assert.EqualValues(t, 1, st.Refused)

	e.clock.Advance(time.Second / 3) // one token back
	_, err = e.v.Fallback(ctx, key)
	assert.NoError(t, err)
	assert.EqualValues(t, 4, e.v.Stats().Slow)
}

// After its first success a key is filed under this library's digest, its
// record is gone, and it costs no legacy hash again.
func TestMigration(t *testing.T) {
	rec, key := cheapRecord(t, "key_a")
	rec.Key.Owner = "ops@example.com"
	rec.Key.Metadata = map[string]string{"origin": "old"}
	other, _ := cheapRecord(t, "key_bb")
	e := newEnv(t, legacy.Config{Records: []legacy.Record{rec, other}})
	assert.Equal(t, map[string]int{legacy.SchemeBcrypt: 2}, e.v.Remaining())

	k, err := e.v.Fallback(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, "key_a", k.ID)
	assert.Equal(t, apikey.EnvLive, k.Environment, "the default environment")
	assert.Equal(t, rec.Prefix+"…"+key[len(key)-4:], k.Hint)

	stored, err := e.store.Lookup(ctx, e.keys.Digest(key))
	require.NoError(t, err)
	assert.Equal(t, "key_a", stored.ID)
	assert.Equal(t, "ops@example.com", stored.Owner)
	assert.Equal(t, map[string]string{"origin": "old"}, stored.Metadata)
	assert.Equal(t, map[string]int{legacy.SchemeBcrypt: 1}, e.v.Remaining())

	for range 3 {
		k, err = e.v.Fallback(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, "key_a", k.ID)
	}
	st := e.v.Stats()
	assert.EqualValues(t, 1, st.Slow, "only the first use costs a slow hash")
	assert.EqualValues(t, 1, st.Migrated)
	assert.EqualValues(t, 3, st.Found)
}

// A key another replica migrated is found in the shared store, and this
// replica forgets its record without hashing.
func TestMigratedByAnotherReplica(t *testing.T) {
	rec, key := cheapRecord(t, "key_a")
	e := newEnv(t, legacy.Config{Records: []legacy.Record{rec}})
	other, err := legacy.New(e.store, legacy.Config{Keys: e.keys, Records: []legacy.Record{rec}})
	require.NoError(t, err)

	_, err = other.Fallback(ctx, key)
	require.NoError(t, err)
	k, err := e.v.Fallback(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, "key_a", k.ID)
	assert.Zero(t, e.v.Stats().Slow)
	assert.Equal(t, map[string]int{legacy.SchemeBcrypt: 0}, e.v.Remaining())
}

// Two requests migrating the same key at once both succeed, on one
// replica or on two sharing a store.
func TestConcurrentMigration(t *testing.T) {
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprint(replicas, " replicas"), func(t *testing.T) {
			rec, key := cheapRecord(t, "key_a")
			// As many slow verifications at once as goroutines: this is about
			// the race to migrate, not about the bound.
			e := newEnv(t, legacy.Config{Records: []legacy.Record{rec}, MaxSlowAtOnce: 8})
			vs := []*legacy.Verifier{e.v}
			if replicas == 2 {
				v2, err := legacy.New(e.store, legacy.Config{Keys: e.keys, Records: []legacy.Record{rec}, MaxSlowAtOnce: 8})
				require.NoError(t, err)
				vs = append(vs, v2)
			}
			for range 20 {
				var wg sync.WaitGroup
				errs := make([]error, 8)
				for i := range errs {
					wg.Go(func() {
						k, err := vs[i%len(vs)].Fallback(ctx, key)
						if err == nil && k.ID != "key_a" {
							err = fmt.Errorf("got key %s", k.ID)
						}
						errs[i] = err
					})
				}
				wg.Wait()
				require.NoError(t, errors.Join(errs...))
			}
			assert.LessOrEqual(t, e.v.Stats().Migrated, uint64(1))
		})
	}
}

// A store that fails is a 503, not a 401, and the record stays.
func TestStoreFailure(t *testing.T) {
	rec, key := cheapRecord(t, "key_a")
	e := newEnv(t, legacy.Config{Records: []legacy.Record{rec}})
	failing := &failingStore{Adder: e.store}
	v, err := legacy.New(failing, legacy.Config{Keys: e.keys, Records: []legacy.Record{rec}})
	require.NoError(t, err)

	failing.lookup = errors.New("database down")
	_, err = v.Fallback(ctx, key)
	assert.Error(t, err)
	assert.False(t, isNotFound(err))

	failing.lookup, failing.add = nil, errors.New("database down")
	_, err = v.Fallback(ctx, key)
	assert.Error(t, err)
	assert.False(t, isNotFound(err))
	assert.NotContains(t, err.Error(), key)
	assert.Equal(t, map[string]int{legacy.SchemeBcrypt: 1}, v.Remaining())

	failing.add = nil
	_, err = v.Fallback(ctx, key)
	assert.NoError(t, err)
}

type failingStore struct {
	legacy.Adder
	lookup, add error
}

func (s *failingStore) Lookup(c context.Context, d apikey.Digest) (*apikey.Key, error) {
	if s.lookup != nil {
		return nil, s.lookup
	}
	return s.Adder.Lookup(c, d)
}

func (s *failingStore) Add(c context.Context, d apikey.Digest, k *apikey.Key) error {
	if s.add != nil {
		return s.add
	}
	return s.Adder.Add(c, d, k)
}

// Revoked records are not loaded: their keys are unknown, at no hash.
func TestRevokedRecord(t *testing.T) {
	rec, key := cheapRecord(t, "key_a")
	rec.Key.RevokedAt = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, legacy.Config{Records: []legacy.Record{rec}})
	assert.Equal(t, map[string]int{legacy.SchemeBcrypt: 0}, e.v.Remaining())
	_, err := e.v.Fallback(ctx, key)
	assert.True(t, isNotFound(err))
	assert.Zero(t, e.v.Stats().Slow)
}

// Beyond MaxSlowAtOnce slow verifications running together, Fallback
// refuses at once with ErrBusy: an Argon2id verification holds its memory
// while it runs, so the rate alone does not bound memory.
func TestMaxSlowAtOnce(t *testing.T) {
	key := "lg_slow_" + strings.Repeat("7", 24)
	hash, err := bcrypt.GenerateFromPassword([]byte(key), 10) // tens of milliseconds
	require.NoError(t, err)
	rec := legacy.Record{Key: keyOf("key_slow"), Prefix: "lg_slow_", Hash: string(hash), Scheme: legacy.SchemeBcrypt}
	e := newEnv(t, legacy.Config{Records: []legacy.Record{rec}, MaxSlowPerSecond: 1000, MaxSlowAtOnce: 1})
	const n = 8
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			_, err := e.v.Fallback(ctx, wrong(key))
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	busy := 0
	for err := range errs {
		if errors.Is(err, legacy.ErrBusy) {
			busy++
		} else {
			assert.True(t, isNotFound(err), "a wrong key: %v", err)
		}
	}
	st := e.v.Stats()
	assert.Positive(t, busy, "some were refused while one was hashing")
	assert.EqualValues(t, n-busy, st.Slow)
	assert.EqualValues(t, busy, st.Refused)
	_, err = legacy.New(e.store, legacy.Config{Keys: e.keys, MaxSlowAtOnce: -1})
	assert.ErrorIs(t, err, apikey.ErrInvalid)
}

// After a pepper rotation a migrated key still works: found under the old
// pepper, with no legacy hash and no new migration, and filed again under
// the current one, so the next request finds it at once.
func TestPepperRotation(t *testing.T) {
	rec, key := cheapRecord(t, "key_a")
	clock := storetest.NewClock(storetest.Epoch)
	p1, err := apikey.NewPepper("p1", []byte(strings.Repeat("1", 32)))
	require.NoError(t, err)
	p2, err := apikey.NewPepper("p2", []byte(strings.Repeat("2", 32)))
	require.NoError(t, err)
	keys := newKeys(clock)
	keys.Peppers = []apikey.Pepper{p1}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(t, err)
	v, err := legacy.New(store, legacy.Config{Keys: keys, Records: []legacy.Record{rec}})
	require.NoError(t, err)
	_, err = v.Fallback(ctx, key)
	require.NoError(t, err, "migrated under p1")

	// A restart with p2 current, the records loaded again.
	rotated := keys
	rotated.Peppers = []apikey.Pepper{p2, p1}
	v2, err := legacy.New(store, legacy.Config{Keys: rotated, Records: []legacy.Record{rec}})
	require.NoError(t, err)
	k, err := v2.Fallback(ctx, key)
	require.NoError(t, err, "found under the old pepper")
	assert.Equal(t, "key_a", k.ID)
	assert.Zero(t, v2.Stats().Slow, "no legacy hash")
	assert.Zero(t, v2.Stats().Migrated)
	found, err := store.Lookup(ctx, rotated.Digest(key))
	require.NoError(t, err, "filed again under p2")
	assert.Equal(t, "p2", found.PepperID)
	assert.Equal(t, map[string]int{legacy.SchemeBcrypt: 0}, v2.Remaining())
}
