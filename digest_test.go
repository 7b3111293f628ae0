package apikey_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

// digestKeys is a KeyConfig of the default format with these peppers.
func digestKeys(peppers ...apikey.Pepper) apikey.KeyConfig {
	return apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Peppers: peppers}
}

// Pinned vectors: computed independently (sha256sum; openssl dgst -hmac).
func TestDigestVectors(t *testing.T) {
	const key = "sk_live_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	assert.Equal(t, "1ab586673f99f99e2ad72e180f0f082e6338809e87dccd6c07981b6941a8d002", hexDigest(digestKeys().Digest(key)))
	assert.Equal(t, digestKeys().Digest(key), apikey.KeyConfig{}.Digest(key), "without peppers: plain SHA-256")
	assert.Equal(t, "ae6a6e316c5970df98ef210ec45821749806d8c8fa8d0a02dd0c791abab340c5", hexDigest(digestKeys(pepper(t, "p1", 'k')).Digest(key)))
	assert.Equal(t, digestKeys(pepper(t, "p1", 'k')).Digest(key), digestKeys(pepper(t, "other-id", 'k')).Digest(key),
		"the pepper's ID is not part of the digest")
}

// The pooled HMAC agrees with crypto/hmac for every key length up to the
// longest credential (128 bytes) and beyond, and for peppers shorter and
// longer than a SHA-256 block; it also stays right when reused.
func TestDigestMatchesStandardLibrary(t *testing.T) {
	const maxKeyLength = 128
	for _, plen := range []int{32, 63, 64, 65, 200} {
		secret := []byte(strings.Repeat("p", plen))
		p, err := apikey.NewPepper("p", secret)
		require.NoError(t, err)
		keys := digestKeys(p)
		for range 2 {
			for n := 0; n <= maxKeyLength+10; n += 7 {
				key := strings.Repeat("k", n)
				mac := hmac.New(sha256.New, secret)
				mac.Write([]byte(key))
				assert.Equal(t, hex.EncodeToString(mac.Sum(nil)), hexDigest(keys.Digest(key)), "pepper %d, key %d", plen, n)
			}
		}
	}
	for n := 0; n <= maxKeyLength+10; n += 13 {
		key := strings.Repeat("k", n)
		sum := sha256.Sum256([]byte(key))
		assert.Equal(t, hex.EncodeToString(sum[:]), hexDigest(digestKeys().Digest(key)))
	}
}

// NewPepper copies its secret: changing the caller's slice afterwards
// changes nothing.
func TestPepperCopiesItsSecret(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	p, err := apikey.NewPepper("p", secret)
	require.NoError(t, err)
	before := digestKeys(p).Digest("kg_live_x")
	secret[0] = 'X'
	assert.Equal(t, before, digestKeys(p).Digest("kg_live_x"))
}

func TestDigestIsComparableMapKey(t *testing.T) {
	keys := digestKeys()
	m := map[apikey.Digest]int{keys.Digest("a"): 1}
	assert.Equal(t, 1, m[keys.Digest("a")])
	assert.NotContains(t, m, keys.Digest("b"))

}

// Rotation: keys made under the old pepper still verify while the new one
// is current, and a store that is a Rehasher gets them re-filed under the
// new one on first use; keys made during the rotation are digested with
// the new one.
func TestPepperRotation(t *testing.T) {
	ctx := context.Background()
	old, cur := pepper(t, "2025", 'a'), pepper(t, "2026", 'b')
	before := digestKeys(old)
	during := digestKeys(cur, old)

	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: before})
	require.NoError(t, err)
	k, sec, err := store.Create(ctx, apikey.KeySpec{Name: "before"})
	require.NoError(t, err)
	key := sec.Reveal()
	assert.Equal(t, "2025", k.PepperID)
	assert.NotEqual(t, before.Digest(key), during.Digest(key), "the current pepper makes another digest")
	assert.NotEqual(t, before.Digest(key), digestKeys().Digest(key))

	// The middleware of the rotation finds the key under the old pepper and
	// re-files it under the new one.
	mw := newMiddleware(t, apikey.Config{Keys: during, Store: store})
	got, err := mw.Verify(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, k.ID, got.ID)
	refiled, err := store.Lookup(ctx, during.Digest(key))
	require.NoError(t, err, "re-filed under the current pepper")
	assert.Equal(t, "2026", refiled.PepperID)
	_, err = store.Lookup(ctx, before.Digest(key))
	assert.ErrorIs(t, err, apikey.ErrNotFound, "no longer filed under the old pepper")
	_, err = mw.Verify(ctx, key)
	require.NoError(t, err)

	// Once the old pepper is dropped, the re-filed key still verifies.
	after := newMiddleware(t, apikey.Config{Keys: digestKeys(cur), Store: store})
	_, err = after.Verify(ctx, key)
	require.NoError(t, err)

	// Keys made during the rotation use the current pepper.
	store2, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: during})
	require.NoError(t, err)
	k2, sec2, err := store2.Create(ctx, apikey.KeySpec{Name: "during"})
	require.NoError(t, err)
	assert.Equal(t, "2026", k2.PepperID)
	_, err = store2.Lookup(ctx, digestKeys(cur).Digest(sec2.Reveal()))
	require.NoError(t, err)

	// A key of an unknown pepper, or filed in plain SHA-256, is not found
	// under peppers.
	plainStore, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: digestKeys()})
	require.NoError(t, err)
	_, sec3, err := plainStore.Create(ctx, apikey.KeySpec{Name: "plain"})
	require.NoError(t, err)
	_, err = newMiddleware(t, apikey.Config{Keys: during, Store: plainStore}).Verify(ctx, sec3.Reveal())
	var ae apikey.AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonUnknown, ae.Reason)
}

func TestPepperValidation(t *testing.T) {
	_, err := apikey.NewPepper("", make([]byte, 32))
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = apikey.NewPepper("short", make([]byte, 31))
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = apikey.NewPepper("ok", make([]byte, 32))
	assert.NoError(t, err)

	p := pepper(t, "dup", 'x')
	for name, keys := range map[string]apikey.KeyConfig{
		"the same ID twice":    digestKeys(p, pepper(t, "dup", 'y')),
		"the zero Pepper":      digestKeys(apikey.Pepper{}),
		"a zero Pepper second": digestKeys(p, apikey.Pepper{}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			_, err = apikey.New(apikey.Config{Keys: keys, Store: newMemoryStore(t, digestKeys())})
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			_, err = keys.NewKey(apikey.KeySpec{Name: "n"})
			assert.ErrorIs(t, err, apikey.ErrInvalid)
		})
	}
}

func TestPepperIsRedacted(t *testing.T) {
	const secret = "pepper-secret-pepper-secret-pepper-secret"
	p, err := apikey.NewPepper("p1", []byte(secret))
	require.NoError(t, err)
	for _, out := range formatEveryWay(t, p) {
		assert.NotContains(t, out, secret)
		assert.NotContains(t, out, "pepper-secret")
	}
	for _, out := range formatEveryWay(t, &p) {
		assert.NotContains(t, out, "pepper-secret")
	}
	keys := digestKeys(p) // holds a func, which encoding/json refuses
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		assert.NotContains(t, fmt.Sprintf(verb, keys), "pepper-secret", verb)
		assert.NotContains(t, fmt.Sprintf(verb, &keys), "pepper-secret", verb)
	}
	assert.NotContains(t, slogText(keys), "pepper-secret")
	assert.Equal(t, "apikey.Pepper{id:p1, [REDACTED]}", fmt.Sprint(p), "the ID is shown, not the secret")
	assert.Equal(t, "apikey.Pepper{id:p1, [REDACTED]}", fmt.Sprintf("%#v", p))
}

// Digest never panics: with a pepper that Check refuses (a zero Pepper,
// an id given twice) it returns the zero Digest, which no store files. It
// needs no format: a digest depends on the peppers alone.
func TestDigestOfAnInvalidKeyConfig(t *testing.T) {
	for _, peppers := range [][]apikey.Pepper{
		{{}},
		{pepper(t, "p1", 'a'), pepper(t, "p1", 'b')},
	} {
		keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Peppers: peppers}
		require.Error(t, keys.Check())
		assert.Equal(t, apikey.Digest{}, keys.Digest("kg_live_anything"))
	}
	assert.NotEqual(t, apikey.Digest{}, apikey.KeyConfig{}.Digest("kg_live_anything"), "no format needed: plain SHA-256")
}

// hexDigest is d in lowercase hex, as the key file writes it.
func hexDigest(d apikey.Digest) string { return hex.EncodeToString(d[:]) }
