package apikey

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/google/uuid"
)

// Identifiers: key IDs ("key_" + a UUIDv7) and request ids ("req_" + a
// process-wide random part and a counter). Both are two 64-bit halves, each
// written as 13 Crockford base32 digits by one encoder: lowercase for key
// IDs, uppercase for request ids. Fixed
// width keeps them sorted as their numbers are, so key IDs sort by creation
// time.

const (
	halfDigits   = 13 // base32 digits of 64 bits (one bit of padding)
	base32Digits = 2 * halfDigits
)

var (
	crockfordLower = [32]byte([]byte("0123456789abcdefghjkmnpqrstvwxyz"))
	crockfordUpper = [32]byte([]byte("0123456789ABCDEFGHJKMNPQRSTVWXYZ"))
)

// encodeBase32 writes v as 13 digits of alphabet, most significant first.
// (Arrays, not slices: no bounds check per digit; a request id is made
// on every request.)
func encodeBase32(dst *[halfDigits]byte, v uint64, alphabet *[32]byte) {
	for i := halfDigits - 1; i >= 0; i-- {
		dst[i] = alphabet[v&31]
		v >>= 5
	}
}

// newKeyID returns a fresh key ID, such as "key_01jd5y4m2pf3qx8v9b7c6n0rtw":
// IDs sort by creation time and fit in 32 bytes.
func newKeyID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("apikey: key id: %w", err)
	}
	var b [4 + base32Digits]byte
	copy(b[:], "key_")
	encodeBase32((*[halfDigits]byte)(b[4:]), binary.BigEndian.Uint64(u[:8]), &crockfordLower)
	encodeBase32((*[halfDigits]byte)(b[4+halfDigits:]), binary.BigEndian.Uint64(u[8:]), &crockfordLower)
	return string(b[:]), nil
}

// Request ids: 64 random bits chosen once per process and a 64-bit counter
// that starts at a random value. They are unique within a process, collide
// across processes with negligible probability, and cost neither a random
// read nor a clock read per request.
var (
	reqIDPrefix  [4 + halfDigits]byte // "req_" and the process's 13 digits
	reqIDCounter atomic.Uint64
)

func init() {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("apikey: crypto/rand unavailable: " + err.Error())
	}
	copy(reqIDPrefix[:], "req_")
	encodeBase32((*[halfDigits]byte)(reqIDPrefix[4:]), binary.LittleEndian.Uint64(b[:8]), &crockfordUpper)
	reqIDCounter.Store(binary.LittleEndian.Uint64(b[8:]))
}

// requestIDLength is the length of a generated request id.
const requestIDLength = 4 + base32Digits

// fillRequestID writes a fresh "req_…" id into b.
func fillRequestID(b *[requestIDLength]byte) {
	*(*[len(reqIDPrefix)]byte)(b[:]) = reqIDPrefix
	encodeBase32((*[halfDigits]byte)(b[len(reqIDPrefix):]), reqIDCounter.Add(1), &crockfordUpper)
}
