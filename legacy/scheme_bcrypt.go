package legacy

import (
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// maxBcryptCost bounds a record's bcrypt cost: 2^16 rounds take seconds.
const maxBcryptCost = 16

// bcryptBase64 is bcrypt's own base64 alphabet, without padding.
var bcryptBase64 = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

// bcryptHash is a modular-crypt bcrypt hash: $2a$, $2b$ or $2y$, a cost,
// 22 characters of salt and 31 of hash.
type bcryptHash struct{ encoded []byte }

func parseBcrypt(s string) (secretHash, error) {
	if len(s) != 60 || s[0] != '$' || s[1] != '2' || s[3] != '$' || (s[2] != 'a' && s[2] != 'b' && s[2] != 'y') {
		return nil, errors.New("not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)")
	}
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return nil, errors.New("not a bcrypt hash: bad cost")
	}
	if cost > maxBcryptCost {
		return nil, fmt.Errorf("cost %d is over %d", cost, maxBcryptCost)
	}
	if _, err := bcryptBase64.DecodeString(s[7:29]); err != nil {
		return nil, errors.New("not a bcrypt hash: bad salt characters")
	}
	if _, err := bcryptBase64.DecodeString(s[29:]); err != nil {
		return nil, errors.New("not a bcrypt hash: bad hash characters")
	}
	return bcryptHash{encoded: []byte(s)}, nil
}

// verify compares in constant time (bcrypt's own comparison). bcrypt
// reads at most 72 bytes, so any longer credential sharing a key's first 72
// would pass, and be filed under its own digest: a longer credential is
// refused.
func (h bcryptHash) verify(cred string) bool {
	if len(cred) > 72 {
		return false
	}
	return bcrypt.CompareHashAndPassword(h.encoded, []byte(cred)) == nil
}
