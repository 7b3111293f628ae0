package replicas

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// sumCache sums a cache counter over replicas.
func sumCache(ss []Stats, name string) uint64 {
	var n uint64
	for _, s := range ss {
		n += s.CacheCount(name)
	}
	return n
}

// flood: distinct well-formed unknown keys at the replicas while valid
// load continues; the share of valid requests served from the cache.
func flood(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "flood"}
	w, err := e.setup(ctx, 100, 0, 0)
	if err != nil {
		return fs.list, err
	}
	defer w.close()
	unknown, err := unknownKeys(e.pick(20_000, 100_000))
	if err != nil {
		return fs.list, err
	}
	before, err := w.c.allStats(ctx)
	if err != nil {
		return fs.list, err
	}
	rate := 2000
	fl := newLoad(w.urls, unknown, rate, func(_ int, seq uint64) int { return int(seq % uint64(len(unknown))) })
	w.load.Start()
	fl.Start()
	time.Sleep(time.Duration(len(unknown)) * time.Second / time.Duration(rate))
	frecs := fl.Stop()
	recs := w.load.Stop()
	after, err := w.c.allStats(ctx)
	if err != nil {
		return fs.list, err
	}
	hits := sumCache(after, "Hits") - sumCache(before, "Hits")
	valid := int64(len(recs)) - countStatus(recs, 0)
	share := 0.0
	if valid > 0 {
		share = float64(hits) / float64(valid)
	}
	fs.info("unknown keys sent", "%d (%d skipped, %d unanswered)", len(frecs), fl.Skipped(), countStatus(frecs, 0))
	fs.info("store calls during flood", "%d", sumCache(after, "StoreCalls")-sumCache(before, "StoreCalls"))
	fs.check("valid requests served from cache", fmt.Sprintf("%.2f%% (%d of %d)", 100*share, hits, valid), ">= 95%", share >= 0.95)
	fs.zero("unknown keys accepted", countStatus(frecs, http.StatusOK))
	fs.zero("401s for valid keys", countStatus(recs, http.StatusUnauthorized))
	fs.info("503s (valid / unknown)", "%d / %d", countStatus(recs, http.StatusServiceUnavailable), countStatus(frecs, http.StatusServiceUnavailable))
	fs.info("valid p99 latency", "%s", ms(quantile(latencies(recs), 0.99)))
	return fs.list, nil
}

// usageTotals stops every replica gracefully and compares the requests
// the database recorded for keys with served, the 200s the load counted.
func (w *world) usageTotals(ctx context.Context, fs *figures, served int64, keys []key) error {
	final, err := w.c.stopAll()
	if err != nil {
		return err
	}
	var calls, failures uint64
	for _, s := range final {
		calls += s.HandlerCalls
		failures += s.Usage.Failures
	}
	db, err := w.c.requests(ctx, keys)
	if err != nil {
		return err
	}
	fs.info("200s counted by the load", "%d (handler calls %d)", served, calls)
	fs.info("failed flushes", "%d", failures)
	fs.check("requests in the database", fmt.Sprint(db), fmt.Sprintf("= %d", served), int64(db) == served)
	fs.zero("lost", max(served-int64(db), 0))
	fs.zero("double counted", max(int64(db)-served, 0))
	return nil
}

// usageLoad runs the load, calling during at after it; returns its 200s.
func (w *world) usageLoad(d time.Duration, during func()) int64 {
	w.load.Start()
	if during != nil {
		time.Sleep(d / 3)
		during()
		time.Sleep(d / 3)
	} else {
		time.Sleep(d)
	}
	return countStatus(w.load.Stop(), http.StatusOK)
}

// usageGraceful: a graceful stop of every replica after a known number of
// 200s: the database's totals equal them.
func usageGraceful(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "usage"}
	w, err := e.setup(ctx, 50, 0, 0)
	if err != nil {
		return fs.list, err
	}
	defer w.c.close()
	// The warm-up requests were served (200) too.
	served := int64(len(w.keys)*len(w.urls)) + w.usageLoad(e.pickDuration(4*time.Second, 8*time.Second), nil)
	return fs.list, w.usageTotals(ctx, fs, served, w.keys)
}

// lockhold: another session holds row locks on the used keys, and a lock
// that blocks every insert into the usage deltas, for longer than the
// flush timeout while the replicas flush: flushes time out and are retried
// under the same flush id (one that committed after its caller gave up is
// not applied twice); totals stay exact.
func lockhold(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "lockhold"}
	w, err := e.setup(ctx, 50, 0, 0)
	if err != nil {
		return fs.list, err
	}
	defer w.c.close()
	ids := make([]string, len(w.keys))
	for i, k := range w.keys {
		ids[i] = k.id
	}
	hold := 3 * e.opts.FlushTimeout
	var lockErr error
	served := int64(len(w.keys)*len(w.urls)) + w.usageLoad(2*hold+2*time.Second, func() {
		lockErr = w.holdLocks(ctx, ids, hold)
	})
	if lockErr != nil {
		return fs.list, lockErr
	}
	fs.info("locks held", "%s: rows of %d keys, usage deltas table", ms(hold), len(ids))
	return fs.list, w.usageTotals(ctx, fs, served, w.keys)
}

// holdLocks locks the keys' rows FOR UPDATE, and the usage deltas'
// table against inserts, in a transaction for d.
func (w *world) holdLocks(ctx context.Context, ids []string, d time.Duration) error {
	tx, err := w.c.admin.Begin(ctx)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `SELECT id FROM apikey_keys WHERE id = ANY($1) FOR UPDATE`, ids); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE apikey_usage_deltas IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	time.Sleep(d)
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// sigkill: one replica is killed (SIGKILL) under load; what it served and
// had not flushed is lost, at most one flush interval's worth.
func sigkill(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "sigkill"}
	n := e.opts.Replicas
	const per = 10 // keys per replica: replica r sends keys [r*per, (r+1)*per)
	w, err := e.setup(ctx, n*per, 0, 0)
	if err != nil {
		return fs.list, err
	}
	defer w.c.close()
	w.load = newLoad(w.urls, w.keys, e.opts.Rate, func(r int, seq uint64) int {
		return r*per + int(seq/uint64(n))%per
	})
	start := time.Now()
	w.load.Start()
	time.Sleep(e.pickDuration(3500*time.Millisecond, 5500*time.Millisecond))
	victim := w.c.replicas[0]
	killed := time.Now()
	victim.kill()
	time.Sleep(time.Second)
	recs := w.load.Stop()
	// expected[0]: what the database should hold for the victim's keys
	// (their warm-up on every replica, the victim's load); expected[1]:
	// the others' keys. The warm-up was flushed long before the kill.
	var load0 int64
	expected := [2]int64{int64(per * n), int64(per * (n - 1) * n)}
	for _, r := range recs {
		if r.Status == http.StatusOK {
			expected[min(r.Replica, 1)]++
			if r.Replica == 0 {
				load0++
			}
		}
	}
	if _, err := w.c.stopAll(); err != nil {
		return fs.list, err
	}
	var db [2]uint64
	for r := range n {
		got, err := w.c.requests(ctx, w.keys[r*per:(r+1)*per])
		if err != nil {
			return fs.list, err
		}
		db[min(r, 1)] += got
	}
	victimRate := float64(load0) / killed.Sub(start).Seconds()
	bound := int64(victimRate * e.opts.Interval.Seconds())
	loss := expected[0] - int64(db[0])
	fs.info("killed replica served", "%d 200s under load (%.0f/s)", load0, victimRate)
	fs.check("killed replica's loss", fmt.Sprint(loss), fmt.Sprintf("0..%d (rate × %v)", bound, e.opts.Interval), loss >= 0 && loss <= bound)
	fs.zero("others' loss or double count", expected[1]-int64(db[1]))
	return fs.list, nil
}
