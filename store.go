package apikey

import (
	"context"
	"fmt"
	"time"
)

// KeyStore is the one interface an integrator must implement: find a key by
// the digest of its secret.
//
// The contract, exactly:
//   - found: return the key and a nil error, whatever its state (revoked,
//     expired); the middleware checks the state itself;
//   - unknown digest: return nil and an error that wraps ErrNotFound (the
//     middleware answers 401);
//   - anything else: return an error that does not wrap ErrNotFound; the
//     middleware treats it as a store failure and answers 503, never 401,
//     and never calls the protected handler.
//
// Lookup must honour ctx's deadline and be safe for concurrent use. The
// returned Key may be shared; neither side modifies it afterwards.
//
// Further abilities are optional interfaces, detected by type assertion:
// Manager (create, get, list, revoke, roll), UsageStore (last-used times and
// request counts), Rehasher (pepper rotation) and Configured (the store tells
// the middleware its format and hasher).
type KeyStore interface {
	Lookup(ctx context.Context, digest Digest) (*Key, error)
}

// KeyStoreFunc adapts a function to KeyStore.
type KeyStoreFunc func(ctx context.Context, digest Digest) (*Key, error)

// Lookup calls f.
func (f KeyStoreFunc) Lookup(ctx context.Context, d Digest) (*Key, error) { return f(ctx, d) }

// Manager is the management capability of a store.
type Manager interface {
	// Create makes a new key from spec, stores only its digest and returns
	// the key and its secret. The secret is never available again.
	Create(ctx context.Context, spec KeySpec) (*Key, Secret, error)
	// Get returns the key with this ID, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (*Key, error)
	// List returns the keys matching the filter, oldest first. It never
	// returns secrets (stores do not have them).
	List(ctx context.Context, filter Filter) ([]*Key, error)
	// Revoke revokes the key at once and for ever. Revoking a revoked key
	// is not an error and keeps the first revocation time.
	Revoke(ctx context.Context, id string) error
	// Roll makes a successor with a new secret that inherits the name,
	// scopes, owner, metadata and expiry. The old key keeps working until
	// now + grace (default DefaultGrace), never past its own expiry; grace
	// 0 retires it at once. Rolling a revoked, expired or already rolled key
	// fails with ErrRevoked, ErrExpired or ErrAlreadyRolled.
	Roll(ctx context.Context, id string, opts ...RollOption) (*Key, Secret, error)
}

// UsageStore is the usage capability of a store: it applies a batch of
// coalesced usage records. For each record the store adds Count to the
// key's request count and moves its last-used time forward to LastUsed (it
// never moves it back). Records of unknown keys are skipped.
type UsageStore interface {
	RecordUsage(ctx context.Context, batch []Usage) error
}

// Usage is the coalesced usage of one key since the last flush.
type Usage struct {
	KeyID       string
	Environment Environment
	Count       uint64
	LastUsed    time.Time
}

// Rehasher is the pepper-rotation capability of a store: replace the
// digest of a key with one made under another pepper. The middleware calls
// it when a key verifies under a retiring pepper.
type Rehasher interface {
	Rehash(ctx context.Context, id string, digest Digest, pepperID string) error
}

// Configured is implemented by stores that know how their keys are made. The
// middleware uses the store's format and hasher unless options override
// them, so a server configures them in one place.
type Configured interface {
	Config() StoreConfig
}

// DefaultGrace is how long a rolled key keeps working by default: 24 hours,
// as in seed 004 (Straply).
const DefaultGrace = 24 * time.Hour

// RollOption configures Roll.
type RollOption func(*rollOptions)

type rollOptions struct{ grace time.Duration }

// WithGrace sets how long the old key keeps working after a roll; 0 retires
// it at once. Negative values are invalid.
func WithGrace(d time.Duration) RollOption { return func(o *rollOptions) { o.grace = d } }

// RollGrace applies opts to the default grace and validates the result; it
// is for Manager implementations.
func RollGrace(opts ...RollOption) (time.Duration, error) {
	o := rollOptions{grace: DefaultGrace}
	for _, opt := range opts {
		opt(&o)
	}
	if o.grace < 0 {
		return 0, fmt.Errorf("%w: negative grace %v", ErrInvalid, o.grace)
	}
	return o.grace, nil
}

// KeySpec describes a key to create.
type KeySpec struct {
	Name        string
	Environment Environment // default EnvLive
	Scopes      []Scope
	Owner       string
	Metadata    map[string]string
	// ExpiresAt is optional; when set it must lie in the future.
	ExpiresAt time.Time
}

// Filter selects keys in List. Zero fields match everything.
type Filter struct {
	Environment Environment
	Owner       string
	State       State
}

// Match reports whether k passes the filter at now.
func (f Filter) Match(k *Key, now time.Time) bool {
	return (f.Environment == 0 || k.Environment == f.Environment) &&
		(f.Owner == "" || k.Owner == f.Owner) &&
		(f.State == StateAny || k.State(now) == f.State)
}

// Clock tells the time. Stores and the middleware take one so that tests
// control expiry and grace periods without sleeping.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

// StoreConfig is how a store makes keys. Both shipped stores take one; a
// custom Manager can use Issue to make keys the same way.
type StoreConfig struct {
	// Format of new keys. Default FormatDefault.
	Format *Format
	// Hasher makes digests. Default plain SHA-256.
	Hasher *Hasher
	// Scopes, when set, rejects unknown scopes at Create with
	// ErrUnknownScope. Nil accepts every well-formed scope name.
	Scopes *ScopeSet
	// Clock for creation, expiry and revocation times. Default SystemClock.
	Clock Clock
}

// WithDefaults returns c with every unset field at its default.
func (c StoreConfig) WithDefaults() StoreConfig {
	if c.Format == nil {
		c.Format = FormatDefault
	}
	if c.Hasher == nil {
		c.Hasher = &Hasher{}
	}
	if c.Clock == nil {
		c.Clock = SystemClock
	}
	return c
}

// Issued is a freshly made key: its record, the digest to store and the
// secret to show once.
type Issued struct {
	Key    *Key
	Digest Digest
	Secret Secret
}

// Issue validates spec and makes a new key: a fresh ID, a secret in the
// configured format, its digest under the current pepper, and the record.
// It stores nothing. Unset fields of c take their defaults.
func (c StoreConfig) Issue(spec KeySpec) (Issued, error) {
	c = c.WithDefaults()
	now := c.Clock.Now()
	if err := c.validate(spec, now); err != nil {
		return Issued{}, err
	}
	env := spec.Environment
	if env == 0 {
		env = EnvLive
	}
	secret, err := Generate(c.Format, env)
	if err != nil {
		return Issued{}, err
	}
	id, err := NewKeyID()
	if err != nil {
		return Issued{}, err
	}
	prefix, _ := c.Format.prefixFor(env)
	k := &Key{
		ID:          id,
		Name:        spec.Name,
		Environment: env,
		Scopes:      append([]Scope(nil), spec.Scopes...),
		Owner:       spec.Owner,
		Hint:        hint(prefix, secret.Reveal()),
		PepperID:    c.Hasher.CurrentPepperID(),
		CreatedAt:   now,
		ExpiresAt:   spec.ExpiresAt,
	}
	if len(spec.Metadata) > 0 {
		k.Metadata = make(map[string]string, len(spec.Metadata))
		for n, v := range spec.Metadata {
			k.Metadata[n] = v
		}
	}
	return Issued{Key: k, Digest: c.Hasher.Digest(secret.Reveal()), Secret: secret}, nil
}

// Limits on KeySpec fields.
const (
	MaxNameLength  = 200
	MaxScopesInKey = 64
)

func (c StoreConfig) validate(spec KeySpec, now time.Time) error {
	switch {
	case spec.Name == "":
		return fmt.Errorf("%w: key name is empty", ErrInvalid)
	case len(spec.Name) > MaxNameLength:
		return fmt.Errorf("%w: key name longer than %d bytes", ErrInvalid, MaxNameLength)
	case spec.Environment != 0 && spec.Environment != EnvLive && spec.Environment != EnvTest:
		return fmt.Errorf("%w: environment %d", ErrInvalid, spec.Environment)
	case len(spec.Scopes) > MaxScopesInKey:
		return fmt.Errorf("%w: more than %d scopes", ErrInvalid, MaxScopesInKey)
	case !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now):
		return fmt.Errorf("%w: expiry %s is not in the future", ErrInvalid, spec.ExpiresAt.Format(time.RFC3339))
	}
	env := spec.Environment
	if env == 0 {
		env = EnvLive
	}
	if _, ok := c.Format.prefixFor(env); !ok {
		return fmt.Errorf("%w: format %s has no %s keys", ErrInvalid, c.Format.Name(), env)
	}
	for _, s := range spec.Scopes {
		if !c.Scopes.Declared(s) {
			return fmt.Errorf("%w: %q", ErrUnknownScope, s)
		}
	}
	return nil
}

// Successor makes the key that replaces old in a roll: a new ID and secret,
// and everything else inherited. It also returns when the old key must stop
// working: now + grace, capped by the old key's own expiry. It stores
// nothing and checks old's state: revoked, expired and already-rolled keys
// cannot be rolled.
func (c StoreConfig) Successor(old *Key, grace time.Duration) (Issued, time.Time, error) {
	c = c.WithDefaults()
	now := c.Clock.Now()
	switch old.State(now) {
	case StateRevoked:
		return Issued{}, time.Time{}, fmt.Errorf("roll %s: %w", old.ID, ErrRevoked)
	case StateExpired:
		return Issued{}, time.Time{}, fmt.Errorf("roll %s: %w", old.ID, ErrExpired)
	}
	if old.RolledTo != "" {
		return Issued{}, time.Time{}, fmt.Errorf("roll %s: %w", old.ID, ErrAlreadyRolled)
	}
	secret, err := Generate(c.Format, old.Environment)
	if err != nil {
		return Issued{}, time.Time{}, err
	}
	id, err := NewKeyID()
	if err != nil {
		return Issued{}, time.Time{}, err
	}
	prefix, _ := c.Format.prefixFor(old.Environment)
	k := old.Clone()
	k.ID = id
	k.Hint = hint(prefix, secret.Reveal())
	k.PepperID = c.Hasher.CurrentPepperID()
	k.RolledFrom = old.ID
	k.RolledTo = ""
	k.CreatedAt = now
	k.LastUsedAt = time.Time{}
	k.Requests = 0
	retire := now.Add(grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(retire) {
		retire = old.ExpiresAt
	}
	return Issued{Key: k, Digest: c.Hasher.Digest(secret.Reveal()), Secret: secret}, retire, nil
}
