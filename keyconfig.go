package apikey

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"
)

// KeyConfig says how keys are made and checked: formats, peppers, scopes,
// clock. The store and the middleware are given the same one; nothing is
// learned from the store's type. It is a plain value: copy it freely; every
// constructor that takes one checks it.
type KeyConfig struct {
	// Formats accepted, tried in order; new keys are made in the first.
	// Required: FormatDefault, NewFormat's, or package presets'.
	Formats []*Format
	// Peppers make digests HMAC-SHA-256 instead of SHA-256. The first is
	// current; keys made under the others still verify, and are re-filed
	// under the current one on use when the store is a Rehasher.
	Peppers []Pepper
	// Scopes keys may hold, with their implications. Default nil: any
	// well-formed scope, covering only itself.
	Scopes *ScopeSet
	// Clock of creation, expiry and revocation. Default time.Now.
	Clock func() time.Time
}

// Check reports whether the configuration can be used; its error names the
// field to change. Every constructor that takes a KeyConfig calls it.
func (c KeyConfig) Check() error {
	_, err := c.check()
	return err
}

// check validates the configuration and returns a copy that later changes
// to the caller's slices cannot affect, with the clock defaulted.
func (c KeyConfig) check() (KeyConfig, error) {
	if len(c.Formats) == 0 {
		return c, fmt.Errorf("%w: KeyConfig.Formats is empty: list the key formats you accept, new keys in the first (apikey.FormatDefault, or one of package presets)", ErrInvalid)
	}
	for i, f := range c.Formats {
		if f == nil || f.length == 0 {
			return c, fmt.Errorf("%w: KeyConfig.Formats[%d] was not made by NewFormat", ErrInvalid, i)
		}
	}
	if err := c.checkPeppers(); err != nil {
		return c, err
	}
	c.Formats = slices.Clone(c.Formats)
	c.Peppers = slices.Clone(c.Peppers)
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c, nil
}

func (c *KeyConfig) checkPeppers() error {
	for i, p := range c.Peppers {
		if p.mac == nil {
			return fmt.Errorf("%w: KeyConfig.Peppers[%d] is the zero Pepper; make peppers with NewPepper", ErrInvalid, i)
		}
		for _, q := range c.Peppers[:i] {
			if q.id == p.id {
				return fmt.Errorf("%w: KeyConfig.Peppers: id %q is given twice", ErrInvalid, p.id)
			}
		}
	}
	return nil
}

func (c *KeyConfig) hasher() hasher { return hasher{peppers: c.Peppers} }

// Digest returns the digest a store files a plaintext key under: HMAC
// under the current pepper, or SHA-256. Use it to import keys. With a
// pepper Check refuses it returns the zero Digest, which no store files.
func (c KeyConfig) Digest(key string) Digest {
	if c.checkPeppers() != nil {
		return Digest{}
	}
	h := c.hasher()
	d, _ := h.digestAt(0, key)
	return d
}

// Limits on a KeySpec.
const (
	maxNameLength  = 200
	maxScopesInKey = 64
)

// KeySpec describes a key to create.
type KeySpec struct {
	Name        string      // required, at most 200 bytes
	Environment Environment // default EnvLive
	Scopes      []Scope     // at most 64, declared in KeyConfig.Scopes
	Owner       string
	Metadata    map[string]string
	ExpiresAt   time.Time // optional; in the future
	Limits      []Limit   // over its environment's defaults
}

// Issued is a new key: its record, its digest and its secret.
type Issued struct {
	Key    *Key
	Digest Digest
	Secret Secret
}

// NewKey checks spec and makes a key: an ID, a secret in the first format,
// its digest under the current pepper. It stores nothing; every store's
// Create files what it returns.
func (c KeyConfig) NewKey(spec KeySpec) (Issued, error) {
	c, err := c.check()
	if err != nil {
		return Issued{}, err
	}
	now := c.Clock().Round(0) // a stored time carries no monotonic reading
	if err := c.checkSpec(spec, now); err != nil {
		return Issued{}, err
	}
	env := spec.Environment
	if env == 0 {
		env = EnvLive
	}
	k := &Key{
		Name:        spec.Name,
		Environment: env,
		Scopes:      slices.Clone(spec.Scopes),
		Owner:       spec.Owner,
		CreatedAt:   now,
		ExpiresAt:   spec.ExpiresAt,
		Limits:      slices.Clone(spec.Limits),
	}
	if len(spec.Metadata) > 0 {
		k.Metadata = maps.Clone(spec.Metadata)
	}
	return c.issue(k)
}

// issue gives k a fresh ID and secret, in the first format and k's
// environment, and digests the secret under the current pepper.
func (c *KeyConfig) issue(k *Key) (Issued, error) {
	f := c.Formats[0]
	secret, err := generate(f, k.Environment)
	if err != nil {
		return Issued{}, err
	}
	if k.ID, err = newKeyID(); err != nil {
		return Issued{}, err
	}
	prefix, _ := f.prefixFor(k.Environment)
	k.Hint = hint(prefix, secret.Reveal())
	h := c.hasher()
	var d Digest
	d, k.PepperID = h.digestAt(0, secret.Reveal())
	return Issued{Key: k, Digest: d, Secret: secret}, nil
}

func (c *KeyConfig) checkSpec(spec KeySpec, now time.Time) error {
	if err := c.checkFields(spec, now); err != nil {
		return err
	}
	env := spec.Environment
	if env == 0 {
		env = EnvLive
	}
	if _, ok := c.Formats[0].prefixFor(env); !ok {
		return fmt.Errorf("%w: format %s makes no %s keys", ErrInvalid, c.Formats[0].name, env)
	}
	return nil
}

// checkFields checks what a key keeps of its spec: name, environment,
// scopes, expiry.
func (c *KeyConfig) checkFields(spec KeySpec, now time.Time) error {
	switch {
	case spec.Name == "":
		return fmt.Errorf("%w: KeySpec.Name is empty", ErrInvalid)
	case len(spec.Name) > maxNameLength:
		return fmt.Errorf("%w: KeySpec.Name is longer than %d bytes", ErrInvalid, maxNameLength)
	case spec.Environment > EnvTest:
		return fmt.Errorf("%w: KeySpec.Environment is %d; use EnvLive or EnvTest", ErrInvalid, spec.Environment)
	case len(spec.Scopes) > maxScopesInKey:
		return fmt.Errorf("%w: KeySpec.Scopes has more than %d scopes", ErrInvalid, maxScopesInKey)
	case !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now):
		return fmt.Errorf("%w: KeySpec.ExpiresAt %s is not in the future", ErrInvalid, spec.ExpiresAt.Format(time.RFC3339))
	}
	for _, s := range spec.Scopes {
		if err := c.Scopes.check(s); err != nil {
			return err
		}
	}
	return checkLimits(spec.Limits)
}

// Update applies change to a copy of old, and stores nothing. change may
// set Name, Scopes, ExpiresAt, Metadata, Limits and Disabled, within
// KeySpec's checks; a revoked or rolled key cannot change.
func (c KeyConfig) Update(old *Key, change func(*Key) error) (*Key, error) {
	c, err := c.check()
	if err != nil {
		return nil, err
	}
	switch {
	case change == nil:
		return nil, fmt.Errorf("%w: update %s: no change function", ErrInvalid, old.ID)
	case !old.RevokedAt.IsZero():
		return nil, fmt.Errorf("update %s: %w", old.ID, ErrRevoked)
	case old.RolledTo != "":
		return nil, fmt.Errorf("update %s: %w", old.ID, ErrAlreadyRolled)
	}
	k := old.Clone()
	if err := change(k); err != nil {
		return nil, err
	}
	fixed := *k
	fixed.Name, fixed.Scopes, fixed.ExpiresAt, fixed.Metadata, fixed.Disabled = old.Name, old.Scopes, old.ExpiresAt, old.Metadata, old.Disabled
	fixed.Limits = old.Limits
	if !reflect.DeepEqual(&fixed, old) {
		return nil, fmt.Errorf("%w: update %s: only Name, Scopes, ExpiresAt, Metadata, Limits and Disabled can change", ErrInvalid, old.ID)
	}
	spec := KeySpec{Name: k.Name, Environment: k.Environment, Scopes: k.Scopes, Metadata: k.Metadata, Limits: k.Limits}
	if !k.ExpiresAt.Equal(old.ExpiresAt) {
		spec.ExpiresAt = k.ExpiresAt
	}
	if err := c.checkFields(spec, c.Clock()); err != nil {
		return nil, fmt.Errorf("update %s: %w", old.ID, err)
	}
	return k, nil
}

// Successor makes the successor of active old in a roll, inheriting all
// but ID, secret and usage, and old's updated copy, working until now +
// grace at most; it stores nothing.
func (c KeyConfig) Successor(old *Key, grace time.Duration) (Issued, *Key, error) {
	c, err := c.check()
	if err != nil {
		return Issued{}, nil, err
	}
	if grace < 0 {
		return Issued{}, nil, fmt.Errorf("%w: roll %s: negative grace %v", ErrInvalid, old.ID, grace)
	}
	now := c.Clock().Round(0)
	switch st := old.State(now); {
	case st == StateRevoked:
		return Issued{}, nil, fmt.Errorf("roll %s: %w", old.ID, ErrRevoked)
	case old.RolledTo != "":
		return Issued{}, nil, fmt.Errorf("roll %s: %w", old.ID, ErrAlreadyRolled)
	case st == StateExpired:
		return Issued{}, nil, fmt.Errorf("roll %s: %w", old.ID, ErrExpired)
	}
	k := old.Clone()
	k.RolledFrom, k.RolledTo, k.RolledAt = old.ID, "", time.Time{}
	k.Lineage = cmp.Or(old.Lineage, old.ID)
	k.CreatedAt, k.LastUsedAt, k.Requests = now, time.Time{}, 0
	is, err := c.issue(k)
	if err != nil {
		return Issued{}, nil, err
	}
	retired := old.Clone()
	retired.RolledTo, retired.RolledAt = k.ID, now
	retired.ExpiresAt = now.Add(grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(retired.ExpiresAt) {
		retired.ExpiresAt = old.ExpiresAt
	}
	return is, retired, nil
}
