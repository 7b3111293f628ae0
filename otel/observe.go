package apikeyotel

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/usage"
)

// attrKind tells apikey.cache.entries' found keys from unknown digests.
const attrKind = attribute.Key("kind")

// ObserveCache reports c.Stats() as observable instruments, read once per
// collection: apikey.cache.hits, .negative_hits, .misses, .store_calls,
// .stale_served, .evictions, .negative_evictions, .refreshes, .fast_fails
// (counters), apikey.cache.entries{kind="found|unknown"} and
// apikey.cache.breaker.open (1 while the circuit breaker is open, else 0).
// One cache per Instrumentation: a second call is refused with an error
// wrapping apikey.ErrInvalid.
func (in *Instrumentation) ObserveCache(c *cache.Cache) error {
	if c == nil {
		return fmt.Errorf("apikeyotel: ObserveCache: %w: the cache is nil", apikey.ErrInvalid)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cacheSeen {
		return fmt.Errorf("apikeyotel: ObserveCache: %w: already observing a cache; use one Instrumentation per cache", apikey.ErrInvalid)
	}
	m := in.meter
	counters := []struct {
		name, unit, desc string
		value            func(*cache.Stats) uint64
	}{
		{"apikey.cache.hits", "{lookup}", "Lookups of found keys answered from the cache.", func(s *cache.Stats) uint64 { return s.Hits }},
		{"apikey.cache.negative_hits", "{lookup}", "Lookups of unknown digests answered from the cache.", func(s *cache.Stats) uint64 { return s.NegativeHits }},
		{"apikey.cache.misses", "{lookup}", "Lookups that needed the store.", func(s *cache.Stats) uint64 { return s.Misses }},
		{"apikey.cache.store_calls", "{call}", "Queries sent to the store (concurrent misses of one digest coalesce).", func(s *cache.Stats) uint64 { return s.StoreCalls }},
		{"apikey.cache.stale_served", "{lookup}", "Keys served stale while the store failed (stale-if-error).", func(s *cache.Stats) uint64 { return s.StaleServed }},
		{"apikey.cache.evictions", "{entry}", "Found keys evicted to make room (cache.Config.Size).", func(s *cache.Stats) uint64 { return s.Evictions }},
		{"apikey.cache.negative_evictions", "{entry}", "Unknown digests forgotten early to make room (cache.Config.NegativeSize).", func(s *cache.Stats) uint64 { return s.NegativeEvictions }},
		{"apikey.cache.refreshes", "{refresh}", "Background refreshes of keys near the end of their lifetime.", func(s *cache.Stats) uint64 { return s.Refreshes }},
		{"apikey.cache.fast_fails", "{lookup}", "Lookups failed without a store call because the circuit breaker was open.", func(s *cache.Stats) uint64 { return s.FastFails }},
	}
	insts := make([]metric.Int64ObservableCounter, len(counters))
	observables := make([]metric.Observable, 0, len(counters)+2)
	for i, ctr := range counters {
		var err error
		insts[i], err = m.Int64ObservableCounter(ctr.name, metric.WithUnit(ctr.unit), metric.WithDescription(ctr.desc))
		if err != nil {
			return fmt.Errorf("apikeyotel: ObserveCache: %w", err)
		}
		observables = append(observables, insts[i])
	}
	entries, err := m.Int64ObservableUpDownCounter("apikey.cache.entries", metric.WithUnit("{entry}"),
		metric.WithDescription(`Entries held: found keys (kind="found") and unknown digests (kind="unknown").`))
	if err != nil {
		return fmt.Errorf("apikeyotel: ObserveCache: %w", err)
	}
	breaker, err := m.Int64ObservableGauge("apikey.cache.breaker.open",
		metric.WithDescription("1 while the cache's circuit breaker is open (store calls fail fast), else 0."))
	if err != nil {
		return fmt.Errorf("apikeyotel: ObserveCache: %w", err)
	}
	observables = append(observables, entries, breaker)
	found := metric.WithAttributeSet(attribute.NewSet(attrKind.String("found")))
	unknown := metric.WithAttributeSet(attribute.NewSet(attrKind.String("unknown")))
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := c.Stats()
		for i, ctr := range counters {
			o.ObserveInt64(insts[i], int64(ctr.value(&s)))
		}
		o.ObserveInt64(entries, int64(s.Entries-s.NegativeEntries), found)
		o.ObserveInt64(entries, int64(s.NegativeEntries), unknown)
		var open int64
		if s.BreakerOpen {
			open = 1
		}
		o.ObserveInt64(breaker, open)
		return nil
	}, observables...)
	if err != nil {
		return fmt.Errorf("apikeyotel: ObserveCache: %w", err)
	}
	in.registrations = append(in.registrations, reg)
	in.cacheSeen = true
	return nil
}

// ObserveUsage reports rec.Stats() as observable instruments, read once
// per collection: apikey.usage.flush.failures (failed flushes, each
// retried), apikey.usage.flushed and apikey.usage.dropped (requests
// delivered to the store, and not counted), and apikey.usage.pending
// (keys tallied and not yet flushed). One recorder per Instrumentation: a
// second call is refused with an error wrapping apikey.ErrInvalid.
func (in *Instrumentation) ObserveUsage(rec *usage.Recorder) error {
	if rec == nil {
		return fmt.Errorf("apikeyotel: ObserveUsage: %w: the recorder is nil", apikey.ErrInvalid)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.usageSeen {
		return fmt.Errorf("apikeyotel: ObserveUsage: %w: already observing a recorder; use one Instrumentation per recorder", apikey.ErrInvalid)
	}
	m := in.meter
	failures, err := m.Int64ObservableCounter("apikey.usage.flush.failures", metric.WithUnit("{flush}"),
		metric.WithDescription("Flushes of usage counts that failed (each is retried)."))
	if err != nil {
		return fmt.Errorf("apikeyotel: ObserveUsage: %w", err)
	}
	flushed, err := m.Int64ObservableCounter("apikey.usage.flushed", metric.WithUnit("{request}"),
		metric.WithDescription("Requests whose count was delivered to the store."))
	if err != nil {
		return fmt.Errorf("apikeyotel: ObserveUsage: %w", err)
	}
	dropped, err := m.Int64ObservableCounter("apikey.usage.dropped", metric.WithUnit("{request}"),
		metric.WithDescription("Requests not counted: over usage.Config.MaxPending keys between flushes, or after Close."))
	if err != nil {
		return fmt.Errorf("apikeyotel: ObserveUsage: %w", err)
	}
	pending, err := m.Int64ObservableUpDownCounter("apikey.usage.pending", metric.WithUnit("{key}"),
		metric.WithDescription("Keys tallied and not yet flushed, a failed flush's batch included."))
	if err != nil {
		return fmt.Errorf("apikeyotel: ObserveUsage: %w", err)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := rec.Stats()
		o.ObserveInt64(failures, int64(s.Failures))
		o.ObserveInt64(flushed, int64(s.Flushed))
		o.ObserveInt64(dropped, int64(s.Dropped))
		o.ObserveInt64(pending, int64(s.Pending))
		return nil
	}, failures, flushed, dropped, pending)
	if err != nil {
		return fmt.Errorf("apikeyotel: ObserveUsage: %w", err)
	}
	in.registrations = append(in.registrations, reg)
	in.usageSeen = true
	return nil
}

// OnBreaker returns a cache.Config.OnBreaker hook that counts the
// breaker's openings (apikey.cache.breaker.openings: a flap between two
// collections shows there, where the apikey.cache.breaker.open gauge may
// miss it) and then calls next, if not nil.
//
//	cfg.OnBreaker = inst.OnBreaker(cfg.OnBreaker)
func (in *Instrumentation) OnBreaker(next func(open bool)) func(open bool) {
	return func(open bool) {
		if open {
			in.breakerOpenings.Add(context.Background(), 1)
		}
		if next != nil {
			next(open)
		}
	}
}

// FeedLag returns a pgstore.ListenConfig.OnSync hook that records the
// feed's progress and then calls next, if not nil (a cache's Synced).
// apikey.feed.lag reports, at each collection, Config.Clock() minus the
// last asOf: the feed's delay while it syncs, growing while it does not.
// Nothing is reported before the first sync. One feed per
// Instrumentation: every hook it returns moves the same gauge.
//
//	OnSync: inst.FeedLag(c.Synced),
func (in *Instrumentation) FeedLag(next func(asOf time.Time)) func(asOf time.Time) {
	return func(asOf time.Time) {
		in.feedAsOf.Store(&asOf)
		if next != nil {
			next(asOf)
		}
	}
}
