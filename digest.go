package apikey

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Digest is what a store keeps instead of a key: SHA-256 of the key, or
// HMAC-SHA-256 under a pepper. It is a fixed-size comparable value, usable
// as a map key. The pepper that produced a digest is recorded beside it, in
// Key.PepperID.
type Digest [sha256.Size]byte

// String returns the digest in lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText encodes the digest as lowercase hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes a digest from lowercase or uppercase hex.
func (d *Digest) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(d) {
		return fmt.Errorf("%w: digest must be %d hex characters", ErrInvalid, 2*len(d))
	}
	if _, err := hex.Decode(d[:], b); err != nil {
		return fmt.Errorf("%w: digest: %v", ErrInvalid, err)
	}
	return nil
}

// MinPepperLength is the shortest pepper NewPepper accepts, in bytes.
const MinPepperLength = 32

// Pepper is a server-side secret mixed into every digest with HMAC-SHA-256,
// so a stolen table of digests cannot be checked against guesses without
// it. Its ID is stored beside each digest so the pepper can be rotated.
// Like Secret, a Pepper prints as "[REDACTED]" in every format.
type Pepper struct {
	id string
	// mac computes HMAC-SHA-256 under the pepper. The key schedule lives
	// only in its closure: where fmt cannot call the Pepper's redacting
	// methods (an unexported field of a Hasher, say, or a bad verb) it
	// prints a function address, and reflection cannot reach the key.
	mac func(key string) Digest
}

// pepperPads is the HMAC key schedule, precomputed: the SHA-256 blocks of
// key^ipad and key^opad.
type pepperPads struct {
	ipad, opad [sha256.BlockSize]byte
}

// NewPepper makes a pepper from at least MinPepperLength bytes of secret
// (use 32 bytes from crypto/rand). The ID must be non-empty and is stored
// with every digest made under this pepper; it is not secret.
func NewPepper(id string, secret []byte) (Pepper, error) {
	if id == "" {
		return Pepper{}, fmt.Errorf("%w: pepper needs an id", ErrInvalid)
	}
	if len(secret) < MinPepperLength {
		return Pepper{}, fmt.Errorf("%w: pepper %q must be at least %d bytes, got %d", ErrInvalid, id, MinPepperLength, len(secret))
	}
	pads := new(pepperPads)
	key := secret
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	for i := range pads.ipad {
		var b byte
		if i < len(key) {
			b = key[i]
		}
		pads.ipad[i] = b ^ 0x36
		pads.opad[i] = b ^ 0x5c
	}
	return Pepper{id: id, mac: pads.sum}, nil
}

// ID returns the pepper's identifier.
func (p Pepper) ID() string { return p.id }

// String redacts the pepper, showing only its ID.
func (p Pepper) String() string { return "apikey.Pepper{id:" + p.id + ", " + redacted + "}" }

// GoString redacts the pepper.
func (p Pepper) GoString() string { return p.String() }

// Format redacts the pepper for every fmt verb.
func (p Pepper) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// LogValue redacts the pepper in log/slog output.
func (p Pepper) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON redacts the pepper.
func (p Pepper) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// sum computes HMAC-SHA-256(pepper, key) without allocating: the message is
// at most MaxKeyLength bytes, so both passes fit in stack buffers.
func (p *pepperPads) sum(key string) Digest {
	if len(key) > MaxKeyLength {
		return p.sumLong(key) // not reachable from the middleware
	}
	var inner [sha256.BlockSize + MaxKeyLength]byte
	copy(inner[:], p.ipad[:])
	n := copy(inner[sha256.BlockSize:], key)
	ih := sha256.Sum256(inner[:sha256.BlockSize+n])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], p.opad[:])
	copy(outer[sha256.BlockSize:], ih[:])
	return sha256.Sum256(outer[:])
}

// Hasher turns keys into digests. The zero value and NewHasher() with no
// peppers use plain SHA-256; with peppers, the first is current (new keys
// are digested with it) and the others are older ones still accepted
// during a rotation. A Hasher is immutable and safe for concurrent use.
type Hasher struct {
	peppers []Pepper
}

// NewHasher returns a Hasher. Pass the current pepper first, then the ones
// being retired. Pepper IDs must be distinct.
func NewHasher(peppers ...Pepper) (*Hasher, error) {
	seen := make(map[string]bool, len(peppers))
	for _, p := range peppers {
		if p.id == "" || p.mac == nil {
			return nil, fmt.Errorf("%w: zero Pepper; use NewPepper", ErrInvalid)
		}
		if seen[p.id] {
			return nil, fmt.Errorf("%w: pepper id %q given twice", ErrInvalid, p.id)
		}
		seen[p.id] = true
	}
	return &Hasher{peppers: append([]Pepper(nil), peppers...)}, nil
}

// CurrentPepperID is the pepper ID recorded for new digests: "" for plain
// SHA-256.
func (h *Hasher) CurrentPepperID() string {
	if h == nil || len(h.peppers) == 0 {
		return ""
	}
	return h.peppers[0].id
}

// Digest returns the digest of key under the current pepper (or plain
// SHA-256). It does not allocate for keys up to MaxKeyLength.
func (h *Hasher) Digest(key string) Digest {
	if h == nil || len(h.peppers) == 0 {
		return sha256Sum(key)
	}
	return h.peppers[0].mac(key)
}

// Candidates returns how many digests a key may have: one per pepper, or
// one when there is none. DigestAt(i, key) returns the i-th, with i = 0
// the current one.
func (h *Hasher) Candidates() int {
	if h == nil || len(h.peppers) == 0 {
		return 1
	}
	return len(h.peppers)
}

// DigestAt returns the digest of key under the i-th pepper, and that
// pepper's ID.
func (h *Hasher) DigestAt(i int, key string) (Digest, string) {
	if h == nil || len(h.peppers) == 0 {
		return sha256Sum(key), ""
	}
	p := &h.peppers[i]
	return p.mac(key), p.id
}

// DigestWith returns the digest of key under the pepper with this ID ("" for
// plain SHA-256). It reports false for an unknown pepper ID.
func (h *Hasher) DigestWith(pepperID, key string) (Digest, bool) {
	if pepperID == "" {
		return sha256Sum(key), true
	}
	if h != nil {
		for i := range h.peppers {
			if h.peppers[i].id == pepperID {
				return h.peppers[i].mac(key), true
			}
		}
	}
	return Digest{}, false
}

// sumLong is the allocating HMAC path for oversized input.
func (p *pepperPads) sumLong(key string) Digest {
	h := sha256.New()
	h.Write(p.ipad[:])
	h.Write([]byte(key))
	ih := h.Sum(nil)
	h.Reset()
	h.Write(p.opad[:])
	h.Write(ih)
	var d Digest
	copy(d[:], h.Sum(nil))
	return d
}

// sha256Sum hashes a string; small keys go through a stack buffer so the
// call does not allocate.
func sha256Sum(key string) Digest {
	if len(key) <= MaxKeyLength {
		var buf [MaxKeyLength]byte
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}
