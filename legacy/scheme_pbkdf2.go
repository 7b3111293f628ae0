package legacy

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxPBKDF2Iterations bounds a record's iterations: Django 5.2 uses
// 1,000,000.
const maxPBKDF2Iterations = 10_000_000

// pbkdf2Hash is Django's PBKDF2PasswordHasher hash: PBKDF2-HMAC-SHA256
// of the key, salted with the salt string's bytes, 32 bytes long.
type pbkdf2Hash struct {
	iterations int
	salt       string
	sum        []byte
}

// parseDjangoPBKDF2 reads pbkdf2_sha256$iterations$salt$hash, hash being
// standard base64 (Django 1.4 to 5.2).
func parseDjangoPBKDF2(s string) (secretHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2_sha256" {
		return nil, errors.New("not a Django pbkdf2_sha256 hash (pbkdf2_sha256$iterations$salt$hash)")
	}
	n, err := strconv.Atoi(parts[1])
	switch {
	case err != nil || n < 1 || parts[1][0] == '0':
		return nil, errors.New("bad iterations: want a positive integer")
	case n > maxPBKDF2Iterations:
		return nil, fmt.Errorf("%d iterations is over %d", n, maxPBKDF2Iterations)
	case parts[2] == "":
		return nil, errors.New("empty salt")
	}
	sum, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(sum) != sha256.Size {
		return nil, errors.New("bad hash: want 32 bytes of standard base64")
	}
	return pbkdf2Hash{iterations: n, salt: parts[2], sum: sum}, nil
}

func (h pbkdf2Hash) verify(cred string) bool {
	sum, err := pbkdf2.Key(sha256.New, cred, []byte(h.salt), h.iterations, len(h.sum))
	return err == nil && subtle.ConstantTimeCompare(sum, h.sum) == 1
}
