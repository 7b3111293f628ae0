package legacy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
)

// unkeyHash is Unkey's stored hash: the standard base64 (with padding) of
// the SHA-256 of the key.
type unkeyHash struct{ sum [sha256.Size]byte }

func parseUnkey(s string) (secretHash, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("want 44 characters of standard base64: a SHA-256")
	}
	var h unkeyHash
	copy(h.sum[:], b)
	return h, nil
}

func (h unkeyHash) index() string { return string(kindSHA256) + string(h.sum[:]) }

func (h unkeyHash) verify(cred string) bool {
	sum := sha256.Sum256([]byte(cred))
	return subtle.ConstantTimeCompare(sum[:], h.sum[:]) == 1
}
