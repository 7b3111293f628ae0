package apikey

import (
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The string checksum used by Parse agrees with the byte one used when
// making keys, for every length.
func TestChecksumStringMatchesBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 2*maxKeyLength; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		assert.Equal(t, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)), checksumString(string(b)), "length %d", n)
		assert.Equal(t, checksum(b), checksumString(string(b)))
	}
}

// The 6 base62 checksum digits round-trip every 32-bit value, and nothing
// above 2^32-1 decodes.
func TestChecksumDigitsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	values := []uint32{0, 1, 61, 62, math.MaxUint32}
	for range 1000 {
		values = append(values, r.Uint32())
	}
	for _, v := range values {
		digits := appendChecksum(nil, v)
		require.Len(t, digits, checksumLength)
		got, ok := decodeChecksum(string(digits))
		assert.True(t, ok)
		assert.Equal(t, v, got)
	}
	assert.Equal(t, "000000", string(appendChecksum(nil, 0)))
	assert.Equal(t, "4gfFC3", string(appendChecksum(nil, math.MaxUint32)))
	_, ok := decodeChecksum("4gfFC4") // 2^32
	assert.False(t, ok)
	_, ok = decodeChecksum("zzzzzz")
	assert.False(t, ok)
	_, ok = decodeChecksum("00000-")
	assert.False(t, ok)
}

// parseAny returns the environment of the first format that accepts the
// key; when none does, the error of a format whose prefix matched.
func TestParseAny(t *testing.T) {
	stairoids, err := NewFormat(FormatConfig{Name: "stairoids", LivePrefix: "sk_live_", TestPrefix: "sk_test_", Alphabet: alphabetBase62, Length: 32})
	require.NoError(t, err)
	formats := []*Format{stairoids, FormatDefault}
	s, err := generate(FormatDefault, EnvTest)
	require.NoError(t, err)
	key := s.Reveal()
	env, err := parseAny(formats, key)
	require.NoError(t, err)
	assert.Equal(t, EnvTest, env)

	bad := []byte(key)
	bad[20] = '0' // another base62 character: only the checksum notices
	if key[20] == '0' {
		bad[20] = '1'
	}
	_, err = parseAny(formats, string(bad))
	assert.Same(t, errKeyChecksum, err)
	_, err = parseAny([]*Format{FormatDefault, stairoids}, string(bad))
	assert.Same(t, errKeyChecksum, err, "whatever the order of the formats")
	_, err = parseAny(formats, "nope")
	assert.Same(t, errKeyPrefix, err)
	_, err = parseAny(nil, "nope")
	assert.ErrorIs(t, err, ErrMalformedKey)
	_, err = parseAny(formats, "")
	assert.Same(t, errKeyEmpty, err)
}

// appendRandom draws only from the alphabet, for every alphabet size.
func TestAppendRandomStaysInAlphabet(t *testing.T) {
	const printable = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	require.Len(t, printable, 94)
	for size := 2; size <= 94; size++ {
		alphabet := printable[:size]
		out, err := appendRandom([]byte("p_"), alphabet, 200)
		require.NoError(t, err)
		require.Len(t, out, 202)
		assert.Equal(t, "p_", string(out[:2]))
		var seen [256]bool
		for _, c := range out[2:] {
			seen[c] = true
		}
		for c := range 256 {
			if seen[c] {
				assert.Contains(t, alphabet, string(rune(c)), "size %d", size)
			}
		}
	}
}
