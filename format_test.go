package apikey_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/presets"
)

// formatCase is a format with its prefixes ("" where it has none).
type formatCase struct {
	name       string
	format     *apikey.Format
	live, test string
	hasTest    bool
}

var formatCases = []formatCase{
	{"keygate", apikey.FormatDefault, "kg_live_", "kg_test_", true},
	{"stairoids", presets.FormatStairoids, "sk_live_", "sk_test_", true},
	{"stepsies", presets.FormatStepsies, "sk_", "", false},
	{"stax", presets.FormatStax, "", "", false},
	{"straply", presets.FormatStraply, "stp_live_", "stp_test_", true},
}

// environments returns the environments fc makes keys for, with their
// prefixes.
func (fc formatCase) environments() map[apikey.Environment]string {
	envs := map[apikey.Environment]string{apikey.EnvLive: fc.live}
	if fc.hasTest {
		envs[apikey.EnvTest] = fc.test
	}
	return envs
}

// formatKey makes a key of format f for env.
func formatKey(t testing.TB, f *apikey.Format, env apikey.Environment) string {
	t.Helper()
	is, err := apikey.KeyConfig{Formats: []*apikey.Format{f}}.NewKey(apikey.KeySpec{Name: "format", Environment: env})
	require.NoError(t, err)
	return is.Secret.Reveal()
}

// formatProblem returns the Problem of a *FormatError, or fails the test.
func formatProblem(t *testing.T, err error) string {
	t.Helper()
	var fe *apikey.FormatError
	require.True(t, errors.As(err, &fe), "want a *FormatError, got %v", err)
	assert.ErrorIs(t, err, apikey.ErrMalformedKey)
	return fe.Problem
}

func TestFormatRoundTrip(t *testing.T) {
	for _, fc := range formatCases {
		for env, prefix := range fc.environments() {
			t.Run(fc.name+"/"+env.String(), func(t *testing.T) {
				key := formatKey(t, fc.format, env)
				assert.True(t, strings.HasPrefix(key, prefix))
				got, err := fc.format.Parse(key)
				require.NoError(t, err)
				assert.Equal(t, env, got)
			})
		}
	}
}

func TestFormatLengths(t *testing.T) {
	tests := []struct {
		format *apikey.Format
		env    apikey.Environment
		total  int
		bits   string
	}{
		{apikey.FormatDefault, apikey.EnvLive, 44, "178.6 bits"},
		{presets.FormatStairoids, apikey.EnvTest, 40, "190.5 bits"},
		{presets.FormatStepsies, apikey.EnvLive, 51, "192.0 bits"},
		{presets.FormatStax, apikey.EnvLive, 40, "206.8 bits"},
		{presets.FormatStraply, apikey.EnvLive, 40, "160.3 bits"},
	}
	for _, tt := range tests {
		t.Run(apikey.Describe(tt.format), func(t *testing.T) {
			assert.Len(t, formatKey(t, tt.format, tt.env), tt.total)
			assert.Contains(t, apikey.Describe(tt.format), tt.bits)
			var bits float64
			_, err := fmt.Sscanf(tt.bits, "%f bits", &bits)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, bits, 128.0)
		})
	}
	assert.Equal(t, "keygate (30 random chars, 178.6 bits, checksum=true)", apikey.Describe(apikey.FormatDefault))
}

// The examples printed in the APIs' documentation.
func TestFormatDocumentedExamples(t *testing.T) {
	tests := []struct {
		name    string
		format  *apikey.Format
		key     string
		env     apikey.Environment
		problem string
	}{
		{"Stairoids curl example", presets.FormatStairoids, "sk_live_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", apikey.EnvLive, ""},
		// The Stairoids v2 curl line shortens the key to 12 characters: a
		// placeholder.
		{"Stairoids v2 shortened placeholder", presets.FormatStairoids, "sk_live_xxxxxxxxxxxx", 0, "length"},
		// Stepsies writes its placeholder with x, which is not hex.
		{"Stepsies placeholder", presets.FormatStepsies, "sk_" + strings.Repeat("x", 48), 0, "alphabet"},
		{"Stepsies hex", presets.FormatStepsies, "sk_" + strings.Repeat("0a", 24), apikey.EnvLive, ""},
		{"Stax.ai curl example", presets.FormatStax, "w3i21te088qskae7p54nt7gm48ajqb2606f5801s", apikey.EnvLive, ""},
		// Straply's example has 32 random characters (41 in all) although
		// the page says 31 (40 in all); the stated rule wins.
		{"Straply example is one too long", presets.FormatStraply, "stp_live_a1b2c3d4e5f6g7h8i9j0klmnopqrstuv", 0, "length"},
		{"Straply stated rule", presets.FormatStraply, "stp_live_a1b2c3d4e5f6g7h8i9j0klmnopqrstu", apikey.EnvLive, ""},
		{"Straply test prefix", presets.FormatStraply, "stp_test_a1b2c3d4e5f6g7h8i9j0klmnopqrstu", apikey.EnvTest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := tt.format.Parse(tt.key)
			if tt.problem != "" {
				assert.Equal(t, tt.problem, formatProblem(t, err))
				assert.Zero(t, env)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.env, env)
		})
	}
}

func TestFormatRejects(t *testing.T) {
	for _, fc := range formatCases {
		prefix := fc.live
		key := formatKey(t, fc.format, apikey.EnvLive)
		body := key[len(prefix):]
		tests := []struct {
			name    string
			key     string
			problem string
		}{
			{"empty", "", "empty"},
			{"10 KB", strings.Repeat("a", 10<<10), "too_long"},
			{"129 bytes", strings.Repeat("a", 129), "too_long"},
			{"one short", key[:len(key)-1], "length"},
			{"one long", key + "a", "length"},
			{"bad alphabet", prefix + "!" + body[1:], "alphabet"},
			{"non-ASCII", prefix + "é" + body[2:], "alphabet"},
			{"NUL", prefix + "\x00" + body[1:], "alphabet"},
			{"trailing newline", key[:len(key)-1] + "\n", "alphabet"},
		}
		if prefix != "" {
			tests = append(tests,
				struct {
					name    string
					key     string
					problem string
				}{"wrong prefix", "xx" + key[2:], "prefix"},
				struct {
					name    string
					key     string
					problem string
				}{"upper-case prefix", strings.ToUpper(prefix) + body, "prefix"},
			)
		}
		for _, tt := range tests {
			t.Run(fc.name+"/"+tt.name, func(t *testing.T) {
				env, err := fc.format.Parse(tt.key)
				assert.Zero(t, env)
				assert.Equal(t, tt.problem, formatProblem(t, err))
				assert.NotContains(t, err.Error(), body, "a format error never repeats the key")
				assert.NotContains(t, err.Error(), body[:8])
			})
		}
	}
}

func TestFormatChecksum(t *testing.T) {
	f := apikey.FormatDefault
	key := formatKey(t, f, apikey.EnvTest)

	// Every single-character substitution in the random part is caught.
	prefix := "kg_test_"
	for i := len(prefix); i < len(key)-6; i++ {
		repl := byte('a')
		if key[i] == 'a' {
			repl = 'b'
		}
		typo := key[:i] + string(repl) + key[i+1:]
		_, err := f.Parse(typo)
		assert.Equal(t, "checksum", formatProblem(t, err), "typo at %d", i)
	}
	// Swapping the environment breaks the checksum too: the prefix is covered.
	_, err := f.Parse("kg_live_" + key[len(prefix):])
	assert.Equal(t, "checksum", formatProblem(t, err))
	// A checksum over 2^32 cannot be produced by the format.
	_, err = f.Parse(key[:len(key)-6] + "zzzzzz")
	assert.Equal(t, "alphabet", formatProblem(t, err))
	_, err = f.Parse(key[:len(key)-6] + "00000!")
	assert.Equal(t, "alphabet", formatProblem(t, err))
}

func TestGenerateUniformAndUnique(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 keys")
	}
	const n = 100_000
	f := apikey.FormatDefault
	keys := apikey.KeyConfig{Formats: []*apikey.Format{f}}
	seen := make(map[string]struct{}, n)
	var counts [256]int
	for range n {
		is, err := keys.NewKey(apikey.KeySpec{Name: "n"})
		require.NoError(t, err)
		key := is.Secret.Reveal()
		_, dup := seen[key]
		require.False(t, dup, "duplicate key")
		seen[key] = struct{}{}
		_, err = f.Parse(key)
		require.NoError(t, err, "checksum of every key valid")
		for j := len("kg_live_"); j < len(key)-6; j++ {
			counts[key[j]]++
		}
	}
	// Every alphabet character is used, each close to its expected share
	// (n*30/62 ≈ 48,387; ±5% is over 20 standard deviations), and no other.
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	want := float64(n*30) / 62
	total := 0
	for _, c := range []byte(base62) {
		assert.InEpsilon(t, want, float64(counts[c]), 0.05, "character %q", c)
		total += counts[c]
	}
	assert.Equal(t, n*30, total, "only alphabet characters")
}

func TestNewFormatValidation(t *testing.T) {
	ok := apikey.FormatConfig{Name: "x", LivePrefix: "x_live_", TestPrefix: "x_test_", Alphabet: "abcdefghijklmnopqrstuvwxyz", Length: 22}
	tests := []struct {
		name   string
		mutate func(*apikey.FormatConfig)
	}{
		{"no name", func(c *apikey.FormatConfig) { c.Name = "" }},
		{"test prefix without live prefix", func(c *apikey.FormatConfig) { c.LivePrefix = "" }},
		{"overlapping prefixes", func(c *apikey.FormatConfig) { c.LivePrefix, c.TestPrefix = "sk_", "sk_test_" }},
		{"same prefixes", func(c *apikey.FormatConfig) { c.LivePrefix = c.TestPrefix }},
		{"space in prefix", func(c *apikey.FormatConfig) { c.LivePrefix = "x live_" }},
		{"non-ASCII prefix", func(c *apikey.FormatConfig) { c.LivePrefix = "é_" }},
		{"no alphabet", func(c *apikey.FormatConfig) { c.Alphabet = "" }},
		{"tiny alphabet", func(c *apikey.FormatConfig) { c.Alphabet = "a" }},
		{"repeated character", func(c *apikey.FormatConfig) { c.Alphabet = "abca" }},
		{"space in alphabet", func(c *apikey.FormatConfig) { c.Alphabet = "ab c" }},
		{"non-ASCII alphabet", func(c *apikey.FormatConfig) { c.Alphabet = "abcé" }},
		{"too short", func(c *apikey.FormatConfig) { c.Length = 8 }},
		{"one too short", func(c *apikey.FormatConfig) { c.Length = 15 }},
		{"too long", func(c *apikey.FormatConfig) { c.Length = 200 }},
		{"too long with its checksum", func(c *apikey.FormatConfig) { c.Length, c.Checksum = 128-len("x_live_")-5, true }},
	}
	_, err := apikey.NewFormat(ok)
	require.NoError(t, err)
	for _, edit := range []func(*apikey.FormatConfig){
		func(c *apikey.FormatConfig) { c.TestPrefix = "" },                   // live keys only
		func(c *apikey.FormatConfig) { c.LivePrefix, c.TestPrefix = "", "" }, // no prefix at all
		func(c *apikey.FormatConfig) { c.Length = 16 },
		func(c *apikey.FormatConfig) { c.Length, c.Checksum = 128-len("x_live_")-6, true },
	} {
		c := ok
		edit(&c)
		_, err := apikey.NewFormat(c)
		assert.NoError(t, err, "%+v", c)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			f, err := apikey.NewFormat(c)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
		})
	}
}

// A format of one's own makes and checks keys like the shipped ones.
func TestCustomFormat(t *testing.T) {
	f, err := apikey.NewFormat(apikey.FormatConfig{Name: "acme", LivePrefix: "acme_", Alphabet: "0123456789abcdef", Length: 40, Checksum: true})
	require.NoError(t, err)
	key := formatKey(t, f, apikey.EnvLive)
	assert.Len(t, key, len("acme_")+40+6)
	env, err := f.Parse(key)
	require.NoError(t, err)
	assert.Equal(t, apikey.EnvLive, env)
	_, err = f.Parse(flipChecksum(key))
	assert.Equal(t, "checksum", formatProblem(t, err))
	assert.Contains(t, apikey.Describe(f), "160.0 bits")
	_, err = apikey.KeyConfig{Formats: []*apikey.Format{f}}.NewKey(apikey.KeySpec{Name: "n", Environment: apikey.EnvTest})
	assert.ErrorIs(t, err, apikey.ErrInvalid, "a format without a test prefix makes no test keys")
}

// With several formats, keys are made in the first and accepted in any;
// a credential of none is rejected before the store.
func TestSeveralFormats(t *testing.T) {
	keys, _ := testKeys()
	keys.Formats = []*apikey.Format{presets.FormatStairoids, apikey.FormatDefault}
	store := newMemoryStore(t, keys)
	_, sec, err := store.Create(t.Context(), apikey.KeySpec{Name: "n"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(sec.Reveal(), "sk_live_"), "made in the first format")

	defaultKeys := keys
	defaultKeys.Formats = []*apikey.Format{apikey.FormatDefault}
	imported, err := defaultKeys.NewKey(apikey.KeySpec{Name: "imported"})
	require.NoError(t, err)
	require.NoError(t, store.Add(t.Context(), keys.Digest(imported.Secret.Reveal()), imported.Key))

	mw := newMiddleware(t, apikey.Config{Keys: keys, Store: store})
	for _, c := range []string{sec.Reveal(), imported.Secret.Reveal()} {
		_, err := mw.Verify(t.Context(), c)
		assert.NoError(t, err)
	}
	for c, want := range map[string]string{
		flipChecksum(imported.Secret.Reveal()): "checksum", // the error of the format whose prefix matched
		"nope":                                 "prefix",
		formatKey(t, presets.FormatStraply, apikey.EnvLive): "prefix",
	} {
		_, err := mw.Verify(t.Context(), c)
		var ae apikey.AuthError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, apikey.ReasonMalformed, ae.Reason)
		assert.Equal(t, want, formatProblem(t, err))
	}
}

func TestFormatParseDoesNotAllocate(t *testing.T) {
	good, bad, huge := formatKey(t, apikey.FormatDefault, apikey.EnvLive), "kg_live_!!", strings.Repeat("a", 1<<20)
	typo := flipChecksum(good)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = apikey.FormatDefault.Parse(good)
		_, _ = apikey.FormatDefault.Parse(bad)
		_, _ = apikey.FormatDefault.Parse(huge)
		_, _ = apikey.FormatDefault.Parse(typo)
	})
	assert.Zero(t, allocs)
}

func TestFormatHint(t *testing.T) {
	is, err := presets.Straply.Keys().NewKey(apikey.KeySpec{Name: "n", Environment: apikey.EnvTest})
	require.NoError(t, err)
	key := is.Secret.Reveal()
	assert.Equal(t, "stp_test_…"+key[len(key)-4:], is.Key.Hint)
	assert.NotContains(t, is.Key.Hint, key[9:len(key)-4], "the hint shows no more than four characters")

	is, err = presets.Stax.Keys().NewKey(apikey.KeySpec{Name: "n"})
	require.NoError(t, err)
	key = is.Secret.Reveal()
	assert.Equal(t, "…"+key[len(key)-4:], is.Key.Hint, "a format without a prefix")
}
