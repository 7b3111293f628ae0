package apikey_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/storetest"
)

// The memory store's own behaviour: its file, imports, failures and
// concurrency. The store contract itself runs in contract_test.go.

// memstoreOpen is NewMemoryStore with a Path, failing the test on error;
// the store is closed when the test ends.
func memstoreOpen(t testing.TB, keys apikey.KeyConfig, path string) *apikey.MemoryStore {
	t.Helper()
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// memstoreReopen closes s, as a restart would, and opens its file again.
func memstoreReopen(t testing.TB, s *apikey.MemoryStore, keys apikey.KeyConfig, path string) *apikey.MemoryStore {
	t.Helper()
	require.NoError(t, s.Close())
	return memstoreOpen(t, keys, path)
}

// memstoreDirFiles lists the names in dir, but the lock file, which stays
// (flock locks it, it is never rewritten).
func memstoreDirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestMemoryStorePersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	keys, clock := testKeys()
	keys.Peppers = []apikey.Pepper{pepper(t, "p1", 'q')}

	s1 := memstoreOpen(t, keys, path)
	_, err := os.Stat(path)
	assert.True(t, os.IsNotExist(err), "no file until the first change")

	a, secretA, err := s1.Create(ctx, apikey.KeySpec{
		Name: "a", Scopes: []apikey.Scope{"read", "write"}, Owner: "ops@example.com",
		Metadata: map[string]string{"x": "y"}, ExpiresAt: storetest.Epoch.Add(90 * 24 * time.Hour),
	})
	require.NoError(t, err)
	b, secretB, err := s1.Create(ctx, apikey.KeySpec{Name: "b", Environment: apikey.EnvTest})
	require.NoError(t, err)
	clock.Advance(time.Minute)
	require.NoError(t, s1.Revoke(ctx, b.ID))
	rolled, secretC, err := s1.Roll(ctx, a.ID, 24*time.Hour)
	require.NoError(t, err)
	require.NoError(t, s1.RecordUsage(ctx, "", []apikey.Usage{{KeyID: rolled.ID, Environment: apikey.EnvLive, Count: 7, LastUsed: storetest.Epoch}}))

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	assert.Equal(t, []string{"keys.json"}, memstoreDirFiles(t, dir), "no temporary file is left behind")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, s := range []apikey.Secret{secretA, secretB, secretC} {
		assert.NotContains(t, string(raw), s.Reveal(), "the file holds digests, never secrets")
		assert.NotContains(t, string(raw), s.Reveal()[8:30])
	}

	want, err := s1.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	s2 := memstoreReopen(t, s1, keys, path)
	got, err := s2.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, want, got, "every field survives a restart")
	for _, k := range got {
		assert.Equal(t, "p1", k.PepperID)
	}

	mw := newMiddleware(t, apikey.Config{Keys: keys, Store: s2})
	for _, c := range []struct {
		secret apikey.Secret
		reason apikey.Reason
	}{{secretA, 0}, {secretC, 0}, {secretB, apikey.ReasonRevoked}} {
		_, err = mw.Verify(ctx, c.secret.Reveal())
		if c.reason == 0 {
			assert.NoError(t, err, "keys still verify after a restart")
			continue
		}
		var ae apikey.AuthError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, c.reason, ae.Reason)
	}
	// The rolled key's grace period ends as it would have.
	clock.Advance(24 * time.Hour)
	_, err = mw.Verify(ctx, secretA.Reveal())
	var ae apikey.AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonRolled, ae.Reason)

	// The reopened store goes on persisting.
	_, _, err = s2.Create(ctx, apikey.KeySpec{Name: "d"})
	require.NoError(t, err)
	all, err := memstoreReopen(t, s2, keys, path).List(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.Len(t, all, 4)
}

func TestMemoryStoreCorruptFile(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	s := memstoreOpen(t, keys, good)
	_, _, err := s.Create(ctx, apikey.KeySpec{Name: "a"})
	require.NoError(t, err)
	_, _, err = s.Create(ctx, apikey.KeySpec{Name: "b"})
	require.NoError(t, err)
	valid, err := os.ReadFile(good)
	require.NoError(t, err)
	memstoreReopen(t, s, keys, good) // the valid file loads

	const head = `{"magic":"keygate/apikey memory store","version":1,"keys":[`
	digest := strings.Repeat("ab", 32)
	record := func(digest, key string) string { return `{"digest":"` + digest + `","key":` + key + `}` }
	first := firstRecord(t, valid)
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"truncated", string(valid[:len(valid)/2])},
		{"one byte short", strings.TrimSpace(string(valid))[:len(strings.TrimSpace(string(valid)))-1]},
		{"not json", "hello"},
		{"json null", "null"},
		{"trailing data", string(valid) + "{}"},
		{"trailing brace", string(valid) + "}"},
		{"wrong magic", `{"magic":"x","version":1,"keys":[]}`},
		{"no magic", `{"version":1,"keys":[]}`},
		{"future version", `{"magic":"keygate/apikey memory store","version":2,"keys":[]}`},
		{"unknown field", `{"magic":"keygate/apikey memory store","version":1,"keys":[],"extra":1}`},
		{"unknown key field", head + record(digest, `{"id":"key_1","environment":"live","secret":"x"}`) + `]}`},
		{"record without key", head + `{"digest":"` + digest + `"}]}`},
		{"key without id", head + record(digest, `{"environment":"live"}`) + `]}`},
		{"record without digest", head + `{"key":{"id":"key_1","environment":"live"}}]}`},
		{"bad digest", head + record("zz", `{"id":"key_1","environment":"live"}`) + `]}`},
		{"no environment", head + record(digest, `{"id":"key_1"}`) + `]}`},
		{"unknown environment", head + record(digest, `{"id":"key_1","environment":"prod"}`) + `]}`},
		{"duplicate record", strings.Replace(string(valid), `"keys": [`, `"keys": [`+first+`,`, 1)},
		{"duplicate id", head + record(digest, `{"id":"key_1","environment":"live"}`) + "," +
			record(strings.Repeat("cd", 32), `{"id":"key_1","environment":"live"}`) + `]}`},
		{"duplicate digest", head + record(digest, `{"id":"key_1","environment":"live"}`) + "," +
			record(digest, `{"id":"key_2","environment":"live"}`) + `]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
			assert.Nil(t, s)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), "corrupt key file")
			assert.Contains(t, err.Error(), path)
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.content, string(after), "a corrupt file is never overwritten")
		})
	}
}

// firstRecord cuts the first record out of a store file.
func firstRecord(t *testing.T, file []byte) string {
	t.Helper()
	s := string(file)
	start := strings.Index(s, `"keys": [`)
	require.GreaterOrEqual(t, start, 0, "the file lists its keys: %s", s)
	start += len(`"keys": [`)
	end := strings.Index(s[start:], "\n  }")
	require.Greater(t, end, 0)
	return s[start : start+end+len("\n  }")]
}

// A path that cannot be read is an error, and not a corrupt file.
func TestMemoryStoreUnreadablePath(t *testing.T) {
	keys, _ := testKeys()
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, []byte("x"), 0o600))
	for name, path := range map[string]string{
		"a directory":            dir,
		"under a file":           filepath.Join(notDir, "keys.json"),
		"in a missing directory": filepath.Join(dir, "missing", "keys.json"),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
			if err == nil {
				// Nothing to load yet: the first change must fail instead,
				// and undo itself.
				_, _, err = s.Create(context.Background(), apikey.KeySpec{Name: "n"})
				require.Error(t, err)
				list, lerr := s.List(context.Background(), apikey.Filter{})
				require.NoError(t, lerr)
				assert.Empty(t, list)
			}
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "corrupt key file")
		})
	}
	_, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{})
	assert.ErrorIs(t, err, apikey.ErrInvalid, "Keys.Formats is required")
	assert.ErrorContains(t, err, "Formats")
}

// Every change rewrites the file atomically: a change whose write fails is
// undone in memory (revocation excepted: it stays in effect) and leaves
// the file as it was, and no temporary file is left behind.
func TestMemoryStoreFailedWriteChangesNothing(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "keys.json")
	s := memstoreOpen(t, keys, path)
	a, secretA, err := s.Create(ctx, apikey.KeySpec{Name: "a", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	b, _, err := s.Create(ctx, apikey.KeySpec{Name: "b"})
	require.NoError(t, err)
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	listBefore, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)

	// Move the directory away: the store can no longer write its temporary
	// file, and the old file is kept aside, untouched.
	aside := filepath.Join(root, "aside")
	require.NoError(t, os.Rename(dir, aside))

	_, _, err = s.Create(ctx, apikey.KeySpec{Name: "c"})
	assert.Error(t, err, "Create")
	_, _, err = s.Roll(ctx, a.ID, time.Hour)
	assert.Error(t, err, "Roll")
	imported, err := keys.NewKey(apikey.KeySpec{Name: "imported"})
	require.NoError(t, err)
	assert.Error(t, s.Add(ctx, imported.Digest, imported.Key), "Add")
	assert.Error(t, s.RecordUsage(ctx, "", []apikey.Usage{{KeyID: a.ID, Environment: apikey.EnvLive, Count: 3, LastUsed: storetest.Epoch}}), "RecordUsage")

	listAfter, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.Equal(t, listBefore, listAfter, "failed changes are undone in memory")
	_, err = s.Lookup(ctx, imported.Digest)
	assert.ErrorIs(t, err, apikey.ErrNotFound)
	mw := newMiddleware(t, apikey.Config{Keys: keys, Store: s})
	_, err = mw.Verify(ctx, secretA.Reveal())
	assert.NoError(t, err, "the failed roll did not retire the key")

	// A revocation that cannot be written stays in effect.
	err = s.Revoke(ctx, b.ID)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "revoked in memory")
	got, err := s.Get(ctx, b.ID)
	require.NoError(t, err)
	assert.Equal(t, apikey.StateRevoked, got.State(storetest.Epoch))

	require.NoError(t, os.Rename(aside, dir))
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "the file is as it was")
	assert.Equal(t, []string{"keys.json"}, memstoreDirFiles(t, dir), "no temporary file is left behind")

	// The next change that can be written persists the whole store,
	// revocation included.
	_, _, err = s.Create(ctx, apikey.KeySpec{Name: "c"})
	require.NoError(t, err)
	want, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	reopened, err := memstoreReopen(t, s, keys, path).List(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.Equal(t, want, reopened)
	assert.Equal(t, []string{"keys.json"}, memstoreDirFiles(t, dir))
}

// A usage batch whose file write fails is undone in memory, so that the
// recorder's retry of the same batch does not count it twice.
func TestMemoryStoreUsageUndoneWhenFileFails(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	path := filepath.Join(t.TempDir(), "keys.json")
	s := memstoreOpen(t, keys, path)
	k, _, err := s.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(t, err)
	batch := []apikey.Usage{{KeyID: k.ID, Environment: apikey.EnvLive, Count: 10, LastUsed: storetest.Epoch}}

	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700)) // the rename onto it fails
	assert.Error(t, s.RecordUsage(ctx, "", batch))
	got, err := s.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Zero(t, got.Requests, "undone")
	assert.True(t, got.LastUsedAt.IsZero(), "undone")

	require.NoError(t, os.Remove(path))
	require.NoError(t, s.RecordUsage(ctx, "", batch))
	got, err = s.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 10, got.Requests, "counted once")
	assert.Equal(t, storetest.Epoch, got.LastUsedAt)
}

// Readers of the file while the store rewrites it always find a whole
// file, never a partial one, and never an older one than they saw before.
func TestMemoryStoreFileRewriteIsAtomic(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	s := memstoreOpen(t, keys, path)

	const writers, perWriter, readers = 4, 25, 2
	var done atomic.Bool
	var wg, rg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		rg.Add(1)
		go func() {
			defer rg.Done()
			seen := 0
			for !done.Load() {
				// Another process reads the file (no store may open it).
				data, err := os.ReadFile(path)
				if errors.Is(err, fs.ErrNotExist) {
					continue // not written yet
				}
				var file struct{ Keys []json.RawMessage }
				if err == nil {
					err = json.Unmarshal(data, &file)
				}
				if err != nil {
					errs <- fmt.Errorf("a reader found a partial file: %w", err)
					return
				}
				if len(file.Keys) < seen {
					errs <- fmt.Errorf("read %d keys after %d", len(file.Keys), seen)
					return
				}
				seen = len(file.Keys)
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				k, _, err := s.Create(ctx, apikey.KeySpec{Name: fmt.Sprintf("w%d-%d", w, i)})
				if !assert.NoError(t, err) {
					return
				}
				if i%3 == 0 {
					assert.NoError(t, s.Revoke(ctx, k.ID))
				}
				assert.NoError(t, s.RecordUsage(ctx, "", []apikey.Usage{{KeyID: k.ID, Environment: apikey.EnvLive, Count: 1, LastUsed: storetest.Epoch}}))
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	want, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	require.Len(t, want, writers*perWriter)
	got, err := memstoreReopen(t, s, keys, path).List(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.Equal(t, want, got, "the last write holds every change")
	assert.Equal(t, []string{"keys.json"}, memstoreDirFiles(t, dir))
}

// Lookups run while keys are created, revoked, rolled, rehashed and
// counted. A key is always found (under its old digest or, after a rehash,
// its new one), and once Revoke has returned no lookup that starts later
// sees the key active.
func TestMemoryStoreLookupsDuringChanges(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	s := newMemoryStore(t, keys)
	const n = 64
	type entry struct {
		id       string
		digest   apikey.Digest
		rehashed apikey.Digest
		revoked  atomic.Bool // set once Revoke has returned
	}
	entries := make([]*entry, n)
	for i := range entries {
		k, sec, err := s.Create(ctx, apikey.KeySpec{Name: fmt.Sprint(i), Scopes: []apikey.Scope{"read"}})
		require.NoError(t, err)
		entries[i] = &entry{id: k.ID, digest: keys.Digest(sec.Reveal())}
		entries[i].rehashed = keys.Digest(sec.Reveal() + "/rehashed") // any digest no other key has
	}

	var done atomic.Bool
	var readers, warm sync.WaitGroup
	var lookups atomic.Int64
	for range 2 {
		readers.Add(1)
		warm.Add(1)
		go func() {
			defer readers.Done()
			for pass := 0; !done.Load(); pass++ {
				if pass == 1 {
					warm.Done() // the writers start once every reader is looping
				}
				for i, e := range entries {
					wasRevoked := e.revoked.Load()
					k, err := s.Lookup(ctx, e.digest)
					if errors.Is(err, apikey.ErrNotFound) && i%4 == 2 {
						k, err = s.Lookup(ctx, e.rehashed) // filed anew before unfiled
					}
					lookups.Add(1)
					if !assert.NoError(t, err, "key %d", i) {
						if pass == 0 {
							warm.Done()
						}
						return
					}
					assert.Equal(t, e.id, k.ID)
					assert.Equal(t, fmt.Sprint(i), k.Name, "a whole snapshot")
					if wasRevoked {
						assert.Equal(t, apikey.StateRevoked, k.State(storetest.Epoch), "key %d revoked before the lookup", i)
					}
				}
			}
		}()
	}

	warm.Wait()
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := w; i < n; i += 2 {
				e := entries[i]
				switch i % 4 {
				case 0:
					assert.NoError(t, s.Revoke(ctx, e.id))
					e.revoked.Store(true)
				case 1:
					_, _, err := s.Roll(ctx, e.id, time.Hour)
					assert.NoError(t, err)
				case 2:
					assert.NoError(t, s.Rehash(ctx, e.id, e.rehashed, "p2"))
				case 3:
					assert.NoError(t, s.RecordUsage(ctx, "", []apikey.Usage{{KeyID: e.id, Environment: apikey.EnvLive, Count: 1, LastUsed: storetest.Epoch}}))
				}
				_, _, err := s.Create(ctx, apikey.KeySpec{Name: "more"})
				assert.NoError(t, err)
			}
		}()
	}
	writers.Wait()
	done.Store(true)
	readers.Wait()
	assert.Positive(t, lookups.Load())

	for i, e := range entries {
		d := e.digest
		if i%4 == 2 {
			d = e.rehashed
		}
		k, err := s.Lookup(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, i%4 == 0, k.State(storetest.Epoch) == apikey.StateRevoked)
	}
}

// Keys handed out by Lookup are snapshots: later changes replace them and
// never write into them.
func TestMemoryStoreLookupSnapshots(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	s := newMemoryStore(t, keys)
	k, sec, err := s.Create(ctx, apikey.KeySpec{Name: "n"})
	require.NoError(t, err)
	d := keys.Digest(sec.Reveal())
	snap, err := s.Lookup(ctx, d)
	require.NoError(t, err)
	snapCopy := *snap

	require.NoError(t, s.RecordUsage(ctx, "", []apikey.Usage{{KeyID: k.ID, Environment: apikey.EnvLive, Count: 5, LastUsed: storetest.Epoch}}))
	_, _, err = s.Roll(ctx, k.ID, time.Hour)
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, k.ID))
	assert.Equal(t, snapCopy, *snap, "the snapshot was not modified")

	now, err := s.Lookup(ctx, d)
	require.NoError(t, err)
	assert.EqualValues(t, 5, now.Requests)
	assert.NotEmpty(t, now.RolledTo)
	assert.False(t, now.RevokedAt.IsZero())
}

func TestMemoryStoreAdd(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	s := newMemoryStore(t, keys)
	k := &apikey.Key{ID: "key_import", Name: "imported", Environment: apikey.EnvLive, Scopes: []apikey.Scope{"read"}}
	require.NoError(t, s.Add(ctx, keys.Digest("kg_live_x"), k))
	assert.ErrorIs(t, s.Add(ctx, keys.Digest("kg_live_y"), k), apikey.ErrInvalid, "duplicate id")
	assert.ErrorIs(t, s.Add(ctx, keys.Digest("kg_live_x"), &apikey.Key{ID: "key_other"}), apikey.ErrInvalid, "duplicate digest")
	list, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.Len(t, list, 1)
	got, err := s.Lookup(ctx, keys.Digest("kg_live_x"))
	require.NoError(t, err)
	assert.Equal(t, "imported", got.Name)

	// The store keeps its own copy.
	k.Name, k.Scopes[0] = "changed", "admin"
	got, err = s.Get(ctx, "key_import")
	require.NoError(t, err)
	assert.Equal(t, "imported", got.Name)
	assert.Equal(t, []apikey.Scope{"read"}, got.Scopes)

	// An imported key authenticates like one the store made.
	is, err := keys.NewKey(apikey.KeySpec{Name: "made elsewhere", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	require.NoError(t, s.Add(ctx, is.Digest, is.Key))
	rr := call(newMiddleware(t, apikey.Config{Keys: keys, Store: s}).Handler(okHandler()), "GET", "/", is.Secret.Reveal())
	assert.Equal(t, 200, rr.Code)
	assert.Equal(t, is.Key.ID, decode(t, rr)["key_id"])
}

// Add refuses what the store could not load again from its file, so a
// file store never writes a record that makes it unloadable.
func TestMemoryStoreAddRefusesBadRecords(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	require.NoError(t, err)
	good := func() *apikey.Key {
		return &apikey.Key{ID: "key_import", Name: "imported", Environment: apikey.EnvLive, Scopes: []apikey.Scope{"read"}}
	}
	for _, tt := range []struct {
		name   string
		digest apikey.Digest
		edit   func(*apikey.Key) *apikey.Key
	}{
		{"no key", keys.Digest("a"), func(*apikey.Key) *apikey.Key { return nil }},
		{"no id", keys.Digest("a"), func(k *apikey.Key) *apikey.Key { k.ID = ""; return k }},
		{"id with a space", keys.Digest("a"), func(k *apikey.Key) *apikey.Key { k.ID = "key 1"; return k }},
		{"id with a newline", keys.Digest("a"), func(k *apikey.Key) *apikey.Key { k.ID = "key\n1"; return k }},
		{"id not ASCII", keys.Digest("a"), func(k *apikey.Key) *apikey.Key { k.ID = "kéy"; return k }},
		{"id over 128 bytes", keys.Digest("a"), func(k *apikey.Key) *apikey.Key { k.ID = strings.Repeat("k", 129); return k }},
		{"zero digest", apikey.Digest{}, func(k *apikey.Key) *apikey.Key { return k }},
		{"no environment", keys.Digest("a"), func(k *apikey.Key) *apikey.Key { k.Environment = 0; return k }},
		{"unknown environment", keys.Digest("a"), func(k *apikey.Key) *apikey.Key { k.Environment = 9; return k }},
		{"malformed scope", keys.Digest("a"), func(k *apikey.Key) *apikey.Key { k.Scopes = []apikey.Scope{"Read Write"}; return k }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, s.Add(ctx, tt.digest, tt.edit(good())), apikey.ErrInvalid)
		})
	}
	// An imported ID may hold any visible ASCII, a colon among them.
	k := good()
	k.ID = "legacy:42/a"
	require.NoError(t, s.Add(ctx, keys.Digest("legacy"), k))
	require.NoError(t, s.Close())
	reopened, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	require.NoError(t, err, "every record Add accepted loads again")
	got, err := reopened.Get(ctx, "legacy:42/a")
	require.NoError(t, err)
	assert.Equal(t, "imported", got.Name)
}

func TestMemoryStoreHonoursCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	keys, _ := testKeys()
	s := newMemoryStore(t, keys)
	k, _, err := s.Create(ctx, apikey.KeySpec{Name: "x"})
	require.NoError(t, err)
	cancel()
	_, _, err = s.Create(ctx, apikey.KeySpec{Name: "x"})
	assert.ErrorIs(t, err, context.Canceled, "Create")
	_, err = s.List(ctx, apikey.Filter{})
	assert.ErrorIs(t, err, context.Canceled, "List")
	_, err = s.Get(ctx, k.ID)
	assert.ErrorIs(t, err, context.Canceled, "Get")
	assert.ErrorIs(t, s.Revoke(ctx, k.ID), context.Canceled, "Revoke")
	_, _, err = s.Roll(ctx, k.ID, time.Hour)
	assert.ErrorIs(t, err, context.Canceled, "Roll")
	assert.ErrorIs(t, s.Rehash(ctx, k.ID, apikey.Digest{1}, "p"), context.Canceled, "Rehash")
	assert.ErrorIs(t, s.RecordUsage(ctx, "", []apikey.Usage{{KeyID: k.ID, Count: 1}}), context.Canceled, "RecordUsage")
	assert.ErrorIs(t, s.Add(ctx, apikey.Digest{2}, &apikey.Key{ID: "key_x"}), context.Canceled, "Add")

	got, err := s.Get(context.Background(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, apikey.StateActive, got.State(storetest.Epoch), "nothing changed")
	assert.Zero(t, got.Requests)
	list, err := s.List(context.Background(), apikey.Filter{})
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

// One store at a time opens a file: a second opener (an admin tool, an
// overlapping deploy) is refused instead of rewriting the file from its
// own memory and undoing the first one's revocations and creations.
func TestMemoryStoreFileIsOpenOnce(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	path := filepath.Join(t.TempDir(), "keys.json")
	first, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	require.NoError(t, err)
	revoked, revokedSecret, err := first.Create(ctx, apikey.KeySpec{Name: "to revoke"})
	require.NoError(t, err)

	second, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	require.Error(t, err, "a second store on the same file is refused")
	assert.Nil(t, second)
	assert.Contains(t, err.Error(), path+".lock")
	assert.Contains(t, err.Error(), "one process at a time")
	alias := filepath.Join(t.TempDir(), "alias.json")
	require.NoError(t, os.Symlink(path, alias))
	_, err = apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: alias})
	require.Error(t, err, "a symlink to the file is the same file")
	assert.Contains(t, err.Error(), path+".lock")

	require.NoError(t, first.Revoke(ctx, revoked.ID))
	created, _, err := first.Create(ctx, apikey.KeySpec{Name: "created"})
	require.NoError(t, err)
	require.NoError(t, first.Close())
	require.NoError(t, first.Close(), "closing twice is fine")
	_, _, err = first.Create(ctx, apikey.KeySpec{Name: "after close"})
	assert.Error(t, err, "changes after Close fail")
	assert.ErrorContains(t, first.Revoke(ctx, created.ID), "closed")
	_, err = first.Lookup(ctx, keys.Digest(revokedSecret.Reveal()))
	assert.NoError(t, err, "lookups still answer from memory")

	reopened, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	require.NoError(t, err, "after Close the file can be opened again")
	defer reopened.Close()
	got, err := reopened.Get(ctx, revoked.ID)
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero(), "the revocation survived")
	_, err = reopened.Get(ctx, created.ID)
	assert.NoError(t, err, "the acknowledged create survived")
}

// A key rolled with zero grace stays retired across a reopen with the
// clock stepped back, as after an NTP correction.
func TestMemoryStoreZeroGraceRollSurvivesReopenAndClock(t *testing.T) {
	ctx := context.Background()
	keys, clock := testKeys()
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	require.NoError(t, err)
	old, oldSecret, err := s.Create(ctx, apikey.KeySpec{Name: "old"})
	require.NoError(t, err)
	_, _, err = s.Roll(ctx, old.ID, 0)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// A file written before RolledAt existed: the roll's time is that of the
	// successor's creation.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	old2 := regexp.MustCompile(`,\s*"rolled_at": "[^"]*"`).ReplaceAll(raw, nil)
	require.NotEqual(t, raw, old2, "the file had a rolled_at")
	require.NoError(t, os.WriteFile(path, old2, 0o600))

	clock.Advance(-3 * time.Second)
	reopened, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	require.NoError(t, err)
	defer reopened.Close()
	_, err = newMiddleware(t, apikey.Config{Keys: keys, Store: reopened}).Verify(ctx, oldSecret.Reveal())
	var ae apikey.AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonRolled, ae.Reason)
	got, err := reopened.Get(ctx, old.ID)
	require.NoError(t, err)
	assert.True(t, got.RolledAt.Equal(storetest.Epoch), "backfilled from the successor's creation")
}

// An update, a disabled key and the list order survive a restart; a page
// walks the ordered index from the file like one built by creates.
func TestMemoryStoreFileKeepsUpdates(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: storetest.Scopes, Clock: clock.Now}
	path := filepath.Join(t.TempDir(), "keys.json")
	s := memstoreOpen(t, keys, path)
	var ids []string
	for range 5 {
		k, _, err := s.Create(ctx, apikey.KeySpec{Name: "k", Owner: "o1", Scopes: []apikey.Scope{"read"}})
		require.NoError(t, err)
		ids = append(ids, k.ID)
		clock.Advance(time.Second)
	}
	_, err := s.Update(ctx, ids[1], func(k *apikey.Key) error {
		k.Scopes, k.Disabled = []apikey.Scope{"read", "write"}, true
		return nil
	})
	require.NoError(t, err)

	s = memstoreReopen(t, s, keys, path)
	got, err := s.Get(ctx, ids[1])
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	assert.Equal(t, []apikey.Scope{"read", "write"}, got.Scopes)
	page, err := s.List(ctx, apikey.Filter{Owner: "o1", After: ids[1], Limit: 2})
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, []string{ids[2], ids[3]}, []string{page[0].ID, page[1].ID})
}

// A key's limits and lineage survive a restart: the file keeps them as
// the key's JSON fields, a changed limit included.
func TestMemoryStoreFileKeepsLimitsAndLineage(t *testing.T) {
	ctx := context.Background()
	keys, clock := testKeys()
	path := filepath.Join(t.TempDir(), "keys.json")
	s := memstoreOpen(t, keys, path)
	limits := []apikey.Limit{
		{Name: "requests", Count: 100, Per: time.Minute, Burst: 20},
		{Name: "monthly", Count: 10000, Period: "month", Zone: "Europe/Paris"},
		{Name: "credits", Count: 500, Credits: true, Owner: true},
	}
	first, _, err := s.Create(ctx, apikey.KeySpec{Name: "k", Limits: limits})
	require.NoError(t, err)
	clock.Advance(time.Second)
	second, _, err := s.Roll(ctx, first.ID, time.Hour)
	require.NoError(t, err)
	clock.Advance(time.Second)
	third, _, err := s.Roll(ctx, second.ID, time.Hour)
	require.NoError(t, err)
	changed := slices.Clone(limits)
	changed[0].Count = 200
	_, err = s.Update(ctx, third.ID, func(k *apikey.Key) error { k.Limits = changed; return nil })
	require.NoError(t, err)
	plain, _, err := s.Create(ctx, apikey.KeySpec{Name: "plain"})
	require.NoError(t, err)

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var file struct {
		Keys []struct {
			Key map[string]json.RawMessage `json:"key"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(raw, &file))
	fields := map[string]map[string]json.RawMessage{}
	for _, r := range file.Keys {
		var id string
		require.NoError(t, json.Unmarshal(r.Key["id"], &id))
		fields[id] = r.Key
	}
	require.Contains(t, fields, third.ID)
	assert.JSONEq(t, `[{"name":"requests","count":200,"per":60000000000,"burst":20},
		{"name":"monthly","count":10000,"period":"month","zone":"Europe/Paris"},
		{"name":"credits","count":500,"credits":true,"owner":true}]`, string(fields[third.ID]["limits"]))
	assert.JSONEq(t, `"`+first.ID+`"`, string(fields[third.ID]["lineage"]))
	assert.NotContains(t, fields[first.ID], "lineage", "the first key of a chain has none")
	assert.NotContains(t, fields[plain.ID], "limits", "a key without limits has none in the file")

	want, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	s = memstoreReopen(t, s, keys, path)
	got, err := s.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	assert.Equal(t, want, got, "limits and lineage survive a restart")
	byID := map[string]*apikey.Key{}
	for _, k := range got {
		byID[k.ID] = k
	}
	assert.Equal(t, limits, byID[first.ID].Limits)
	assert.Equal(t, limits, byID[second.ID].Limits)
	assert.Equal(t, changed, byID[third.ID].Limits)
	assert.Empty(t, byID[plain.ID].Limits)
	assert.Equal(t, []string{"", first.ID, first.ID, ""},
		[]string{byID[first.ID].Lineage, byID[second.ID].Lineage, byID[third.ID].Lineage, byID[plain.ID].Lineage})
}
