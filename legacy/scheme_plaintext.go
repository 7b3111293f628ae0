package legacy

import (
	"crypto/sha256"
	"errors"
)

// parsePlaintext keeps only the SHA-256 of a key the old system stored in
// the clear: it is then found and compared, in constant time, as an Unkey
// hash is.
func parsePlaintext(s string) (secretHash, error) {
	if len(s) > maxCredential {
		return nil, errors.New("longer than a credential can be")
	}
	return unkeyHash{sum: sha256.Sum256([]byte(s))}, nil
}
