package legacy

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Bounds on a record's Argon2id parameters, so that a hostile or mistaken
// record cannot make one verification take gigabytes or minutes.
const (
	maxArgon2Memory  = 1 << 20 // KiB: 1 GiB
	maxArgon2Time    = 32
	maxArgon2Threads = 64
)

// argon2Hash is an Argon2id hash: version 19 (0x13), its parameters, salt
// and output.
type argon2Hash struct {
	memory, time uint32
	threads      uint8
	salt, sum    []byte
}

// parseArgon2id reads a PHC string $argon2id$v=19$m=M,t=T,p=P$salt$hash
// (base64 without padding), or Django's Argon2PasswordHasher encoding, the
// same string after "argon2".
func parseArgon2id(s string) (secretHash, error) {
	s = strings.TrimPrefix(s, "argon2") // Django: argon2$argon2id$…
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, errors.New("not an Argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")
	}
	if parts[2] != "v=19" {
		return nil, errors.New("only version 19 (v=19) is supported")
	}
	h := argon2Hash{}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || n == 0 {
			return nil, errors.New("bad parameters: want m=…,t=…,p=… with positive integers")
		}
		switch k {
		case "m":
			h.memory, seen[0] = uint32(n), true
		case "t":
			h.time, seen[1] = uint32(n), true
		case "p":
			if n > maxArgon2Threads {
				return nil, fmt.Errorf("parallelism %d is over %d", n, maxArgon2Threads)
			}
			h.threads, seen[2] = uint8(n), true
		default:
			return nil, fmt.Errorf("unknown parameter %q", truncate(k))
		}
	}
	switch {
	case !seen[0] || !seen[1] || !seen[2]:
		return nil, errors.New("bad parameters: m, t and p are all required")
	case h.memory > maxArgon2Memory:
		return nil, fmt.Errorf("memory %d KiB is over %d KiB", h.memory, maxArgon2Memory)
	case h.memory < 8*uint32(h.threads):
		return nil, fmt.Errorf("memory %d KiB is under 8 KiB per lane (p=%d)", h.memory, h.threads)
	case h.time > maxArgon2Time:
		return nil, fmt.Errorf("time %d is over %d", h.time, maxArgon2Time)
	}
	var err error
	if h.salt, err = decodePHC(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return nil, errors.New("bad salt: want 8 to 64 bytes of base64")
	}
	if h.sum, err = decodePHC(parts[5]); err != nil || len(h.sum) < 4 || len(h.sum) > 128 {
		return nil, errors.New("bad hash: want 4 to 128 bytes of base64")
	}
	return h, nil
}

// decodePHC decodes PHC base64: standard alphabet, padding omitted (and
// tolerated).
func decodePHC(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (h argon2Hash) verify(cred string) bool {
	sum := argon2.IDKey([]byte(cred), h.salt, h.time, h.memory, h.threads, uint32(len(h.sum)))
	return subtle.ConstantTimeCompare(sum, h.sum) == 1
}
