package legacy

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"slices"
	"strings"

	"github.com/keygate/apikey"
)

// A secretHash is a record's stored hash, decoded and checked at load.
type secretHash interface {
	// verify reports whether cred is the key this hash was made from.
	verify(cred string) bool
}

// A fastHash is an unsalted digest of the key (SHA-256, SHA-512): a
// record is found by it, never by its prefix, and verifying costs about
// what this library's own digest costs.
type fastHash interface {
	secretHash
	// index is the record's key in the digest index: digestKind and the
	// raw digest.
	index() string
}

// digestKind tells the unsalted digests apart in the index.
type digestKind byte

const (
	kindSHA256 digestKind = '2'
	kindSHA512 digestKind = '5'
)

// indexOf returns the index key of cred under kind.
func indexOf(kind digestKind, cred string) string {
	switch kind {
	case kindSHA256:
		d := sha256.Sum256([]byte(cred))
		return string(kind) + string(d[:])
	default:
		d := sha512.Sum512([]byte(cred))
		return string(kind) + string(d[:])
	}
}

// schemes maps a Record.Scheme to the parser of its hashes.
var schemes = map[string]func(hash string) (secretHash, error){
	SchemeBcrypt:       parseBcrypt,
	SchemeArgon2id:     parseArgon2id,
	SchemeDjangoPBKDF2: parseDjangoPBKDF2,
	SchemeDRF:          parseDRF,
	SchemeUnkey:        parseUnkey,
	SchemePlaintext:    parsePlaintext,
}

// parseHash checks rec's scheme and decodes its hash. Its errors never
// quote the hash.
func parseHash(scheme, hash string) (secretHash, error) {
	parse, ok := schemes[scheme]
	if !ok {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range schemes {
				if !yield(n) {
					return
				}
			}
		})
		return nil, fmt.Errorf("%w: scheme %q is not one of %s", apikey.ErrInvalid, truncate(scheme), strings.Join(names, ", "))
	}
	if hash == "" {
		return nil, fmt.Errorf("%w: hash is empty", apikey.ErrInvalid)
	}
	h, err := parse(hash)
	if err != nil {
		return nil, fmt.Errorf("%w: %s hash: %w", apikey.ErrInvalid, scheme, err)
	}
	return h, nil
}

// truncate shortens a non-secret value quoted in an error.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
