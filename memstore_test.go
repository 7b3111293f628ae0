package apikey_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, cfg apikey.StoreConfig) storetest.Store {
		return apikey.NewMemoryStore(cfg)
	})
}

func TestMemoryStoreFileContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, cfg apikey.StoreConfig) storetest.Store {
		s, err := apikey.OpenMemoryStore(filepath.Join(t.TempDir(), "keys.json"), cfg)
		require.NoError(t, err)
		return s
	})
}

func TestMemoryStorePersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	clock := storetest.NewClock(storetest.Epoch)
	cfg := apikey.StoreConfig{Clock: clock}

	s1, err := apikey.OpenMemoryStore(path, cfg)
	require.NoError(t, err)
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "no file until the first change")

	a, secretA, err := s1.Create(ctx, apikey.KeySpec{Name: "a", Scopes: []apikey.Scope{"read", "write"}, Metadata: map[string]string{"x": "y"}})
	require.NoError(t, err)
	b, secretB, err := s1.Create(ctx, apikey.KeySpec{Name: "b", Environment: apikey.EnvTest})
	require.NoError(t, err)
	require.NoError(t, s1.Revoke(ctx, b.ID))
	rolled, secretC, err := s1.Roll(ctx, a.ID)
	require.NoError(t, err)
	require.NoError(t, s1.RecordUsage(ctx, []apikey.Usage{{KeyID: rolled.ID, Environment: apikey.EnvLive, Count: 7, LastUsed: storetest.Epoch}}))

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, s := range []apikey.Secret{secretA, secretB, secretC} {
		assert.NotContains(t, string(raw), s.Reveal(), "the file holds digests, never secrets")
		assert.NotContains(t, string(raw), s.Reveal()[8:30])
	}

	s2, err := apikey.OpenMemoryStore(path, cfg)
	require.NoError(t, err)
	want, err := s1.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	got, err := s2.List(ctx, apikey.Filter{})
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i := range want {
		assert.Equal(t, want[i].ID, got[i].ID)
		assert.Equal(t, want[i].Name, got[i].Name)
		assert.Equal(t, want[i].Scopes, got[i].Scopes)
		assert.Equal(t, want[i].Metadata, got[i].Metadata)
		assert.Equal(t, want[i].RolledTo, got[i].RolledTo)
		assert.Equal(t, want[i].Requests, got[i].Requests)
		assert.True(t, want[i].ExpiresAt.Equal(got[i].ExpiresAt))
		assert.True(t, want[i].RevokedAt.Equal(got[i].RevokedAt))
	}
	auth := apikey.New(s2, apikey.WithClock(clock))
	_, err = auth.Verify(ctx, secretC.Reveal())
	assert.NoError(t, err, "keys still verify after a restart")
	_, err = auth.Verify(ctx, secretB.Reveal())
	assert.ErrorContains(t, err, "revoked")
}

func TestMemoryStoreCorruptFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	s, err := apikey.OpenMemoryStore(good, apikey.StoreConfig{})
	require.NoError(t, err)
	_, _, err = s.Create(context.Background(), apikey.KeySpec{Name: "a"})
	require.NoError(t, err)
	_, _, err = s.Create(context.Background(), apikey.KeySpec{Name: "b"})
	require.NoError(t, err)
	valid, err := os.ReadFile(good)
	require.NoError(t, err)

	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"truncated", string(valid[:len(valid)/2])},
		{"not json", "hello"},
		{"trailing data", string(valid) + "{}"},
		{"trailing brace", string(valid) + "}"},
		{"wrong magic", `{"magic":"x","version":1,"keys":[]}`},
		{"future version", `{"magic":"keygate/apikey memory store","version":2,"keys":[]}`},
		{"unknown field", `{"magic":"keygate/apikey memory store","version":1,"keys":[],"extra":1}`},
		{"record without key", `{"magic":"keygate/apikey memory store","version":1,"keys":[{"digest":"` + strings.Repeat("ab", 32) + `"}]}`},
		{"bad digest", `{"magic":"keygate/apikey memory store","version":1,"keys":[{"digest":"zz","key":{"id":"key_1","environment":"live"}}]}`},
		{"duplicate record", strings.Replace(string(valid), `"keys": [`, `"keys": [`+firstRecord(t, valid)+`,`, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			s, err := apikey.OpenMemoryStore(path, apikey.StoreConfig{})
			assert.Nil(t, s)
			assert.ErrorIs(t, err, apikey.ErrCorruptFile)
			assert.Contains(t, err.Error(), path)
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.content, string(after), "a corrupt file is never overwritten")
		})
	}
}

// firstRecord cuts the first record out of a store file.
func firstRecord(t *testing.T, file []byte) string {
	s := string(file)
	start := strings.Index(s, `"keys": [`) + len(`"keys": [`)
	end := strings.Index(s[start:], "\n  }") + start + len("\n  }")
	require.Greater(t, end, start)
	return s[start:end]
}

func TestMemoryStoreAdd(t *testing.T) {
	ctx := context.Background()
	s := apikey.NewMemoryStore(apikey.StoreConfig{})
	var h apikey.Hasher
	k := &apikey.Key{ID: "key_import", Name: "imported", Environment: apikey.EnvLive}
	require.NoError(t, s.Add(ctx, h.Digest("kg_live_x"), k))
	assert.ErrorIs(t, s.Add(ctx, h.Digest("kg_live_y"), k), apikey.ErrInvalid, "duplicate id")
	assert.ErrorIs(t, s.Add(ctx, h.Digest("kg_live_x"), &apikey.Key{ID: "key_other"}), apikey.ErrInvalid, "duplicate digest")
	assert.ErrorIs(t, s.Add(ctx, h.Digest("kg_live_z"), &apikey.Key{}), apikey.ErrInvalid, "no id")
	assert.Equal(t, 1, s.Len())
	got, err := s.Lookup(ctx, h.Digest("kg_live_x"))
	require.NoError(t, err)
	assert.Equal(t, "imported", got.Name)
}

func TestMemoryStoreHonoursCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := apikey.NewMemoryStore(apikey.StoreConfig{})
	_, _, err := s.Create(ctx, apikey.KeySpec{Name: "x"})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.List(ctx, apikey.Filter{})
	assert.ErrorIs(t, err, context.Canceled)
}

// A usage batch whose file write fails is undone in memory, so that the
// recorder's retry of the same batch does not count it twice.
func TestMemoryStoreUsageUndoneWhenFileFails(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := apikey.OpenMemoryStore(path, apikey.StoreConfig{})
	require.NoError(t, err)
	k, _, err := s.Create(ctx, apikey.KeySpec{Name: "k"})
	require.NoError(t, err)
	batch := []apikey.Usage{{KeyID: k.ID, Environment: apikey.EnvLive, Count: 10, LastUsed: storetest.Epoch}}

	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700)) // the rename onto it fails
	assert.Error(t, s.RecordUsage(ctx, batch))
	got, err := s.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Zero(t, got.Requests, "undone")

	require.NoError(t, os.Remove(path))
	require.NoError(t, s.RecordUsage(ctx, batch))
	got, err = s.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 10, got.Requests, "counted once")
}
