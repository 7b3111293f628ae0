package apikey

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Environment says which world a key belongs to. The key format encodes it
// in the prefix (sk_live_ / sk_test_); formats without a prefix produce live
// keys.
type Environment uint8

// The environments. The zero value means "unspecified" (any, in filters).
const (
	EnvLive Environment = 1
	EnvTest Environment = 2
)

// String returns "live", "test" or "" for the zero value.
func (e Environment) String() string {
	switch e {
	case EnvLive:
		return "live"
	case EnvTest:
		return "test"
	case 0:
		return ""
	default:
		return fmt.Sprintf("environment(%d)", uint8(e))
	}
}

// MarshalText encodes the environment as "live" or "test".
func (e Environment) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText decodes "live", "test" or "".
func (e *Environment) UnmarshalText(b []byte) error {
	v, err := ParseEnvironment(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// ParseEnvironment turns "live", "test" or "" into an Environment.
func ParseEnvironment(s string) (Environment, error) {
	switch s {
	case "live":
		return EnvLive, nil
	case "test":
		return EnvTest, nil
	case "":
		return 0, nil
	}
	return 0, fmt.Errorf("%w: environment %q is neither live nor test", ErrInvalid, s)
}

// State is a key's lifecycle state at a given time.
type State uint8

// The states. StateAny is only meaningful in a Filter.
const (
	StateAny State = iota
	StateActive
	StateRevoked
	StateExpired
)

// String returns "active", "revoked", "expired" or "any".
func (s State) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateRevoked:
		return "revoked"
	case StateExpired:
		return "expired"
	default:
		return "any"
	}
}

// Key is what a store knows about an API key: its metadata, never its
// secret. Keys handed out by a KeyStore's Lookup and by FromContext may be
// shared between requests; treat them as read-only.
type Key struct {
	// ID is a log-safe identifier: "key_" followed by a UUIDv7 in 26
	// lowercase Crockford base32 characters (the TypeID encoding), so IDs
	// sort by creation time.
	ID string `json:"id"`
	// Name is a human label, such as "zapier-readonly".
	Name string `json:"name"`
	// Environment is live or test.
	Environment Environment `json:"environment"`
	// Scopes are the scopes granted to the key, before implication.
	Scopes []Scope `json:"scopes"`
	// Owner is the account the key belongs to; the owner-binding option
	// (seed 003's Email header) compares it with a request header.
	Owner string `json:"owner,omitempty"`
	// Metadata is free-form integrator data.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Hint is the key's prefix and last four characters, for display:
	// "sk_live_…a1b2".
	Hint string `json:"hint"`
	// PepperID names the pepper whose HMAC produced the stored digest; it is
	// empty for plain SHA-256.
	PepperID string `json:"pepper_id,omitempty"`
	// RolledFrom is the ID of the key this one replaced, if any.
	RolledFrom string `json:"rolled_from,omitempty"`
	// RolledTo is the ID of the key that replaced this one, if any; such a
	// key stops working at ExpiresAt, the end of its grace period.
	RolledTo string `json:"rolled_to,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Requests counts the authenticated requests recorded for the key.
	Requests uint64 `json:"requests"`
}

// State reports the key's state at now: revoked wins over expired.
func (k *Key) State(now time.Time) State {
	switch {
	case !k.RevokedAt.IsZero():
		return StateRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StateExpired
	default:
		return StateActive
	}
}

// Clone returns a deep copy of k that the caller may modify.
func (k *Key) Clone() *Key {
	c := *k
	if k.Scopes != nil {
		c.Scopes = append([]Scope(nil), k.Scopes...)
	}
	if k.Metadata != nil {
		c.Metadata = make(map[string]string, len(k.Metadata))
		for n, v := range k.Metadata {
			c.Metadata[n] = v
		}
	}
	return &c
}

// LogValue makes slog print the key's identifying fields only.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", k.ID),
		slog.String("name", k.Name),
		slog.String("environment", k.Environment.String()),
		slog.String("hint", k.Hint),
	)
}

// NewKeyID returns a fresh key ID: "key_" + a UUIDv7 as 26 lowercase
// Crockford base32 characters, such as "key_01jd5y4m2pf3qx8v9b7c6n0rtw".
// IDs sort by creation time and fit in 32 bytes.
func NewKeyID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("apikey: key id: %w", err)
	}
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	var b [4 + 26]byte
	copy(b[:], "key_")
	// 128 bits as 26 five-bit digits, most significant first, with two
	// zero bits of padding on top.
	for i := 0; i < 26; i++ {
		bit := 130 - 5*(i+1) // position of the digit's lowest bit
		var v byte
		for j := 4; j >= 0; j-- {
			v <<= 1
			if p := bit + j; p < 128 && u[15-p/8]>>(p%8)&1 == 1 {
				v |= 1
			}
		}
		b[4+i] = alphabet[v]
	}
	return string(b[:]), nil
}

// Secret holds a plaintext API key. It exists between generation and the
// moment the secret is shown to its owner, once. Every way of printing it —
// fmt's %v, %+v, %#v and %s, log/slog, encoding/json — yields
// "[REDACTED]"; only Reveal returns the plaintext.
//
// The plaintext sits behind a pointer, so that even where fmt cannot call
// the redacting methods (a Secret in an unexported field, or inside a value
// printed with a bad verb) it prints an address, never the key.
type Secret struct {
	p *string
}

// NewSecret wraps a plaintext key, for code that receives one (a test, an
// import) and must hand it around without risking a log line.
func NewSecret(plaintext string) Secret { return Secret{p: &plaintext} }

// Reveal returns the plaintext. Call it only to show the key to its owner.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

const redacted = "[REDACTED]"

// String returns "[REDACTED]".
func (s Secret) String() string { return redacted }

// GoString returns a redacted Go syntax representation.
func (s Secret) GoString() string { return "apikey.Secret{" + redacted + "}" }

// Format redacts the secret for every fmt verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// LogValue redacts the secret in log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes the secret as "[REDACTED]". To send a new key to its
// owner, put Reveal() in the response explicitly.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes the secret as "[REDACTED]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Generate returns a new secret in format f for environment env, using
// crypto/rand only. Every character of the random part is drawn uniformly
// from the format's alphabet (rejection sampling, no modulo bias).
func Generate(f *Format, env Environment) (Secret, error) {
	if f == nil {
		return Secret{}, fmt.Errorf("%w: nil format", ErrInvalid)
	}
	prefix, ok := f.prefixFor(env)
	if !ok {
		return Secret{}, fmt.Errorf("%w: format %s has no %s prefix", ErrInvalid, f.name, env)
	}
	buf := make([]byte, 0, f.total)
	buf = append(buf, prefix...)
	var err error
	buf, err = appendRandom(buf, f.alphabet, f.length)
	if err != nil {
		return Secret{}, fmt.Errorf("apikey: generate: %w", err)
	}
	if f.checksum {
		buf = appendChecksum(buf, checksum(buf))
	}
	return NewSecret(string(buf)), nil
}

// appendRandom appends n characters drawn uniformly from alphabet. Random
// bytes at or above the largest multiple of len(alphabet) are discarded,
// so every character has the same probability.
func appendRandom(dst []byte, alphabet string, n int) ([]byte, error) {
	size := len(alphabet)
	limit := 256 - 256%size
	var pool [64]byte
	for n > 0 {
		if _, err := rand.Read(pool[:]); err != nil {
			return dst, err
		}
		for _, b := range pool {
			if int(b) >= limit {
				continue
			}
			dst = append(dst, alphabet[int(b)%size])
			n--
			if n == 0 {
				break
			}
		}
	}
	return dst, nil
}

// hint returns the display hint of a key: its prefix and last four
// characters.
func hint(prefix, key string) string {
	if len(key) < len(prefix)+8 {
		return prefix + "…"
	}
	return prefix + "…" + key[len(key)-4:]
}
