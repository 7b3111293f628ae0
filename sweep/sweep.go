// Package sweep finds API keys that need their owner's attention and tells
// the owner once: keys about to expire, keys nobody has used for a long
// time, keys older than a maximum lifetime. Optionally it disables keys
// unused for too long, as GitHub revokes personal access tokens unused for
// a year: a key nobody uses is a risk nobody watches.
//
//	s, err := sweep.New(store, sweep.Config{
//		Keys:           keys,
//		ExpiringWithin: 14 * 24 * time.Hour,
//		UnusedFor:      90 * 24 * time.Hour,
//		OnFinding: func(ctx context.Context, f sweep.Finding) error {
//			return mailer.Send(ctx, f.Key.Owner, f.Kind, f.Key.Name, f.At)
//		},
//	})
//	stop := s.Start(ctx) // a sweep now, then every Config.Interval
//	defer stop()
//
// # Findings
//
// Only active keys are looked at: never revoked, expired, disabled or
// rolled ones (a rolled key's successor is a key of its own). With now the
// clock's time (Config.Keys.Clock):
//
//   - KindExpiring: ExpiresAt − now ≤ ExpiringWithin. At is ExpiresAt.
//   - KindUnused: now − last use ≥ UnusedFor, the last use being
//     LastUsedAt, or CreatedAt for a key never used. At is the last use.
//   - KindTooOld: now − CreatedAt ≥ MaxLifetime. At is CreatedAt.
//   - KindDisabledUnused: now − last use ≥ DisableUnusedAfter: the sweep
//     has disabled the key (Manager.Update, Disabled = true; the
//     middleware then refuses it as revoked). At is the last use. A key
//     the policy disables is not also reported unused, expiring or too
//     old in that sweep. A key an operator enables again is not disabled
//     again until it has been used and has then gone unused again.
//
// # Once per key and finding
//
// A finding is handed to Config.OnFinding once per key and per value of
// At, across sweeps, restarts and any number of replicas sweeping one
// store: a key whose expiry is extended is reported again for its new
// expiry; a key used again after an "unused" report is reported again
// when it goes unused again.
//
// The sweep keeps its record in the key itself, in Key.Metadata under the
// reserved keys "sweep.expiring", "sweep.unused", "sweep.too-old" and
// "sweep.disabled-unused" (MetadataPrefix + Kind). Do not set them
// yourself. Package manage neither shows nor accepts them, and keeps them
// through an update; a page of your own that shows a key's metadata
// should leave them out as well.
// Each finding is delivered in three steps, each a Manager.Update, which
// sees the current key under its lock:
//
//  1. claim: if the record does not already say the finding was
//     delivered for this At, and no other sweeper holds an unexpired
//     claim on it, record a claim valid for HookTimeout (and, for
//     KindDisabledUnused, disable the key in the same Update);
//  2. call OnFinding, only if this sweeper's Update made the claim, with
//     a context that ends after HookTimeout;
//  3. record the finding as delivered (OnFinding returned nil), or mark
//     it to be retried by the next sweep (OnFinding failed).
//
// The guarantee: exactly once while sweepers finish what they start. If a
// process dies, or the store fails, after OnFinding returned and before
// step 3 is recorded, the claim expires and the finding is delivered again
// (at least once: a finding is never lost; a duplicate e-mail is the lesser
// harm than a missed expiry warning). Make OnFinding return within
// HookTimeout: a claim older than that may be taken over by another
// sweeper. A key disabled by the policy stays disabled whether or not its
// notification succeeds; its notification is retried until it does.
//
// # Cost
//
// Without help from the store a sweep lists the active keys, Config.PageSize
// at a time (Manager.List), in one pass: O(keys); with DisableUnusedAfter
// set, a second pass lists the disabled keys, for notifications to retry.
// A store that implements Finder (pgstore) selects the candidates itself,
// by index. Each finding costs two Manager.Update calls.
package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keygate/apikey"
)

// Kind names a finding. It is also the suffix of the metadata key the
// sweep records the finding under (MetadataPrefix + Kind).
type Kind string

// The kinds of finding.
const (
	KindExpiring       Kind = "expiring"        // an active key expires within Config.ExpiringWithin
	KindUnused         Kind = "unused"          // an active key has not been used for Config.UnusedFor
	KindTooOld         Kind = "too-old"         // an active key was created at least Config.MaxLifetime ago
	KindDisabledUnused Kind = "disabled-unused" // the sweep disabled a key unused for Config.DisableUnusedAfter
)

// MetadataPrefix starts the Key.Metadata keys the sweep reserves: one per
// Kind, "sweep.expiring" and so on. Their values are the sweep's record,
// "<At, RFC 3339> <key ID>" once delivered (a successor made by Roll, which
// copies the metadata, is another key and starts afresh), followed by
// " pending <until> <token>" while a sweeper holds the finding, or by
// " retry" when the last attempt failed.
const MetadataPrefix = "sweep."

// Finding is one thing to tell a key's owner.
type Finding struct {
	Kind Kind
	// Key is a copy of the key as the sweep left it (for KindDisabledUnused,
	// disabled); OnFinding may keep it.
	Key *apikey.Key
	// At is the time the finding is about: ExpiresAt for KindExpiring, the
	// last use (LastUsedAt, or CreatedAt if never used) for KindUnused and
	// KindDisabledUnused, CreatedAt for KindTooOld.
	At time.Time
}

// Report says what one sweep did.
type Report struct {
	// Scanned is the number of keys looked at.
	Scanned int
	// Findings counts the findings by kind, delivered in this sweep or
	// before.
	Findings map[Kind]int
	// Notified counts the findings OnFinding accepted in this sweep.
	Notified int
	// Disabled counts the keys the policy disabled in this sweep.
	Disabled int
	// Errors counts failed deliveries and store calls; each is retried by
	// a later sweep.
	Errors int
	// Took is how long the sweep took.
	Took time.Duration
}

// Config configures a Sweeper (New). Keys and OnFinding are required, and
// at least one of ExpiringWithin, UnusedFor, MaxLifetime and
// DisableUnusedAfter; a zero field means its default.
type Config struct {
	// Keys: the KeyConfig the store was made with. Required. Its Clock is
	// the sweep's clock.
	Keys apikey.KeyConfig

	// ExpiringWithin finds active keys that expire within this long
	// (KindExpiring). Default 0: not looked for.
	ExpiringWithin time.Duration
	// UnusedFor finds active keys not used for this long (KindUnused).
	// Default 0: not looked for.
	UnusedFor time.Duration
	// MaxLifetime finds active keys created at least this long ago
	// (KindTooOld): time to roll them. Default 0: not looked for.
	MaxLifetime time.Duration
	// DisableUnusedAfter disables active keys not used for this long
	// (KindDisabledUnused): 365 days is GitHub's rule for personal access
	// tokens. At least UnusedFor when both are set, so that owners are
	// warned first. Default 0: keys are never disabled.
	DisableUnusedAfter time.Duration

	// OnFinding tells the key's owner (an e-mail, a ticket). Required. An
	// error leaves the finding to the next sweep. It gets a context that
	// ends after HookTimeout.
	OnFinding func(ctx context.Context, f Finding) error
	// HookTimeout bounds each OnFinding call; a sweeper that has not
	// recorded the outcome this long after its claim may lose the finding
	// to another. Default 1 minute.
	HookTimeout time.Duration

	// Interval between the sweeps of Start. Default 1 hour.
	Interval time.Duration
	// PageSize is the number of keys read per List call (ten times as
	// many per Finder call). Default 1000.
	PageSize int
	// Logger logs failures (Warn) and each sweep of Start (Info). Default
	// nil: nothing is logged.
	Logger *slog.Logger
}

// Finder is an optional ability of a store: selecting the keys a sweep
// needs by index, instead of the sweep listing every active key.
type Finder interface {
	// Candidates returns, ordered by ID (in the store's collation), at most
	// q.Limit keys (0: all) with an ID after q.After that are active (Key.State)
	// and match at least one of q's criteria, or, with
	// q.PendingDisabled, are disabled and not revoked and have a
	// "sweep.disabled-unused" record that is not final. It may return
	// other keys too: the sweep checks every key it gets.
	Candidates(ctx context.Context, q Query) ([]*apikey.Key, error)
}

// Query is what a sweep asks a Finder for. A zero time is a criterion not
// asked for; the bounds are inclusive.
type Query struct {
	// ExpiringBefore: keys whose ExpiresAt is at or before this.
	ExpiringBefore time.Time
	// UnusedSince: keys last used at or before this, or never used and
	// created at or before this.
	UnusedSince time.Time
	// CreatedBefore: keys created at or before this.
	CreatedBefore time.Time
	// PendingDisabled: also disabled keys with a notification to retry.
	PendingDisabled bool
	// After is the ID of the last key of the previous page; "": the first.
	After string
	// Limit is the most keys to return; 0: all.
	Limit int
}

// Sweeper finds keys that need attention in a store and hands each finding
// to Config.OnFinding once. It is safe for concurrent use, and any number
// of Sweepers, in any number of processes, may sweep one store at once.
type Sweeper struct {
	store   apikey.Manager
	finder  Finder
	clock   func() time.Time
	hook    func(context.Context, Finding) error
	logger  *slog.Logger
	timeout time.Duration
	every   time.Duration
	page    int

	expiring, unused, lifetime, disable time.Duration
}

// New returns a Sweeper of store, which it uses as a Finder if it is one.
// Its error wraps apikey.ErrInvalid and names the field to change.
func New(store apikey.Manager, cfg Config) (*Sweeper, error) {
	if store == nil {
		return nil, fmt.Errorf("sweep: New: %w: store is nil", apikey.ErrInvalid)
	}
	if err := cfg.Keys.Check(); err != nil {
		return nil, fmt.Errorf("sweep: New: Config.Keys: %w", err)
	}
	if cfg.OnFinding == nil {
		return nil, fmt.Errorf("sweep: New: %w: Config.OnFinding is nil: say how to tell a key's owner", apikey.ErrInvalid)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"ExpiringWithin", cfg.ExpiringWithin}, {"UnusedFor", cfg.UnusedFor}, {"MaxLifetime", cfg.MaxLifetime},
		{"DisableUnusedAfter", cfg.DisableUnusedAfter}, {"HookTimeout", cfg.HookTimeout}, {"Interval", cfg.Interval},
		{"PageSize", time.Duration(cfg.PageSize)},
	} {
		if f.v < 0 {
			return nil, fmt.Errorf("sweep: New: %w: Config.%s is negative", apikey.ErrInvalid, f.name)
		}
	}
	switch {
	case cfg.ExpiringWithin == 0 && cfg.UnusedFor == 0 && cfg.MaxLifetime == 0 && cfg.DisableUnusedAfter == 0:
		return nil, fmt.Errorf("sweep: New: %w: Config sets nothing to find: set ExpiringWithin, UnusedFor, MaxLifetime or DisableUnusedAfter", apikey.ErrInvalid)
	case cfg.DisableUnusedAfter > 0 && cfg.DisableUnusedAfter < cfg.UnusedFor:
		return nil, fmt.Errorf("sweep: New: %w: Config.DisableUnusedAfter (%v) is shorter than Config.UnusedFor (%v): keys would be disabled before their owners are warned",
			apikey.ErrInvalid, cfg.DisableUnusedAfter, cfg.UnusedFor)
	}
	s := &Sweeper{
		store:    store,
		clock:    cfg.Keys.Clock,
		hook:     cfg.OnFinding,
		logger:   cfg.Logger,
		timeout:  cmp.Or(cfg.HookTimeout, time.Minute),
		every:    cmp.Or(cfg.Interval, time.Hour),
		page:     cmp.Or(cfg.PageSize, 1000),
		expiring: cfg.ExpiringWithin,
		unused:   cfg.UnusedFor,
		lifetime: cfg.MaxLifetime,
		disable:  cfg.DisableUnusedAfter,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.finder, _ = store.(Finder)
	return s, nil
}

// Run sweeps the store once: it looks at the keys, delivers the findings
// not yet delivered and applies the disable policy. It goes on past a
// failed delivery or update (counted in Report.Errors, retried by the next
// sweep) and returns an error saying how many failed, wrapping the first.
// A store that cannot list keys, or ctx ending, stops it; the report then
// says what was done.
func (s *Sweeper) Run(ctx context.Context) (Report, error) {
	start := time.Now()
	r := &run{s: s, now: s.clock(), rep: Report{Findings: make(map[Kind]int)}}
	var err error
	if s.finder != nil {
		err = r.candidates(ctx)
	} else {
		err = r.list(ctx, apikey.StateActive)
		if err == nil && s.disable > 0 {
			err = r.list(ctx, apikey.StateDisabled)
		}
	}
	r.rep.Took = time.Since(start)
	switch {
	case err != nil:
		return r.rep, fmt.Errorf("sweep: %w", err)
	case r.first != nil:
		return r.rep, fmt.Errorf("sweep: %d of the sweep's deliveries or updates failed (retried next sweep); the first: %w", r.rep.Errors, r.first)
	}
	return r.rep, nil
}

// Start runs a sweep now and then every Config.Interval, until ctx ends or
// stop is called. stop waits for a sweep under way to finish (ctx ending
// cancels it); calling it again does nothing. Each sweep is logged.
func (s *Sweeper) Start(ctx context.Context) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			rep, err := s.Run(ctx)
			s.logRun(ctx, rep, err)
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

func (s *Sweeper) logRun(ctx context.Context, rep Report, err error) {
	if s.logger == nil {
		return
	}
	attrs := []any{"scanned", rep.Scanned, "notified", rep.Notified, "disabled", rep.Disabled,
		"errors", rep.Errors, "took", rep.Took}
	if err != nil {
		s.logger.WarnContext(ctx, "sweep: sweep failed", append(attrs, "err", err)...)
		return
	}
	s.logger.InfoContext(ctx, "sweep: swept keys", attrs...)
}

// run is the state of one sweep.
type run struct {
	s     *Sweeper
	now   time.Time
	rep   Report
	first error // the first failure
	// tried holds the findings this sweep attempted, "kind id": a key the
	// policy disabled and failed to notify is found again by the pass over
	// disabled keys, and retried by the next sweep, not this one.
	tried map[string]bool
}

// list is the generic path: every key in state st, a page at a time.
func (r *run) list(ctx context.Context, st apikey.State) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := r.s.store.List(ctx, apikey.Filter{State: st, After: after, Limit: r.s.page})
		if err != nil {
			return fmt.Errorf("list %s keys: %w", st, err)
		}
		for _, k := range page {
			if err := r.key(ctx, k); err != nil {
				return err
			}
		}
		if len(page) < r.s.page {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// finderPages is how many List pages one Finder page is.
const finderPages = 10

// candidates is the fast path: the store selects the keys.
func (r *run) candidates(ctx context.Context) error {
	// Pages of candidates are ten times larger than pages of List: each
	// costs the matches after the cursor, however few it returns.
	q := Query{PendingDisabled: r.s.disable > 0, Limit: finderPages * r.s.page}
	if r.s.expiring > 0 {
		q.ExpiringBefore = r.now.Add(r.s.expiring)
	}
	if idle := minSet(r.s.unused, r.s.disable); idle > 0 {
		q.UnusedSince = r.now.Add(-idle)
	}
	if r.s.lifetime > 0 {
		q.CreatedBefore = r.now.Add(-r.s.lifetime)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := r.s.finder.Candidates(ctx, q)
		if err != nil {
			return fmt.Errorf("find candidates: %w", err)
		}
		for _, k := range page {
			if err := r.key(ctx, k); err != nil {
				return err
			}
		}
		if len(page) == 0 || len(page) < q.Limit || q.Limit == 0 {
			return nil
		}
		q.After = page[len(page)-1].ID
	}
}

// minSet is the smaller of the durations that are set, 0 if neither is.
func minSet(a, b time.Duration) time.Duration {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// key delivers k's findings. Its error stops the sweep: only ctx's.
func (r *run) key(ctx context.Context, k *apikey.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.rep.Scanned++
	switch k.State(r.now) {
	case apikey.StateDisabled:
		if m := readMark(k, KindDisabledUnused); m.open(r.s.clock()) && !r.tried[string(KindDisabledUnused)+" "+k.ID] {
			r.rep.Findings[KindDisabledUnused]++
			r.deliver(ctx, k.ID, KindDisabledUnused, true)
		}
		return nil
	case apikey.StateActive:
	default:
		return nil
	}
	if k.RolledTo != "" {
		return nil
	}
	if _, due := r.s.due(KindDisabledUnused, k, r.now); due {
		r.rep.Findings[KindDisabledUnused]++
		if _, ok := r.s.claimable(k, KindDisabledUnused, false, r.now, r.s.clock()); ok {
			r.deliver(ctx, k.ID, KindDisabledUnused, false)
			return nil
		}
	}
	for _, kind := range []Kind{KindExpiring, KindUnused, KindTooOld} {
		if _, due := r.s.due(kind, k, r.now); !due {
			continue
		}
		r.rep.Findings[kind]++
		if _, ok := r.s.claimable(k, kind, false, r.now, r.s.clock()); ok {
			r.deliver(ctx, k.ID, kind, false)
		}
	}
	return nil
}

// due reports whether finding kind applies to the active key k at now, and
// the time it is about.
func (s *Sweeper) due(kind Kind, k *apikey.Key, now time.Time) (time.Time, bool) {
	last := k.LastUsedAt
	if last.IsZero() {
		last = k.CreatedAt
	}
	switch kind {
	case KindExpiring:
		return k.ExpiresAt, s.expiring > 0 && !k.ExpiresAt.IsZero() && k.ExpiresAt.Sub(now) <= s.expiring
	case KindUnused:
		return last, s.unused > 0 && now.Sub(last) >= s.unused
	case KindTooOld:
		return k.CreatedAt, s.lifetime > 0 && now.Sub(k.CreatedAt) >= s.lifetime
	case KindDisabledUnused:
		return last, s.disable > 0 && now.Sub(last) >= s.disable
	}
	return time.Time{}, false
}

// claimable reports whether a sweeper may claim finding kind of k (the
// current key, under its lock, or a listed copy), and what the finding is
// for. retry: the notification of a key the policy disabled earlier.
// clock is the time claims are judged at.
func (s *Sweeper) claimable(k *apikey.Key, kind Kind, retry bool, now, clock time.Time) (string, bool) {
	m := readMark(k, kind)
	if retry {
		return m.forValue, k.State(now) == apikey.StateDisabled && m.open(clock)
	}
	if k.State(now) != apikey.StateActive || k.RolledTo != "" {
		return "", false
	}
	at, due := s.due(kind, k, now)
	if !due {
		return "", false
	}
	forValue := markFor(at, k.ID)
	if m.forValue != forValue {
		return forValue, true
	}
	// The same finding: delivered, or in someone's hands, or to retry. A
	// key the policy disabled and an operator enabled again stays enabled.
	return forValue, kind != KindDisabledUnused && m.open(clock)
}

// errSkip says that the current key no longer needs the change.
var errSkip = errors.New("sweep: nothing to do")

// deliver claims, delivers and records one finding of the key id.
func (r *run) deliver(ctx context.Context, id string, kind Kind, retry bool) {
	s := r.s
	if r.tried[string(kind)+" "+id] {
		return
	}
	if r.tried == nil {
		r.tried = make(map[string]bool)
	}
	r.tried[string(kind)+" "+id] = true
	token, err := newToken()
	if err != nil {
		r.fail(ctx, id, kind, "claim", err)
		return
	}
	var claim, forValue string
	key, err := s.store.Update(ctx, id, func(k *apikey.Key) error {
		clock := s.clock()
		f, ok := s.claimable(k, kind, retry, r.now, clock)
		if !ok {
			return errSkip
		}
		forValue = f
		claim = forValue + " pending " + clock.Add(s.timeout).UTC().Format(time.RFC3339Nano) + " " + token
		setMark(k, kind, claim)
		if kind == KindDisabledUnused && !retry {
			k.Disabled = true
		}
		return nil
	})
	switch {
	case errors.Is(err, errSkip), errors.Is(err, apikey.ErrRevoked), errors.Is(err, apikey.ErrAlreadyRolled),
		errors.Is(err, apikey.ErrNotFound):
		return // someone else's, or the key changed: nothing to tell
	case err != nil:
		r.fail(ctx, id, kind, "claim", err)
		return
	}
	if kind == KindDisabledUnused && !retry {
		r.rep.Disabled++
	}
	at, _ := parseFor(forValue)
	hctx, cancel := context.WithTimeout(ctx, s.timeout)
	err = safeHook(hctx, s.hook, Finding{Kind: kind, Key: key.Clone(), At: at})
	cancel()
	outcome := forValue
	if err != nil {
		r.fail(ctx, id, kind, "OnFinding", err)
		outcome = forValue + " retry"
	}
	_, uerr := s.store.Update(ctx, id, func(k *apikey.Key) error {
		if readMark(k, kind).raw != claim {
			return errClaimLost
		}
		setMark(k, kind, outcome)
		return nil
	})
	switch {
	case errors.Is(uerr, apikey.ErrRevoked), errors.Is(uerr, apikey.ErrAlreadyRolled), errors.Is(uerr, apikey.ErrNotFound):
		// The key is gone for good: nothing more will be said of it.
	case uerr != nil:
		r.fail(ctx, id, kind, "record", uerr)
	}
	if err == nil {
		r.rep.Notified++
	}
}

var errClaimLost = errors.New("the claim expired and was taken over (OnFinding took longer than Config.HookTimeout): the finding may be delivered twice")

// safeHook calls OnFinding and turns a panic into an error.
func safeHook(ctx context.Context, hook func(context.Context, Finding) error, f Finding) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("OnFinding panicked: %v", p)
		}
	}()
	return hook(ctx, f)
}

// fail counts and logs a failure.
func (r *run) fail(ctx context.Context, id string, kind Kind, step string, err error) {
	err = fmt.Errorf("key %s, %s: %s: %w", id, kind, step, err)
	r.rep.Errors++
	if r.first == nil {
		r.first = err
	}
	if r.s.logger != nil {
		r.s.logger.WarnContext(ctx, "sweep: "+step+" failed", "key", id, "kind", string(kind), "err", err)
	}
}
