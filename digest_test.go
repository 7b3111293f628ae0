package apikey_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

func pepper(t testing.TB, id string, fill byte) apikey.Pepper {
	t.Helper()
	p, err := apikey.NewPepper(id, []byte(strings.Repeat(string(fill), 32)))
	require.NoError(t, err)
	return p
}

// Pinned vectors: computed independently (sha256sum; openssl dgst -hmac).
func TestDigestVectors(t *testing.T) {
	const key = "sk_live_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	plain, err := apikey.NewHasher()
	require.NoError(t, err)
	assert.Equal(t, "1ab586673f99f99e2ad72e180f0f082e6338809e87dccd6c07981b6941a8d002", plain.Digest(key).String())
	var zero *apikey.Hasher
	assert.Equal(t, plain.Digest(key), zero.Digest(key), "nil Hasher is plain SHA-256")

	peppered, err := apikey.NewHasher(pepper(t, "p1", 'k'))
	require.NoError(t, err)
	assert.Equal(t, "ae6a6e316c5970df98ef210ec45821749806d8c8fa8d0a02dd0c791abab340c5", peppered.Digest(key).String())
}

// The zero-allocation HMAC agrees with crypto/hmac for every key length up
// to MaxKeyLength and for peppers shorter and longer than a SHA-256 block.
func TestDigestMatchesStandardLibrary(t *testing.T) {
	for _, plen := range []int{32, 63, 64, 65, 200} {
		secret := []byte(strings.Repeat("p", plen))
		p, err := apikey.NewPepper("p", secret)
		require.NoError(t, err)
		h, err := apikey.NewHasher(p)
		require.NoError(t, err)
		for n := 0; n <= apikey.MaxKeyLength+10; n += 7 {
			key := strings.Repeat("k", n)
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(key))
			assert.Equal(t, hex.EncodeToString(mac.Sum(nil)), h.Digest(key).String(), "pepper %d, key %d", plen, n)
		}
	}
	var plain apikey.Hasher
	for n := 0; n <= apikey.MaxKeyLength+10; n += 13 {
		key := strings.Repeat("k", n)
		sum := sha256.Sum256([]byte(key))
		assert.Equal(t, hex.EncodeToString(sum[:]), plain.Digest(key).String())
	}
}

func TestDigestIsComparableMapKey(t *testing.T) {
	var h apikey.Hasher
	m := map[apikey.Digest]int{h.Digest("a"): 1}
	assert.Equal(t, 1, m[h.Digest("a")])
	assert.NotContains(t, m, h.Digest("b"))

	d := h.Digest("a")
	text, err := d.MarshalText()
	require.NoError(t, err)
	var back apikey.Digest
	require.NoError(t, back.UnmarshalText(text))
	assert.Equal(t, d, back)
	assert.ErrorIs(t, back.UnmarshalText([]byte("zz")), apikey.ErrInvalid)
	assert.ErrorIs(t, back.UnmarshalText([]byte(strings.Repeat("zz", 32))), apikey.ErrInvalid)
}

func TestPepperRotation(t *testing.T) {
	old, cur := pepper(t, "2025", 'a'), pepper(t, "2026", 'b')
	before, err := apikey.NewHasher(old)
	require.NoError(t, err)
	during, err := apikey.NewHasher(cur, old)
	require.NoError(t, err)

	const key = "kg_live_example"
	stored := before.Digest(key)
	assert.Equal(t, "2025", before.CurrentPepperID())
	assert.Equal(t, "2026", during.CurrentPepperID())

	// The old digest is still reachable during the rotation...
	require.Equal(t, 2, during.Candidates())
	d0, id0 := during.DigestAt(0, key)
	d1, id1 := during.DigestAt(1, key)
	assert.Equal(t, "2026", id0)
	assert.Equal(t, "2025", id1)
	assert.Equal(t, stored, d1)
	assert.NotEqual(t, stored, d0, "re-digested under the new pepper")
	// ...and by its recorded pepper ID.
	d, ok := during.DigestWith("2025", key)
	assert.True(t, ok)
	assert.Equal(t, stored, d)
	_, ok = during.DigestWith("1999", key)
	assert.False(t, ok)
	plainD, ok := during.DigestWith("", key)
	assert.True(t, ok)
	assert.Equal(t, sha256.Sum256([]byte(key)), [32]byte(plainD))
}

func TestPepperValidation(t *testing.T) {
	_, err := apikey.NewPepper("", make([]byte, 32))
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = apikey.NewPepper("short", make([]byte, 31))
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	p := pepper(t, "dup", 'x')
	_, err = apikey.NewHasher(p, p)
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = apikey.NewHasher(apikey.Pepper{})
	assert.ErrorIs(t, err, apikey.ErrInvalid)
}

func TestPepperIsRedacted(t *testing.T) {
	const secret = "pepper-secret-pepper-secret-pepper-secret"
	p, err := apikey.NewPepper("p1", []byte(secret))
	require.NoError(t, err)
	for _, out := range formatEveryWay(t, p) {
		assert.NotContains(t, out, secret)
		assert.NotContains(t, out, "pepper-secret")
	}
	assert.Equal(t, "p1", p.ID())
}

// formatEveryWay renders v through fmt's verbs, encoding/json and log/slog.
func formatEveryWay(t *testing.T, v any) []string {
	t.Helper()
	outs := []string{
		fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v),
		fmt.Sprintf("%s", v), fmt.Sprintf("%q", v), fmt.Sprintf("%x", v),
		fmt.Sprint(v), fmt.Sprintln(v),
		fmt.Sprintf("%v", struct{ V any }{v}), fmt.Sprintf("%+v", &struct{ V any }{v}),
	}
	j, err := json.Marshal(v)
	require.NoError(t, err)
	outs = append(outs, string(j))
	outs = append(outs, slogText(v))
	return outs
}
