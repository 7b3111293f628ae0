package apikey

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/google/uuid"
)

// Identifiers: key IDs ("key_" + a UUIDv7) and request ids ("req_" + a
// process-wide random part and a counter). Both are 128 bits written as 26
// Crockford base32 digits by one encoder, lowercase for key IDs (the TypeID
// encoding) and uppercase for request ids, as the Stairoids API shows them.

const (
	crockfordLower = "0123456789abcdefghjkmnpqrstvwxyz"
	crockfordUpper = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	base32Digits   = 26 // 128 bits, with two zero bits of padding on top
)

// encodeBase32 writes the 128-bit number hi:lo as 26 digits of alphabet,
// most significant first.
func encodeBase32(dst *[base32Digits]byte, hi, lo uint64, alphabet string) {
	for i := base32Digits - 1; i >= 0; i-- {
		dst[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
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
	encodeBase32((*[base32Digits]byte)(b[4:]), binary.BigEndian.Uint64(u[:8]), binary.BigEndian.Uint64(u[8:]), crockfordLower)
	return string(b[:]), nil
}

// Request ids: 64 random bits chosen once per process and a 64-bit counter
// that starts at a random value. They are unique within a process, collide
// across processes with negligible probability, and cost neither a random
// read nor a clock read per request.
var (
	reqIDProcess uint64
	reqIDCounter atomic.Uint64
)

func init() {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("apikey: crypto/rand unavailable: " + err.Error())
	}
	reqIDProcess = binary.LittleEndian.Uint64(b[:8])
	reqIDCounter.Store(binary.LittleEndian.Uint64(b[8:]))
}

// requestIDLength is the length of a generated request id.
const requestIDLength = 4 + base32Digits

// fillRequestID writes a fresh "req_…" id into b.
func fillRequestID(b *[requestIDLength]byte) {
	copy(b[:], "req_")
	encodeBase32((*[base32Digits]byte)(b[4:]), reqIDProcess, reqIDCounter.Add(1), crockfordUpper)
}
