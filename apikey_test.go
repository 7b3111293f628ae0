package apikey_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/presets"
	"github.com/keygate/apikey/storetest"
)

func TestSecretIsRedacted(t *testing.T) {
	is, err := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}.NewKey(apikey.KeySpec{Name: "n"})
	require.NoError(t, err)
	s := is.Secret
	plain := s.Reveal()
	require.Len(t, plain, 44)
	for _, out := range formatEveryWay(t, s) {
		assert.NotContains(t, out, plain)
		assert.NotContains(t, out, plain[8:20])
	}
	for _, out := range formatEveryWay(t, &s) {
		assert.NotContains(t, out, plain)
		assert.NotContains(t, out, plain[8:20])
	}
	for _, out := range formatEveryWay(t, is) {
		assert.NotContains(t, out, plain)
		assert.NotContains(t, out, plain[8:20])
	}
	for _, verb := range []string{"%v", "%+v", "%s", "%q", "%x", "%X", "%d"} {
		assert.Equal(t, "[REDACTED]", fmt.Sprintf(verb, s), verb)
	}
	assert.Equal(t, "apikey.Secret{[REDACTED]}", fmt.Sprintf("%#v", s))
	assert.Equal(t, "[REDACTED]", s.String())
	assert.Contains(t, slogText(s), "v=[REDACTED]")
	assert.Empty(t, apikey.Secret{}.Reveal(), "the zero Secret holds nothing")
}

func TestKeyPrintsNoSecretMaterial(t *testing.T) {
	keys, _ := testKeys()
	store := newMemoryStore(t, keys)
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
	assert.Equal(t, "kg_live_…"+s.Reveal()[len(s.Reveal())-4:], k.Hint)
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
		{"rolled, in its grace period", apikey.Key{RolledTo: "key_next", ExpiresAt: now.Add(time.Minute)}, apikey.StateActive},
		{"rolled, grace over", apikey.Key{RolledTo: "key_next", ExpiresAt: now}, apikey.StateRolled},
		{"rolled and revoked", apikey.Key{RolledTo: "key_next", ExpiresAt: now.Add(-time.Hour), RevokedAt: now}, apikey.StateRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.key.State(now))
		})
	}
	for s, want := range map[apikey.State]string{
		0: "any", apikey.StateActive: "active", apikey.StateRevoked: "revoked",
		apikey.StateExpired: "expired", apikey.StateRolled: "rolled", 9: "state(9)",
	} {
		assert.Equal(t, want, s.String())
	}
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
	for s, want := range map[string]apikey.Environment{"live": apikey.EnvLive, "test": apikey.EnvTest, "": 0} {
		var e apikey.Environment
		require.NoError(t, e.UnmarshalText([]byte(s)))
		assert.Equal(t, want, e)
		assert.Equal(t, s, e.String())
	}
	var e apikey.Environment
	assert.ErrorIs(t, e.UnmarshalText([]byte("prod")), apikey.ErrInvalid)
	assert.ErrorIs(t, e.UnmarshalText([]byte("LIVE")), apikey.ErrInvalid)
	assert.Equal(t, "environment(9)", apikey.Environment(9).String())
	_, err := json.Marshal(apikey.Environment(9))
	assert.ErrorIs(t, err, apikey.ErrInvalid)
}

// Key IDs are "key_" and a UUIDv7 in lowercase Crockford base32, 13 digits
// per 64-bit half, so they sort by creation time.
func TestKeyIDs(t *testing.T) {
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	var ids []string
	for range 100 {
		is, err := keys.NewKey(apikey.KeySpec{Name: "n"})
		require.NoError(t, err)
		assert.Regexp(t, `^key_[0-9a-f][0-9a-hjkmnp-tv-z]{12}[0-9a-f][0-9a-hjkmnp-tv-z]{12}$`, is.Key.ID)
		ids = append(ids, is.Key.ID)
	}
	assert.True(t, slices.IsSorted(ids), "IDs sort by creation time")
	assert.Len(t, slices.Compact(ids), 100, "IDs are unique")
}

// NewKey makes a key in the first format and files nothing; its digest is
// KeyConfig.Digest of the secret.
func TestNewKey(t *testing.T) {
	keys, _ := testKeys()
	is, err := keys.NewKey(apikey.KeySpec{
		Name: "n", Environment: apikey.EnvTest, Scopes: []apikey.Scope{"admin"}, Owner: "o",
		Metadata: map[string]string{"plan": "pro"}, ExpiresAt: storetest.Epoch.Add(time.Hour),
	})
	require.NoError(t, err)
	env, err := apikey.FormatDefault.Parse(is.Secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, apikey.EnvTest, env)
	assert.Equal(t, keys.Digest(is.Secret.Reveal()), is.Digest)
	assert.Equal(t, apikey.EnvTest, is.Key.Environment)
	assert.Equal(t, []apikey.Scope{"admin"}, is.Key.Scopes)
	assert.Equal(t, "pro", is.Key.Metadata["plan"])
	assert.Equal(t, storetest.Epoch, is.Key.CreatedAt, "times come from the KeyConfig's clock")
	assert.Empty(t, is.Key.PepperID)

	live, err := keys.NewKey(apikey.KeySpec{Name: "n"})
	require.NoError(t, err)
	assert.Equal(t, apikey.EnvLive, live.Key.Environment, "live by default")

	tests := []struct {
		name string
		keys apikey.KeyConfig
		spec apikey.KeySpec
	}{
		{"no formats", apikey.KeyConfig{}, apikey.KeySpec{Name: "n"}},
		{"a nil format", apikey.KeyConfig{Formats: []*apikey.Format{nil}}, apikey.KeySpec{Name: "n"}},
		{"a zero Format", apikey.KeyConfig{Formats: []*apikey.Format{{}}}, apikey.KeySpec{Name: "n"}},
		{"zero pepper", apikey.KeyConfig{Formats: keys.Formats, Peppers: []apikey.Pepper{{}}}, apikey.KeySpec{Name: "n"}},
		{"test key in a format without test keys", presets.Stepsies.Keys(), apikey.KeySpec{Name: "n", Environment: apikey.EnvTest}},
		{"unknown environment", keys, apikey.KeySpec{Name: "n", Environment: 3}},
		{"no name", keys, apikey.KeySpec{}},
		{"long name", keys, apikey.KeySpec{Name: strings.Repeat("n", 201)}},
		{"undeclared scope", keys, apikey.KeySpec{Name: "n", Scopes: []apikey.Scope{"delete"}}},
		{"expiry now", keys, apikey.KeySpec{Name: "n", ExpiresAt: storetest.Epoch}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.keys.NewKey(tt.spec)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
		})
	}
}
