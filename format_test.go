package apikey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

var allFormats = []*apikey.Format{
	apikey.FormatDefault, apikey.FormatStairoids, apikey.FormatStepsies,
	apikey.FormatStax, apikey.FormatStraply,
}

func TestFormatRoundTrip(t *testing.T) {
	for _, f := range allFormats {
		for _, p := range f.Prefixes() {
			t.Run(f.Name()+"/"+p.Environment.String(), func(t *testing.T) {
				s, err := apikey.Generate(f, p.Environment)
				require.NoError(t, err)
				key := s.Reveal()
				assert.True(t, strings.HasPrefix(key, p.Prefix))
				env, err := f.Parse(key)
				require.NoError(t, err)
				assert.Equal(t, p.Environment, env)
			})
		}
	}
}

func TestFormatLengths(t *testing.T) {
	tests := []struct {
		format *apikey.Format
		env    apikey.Environment
		total  int
		bits   float64
	}{
		{apikey.FormatDefault, apikey.EnvLive, 44, 178.6},
		{apikey.FormatStairoids, apikey.EnvTest, 40, 190.5},
		{apikey.FormatStepsies, apikey.EnvLive, 51, 192},
		{apikey.FormatStax, apikey.EnvLive, 40, 206.8},
		{apikey.FormatStraply, apikey.EnvLive, 40, 160.3},
	}
	for _, tt := range tests {
		t.Run(tt.format.Name(), func(t *testing.T) {
			s, err := apikey.Generate(tt.format, tt.env)
			require.NoError(t, err)
			assert.Len(t, s.Reveal(), tt.total)
			assert.InDelta(t, tt.bits, tt.format.EntropyBits(), 0.05)
			assert.GreaterOrEqual(t, tt.format.EntropyBits(), 128.0)
		})
	}
}

// The examples printed in the seed documents.
func TestFormatSeedExamples(t *testing.T) {
	tests := []struct {
		name   string
		format *apikey.Format
		key    string
		env    apikey.Environment
		err    error
	}{
		{"000 curl example", apikey.FormatStairoids, "sk_live_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", apikey.EnvLive, nil},
		// 001's curl line shortens the key to 12 characters: a placeholder.
		{"001 shortened placeholder", apikey.FormatStairoids, "sk_live_xxxxxxxxxxxx", 0, apikey.ErrKeyLength},
		// 002 writes its placeholder with x, which is not hex.
		{"002 placeholder", apikey.FormatStepsies, "sk_" + strings.Repeat("x", 48), 0, apikey.ErrKeyAlphabet},
		{"002 hex", apikey.FormatStepsies, "sk_" + strings.Repeat("0a", 24), apikey.EnvLive, nil},
		{"003 curl example", apikey.FormatStax, "w3i21te088qskae7p54nt7gm48ajqb2606f5801s", apikey.EnvLive, nil},
		// 004's example has 32 random characters (41 in all) although the
		// page says 31 (40 in all); the stated rule wins.
		{"004 example is one too long", apikey.FormatStraply, "stp_live_a1b2c3d4e5f6g7h8i9j0klmnopqrstuv", 0, apikey.ErrKeyLength},
		{"004 stated rule", apikey.FormatStraply, "stp_live_a1b2c3d4e5f6g7h8i9j0klmnopqrstu", apikey.EnvLive, nil},
		{"004 test prefix", apikey.FormatStraply, "stp_test_a1b2c3d4e5f6g7h8i9j0klmnopqrstu", apikey.EnvTest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := tt.format.Parse(tt.key)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				assert.ErrorIs(t, err, apikey.ErrMalformedKey)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.env, env)
		})
	}
}

func TestFormatRejects(t *testing.T) {
	for _, f := range allFormats {
		p := f.Prefixes()[0]
		good, err := apikey.Generate(f, p.Environment)
		require.NoError(t, err)
		key := good.Reveal()
		body := key[len(p.Prefix):]
		wrongChar := "!"
		tests := []struct {
			name string
			key  string
			err  error
		}{
			{"empty", "", apikey.ErrKeyEmpty},
			{"10 KB", strings.Repeat("a", 10<<10), apikey.ErrKeyTooLong},
			{"one short", key[:len(key)-1], apikey.ErrKeyLength},
			{"one long", key + "a", apikey.ErrKeyLength},
			{"bad alphabet", p.Prefix + wrongChar + body[1:], apikey.ErrKeyAlphabet},
			{"non-ASCII", p.Prefix + "é" + body[2:], apikey.ErrKeyAlphabet},
			{"NUL", p.Prefix + "\x00" + body[1:], apikey.ErrKeyAlphabet},
			{"trailing newline", key[:len(key)-1] + "\n", apikey.ErrKeyAlphabet},
		}
		if p.Prefix != "" {
			tests = append(tests,
				struct {
					name string
					key  string
					err  error
				}{"wrong prefix", "xx" + key[2:], apikey.ErrKeyPrefix},
				struct {
					name string
					key  string
					err  error
				}{"upper-case prefix", strings.ToUpper(p.Prefix) + body, apikey.ErrKeyPrefix},
			)
		}
		for _, tt := range tests {
			t.Run(f.Name()+"/"+tt.name, func(t *testing.T) {
				env, err := f.Parse(tt.key)
				assert.Zero(t, env)
				assert.ErrorIs(t, err, tt.err)
				assert.ErrorIs(t, err, apikey.ErrMalformedKey)
				var fe *apikey.FormatError
				require.True(t, errors.As(err, &fe))
				assert.NotContains(t, err.Error(), body, "a format error never repeats the key")
			})
		}
	}
}

func TestFormatChecksum(t *testing.T) {
	f := apikey.FormatDefault
	s, err := apikey.Generate(f, apikey.EnvTest)
	require.NoError(t, err)
	key := s.Reveal()

	// Every single-character substitution in the random part is caught.
	prefix := "kg_test_"
	for i := len(prefix); i < len(key)-6; i++ {
		c := key[i]
		repl := byte('a')
		if c == 'a' {
			repl = 'b'
		}
		typo := key[:i] + string(repl) + key[i+1:]
		_, err := f.Parse(typo)
		assert.ErrorIs(t, err, apikey.ErrKeyChecksum, "typo at %d", i)
	}
	// Swapping the environment breaks the checksum too: the prefix is covered.
	_, err = f.Parse("kg_live_" + key[len(prefix):])
	assert.ErrorIs(t, err, apikey.ErrKeyChecksum)
	// A checksum over 2^32 cannot be produced by Generate.
	_, err = f.Parse(key[:len(key)-6] + "zzzzzz")
	assert.ErrorIs(t, err, apikey.ErrKeyAlphabet)
}

func TestGenerateUniformAndUnique(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 keys")
	}
	const n = 100_000
	f := apikey.FormatDefault
	seen := make(map[string]struct{}, n)
	var counts [256]int
	for i := 0; i < n; i++ {
		s, err := apikey.Generate(f, apikey.EnvLive)
		require.NoError(t, err)
		key := s.Reveal()
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
	// (n*30/62 ≈ 48,387; ±5% is over 20 standard deviations).
	want := float64(n*30) / 62
	for _, c := range []byte(apikey.AlphabetBase62) {
		assert.InEpsilon(t, want, float64(counts[c]), 0.05, "character %q", c)
	}
}

func TestGenerateNeedsPrefixForEnvironment(t *testing.T) {
	_, err := apikey.Generate(apikey.FormatStepsies, apikey.EnvTest)
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = apikey.Generate(nil, apikey.EnvLive)
	assert.ErrorIs(t, err, apikey.ErrInvalid)
}

func TestNewFormatValidation(t *testing.T) {
	ok := apikey.FormatSpec{Name: "x", Prefixes: []apikey.Prefix{{Prefix: "x_", Environment: apikey.EnvLive}}, Alphabet: apikey.AlphabetBase62, Length: 22}
	tests := []struct {
		name   string
		mutate func(*apikey.FormatSpec)
	}{
		{"no name", func(s *apikey.FormatSpec) { s.Name = "" }},
		{"no prefix", func(s *apikey.FormatSpec) { s.Prefixes = nil }},
		{"no environment", func(s *apikey.FormatSpec) { s.Prefixes = []apikey.Prefix{{Prefix: "x_"}} }},
		{"overlapping prefixes", func(s *apikey.FormatSpec) {
			s.Prefixes = []apikey.Prefix{{Prefix: "sk_", Environment: apikey.EnvLive}, {Prefix: "sk_test_", Environment: apikey.EnvTest}}
		}},
		{"tiny alphabet", func(s *apikey.FormatSpec) { s.Alphabet = "a" }},
		{"repeated character", func(s *apikey.FormatSpec) { s.Alphabet = "abca" }},
		{"space in alphabet", func(s *apikey.FormatSpec) { s.Alphabet = "ab c" }},
		{"too short", func(s *apikey.FormatSpec) { s.Length = 8 }},
		{"too long", func(s *apikey.FormatSpec) { s.Length = 200 }},
	}
	_, err := apikey.NewFormat(ok)
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ok
			tt.mutate(&spec)
			_, err := apikey.NewFormat(spec)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
		})
	}
	assert.Panics(t, func() { apikey.MustFormat(apikey.FormatSpec{}) })
}

func TestParseAny(t *testing.T) {
	formats := []*apikey.Format{apikey.FormatStairoids, apikey.FormatDefault}
	s, err := apikey.Generate(apikey.FormatDefault, apikey.EnvLive)
	require.NoError(t, err)
	f, env, err := apikey.ParseAny(formats, s.Reveal())
	require.NoError(t, err)
	assert.Equal(t, apikey.FormatDefault, f)
	assert.Equal(t, apikey.EnvLive, env)

	// The error of the format whose prefix matched is reported.
	bad := s.Reveal()[:20] + "0" + s.Reveal()[21:]
	if bad == s.Reveal() {
		bad = s.Reveal()[:20] + "1" + s.Reveal()[21:]
	}
	_, _, err = apikey.ParseAny(formats, bad)
	assert.ErrorIs(t, err, apikey.ErrKeyChecksum)
	_, _, err = apikey.ParseAny(formats, "nope")
	assert.ErrorIs(t, err, apikey.ErrKeyPrefix)
	_, _, err = apikey.ParseAny(nil, "nope")
	assert.ErrorIs(t, err, apikey.ErrMalformedKey)
}

func TestFormatParseDoesNotAllocate(t *testing.T) {
	s, err := apikey.Generate(apikey.FormatDefault, apikey.EnvLive)
	require.NoError(t, err)
	good, bad, huge := s.Reveal(), "kg_live_!!", strings.Repeat("a", 1<<20)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = apikey.FormatDefault.Parse(good)
		_, _ = apikey.FormatDefault.Parse(bad)
		_, _ = apikey.FormatDefault.Parse(huge)
	})
	assert.Zero(t, allocs)
}

func TestFormatHint(t *testing.T) {
	s, err := apikey.Generate(apikey.FormatStairoids, apikey.EnvLive)
	require.NoError(t, err)
	key := s.Reveal()
	assert.Equal(t, "sk_live_…"+key[len(key)-4:], apikey.FormatStairoids.HintFor(key))
	assert.Empty(t, apikey.FormatStairoids.HintFor("nope"))
	assert.Contains(t, apikey.FormatStairoids.String(), "190.5 bits")
}
