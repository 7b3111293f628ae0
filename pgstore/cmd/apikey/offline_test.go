package main

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/presets"
)

// newSecret makes a key of the format without a store.
func newSecret(t *testing.T, keys apikey.KeyConfig, env apikey.Environment) string {
	t.Helper()
	is, err := keys.NewKey(apikey.KeySpec{Name: "k", Environment: env})
	require.NoError(t, err)
	return is.Secret.Reveal()
}

// flipChecksum changes the last character of a key, part of its checksum.
func flipChecksum(key string) string {
	last := key[len(key)-1]
	flipped := byte('A')
	if last == 'A' {
		flipped = 'B'
	}
	return key[:len(key)-1] + string(flipped)
}

// check tells, offline, whether a string is one of our keys; the key is
// never printed.
func TestCheck(t *testing.T) {
	live := newSecret(t, testKeys, apikey.EnvLive)
	test := newSecret(t, testKeys, apikey.EnvTest)
	stepsies := newSecret(t, presets.Stepsies.Keys(), apikey.EnvLive)
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  []string // in stdout
	}{
		{"our live key", "", []string{"check", live}, 0, []string{"default", "live", "valid", "ours"}},
		{"our test key", "", []string{"check", test}, 0, []string{"test", "valid"}},
		{"from stdin", live + "\n", []string{"check", "-"}, 0, []string{"live", "valid"}},
		{"from stdin, no newline", live, []string{"check", "-"}, 0, []string{"live"}},
		{"a random string", "", []string{"check", "hello-world-not-a-key"}, 1, []string{"bad prefix", "not ours"}},
		{"a flipped checksum", "", []string{"check", flipChecksum(live)}, 1, []string{"bad checksum", "INVALID", "not ours"}},
		{"a truncated key", "", []string{"check", live[:len(live)-3]}, 1, []string{"bad length", "not ours"}},
		{"another format's key", "", []string{"check", stepsies}, 1, []string{"looks like", "stepsies", "not ours"}},
		{"a preset's own key", "", []string{"check", "--format", "stepsies", stepsies}, 0, []string{"stepsies", "none in this format", "ours"}},
		{"empty stdin", "", []string{"check", "-"}, 2, nil},
		{"no argument", "", []string{"check"}, 2, nil},
		{"unknown format", "", []string{"check", "--format", "nope", live}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTool(t, "") // no store: check is offline
			r := tl.run(tt.stdin, tt.args...)
			assert.Equal(t, tt.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			for _, w := range tt.want {
				assert.Contains(t, r.stdout, w)
			}
			for _, key := range []string{live, test, stepsies, flipChecksum(live)} {
				assert.NotContains(t, r.stdout+r.stderr, key, "the key is never printed")
			}
		})
	}
}

// pepper prints id:base64 of 32 random bytes, which APIKEY_PEPPERS takes.
func TestPepper(t *testing.T) {
	tl := newTool(t, "file:"+t.TempDir()+"/keys.json")
	out := tl.ok("pepper", "--id", "p1")
	id, b64, ok := strings.Cut(strings.TrimSuffix(out, "\n"), ":")
	require.True(t, ok, out)
	assert.Equal(t, "p1", id)
	secret, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	assert.Len(t, secret, 32)
	assert.NotContains(t, tl.stderrs[0], b64)

	other := tl.ok("pepper")
	assert.Regexp(t, `^p\d{8}:`, other, "the default id is p and the date")
	assert.NotEqual(t, out, other, "random")

	// The tool files keys under the first pepper of APIKEY_PEPPERS.
	tl.env[envPeppers] = strings.TrimSpace(out) + "," + strings.TrimSpace(other)
	tl.secret("create", "--name", "peppered")
	var keys []apikey.Key
	tl.okJSON(&keys, "list", "--json")
	require.Len(t, keys, 1)
	assert.Equal(t, "p1", keys[0].PepperID)

	assert.Equal(t, 2, tl.run("", "pepper", "--id", "a:b").code)
}

// parsePeppers's errors never hold a pepper.
func TestParsePeppers(t *testing.T) {
	good := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	short := base64.StdEncoding.EncodeToString([]byte("tooshort-secret"))
	tests := []struct {
		env     string
		wantErr bool
		ids     int
	}{
		{"", false, 0},
		{"a:" + good, false, 1},
		{"a:" + good + ", b:" + strings.TrimRight(good, "="), false, 2},
		{"a:" + short, true, 0},
		{"a" + good, true, 0},
		{"a:!!" + good, true, 0},
		{"a:" + good + ",a:" + good, false, 2}, // KeyConfig.Check refuses the duplicate
	}
	for _, tt := range tests {
		peppers, err := parsePeppers(tt.env)
		if tt.wantErr {
			require.Error(t, err, tt.env)
			assert.NotContains(t, err.Error(), good)
			assert.NotContains(t, err.Error(), short)
			assert.Equal(t, exitUsage, exitCode(err))
			continue
		}
		require.NoError(t, err, tt.env)
		assert.Len(t, peppers, tt.ids)
	}
	tl := newTool(t, "file:"+t.TempDir()+"/keys.json")
	tl.env[envPeppers] = "a:" + good + ",a:" + good
	r := tl.run("", "create", "--name", "x")
	assert.Equal(t, 2, r.code, "a duplicate pepper id is a usage error")
	assert.NotContains(t, r.stderr, good)
}

// migrate --print writes pgstore's migrations in order, without a store.
func TestMigratePrint(t *testing.T) {
	out := newTool(t, "").ok("migrate", "--print")
	assert.Contains(t, out, "CREATE TABLE apikey_keys")
	first := strings.Index(out, "0001_keys.up.sql")
	fourth := strings.Index(out, "0004_disabled_and_audit.up.sql")
	require.True(t, first >= 0 && fourth > first, "in order")
	assert.Less(t, strings.Index(out, "CREATE TABLE apikey_keys"), strings.Index(out, "apikey_audit"))
}
