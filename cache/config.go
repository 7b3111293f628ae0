package cache

import (
	"fmt"
	"time"

	"github.com/keygate/apikey"
)

// Config configures a Cache. A zero field means its documented default.
type Config struct {
	// TTL is how long a found key is served from the cache when no
	// invalidation feed is syncing (see Cache.Synced): the revocation bound
	// when nothing invalidates entries. Each entry's lifetime is drawn
	// from [0.85·TTL, TTL] so that keys cached together are not refilled
	// together. Default 30 s.
	TTL time.Duration
	// NegativeTTL is how long an unknown digest is remembered: long enough
	// to absorb a flood of one bad key, short enough that a key created
	// elsewhere is soon usable. Drawn from [0.85·NegativeTTL, NegativeTTL]
	// like TTL. Default 5 s.
	NegativeTTL time.Duration
	// Size bounds the number of found keys held. A full cache evicts by
	// CLOCK (second chance): a key looked up since the eviction hand last
	// passed it is kept, one that was not goes first, so frequently used
	// keys stay. Unknown digests do not count: see NegativeSize. (Under
	// heavy contention a cache of a few dozen entries may briefly hold a
	// few more.) Default 100,000.
	Size int
	// NegativeSize bounds the number of unknown digests remembered; a full
	// table forgets its oldest. The table is split in 32 parts by digest,
	// each bounded by its share, so it may start forgetting a little before
	// it holds NegativeSize. A flood of unknown digests fills this table
	// only and never evicts a found key. Expired entries are swept as new
	// ones are put, with no goroutine. Default 100,000.
	NegativeSize int
	// LookupTimeout bounds each store call. Default 2 s.
	LookupTimeout time.Duration
	// StaleIfError bounds stale answers: while the store fails for this
	// replica (errors, timeouts, or the circuit breaker open), a key the
	// cache knew valid within StaleIfError keeps working from its last
	// known state. So a key revoked elsewhere can be accepted for at most
	// StaleIfError after the cache last knew it valid (by a store answer,
	// or by the invalidation feed's Synced). A key this cache has seen
	// invalidated (Invalidate, InvalidateKey, Purge) is never served
	// stale, nor is an unknown digest. Default 5 s; set NoStale to switch
	// it off.
	StaleIfError time.Duration
	// NoStale switches stale-if-error off: every store failure fails the
	// lookups that needed the store.
	NoStale bool
	// MaxFeedLag bounds how far behind the invalidation feed may be. Once
	// Cache.Synced has been called, a cached key is served only while the
	// later of its validation and the feed's last sync is within
	// MaxFeedLag; past that, the store is asked again. So while the feed
	// syncs, entries live for their TTL, and when it stops, a revocation
	// is missed for at most MaxFeedLag while the store answers. Before the
	// first Synced call it has no effect. Default 1 s.
	MaxFeedLag time.Duration
	// BreakerFailures is the number of consecutive store failures (errors
	// other than apikey.ErrNotFound, timeouts included) that opens the
	// circuit breaker: lookups that need the store then fail at once with
	// an error wrapping ErrStoreDown, without calling it. Default 5.
	BreakerFailures int
	// BreakerProbe is how often an open breaker lets one lookup through to
	// the store as a probe; the first that succeeds closes the breaker, so
	// the cache recovers within BreakerProbe of the store answering again.
	// Default 250 ms.
	BreakerProbe time.Duration
	// OnBreaker, when set, is called with true when the breaker opens and
	// with false when it closes. Calls do not overlap and alternate; no
	// lock of the cache is held, but a lookup waits for it, so keep it
	// cheap (set a gauge, log a line). Default nil.
	OnBreaker func(open bool)
	// Clock tells the time for TTLs, the feed lag and the breaker. Default
	// time.Now, whose monotonic reading makes every lifetime immune to
	// wall-clock steps: the cache measures time as the difference from a
	// reading taken in New, so setting the system clock back cannot extend
	// an entry. A clock without a monotonic reading (a test's manual clock)
	// is used as it goes; give the KeyConfig's Clock in tests.
	Clock func() time.Time
}

// validate checks cfg's fields; its error names the field to change.
func (cfg Config) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TTL", cfg.TTL}, {"NegativeTTL", cfg.NegativeTTL}, {"LookupTimeout", cfg.LookupTimeout},
		{"StaleIfError", cfg.StaleIfError}, {"MaxFeedLag", cfg.MaxFeedLag}, {"BreakerProbe", cfg.BreakerProbe},
	} {
		if d.v < 0 {
			return fmt.Errorf("cache: New: %w: Config.%s is negative", apikey.ErrInvalid, d.name)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"Size", cfg.Size}, {"NegativeSize", cfg.NegativeSize}, {"BreakerFailures", cfg.BreakerFailures}} {
		if n.v < 0 {
			return fmt.Errorf("cache: New: %w: Config.%s is negative", apikey.ErrInvalid, n.name)
		}
	}
	if cfg.NoStale && cfg.StaleIfError != 0 {
		return fmt.Errorf("cache: New: %w: Config.StaleIfError is set with Config.NoStale: keep one", apikey.ErrInvalid)
	}
	return nil
}
