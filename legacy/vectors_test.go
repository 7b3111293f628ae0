package legacy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey/legacy"
)

// Every vector made by the real tool verifies, and the same key with one
// character changed does not.
func TestVectors(t *testing.T) {
	vectors := loadVectors(t)
	schemes := map[string]bool{}
	for i, vec := range vectors {
		schemes[vec.Scheme] = true
		t.Run(vec.Name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("key_vec%d", i)
			e := newEnv(t, legacy.Config{Records: []legacy.Record{vec.record(id)}})

			_, err := e.v.Fallback(ctx, wrong(vec.Key))
			assert.True(t, isNotFound(err), "a wrong key: %v", err)
			assert.Equal(t, map[string]int{vec.Scheme: 1}, e.v.Remaining())

			k, err := e.v.Fallback(ctx, vec.Key)
			require.NoError(t, err)
			assert.Equal(t, id, k.ID)
			assert.Equal(t, map[string]int{vec.Scheme: 0}, e.v.Remaining())
			if err != nil {
				assert.NotContains(t, err.Error(), vec.Key)
			}
		})
	}
	for _, s := range []string{legacy.SchemeBcrypt, legacy.SchemeArgon2id, legacy.SchemeDjangoPBKDF2, legacy.SchemeDRF, legacy.SchemeUnkey, legacy.SchemePlaintext} {
		assert.True(t, schemes[s], "no vector of %s", s)
	}
}

// A djangorestframework-api-key credential must be prefix.secret with the
// record's prefix; bcrypt refuses what it could not tell apart (over 72
// bytes).
func TestSchemeDetails(t *testing.T) {
	for _, vec := range loadVectors(t) {
		if vec.Scheme != legacy.SchemeDRF {
			continue
		}
		e := newEnv(t, legacy.Config{Records: []legacy.Record{vec.record("key_drf")}})
		_, secret, _ := strings.Cut(vec.Key, ".")
		_, err := e.v.Fallback(ctx, vec.Prefix+"-"+secret)
		assert.True(t, isNotFound(err), vec.Name)
	}

	long := "lg_long_" + strings.Repeat("a", 70)
	rec := legacy.Record{Key: keyOf("key_long"), Prefix: "lg_long_", Hash: cheapBcrypt(t, long[:72]), Scheme: legacy.SchemeBcrypt}
	e := newEnv(t, legacy.Config{Records: []legacy.Record{rec}})
	// bcrypt ignores what follows byte 72, so a longer credential sharing
	// them would pass and be filed under its own digest: it is refused.
	_, err := e.v.Fallback(ctx, long+"zz")
	assert.True(t, isNotFound(err), "over 72 bytes: %v", err)
	_, err = e.v.Fallback(ctx, long[:72])
	assert.NoError(t, err)
}
