package legacy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/legacy"
)

func TestReadRecords(t *testing.T) {
	const good = `{"key":{"id":"key_1","name":"one","scopes":["read"],"environment":"test"},"prefix":"lg_1_","scheme":"django-pbkdf2-sha256","hash":"pbkdf2_sha256$260000$TD5ZNV3TarerZYOlVfBhLX$DEKbcUbOUeRqUa33dCxjTOpNI8ro7w6FcFtA6r/h42Y="}`
	records, err := legacy.ReadRecords(strings.NewReader(good + "\n\n" + strings.Replace(strings.Replace(good, "key_1", "key_2", 1), "lg_1_", "lg_2_", 1) + "\n"))
	require.NoError(t, err)
	require.Len(t, records, 2)
	assert.Equal(t, "key_1", records[0].Key.ID)
	assert.Equal(t, apikey.EnvTest, records[0].Key.Environment)

	sub := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	const secretHash = "DEKbcUbOUeRqUa33dCxjTOpNI8ro7w6FcFtA6r"
	tests := []struct{ name, input, want string }{
		{"bad JSON", "{", "line 1: apikey: invalid input: not a record"},
		{"bad JSON, later line", good + "\n[1]", "line 2: "},
		{"unknown field", sub(`"prefix"`, `"prefx"`), `unknown field "prefx"`},
		{"two values", good + good, "more than one JSON value"},
		{"unknown scheme", sub("django-pbkdf2-sha256", "md5"), `scheme "md5" is not one of argon2id, bcrypt,`},
		{"empty hash", sub(`"hash":"pbkdf2`, `"hash":"","x":"`), "unknown field \"x\""},
		{"bad hash", sub("$260000$", "$26x000$"), "bad iterations"},
		{"hash too short", sub("h42Y=", ""), "bad hash"},
		{"iterations over the bound", sub("$260000$", "$99999999$"), "over 10000000"},
		{"no prefix", sub(`"lg_1_"`, `""`), "needs a prefix of at least 4 bytes"},
		{"bad id", sub(`"key_1"`, `"key 1"`), "must be 1 to 128 visible ASCII"},
		{"bad scope", sub(`"read"`, `"Read"`), "not a valid scope name"},
		{"bad environment", sub(`"test"`, `"prod"`), "line 1"},
		{"duplicate id", good + "\n" + sub("lg_1_", "lg_9_"), "line 2: apikey: invalid input: key id key_1 is also on line 1"},
		{"same prefix", good + "\n" + sub("key_1", "key_2"), "line 2: apikey: invalid input: key key_2 has the same lookup prefix as line 1"},
		{"prefix begins another", good + "\n" + strings.Replace(sub("lg_1_", "lg_1_ab"), "key_1", "key_2", 1), "line 1: apikey: invalid input: the lookup prefix of key key_1 begins that of key key_2 (line 2)"},
		{"drf prefix with a dot", strings.Replace(sub("django-pbkdf2-sha256", "drf-api-key"), "lg_1_", "lg.1", 1), "the part of the key before the dot"},
		{"line too long", strings.Repeat(" ", 2<<20) + "x", "line 1: apikey: invalid input: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := legacy.ReadRecords(strings.NewReader(tt.input))
			require.Error(t, err)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), secretHash, "no hash in errors")
		})
	}
}

// New checks what ReadRecords checks, names Config.Records[i], and also
// the scopes the KeyConfig declares.
func TestNewChecks(t *testing.T) {
	rec, _ := cheapRecord(t, "key_a")
	e := newEnv(t, legacy.Config{})
	_, err := legacy.New(nil, legacy.Config{Keys: e.keys})
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = legacy.New(e.store, legacy.Config{})
	assert.ErrorContains(t, err, "Config.Keys")
	_, err = legacy.New(e.store, legacy.Config{Keys: e.keys, MaxSlowPerSecond: -1})
	assert.ErrorContains(t, err, "Config.MaxSlowPerSecond is negative")

	undeclared := rec
	undeclared.Key.Scopes = []apikey.Scope{"admin"}
	_, err = legacy.New(e.store, legacy.Config{Keys: e.keys, Records: []legacy.Record{rec, undeclared}})
	assert.ErrorContains(t, err, `Config.Records[1]: apikey: invalid input: key key_a: scope "admin" is not declared in KeyConfig.Scopes`)

	same := legacy.Record{Key: keyOf("key_b"), Scheme: legacy.SchemePlaintext, Hash: "same-plaintext-key"}
	other := same
	other.Key.ID = "key_c"
	_, err = legacy.New(e.store, legacy.Config{Keys: e.keys, Records: []legacy.Record{same, other}})
	assert.ErrorContains(t, err, "Config.Records[1]: apikey: invalid input: key key_c has the same key (same hash) as Config.Records[0]")
	assert.NotContains(t, err.Error(), "same-plaintext-key")
}

// Hostile hashes are refused at load, never run: parameters that would
// cost gigabytes or minutes, and malformed encodings.
func TestHostileHashes(t *testing.T) {
	for _, h := range []struct{ scheme, hash string }{
		{legacy.SchemeBcrypt, "$2b$31$" + strings.Repeat("a", 53)},
		{legacy.SchemeBcrypt, "$2x$10$" + strings.Repeat("a", 53)},
		{legacy.SchemeBcrypt, "$2b$10$" + strings.Repeat("!", 53)},
		{legacy.SchemeArgon2id, "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"},
		{legacy.SchemeArgon2id, "$argon2id$v=19$m=65536,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"},
		{legacy.SchemeArgon2id, "$argon2id$v=19$m=65536,t=1,p=255$c2FsdHNhbHQ$aGFzaGhhc2g"},
		{legacy.SchemeArgon2id, "$argon2id$v=16$m=65536,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"},
		{legacy.SchemeArgon2id, "$argon2i$v=19$m=65536,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"},
		{legacy.SchemeArgon2id, "$argon2id$v=19$m=65536,t=1,p=1$c2Fs$aGFzaGhhc2g"},
		{legacy.SchemeArgon2id, "$argon2id$v=19$m=65536,t=1$c2FsdHNhbHQ$aGFzaGhhc2g"},
		{legacy.SchemeDjangoPBKDF2, "pbkdf2_sha256$0$salt$DEKbcUbOUeRqUa33dCxjTOpNI8ro7w6FcFtA6r/h42Y="},
		{legacy.SchemeDjangoPBKDF2, "pbkdf2_sha1$1000$salt$DEKbcUbOUeRqUa33dCxjTOpNI8ro7w6FcFtA6r/h42Y="},
		{legacy.SchemeDRF, "sha512$$abcd"},
		{legacy.SchemeDRF, "md5$$abcd"},
		{legacy.SchemeUnkey, "not base64!"},
		{legacy.SchemeUnkey, "aGFzaA=="},
	} {
		rec := legacy.Record{Key: keyOf("key_h"), Prefix: "lg_h_", Scheme: h.scheme, Hash: h.hash}
		line := fmt.Sprintf(`{"key":{"id":"key_h","name":"h"},"prefix":"lg_h_","scheme":%q,"hash":%q}`, h.scheme, h.hash)
		_, err := legacy.ReadRecords(strings.NewReader(line))
		assert.ErrorIs(t, err, apikey.ErrInvalid, "%s %s", h.scheme, h.hash)
		e := newEnv(t, legacy.Config{})
		_, err = legacy.New(e.store, legacy.Config{Keys: e.keys, Records: []legacy.Record{rec}})
		assert.True(t, errors.Is(err, apikey.ErrInvalid), "%s %s: %v", h.scheme, h.hash, err)
	}
}
