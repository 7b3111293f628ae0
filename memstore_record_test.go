package apikey

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestMemoryStore(t *testing.T) *MemoryStore {
	t.Helper()
	s, err := NewMemoryStore(MemoryStoreConfig{Keys: KeyConfig{Formats: []*Format{FormatDefault}}})
	require.NoError(t, err)
	return s
}

// A key reads back from its record exactly as it was filed: every field,
// times == for == (monotonic reading, location), nil and empty maps and
// slices as they were (but empty scopes, which read back nil).
func TestRecordRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newTestMemoryStore(t)
	zone := time.FixedZone("X", 3*3600)
	now := time.Now() // monotonic, Local
	keys := []*Key{
		{ID: "a", Environment: EnvLive, CreatedAt: now},
		{
			ID: "b", Name: "Ünïcode name", Environment: EnvTest, Disabled: true,
			Scopes: []Scope{"read", "write", "admin:all"}, Owner: "acct_1",
			Metadata: map[string]string{"z": "1", "a": "", "é": "ü"},
			Limits: []Limit{
				{Name: "rps", Count: 10, Per: time.Second, Burst: 20},
				{Name: "month", Count: -1, Period: "month", Zone: "Europe/Paris", Credits: true, Owner: true},
			},
			Lineage: "key_x", Hint: "kg_test_…abcd", PepperID: "p1", RolledFrom: "key_y", RolledTo: "key_z",
			RolledAt: now.In(zone), CreatedAt: now.UTC(), ExpiresAt: now.Add(time.Hour).Round(0),
			RevokedAt: time.Date(2030, 1, 2, 3, 4, 5, 6, zone), LastUsedAt: time.Unix(0, 0), Requests: 1 << 60,
		},
		{ID: "c", Environment: EnvLive, Scopes: []Scope{"read"}, Metadata: map[string]string{}, Limits: []Limit{}, CreatedAt: time.Time{}.In(zone)},
	}
	for i, k := range keys {
		d := sha256.Sum256([]byte(k.ID))
		require.NoError(t, s.Add(ctx, d, k))
		// A time comes back with its instant and location; without its
		// monotonic reading, and a zero time as time.Time{}.
		want := k.Clone()
		for _, tm := range []*time.Time{&want.CreatedAt, &want.RolledAt, &want.ExpiresAt, &want.RevokedAt, &want.LastUsedAt} {
			if tm.IsZero() {
				*tm = time.Time{}
			}
			*tm = tm.Round(0)
		}
		got, err := s.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, want, got, "key %d", i)
		for _, tm := range [][2]time.Time{{k.CreatedAt, got.CreatedAt}, {k.RolledAt, got.RolledAt}, {k.RevokedAt, got.RevokedAt}} {
			assert.True(t, tm[0].Equal(tm[1]) && tm[0].Location() == tm[1].Location() || tm[0].IsZero(), "%v == %v", tm[0], tm[1])
		}
		found, err := s.Lookup(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, want, found)
	}
}

// A key looked up again costs no allocation.
func TestMemoryStoreLookupHotAllocs(t *testing.T) {
	ctx := context.Background()
	s := newTestMemoryStore(t)
	d := sha256.Sum256([]byte("hot"))
	require.NoError(t, s.Add(ctx, d, &Key{ID: "hot", Environment: EnvLive, Scopes: []Scope{"read", "write"}}))
	first, err := s.Lookup(ctx, d)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		k, err := s.Lookup(ctx, d)
		if err != nil || k != first {
			t.Fatal("not the same key")
		}
	})
	assert.Zero(t, allocs)
}

// A small store's keys all stay decoded: after one pass over 3,000 keys,
// looking them all up again allocates nothing (the hot set holds up to
// 1,024 a shard, 64k in all).
func TestMemoryStoreSmallStoreStaysHot(t *testing.T) {
	ctx := context.Background()
	s := newTestMemoryStore(t)
	digests := addNumberedKeys(t, s, 3000, func(i int) *Key {
		return &Key{ID: fmt.Sprint("key_", i), Environment: EnvLive, Scopes: []Scope{"read"}}
	})
	pass := func() {
		for _, d := range digests {
			if _, err := s.Lookup(ctx, d); err != nil {
				panic(err)
			}
		}
	}
	pass()
	assert.Zero(t, testing.AllocsPerRun(5, pass))
}

// A change is seen by the next Lookup: the hot set never answers with a
// stale key, also across compactions.
func TestMemoryStoreChangesAndCompaction(t *testing.T) {
	ctx := context.Background()
	s := newTestMemoryStore(t)
	const n = 300
	digests := addNumberedKeys(t, s, n, func(i int) *Key {
		return &Key{ID: fmt.Sprint("key_", i), Owner: fmt.Sprint("o", i%3), Environment: EnvLive, CreatedAt: time.Unix(int64(i), 0)}
	})
	for round := range 200 {
		batch := make([]Usage, n)
		for i := range n {
			batch[i] = Usage{KeyID: fmt.Sprint("key_", i), Count: 1, LastUsed: time.Unix(int64(round), 0)}
		}
		require.NoError(t, s.RecordUsage(ctx, "", batch))
		for _, i := range []int{0, round % n, n - 1} {
			k, err := s.Lookup(ctx, digests[i])
			require.NoError(t, err)
			require.Equal(t, uint64(round+1), k.Requests)
		}
	}
	s.mu.Lock()
	dead, live := 0, 0
	for i := range s.shards {
		dead += s.shards[i].dead
		live += s.shards[i].live
	}
	s.mu.Unlock()
	assert.LessOrEqual(t, dead, max(live, compactMin*memShards), "compaction bounds the dead records")
	page, err := s.List(ctx, Filter{Owner: "o1", Limit: 10, After: "key_4"})
	require.NoError(t, err)
	require.Len(t, page, 10)
	for j, k := range page {
		assert.Equal(t, fmt.Sprint("key_", 7+3*j), k.ID)
		assert.Equal(t, uint64(200), k.Requests)
	}
	require.NoError(t, s.Revoke(ctx, "key_5"))
	k, err := s.Lookup(ctx, digests[5])
	require.NoError(t, err)
	assert.Equal(t, StateRevoked, k.State(time.Now()))
}

// Lookups during changes (updates, usage, rehashes, removals, creations,
// compactions) take no lock and never see a torn key: each Key is one
// record's. Run with -race.
func TestLockFreeLookupNeverTorn(t *testing.T) {
	ctx := context.Background()
	s := newTestMemoryStore(t)
	const n = 200
	digests := addNumberedKeys(t, s, n, func(i int) *Key {
		return &Key{ID: fmt.Sprint("key_", i), Name: "n0", Environment: EnvLive, Metadata: map[string]string{"n": "0"}, CreatedAt: time.Now()}
	})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var found atomic.Int64
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; !stop.Load(); i++ {
				k, err := s.Lookup(ctx, digests[i%n])
				if err != nil {
					t.Errorf("lookup %d: %v", i%n, err)
					return
				}
				if k.Name != "n"+k.Metadata["n"] || k.ID != fmt.Sprint("key_", i%n) {
					t.Errorf("torn key: %+v", k)
					return
				}
				found.Add(1)
			}
		}()
	}
	for round := 1; round <= 300; round++ {
		id := fmt.Sprint("key_", round%n)
		_, err := s.Update(ctx, id, func(k *Key) error {
			k.Name = fmt.Sprint("n", round)
			k.Metadata = map[string]string{"n": fmt.Sprint(round)}
			return nil
		})
		require.NoError(t, err)
		batch := make([]Usage, n) // many dead records: compactions
		for i := range batch {
			batch[i] = Usage{KeyID: fmt.Sprint("key_", i), Count: 1, LastUsed: time.Now()}
		}
		require.NoError(t, s.RecordUsage(ctx, "", batch))
		// keys nobody looks up: created, rehashed, removed
		extra := fmt.Sprint("extra_", round)
		ed := sha256.Sum256([]byte(extra))
		require.NoError(t, s.Add(ctx, ed, &Key{ID: extra, Environment: EnvLive}))
		require.NoError(t, s.Rehash(ctx, extra, sha256.Sum256([]byte(extra+"'")), "p"))
		if round%2 == 0 {
			s.mu.Lock()
			s.removeLocked(extra)
			s.mu.Unlock()
		}
	}
	stop.Store(true)
	wg.Wait()
	assert.Positive(t, found.Load())
	s.mu.Lock()
	compacted := 0
	for i := range s.shards {
		compacted += s.shards[i].moves
	}
	s.mu.Unlock()
	assert.Positive(t, compacted)
}

// Times parsed with an offset make a new *time.Location each time: the
// store's table of locations knows them by name and offset, so it does not
// grow with every update, and the time keeps its zone.
func TestRecordLocationsStayFew(t *testing.T) {
	ctx := context.Background()
	s := newTestMemoryStore(t)
	d := sha256.Sum256([]byte("k"))
	require.NoError(t, s.Add(ctx, d, &Key{ID: "k", Name: "k", Environment: EnvLive, CreatedAt: time.Now()}))
	for i := range 1000 {
		at, err := time.Parse(time.RFC3339, fmt.Sprintf("2030-01-01T00:00:%02d+05:30", i%60))
		require.NoError(t, err)
		_, err = s.Update(ctx, "k", func(k *Key) error { k.ExpiresAt = at; return nil })
		require.NoError(t, err)
		got, err := s.Get(ctx, "k")
		require.NoError(t, err)
		require.True(t, got.ExpiresAt.Equal(at))
		_, off := got.ExpiresAt.Zone()
		require.Equal(t, 5*3600+1800, off)
	}
	assert.Less(t, len(*s.locs.Load()), 5)

	// The earliest Unix second is not the zero time's mark: a key that
	// expired then stays expired.
	long := time.Unix(math.MinInt64, 0)
	require.NoError(t, s.Add(ctx, sha256.Sum256([]byte("old")), &Key{ID: "old", Environment: EnvLive, CreatedAt: time.Now(), ExpiresAt: long}))
	got, err := s.Get(ctx, "old")
	require.NoError(t, err)
	assert.False(t, got.ExpiresAt.IsZero())
	assert.Equal(t, StateExpired, got.State(time.Now()))
}

// addNumberedKeys files n keys made by key(i) in s under the digests of
// their numbers, and returns the digests.
func addNumberedKeys(t *testing.T, s *MemoryStore, n int, key func(i int) *Key) []Digest {
	t.Helper()
	digests := make([]Digest, n)
	for i := range n {
		digests[i] = sha256.Sum256(fmt.Append(nil, i))
		require.NoError(t, s.Add(context.Background(), digests[i], key(i)))
	}
	return digests
}
