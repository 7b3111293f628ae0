package apikey

import (
	"crypto/rand"
	"encoding/binary"
	"net/http"
	"sync/atomic"
	"time"
)

// MaxRequestIDLength is the longest incoming X-Request-Id that is reused.
const MaxRequestIDLength = 64

// The request-id generator: a ULID-like 26-character Crockford base32 string
// after "req_": 48 bits of milliseconds, 40 random bits chosen once per
// process and a 40-bit counter that starts at a random value. IDs are unique
// within a process without a random read per request, and sort by time.
var (
	reqIDProcess uint64
	reqIDCounter atomic.Uint64
)

func init() {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("apikey: crypto/rand unavailable: " + err.Error())
	}
	reqIDProcess = binary.LittleEndian.Uint64(b[:8]) & (1<<40 - 1)
	reqIDCounter.Store(binary.LittleEndian.Uint64(b[8:]))
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewRequestID returns a fresh "req_" id.
func NewRequestID() string {
	var b [4 + 26]byte
	copy(b[:], "req_")
	ms := uint64(time.Now().UnixMilli())
	n := reqIDCounter.Add(1) & (1<<40 - 1)
	encodeBase32(b[4:14], ms, 10)
	encodeBase32(b[14:22], reqIDProcess, 8)
	encodeBase32(b[22:30], n, 8)
	return string(b[:])
}

// encodeBase32 writes the low 5*n bits of v as n Crockford digits.
func encodeBase32(dst []byte, v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		dst[i] = crockford[v&31]
		v >>= 5
	}
}

// requestIDFrom reuses the request's X-Request-Id when it is one header of
// 1 to MaxRequestIDLength safe characters ([A-Za-z0-9._-]); otherwise it
// makes a new one. Anything else (spaces, quotes, control bytes, non-ASCII)
// could forge log lines or break a JSON consumer, so it is never echoed.
func requestIDFrom(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && safeRequestID(v[0]) {
		return v[0]
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
