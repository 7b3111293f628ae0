package apikey

import (
	"crypto/rand"
	"encoding/binary"
	"net/http"
	"sync/atomic"
)

// MaxRequestIDLength is the longest incoming X-Request-Id that is reused.
const MaxRequestIDLength = 64

// The request-id generator: 26 Crockford base32 characters after "req_",
// holding 64 random bits chosen once per process and a 64-bit counter that
// starts at a random value. IDs are unique within a process, collide across
// processes with negligible probability, and cost neither a random read
// nor a clock read per request.
var (
	reqIDPrefix  [17]byte // "req_" and the process's 13 digits
	reqIDCounter atomic.Uint64
)

func init() {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("apikey: crypto/rand unavailable: " + err.Error())
	}
	copy(reqIDPrefix[:], "req_")
	encodeBase32(reqIDPrefix[4:], binary.LittleEndian.Uint64(b[:8]), 13)
	reqIDCounter.Store(binary.LittleEndian.Uint64(b[8:]))
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// requestIDLength is the length of a generated request id.
const requestIDLength = 4 + 26

// NewRequestID returns a fresh "req_" id.
func NewRequestID() string {
	var b [requestIDLength]byte
	fillRequestID(&b)
	return string(b[:])
}

func fillRequestID(b *[requestIDLength]byte) {
	copy(b[:], reqIDPrefix[:])
	encodeBase32(b[17:], reqIDCounter.Add(1), 13)
}

// encodeBase32 writes v as n Crockford digits, most significant first (13
// digits hold 64 bits).
func encodeBase32(dst []byte, v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		dst[i] = crockford[v&31]
		v >>= 5
	}
}

// incomingRequestID returns the request's X-Request-Id when it is one
// header of 1 to MaxRequestIDLength safe characters ([A-Za-z0-9._-]).
// Anything else (spaces, quotes, control bytes, non-ASCII) could forge log
// lines or break a JSON consumer, so it is never echoed.
func incomingRequestID(r *http.Request) (string, bool) {
	if v := r.Header[headerRequestID]; len(v) == 1 && safeRequestID(v[0]) {
		return v[0], true
	}
	return "", false
}

// requestIDFrom reuses a safe incoming X-Request-Id or makes a new one.
func requestIDFrom(r *http.Request) string {
	if id, ok := incomingRequestID(r); ok {
		return id
	}
	return NewRequestID()
}

func safeRequestID(s string) bool {
	if len(s) == 0 || len(s) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}
