package legacy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/apikey"
)

// maxCredential bounds the credentials Fallback considers, in bytes: the
// middleware reads no header over 4 KiB.
const maxCredential = 4 << 10

// Verifier verifies the keys of another system and moves them to the
// store. Its methods are safe for concurrent use.
type Verifier struct {
	keys     apikey.KeyConfig
	store    Adder
	limit    *limiter
	running  chan struct{} // a slot per slow verification running (MaxSlowAtOnce)
	logger   *slog.Logger
	pepperID string

	mu sync.RWMutex
	ix *index
	// drops counts records forgotten; Fallback, not finding a record,
	// asks the store again when it moved, for the key may have been
	// migrated meanwhile.
	drops atomic.Uint64

	stats struct {
		found, migrated, slow, fast, refused, misses, mismatches atomic.Uint64
	}
}

// New checks cfg and loads its records; its errors name the field or the
// record (Config.Records[i]) to change, and wrap apikey.ErrInvalid.
func New(store Adder, cfg Config) (*Verifier, error) {
	if err := cfg.check(store); err != nil {
		return nil, err
	}
	ix, err := buildIndex(cfg.Records, &cfg.Keys, func(i int) string { return fmt.Sprintf("Config.Records[%d]", i) })
	if err != nil {
		return nil, fmt.Errorf("legacy: New: %w", err)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = cfg.Keys.Clock
	}
	if clock == nil {
		clock = time.Now
	}
	return &Verifier{
		keys:     cfg.Keys,
		store:    store,
		limit:    newLimiter(cmp.Or(cfg.MaxSlowPerSecond, defaultMaxSlowPerSecond), clock),
		running:  make(chan struct{}, cmp.Or(cfg.MaxSlowAtOnce, defaultMaxSlowAtOnce)),
		logger:   cfg.Logger,
		pepperID: currentPepperID(cfg.Keys),
		ix:       ix,
	}, nil
}

// currentPepperID is the ID of the pepper KeyConfig.Digest uses ("" for
// SHA-256), learnt from a key made and thrown away.
func currentPepperID(keys apikey.KeyConfig) string {
	for _, env := range []apikey.Environment{apikey.EnvLive, apikey.EnvTest} {
		if is, err := keys.NewKey(apikey.KeySpec{Name: "pepper probe", Environment: env}); err == nil {
			return is.Key.PepperID
		}
	}
	return ""
}

// Fallback is apikey.Config.Fallback: it returns the key whose secret cred
// is, migrating it on first use (see the package documentation); an error
// wrapping apikey.ErrNotFound when cred is no key (401); ErrBusy over
// Config.MaxSlowPerSecond, or the store's failure (503).
func (v *Verifier) Fallback(ctx context.Context, cred string) (*apikey.Key, error) {
	if len(cred) == 0 || len(cred) > maxCredential {
		v.stats.misses.Add(1)
		return nil, errNoRecord
	}
	d := v.keys.Digest(cred)
	drops := v.drops.Load()
	if k, err := v.lookupMigrated(ctx, cred, d); k != nil || err != nil {
		return k, err
	}
	e := v.find(cred)
	if e == nil {
		if v.drops.Load() != drops { // a record was migrated meanwhile: maybe this one
			if k, err := v.lookupMigrated(ctx, cred, d); k != nil || err != nil {
				return k, err
			}
		}
		v.stats.misses.Add(1)
		return nil, errNoRecord
	}
	if e.slow() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("legacy: %w", err)
		}
		// A slot first, then a token: a request refused for the one does
		// not spend the other.
		select {
		case v.running <- struct{}{}:
			defer func() { <-v.running }()
		default:
			v.stats.refused.Add(1)
			return nil, ErrBusy
		}
		ok, warn := v.limit.allow()
		if !ok {
			v.stats.refused.Add(1)
			if warn && v.logger != nil {
				v.logger.Warn("legacy: slow verifications over Config.MaxSlowPerSecond: refusing with 503", "scheme", e.scheme)
			}
			return nil, ErrBusy
		}
		v.stats.slow.Add(1)
	} else {
		v.stats.fast.Add(1)
	}
	if !e.hash.verify(cred) {
		v.stats.mismatches.Add(1)
		return nil, errMismatch
	}
	return v.migrate(ctx, e, d, cred)
}

// lookup asks the store for d: the key (and its record, if this replica
// still holds it, is forgotten); nil and nil when unknown; or the store's
// failure.
func (v *Verifier) lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	k, err := v.store.Lookup(ctx, d)
	switch {
	case err == nil && k != nil:
		v.stats.found.Add(1)
		v.forget(k.ID)
		return k, nil
	case err == nil, errors.Is(err, apikey.ErrNotFound):
		return nil, nil
	}
	if v.logger != nil {
		v.logger.Warn("legacy: store lookup failed", "error", err)
	}
	return nil, fmt.Errorf("legacy: store lookup: %w", err)
}

// lookupMigrated finds a key migrated before, filed under this library's
// digest d of cred, or under an older pepper of Config.Keys: then it is
// filed again under d (when the store is an apikey.Rehasher), as the
// middleware does for keys of its own formats.
func (v *Verifier) lookupMigrated(ctx context.Context, cred string, d apikey.Digest) (*apikey.Key, error) {
	if k, err := v.lookup(ctx, d); k != nil || err != nil {
		return k, err
	}
	for _, p := range v.keys.Peppers[min(1, len(v.keys.Peppers)):] {
		old := v.keys
		old.Peppers = []apikey.Pepper{p}
		k, err := v.lookup(ctx, old.Digest(cred))
		if k == nil || err != nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		if rh, ok := v.store.(apikey.Rehasher); ok {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rehashTimeout)
			if err := rh.Rehash(rctx, k.ID, d, v.pepperID); err != nil && v.logger != nil {
				v.logger.Warn("legacy: re-filing a migrated key under the current pepper failed", "key_id", k.ID, "error", err)
			}
			cancel()
		}
		return k, nil
	}
	return nil, nil
}

// rehashTimeout bounds the re-filing of a key found under an old pepper.
const rehashTimeout = time.Second

// find returns the record cred can belong to, or nil, without a slow hash.
func (v *Verifier) find(cred string) *entry {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var buf [2]string
	fast := buf[:0]
	for _, kind := range v.ix.kinds {
		fast = append(fast, indexOf(kind, cred))
	}
	return v.ix.find(cred, fast)
}

// migrate files e's key under d, forgets e and returns the key. An ID or
// digest already taken (another replica, or another request, migrated it
// first) is fine when the store then finds the key under d.
func (v *Verifier) migrate(ctx context.Context, e *entry, d apikey.Digest, cred string) (*apikey.Key, error) {
	k := e.key.Clone()
	k.PepperID = v.pepperID
	if k.Hint == "" {
		k.Hint = hint(e.prefix, cred)
	}
	err := v.store.Add(ctx, d, k)
	if err == nil {
		v.stats.migrated.Add(1)
		v.drop(e)
		if v.logger != nil {
			v.logger.Info("legacy: key migrated", "key_id", k.ID, "scheme", e.scheme)
		}
		return k, nil
	}
	if errors.Is(err, apikey.ErrInvalid) {
		if got, lerr := v.store.Lookup(ctx, d); lerr == nil && got != nil {
			v.drop(e)
			return got, nil
		}
		// The ID is filed under another digest: the records and the store
		// disagree, and no retry will help.
		if v.logger != nil {
			v.logger.Warn("legacy: key verified but its ID is taken in the store under another digest", "key_id", k.ID, "scheme", e.scheme, "error", err)
		}
	} else if v.logger != nil {
		v.logger.Warn("legacy: key verified but the store failed to file it", "key_id", k.ID, "scheme", e.scheme, "error", err)
	}
	return nil, fmt.Errorf("legacy: migrate key %s: %w", k.ID, err)
}

// drop forgets e once migrated.
func (v *Verifier) drop(e *entry) {
	v.mu.Lock()
	if v.ix.remove(e) {
		v.drops.Add(1)
	}
	v.mu.Unlock()
}

// forget drops the record of key id, if held: another replica migrated it.
func (v *Verifier) forget(id string) {
	v.mu.RLock()
	e := v.ix.byID[id]
	v.mu.RUnlock()
	if e != nil {
		v.drop(e)
	}
}

// hint is the display hint of a migrated key: its prefix, and its last
// four characters when the key is long enough to spare them.
func hint(prefix, key string) string {
	if len(key) < len(prefix)+8 {
		return prefix + "…"
	}
	return prefix + "…" + key[len(key)-4:]
}

// Remaining returns how many keys each scheme loaded still holds: records
// neither migrated nor revoked. A scheme at 0 needs its verifier no more;
// when all are, the Fallback can go. Schemes of no record are absent.
func (v *Verifier) Remaining() map[string]int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return maps.Clone(v.ix.left)
}

// Stats counts what Fallback did since New.
type Stats struct {
	Found      uint64 // keys found in the store by this library's digest: migrated before
	Migrated   uint64 // keys verified by their legacy hash and filed in the store
	Slow       uint64 // slow verifications run: bcrypt, Argon2id, PBKDF2
	Fast       uint64 // fast verifications run: SHA-512, SHA-256, plaintext
	Refused    uint64 // slow verifications refused over Config.MaxSlowPerSecond (ErrBusy)
	Misses     uint64 // credentials no record matched: refused without a legacy hash
	Mismatches uint64 // credentials that matched a record but not its hash
}

// Stats returns the counts so far.
func (v *Verifier) Stats() Stats {
	s := &v.stats
	return Stats{
		Found: s.found.Load(), Migrated: s.migrated.Load(), Slow: s.slow.Load(), Fast: s.fast.Load(),
		Refused: s.refused.Load(), Misses: s.misses.Load(), Mismatches: s.mismatches.Load(),
	}
}
