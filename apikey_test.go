package apikey_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

func slogText(v any) string {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
	return buf.String()
}

func TestSecretIsRedacted(t *testing.T) {
	s, err := apikey.Generate(apikey.FormatDefault, apikey.EnvLive)
	require.NoError(t, err)
	plain := s.Reveal()
	require.NotEmpty(t, plain)
	for _, out := range formatEveryWay(t, s) {
		assert.NotContains(t, out, plain)
		assert.NotContains(t, out, plain[8:20])
	}
	for _, out := range formatEveryWay(t, &s) {
		assert.NotContains(t, out, plain)
	}
	text, err := s.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "[REDACTED]", string(text))
	assert.False(t, s.IsZero())
	assert.True(t, apikey.Secret{}.IsZero())
	assert.Equal(t, "x", apikey.NewSecret("x").Reveal())
}

func TestKeyPrintsNoSecretMaterial(t *testing.T) {
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	k, s, err := store.Create(t.Context(), apikey.KeySpec{Name: "n", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	for _, out := range formatEveryWay(t, k) {
		assert.NotContains(t, out, s.Reveal())
		assert.NotContains(t, out, s.Reveal()[8:30])
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("auth", "key", k)
	assert.Contains(t, buf.String(), k.ID)
	assert.Contains(t, buf.String(), k.Hint)
}

func TestKeyState(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		key  apikey.Key
		want apikey.State
	}{
		{"active", apikey.Key{}, apikey.StateActive},
		{"expires later", apikey.Key{ExpiresAt: now.Add(time.Second)}, apikey.StateActive},
		{"expires now", apikey.Key{ExpiresAt: now}, apikey.StateExpired},
		{"revoked", apikey.Key{RevokedAt: now.Add(-time.Hour)}, apikey.StateRevoked},
		{"revoked and expired", apikey.Key{RevokedAt: now, ExpiresAt: now.Add(-time.Hour)}, apikey.StateRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.key.State(now))
		})
	}
	assert.Equal(t, "active", apikey.StateActive.String())
	assert.Equal(t, "any", apikey.StateAny.String())
}

func TestKeyCloneIsDeep(t *testing.T) {
	k := &apikey.Key{Scopes: []apikey.Scope{"read"}, Metadata: map[string]string{"a": "b"}}
	c := k.Clone()
	c.Scopes[0] = "write"
	c.Metadata["a"] = "z"
	assert.Equal(t, apikey.Scope("read"), k.Scopes[0])
	assert.Equal(t, "b", k.Metadata["a"])
}

func TestEnvironmentText(t *testing.T) {
	for _, e := range []apikey.Environment{apikey.EnvLive, apikey.EnvTest, 0} {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		var back apikey.Environment
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, e, back)
	}
	var e apikey.Environment
	assert.ErrorIs(t, e.UnmarshalText([]byte("prod")), apikey.ErrInvalid)
	assert.Equal(t, "environment(9)", apikey.Environment(9).String())
}

func TestNewKeyID(t *testing.T) {
	a, err := apikey.NewKeyID()
	require.NoError(t, err)
	b, err := apikey.NewKeyID()
	require.NoError(t, err)
	assert.Regexp(t, `^key_[0-7][0-9a-hjkmnp-tv-z]{25}$`, a)
	assert.NotEqual(t, a, b)
	assert.Less(t, a, b, "IDs sort by creation time")
}
