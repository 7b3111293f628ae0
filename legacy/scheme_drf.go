package legacy

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
)

// drfSHA512 is djangorestframework-api-key's hash since version 3.0.0
// (Sha512ApiKeyHasher, unchanged in 3.1.0): "sha512$$" and the lowercase
// hex SHA-512 of the whole key "prefix.secret", no salt.
type drfSHA512 struct{ sum [sha512.Size]byte }

// parseDRF reads a djangorestframework-api-key hashed_key: sha512$$<hex>
// (3.x), or the Django password hash versions 1.4 to 2.3 stored, which 3.x
// still verifies: pbkdf2_sha256$… or argon2$argon2id$….
func parseDRF(s string) (secretHash, error) {
	switch {
	case strings.HasPrefix(s, "sha512$$"):
		b, err := hex.DecodeString(s[len("sha512$$"):])
		if err != nil || len(b) != sha512.Size {
			return nil, errors.New("bad sha512$$ hash: want 128 hex digits")
		}
		var h drfSHA512
		copy(h.sum[:], b)
		return h, nil
	case strings.HasPrefix(s, "pbkdf2_sha256$"):
		return parseDjangoPBKDF2(s)
	case strings.HasPrefix(s, "argon2$argon2id$"):
		return parseArgon2id(s)
	}
	return nil, errors.New("want sha512$$<hex> (version 3) or a Django pbkdf2_sha256$ or argon2$argon2id$ hash (versions 1.4 to 2.3)")
}

func (h drfSHA512) index() string { return string(kindSHA512) + string(h.sum[:]) }

func (h drfSHA512) verify(cred string) bool {
	sum := sha512.Sum512([]byte(cred))
	return subtle.ConstantTimeCompare(sum[:], h.sum[:]) == 1
}
