package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"
	"unsafe"
)

// Digest is what a store keeps instead of a key: its SHA-256, or
// HMAC-SHA-256 under a pepper (Key.PepperID); usable as a map key.
type Digest [sha256.Size]byte

// minPepperLength is the shortest pepper secret NewPepper accepts, in bytes.
const minPepperLength = 32

// Pepper is a server-side secret mixed into digests with HMAC-SHA-256, so
// that stolen digests cannot be checked against guesses. Its ID, stored
// beside each digest, lets it rotate. It prints as its ID and "[REDACTED]".
type Pepper struct {
	id string
	// mac computes HMAC-SHA-256 under the pepper. The key lives only in its
	// closure: where fmt cannot call the Pepper's redacting methods it
	// prints a function address, and reflection cannot reach the key.
	mac func(key string) Digest
}

// NewPepper makes a pepper from at least 32 random bytes kept in your
// secret manager, named by a non-empty, non-secret id.
func NewPepper(id string, secret []byte) (Pepper, error) {
	if id == "" {
		return Pepper{}, fmt.Errorf("%w: NewPepper: the id is empty", ErrInvalid)
	}
	if len(secret) < minPepperLength {
		return Pepper{}, fmt.Errorf("%w: pepper %q has %d bytes; use at least %d random bytes", ErrInvalid, id, len(secret), minPepperLength)
	}
	key := append([]byte(nil), secret...)
	pool := &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }}
	return Pepper{id: id, mac: func(s string) Digest { return pooledMAC(pool, s) }}, nil
}

// macState is a reusable HMAC and the buffer its sum goes to, so that a
// digest costs no allocation.
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func pooledMAC(pool *sync.Pool, s string) Digest {
	m := pool.Get().(*macState)
	m.h.Reset() // restores the precomputed key schedule
	m.h.Write(bytesOf(s))
	d := Digest(m.h.Sum(m.sum[:0]))
	pool.Put(m)
	return d
}

// Format prints the ID and [REDACTED].
func (p Pepper) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte("apikey.Pepper{id:" + p.id + ", " + redacted + "}"))
}

// bytesOf views a string's bytes without copying them; the hashes only
// read them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// hasher turns credentials into digests: plain SHA-256 without peppers;
// with peppers, HMAC-SHA-256 under the first (current) one, and under the
// others when a key made before a rotation is looked up.
type hasher struct {
	peppers []Pepper
}

// candidates is how many digests a credential may have: one per pepper, or
// one when there is none.
func (h *hasher) candidates() int { return max(1, len(h.peppers)) }

// digestAt returns the digest of key under the i-th pepper (0: current),
// and that pepper's ID.
func (h *hasher) digestAt(i int, key string) (Digest, string) {
	if len(h.peppers) == 0 {
		return sha256.Sum256(bytesOf(key)), ""
	}
	p := &h.peppers[i]
	return p.mac(key), p.id
}
