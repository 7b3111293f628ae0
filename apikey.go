package apikey

import (
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Environment says which world a key belongs to. A key's format encodes it
// in the prefix (kg_live_ / kg_test_); formats without a test prefix make
// live keys only.
type Environment uint8

// The environments. The zero value means "unspecified": any, in a Filter or
// a Config; live, in a KeySpec.
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
	}
	return fmt.Sprintf("environment(%d)", uint8(e))
}

// MarshalText encodes the environment as "live", "test" or "".
func (e Environment) MarshalText() ([]byte, error) {
	if e > EnvTest {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, e)
	}
	return []byte(e.String()), nil
}

// UnmarshalText decodes "live", "test" or "".
func (e *Environment) UnmarshalText(b []byte) error {
	switch string(b) {
	case "live":
		*e = EnvLive
	case "test":
		*e = EnvTest
	case "":
		*e = 0
	default:
		return fmt.Errorf("%w: environment %q is neither live nor test", ErrInvalid, b)
	}
	return nil
}

// State is a key's lifecycle state at a given time; Key.State computes it.
type State uint8

// The states. The zero State means "any" in a Filter.
const (
	StateActive   State = iota + 1 // usable: not revoked, not past its expiry (a rolled key in its grace period is active)
	StateRevoked                   // revoked: refused for ever
	StateExpired                   // past its own expiry
	StateRolled                    // replaced by a roll and past its grace period
	StateDisabled                  // switched off (Key.Disabled) until switched on again
)

// String returns "active", "revoked", "expired", "rolled", or "any" for the
// zero State.
func (s State) String() string {
	switch s {
	case 0:
		return "any"
	case StateActive:
		return "active"
	case StateRevoked:
		return "revoked"
	case StateExpired:
		return "expired"
	case StateRolled:
		return "rolled"
	case StateDisabled:
		return "disabled"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Key is what a store knows of an API key, never its secret. Keys from
// Lookup and FromContext may be shared: treat them as read-only.
//
// ID is "key_" and a UUIDv7 in 26 Crockford base32 characters, sorted by
// creation time. Hint ("kg_live_…a1b2") is for display; PepperID names the
// digest's pepper. A key rolled at RolledAt names its successor (RolledTo)
// and works until ExpiresAt; a successor names the key it replaced
// (RolledFrom) and the first of its chain (Lineage), whose limit counters
// it goes on with. Disabled switches a key off until cleared.
type Key struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Environment Environment       `json:"environment"`
	Disabled    bool              `json:"disabled,omitempty"`
	Scopes      []Scope           `json:"scopes"`
	Owner       string            `json:"owner,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Limits      []Limit           `json:"limits,omitempty"`
	Lineage     string            `json:"lineage,omitempty"`
	Hint        string            `json:"hint"`
	PepperID    string            `json:"pepper_id,omitempty"`
	RolledFrom  string            `json:"rolled_from,omitempty"`
	RolledTo    string            `json:"rolled_to,omitempty"`
	RolledAt    time.Time         `json:"rolled_at,omitzero"`
	CreatedAt   time.Time         `json:"created_at"`
	ExpiresAt   time.Time         `json:"expires_at,omitzero"`
	RevokedAt   time.Time         `json:"revoked_at,omitzero"`
	LastUsedAt  time.Time         `json:"last_used_at,omitzero"`
	Requests    uint64            `json:"requests"`
}

// maxKeyIDLength is the longest key ID a store accepts.
const maxKeyIDLength = 128

// validKeyID reports whether id can name a key: 1 to 128 visible ASCII
// characters, so that it is safe in logs, headers and file names.
func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > maxKeyIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return false
		}
	}
	return true
}

// State is the one rule for a key's state at now, which the middleware,
// Filter, roll and every store apply: revoked wins, then disabled; a rolled key is
// StateRolled when its grace was zero (ExpiresAt not after RolledAt) or now
// is before RolledAt, whatever the clock did; past ExpiresAt a rolled key
// is StateRolled, another StateExpired; else active.
func (k *Key) State(now time.Time) State {
	switch {
	case !k.RevokedAt.IsZero():
		return StateRevoked
	case k.Disabled:
		return StateDisabled
	case k.RolledTo != "" && !k.RolledAt.IsZero() && (!k.ExpiresAt.After(k.RolledAt) || now.Before(k.RolledAt)):
		return StateRolled // a clock stepped back cannot revive a retired key
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		if k.RolledTo != "" {
			return StateRolled
		}
		return StateExpired
	}
	return StateActive
}

// Clone returns a deep copy of k that the caller may modify.
func (k *Key) Clone() *Key {
	c := *k
	c.Scopes = slices.Clone(k.Scopes)
	c.Metadata = maps.Clone(k.Metadata)
	c.Limits = slices.Clone(k.Limits)
	return &c
}

// Secret holds a plaintext API key until it is shown to its owner, once.
// fmt, log/slog and encoding/json show "[REDACTED]" or {}, and printers
// that walk struct fields find a closure; only Reveal returns the key.
type Secret struct {
	reveal func() string
}

// Reveal returns the plaintext. Call it only to show the key to its owner.
func (s Secret) Reveal() string {
	if s.reveal == nil {
		return ""
	}
	return s.reveal()
}

const redacted = "[REDACTED]"

// String returns "[REDACTED]".
func (s Secret) String() string { return redacted }

// Format prints [REDACTED].
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte("apikey.Secret{" + redacted + "}"))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// generate returns a new secret in format f for environment env, using
// crypto/rand only. Every character of the random part is drawn uniformly
// from the format's alphabet (rejection sampling, no modulo bias).
func generate(f *Format, env Environment) (Secret, error) {
	prefix, ok := f.prefixFor(env)
	if !ok {
		return Secret{}, fmt.Errorf("%w: format %s has no %s keys", ErrInvalid, f.name, env)
	}
	buf := make([]byte, 0, len(prefix)+f.total)
	buf = append(buf, prefix...)
	buf, err := appendRandom(buf, f.alphabet, f.length)
	if err != nil {
		return Secret{}, fmt.Errorf("apikey: generate: %w", err)
	}
	if f.checksum {
		buf = appendChecksum(buf, checksum(buf))
	}
	s := string(buf)
	return Secret{reveal: func() string { return s }}, nil
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
