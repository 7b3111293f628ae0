package jsonw

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStringRoundTrips(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnewline\ncr\r", "\x00\x01\x1f",
		"unicode é ✓ 😀", "<script>&", "\u2028",
	} {
		b := String(nil, s)
		require.True(t, json.Valid(b), "%q -> %s", s, b)
		var back string
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, s, back)
	}
}

func TestInvalidUTF8BecomesReplacement(t *testing.T) {
	b := String(nil, "a\xffb\xc3")
	require.True(t, json.Valid(b), "%s", b)
	var back string
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, "a\ufffdb\ufffd", back)
}

func TestFieldsBuildAnObject(t *testing.T) {
	b := append(Field([]byte("{"), "a", true), '1')
	b = Bool(Field(b, "b", false), true)
	b = Int(Field(b, "c", false), -7)
	b = append(b, '}')
	assert.JSONEq(t, `{"a":1,"b":true,"c":-7}`, string(b))
}

func FuzzString(f *testing.F) {
	f.Add("hello")
	f.Add("\xff\x00\"")
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid(String(nil, s)) {
			t.Fatalf("invalid JSON for %q", s)
		}
	})
}

// plain agrees with the byte-by-byte rule for every byte in every position
// of an 8-byte word and after it, next to plain bytes.
func TestPlain(t *testing.T) {
	slow := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				return false
			}
		}
		return true
	}
	for n := 0; n <= 17; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a~ Z", 5)[:n])
				b[pos] = byte(c)
				if got, want := plain(string(b)), slow(string(b)); got != want {
					t.Fatalf("plain(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}
