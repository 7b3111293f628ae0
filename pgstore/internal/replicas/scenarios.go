package replicas

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// world is a scenario's running cluster: its keys, a prober and the load.
type world struct {
	e     *env
	c     *cluster
	urls  []string
	keys  []key // the load's keys: nbg background keys, then the keys to revoke
	nbg   int
	fresh []key // keys never sent before, for recovery probes
	next  atomic.Int64
	pr    *prober // probes with keys
	fp    *prober // probes with fresh
	load  *Load
}

// setup starts a cluster, creates its keys, caches the load's keys on
// every replica and prepares (does not start) the load.
func (e *env) setup(ctx context.Context, nbg, nrev, nfresh int) (*world, error) {
	c, err := e.newCluster(ctx, e.opts.Replicas)
	if err != nil {
		return nil, err
	}
	w := &world{e: e, c: c, nbg: nbg, pr: newProber(), fp: newProber()}
	for _, p := range c.replicas {
		w.urls = append(w.urls, p.url)
	}
	all, err := c.createKeys(ctx, nbg+nrev+nfresh)
	if err != nil {
		c.close()
		return nil, err
	}
	w.keys, w.fresh = all[:nbg+nrev], all[nbg+nrev:]
	if counts := w.pr.warm(ctx, w.urls, w.keys); counts[http.StatusOK] != len(w.keys)*len(w.urls) {
		c.close()
		return nil, fmt.Errorf("warming the caches: statuses %v", counts)
	}
	w.load = newLoad(w.urls, w.keys, e.opts.Rate, nil)
	return w, nil
}

// rev returns the index in keys of the i-th key to revoke.
func (w *world) rev(i int) int { return w.nbg + i }

// records returns the load's and the prober's records (the load stopped).
func (w *world) records(load []Record) []Record {
	return append(append([]Record(nil), load...), w.pr.Records()...)
}

// recovery measures, from since, when every replica first answers 200 for
// a key it never saw.
func (w *world) recovery(ctx context.Context, since time.Time, limit time.Duration) (time.Duration, bool) {
	at, ok := w.fp.recovery(ctx, w.urls, w.fresh, &w.next, 20*time.Millisecond, since.Add(limit))
	if !ok {
		return limit, false // "not recovered within limit"
	}
	return at.Sub(since), true
}

// close stops the replicas gracefully, then removes the cluster.
func (w *world) close() {
	if _, err := w.c.stopAll(); err != nil {
		w.e.logf("stop: %v", err)
	}
	w.c.close()
}

// pick returns a short-mode or full value.
func (e *env) pick(short, full int) int {
	if e.opts.Short {
		return short
	}
	return full
}

func (e *env) pickDuration(short, full time.Duration) time.Duration {
	if e.opts.Short {
		return short
	}
	return full
}

// errExternal is returned by scenarios that must stop the server.
var errExternal = errors.New("needs the throwaway server: cannot stop " + "APIKEY_TEST_DATABASE_URL's")

// outage stops the server for d and starts it again; it returns when the
// server accepts connections again. The server is started again even when
// ctx ends.
func (e *env) outage(ctx context.Context, d time.Duration) (time.Time, error) {
	if e.server.External() {
		return time.Time{}, errExternal
	}
	if err := e.server.Stop(ctx); err != nil {
		return time.Time{}, fmt.Errorf("stop PostgreSQL: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	startCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.server.Start(startCtx); err != nil {
		return time.Time{}, fmt.Errorf("start PostgreSQL: %w", err)
	}
	return time.Now(), ctx.Err()
}

// steady: revocation through the Go API and through plain SQL; for each,
// the time from commit to every replica rejecting the key.
func steady(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "steady"}
	n := e.pick(10, 40)
	w, err := e.setup(ctx, 50, 2*n, 0)
	if err != nil {
		return fs.list, err
	}
	defer w.close()
	w.load.Start()
	rv := revoked{}
	for _, path := range []struct {
		name   string
		first  int
		revoke func(context.Context, key) (revocation, error)
	}{{"Go API", 0, w.c.revoke}, {"plain SQL", n, w.c.revokeSQL}} {
		delays, missed, err := w.revocations(ctx, path.first, n, path.revoke, rv)
		if err != nil {
			w.load.Stop()
			return fs.list, err
		}
		name := "revocation → all reject, " + path.name
		if len(delays) > 0 {
			fs.info(name+" p50", "%s (%d keys)", ms(quantile(delays, 0.5)), len(delays))
		}
		p99 := quantile(delays, 0.99)
		switch {
		case missed > 0:
			fs.check(name+" p99", fmt.Sprintf("%d of %d not rejected by every replica within 2 s", missed, missed+len(delays)), "<= 100.0 ms", false)
		default:
			fs.atMost(name+" p99", p99, 100*time.Millisecond)
		}
	}
	recs := w.records(w.load.Stop())
	fs.zero("401s for valid keys", wrongRejections(recs, rv))
	fs.info("503s", "%d", countStatus(recs, http.StatusServiceUnavailable))
	fs.info("load p99 latency", "%s", ms(quantile(latencies(recs), 0.99)))
	return fs.list, nil
}

// revocations revokes n keys from keys[rev(first)] one at a time, each
// cached by every replica first, and measures commit → every replica
// rejects. After three keys in a row not rejected within 2 s it stops,
// counting the rest as missed.
func (w *world) revocations(ctx context.Context, first, n int, revoke func(context.Context, key) (revocation, error), rv revoked) ([]time.Duration, int, error) {
	var delays []time.Duration
	missed, inRow := 0, 0
	for i := range n {
		ki := w.rev(first + i)
		if inRow >= 3 {
			missed++
			continue
		}
		for _, code := range w.pr.all(ctx, w.urls, w.keys, ki) {
			if code != http.StatusOK {
				return nil, 0, fmt.Errorf("key not accepted before its revocation: %d", code)
			}
		}
		rev, err := revoke(ctx, w.keys[ki])
		if err != nil {
			return nil, 0, err
		}
		rv[ki] = rev
		commit := rev.commit
		at, ok := w.pr.untilRejected(ctx, w.urls, w.keys, ki, 5*time.Millisecond, commit.Add(2*time.Second))
		if !ok {
			missed++
			inRow++
			continue
		}
		inRow = 0
		delays = append(delays, at.Sub(commit))
	}
	return delays, missed, nil
}

// revokeAll revokes keys rev(0..n-1) at once, recording the commits.
func (w *world) revokeAll(ctx context.Context, n int, rv revoked) error {
	var mu sync.Mutex
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ki := w.rev(i)
			rev, err := w.c.revoke(ctx, w.keys[ki])
			errs[i] = err
			mu.Lock()
			rv[ki] = rev
			mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// watchRevoked probes every replica with the revoked keys for window.
func (w *world) watchRevoked(ctx context.Context, rv revoked, window time.Duration) {
	kis := make([]int, 0, len(rv))
	for ki := range rv {
		kis = append(kis, ki)
	}
	w.pr.watch(ctx, w.urls, w.keys, kis, 10*time.Millisecond, window)
}

// restart: PostgreSQL stopped and started under load; keys revoked as soon
// as it accepts connections.
func restart(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "restart"}
	const nrev = 5
	w, err := e.setup(ctx, 100, nrev, 400)
	if err != nil {
		return fs.list, err
	}
	defer w.close()
	w.load.Start()
	time.Sleep(time.Second)
	accepted, err := e.outage(ctx, e.pickDuration(2*time.Second, 5*time.Second))
	if err != nil {
		w.load.Stop()
		return fs.list, err
	}
	var rec time.Duration
	var recOK bool
	var wg sync.WaitGroup
	wg.Go(func() { rec, recOK = w.recovery(ctx, accepted, 8*time.Second) })
	rv := revoked{}
	if err := w.revokeAll(ctx, nrev, rv); err != nil {
		w.load.Stop()
		return fs.list, err
	}
	w.watchRevoked(ctx, rv, 3*time.Second)
	wg.Wait()
	recs := w.records(w.load.Stop())
	late, n := latestAcceptance(recs, rv)
	fs.info("revocations committed after accept", "%s", ms(latestCommit(rv).Sub(accepted)))
	fs.check("latest acceptance after commit", fmt.Sprintf("%s (%d accepted)", ms(late), n), "<= 1000.0 ms", late <= time.Second)
	fs.zero("401s for valid keys", wrongRejections(recs, rv)+countStatus(w.fp.Records(), http.StatusUnauthorized))
	fs.info("503s", "%d", countStatus(recs, http.StatusServiceUnavailable)+countStatus(w.fp.Records(), http.StatusServiceUnavailable))
	recoveryFigure(fs, rec, recOK, time.Second)
	return fs.list, nil
}

// recoveryFigure adds the recovery time against its bound.
func recoveryFigure(fs *figures, d time.Duration, ok bool, bound time.Duration) {
	if !ok {
		fs.check("recovery (all replicas 200 for an uncached key)", "not recovered within "+ms(d), "<= "+ms(bound), false)
		return
	}
	fs.atMost("recovery (all replicas 200 for an uncached key)", d, bound)
}

func latestCommit(rv revoked) time.Time {
	var t time.Time
	for _, rev := range rv {
		if rev.commit.After(t) {
			t = rev.commit
		}
	}
	return t
}

// terminate: the listening connections are terminated by the server;
// keys are revoked while the replicas reconnect.
func terminate(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "terminate"}
	const nrev = 5
	w, err := e.setup(ctx, 100, nrev, 0)
	if err != nil {
		return fs.list, err
	}
	defer w.close()
	w.load.Start()
	time.Sleep(500 * time.Millisecond)
	tag, err := w.c.admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, listenAppName)
	if err != nil {
		w.load.Stop()
		return fs.list, fmt.Errorf("terminate: %w", err)
	}
	rv := revoked{}
	if err := w.revokeAll(ctx, nrev, rv); err != nil {
		w.load.Stop()
		return fs.list, err
	}
	w.watchRevoked(ctx, rv, 3*time.Second)
	recs := w.records(w.load.Stop())
	fs.info("listening connections terminated", "%d", tag.RowsAffected())
	late, n := latestAcceptance(recs, rv)
	fs.check("latest acceptance after commit", fmt.Sprintf("%s (%d accepted)", ms(late), n), "<= 1000.0 ms", late <= time.Second)
	fs.zero("401s for valid keys", wrongRejections(recs, rv))
	fs.info("503s", "%d", countStatus(recs, http.StatusServiceUnavailable))
	return fs.list, nil
}

// halfopen: the listening connections hang (proxies frozen, sockets
// open); keys are revoked; how long until every replica rejects them.
func halfopen(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "halfopen"}
	const nrev = 3
	w, err := e.setup(ctx, 100, nrev, 0)
	if err != nil {
		return fs.list, err
	}
	defer w.close()
	w.load.Start()
	time.Sleep(500 * time.Millisecond)
	for _, p := range w.c.replicas {
		p.listenProxy.Freeze()
	}
	thaw := func() {
		for _, p := range w.c.replicas {
			p.listenProxy.Thaw()
		}
	}
	rv := revoked{}
	if err := w.revokeAll(ctx, nrev, rv); err != nil {
		thaw()
		w.load.Stop()
		return fs.list, err
	}
	limit := e.pickDuration(5*time.Second, 10*time.Second)
	var worst time.Duration
	all := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for ki, rev := range rv {
		commit := rev.commit
		wg.Go(func() {
			at, ok := w.pr.untilRejected(ctx, w.urls, w.keys, ki, 5*time.Millisecond, commit.Add(limit))
			mu.Lock()
			defer mu.Unlock()
			all = all && ok
			worst = max(worst, at.Sub(commit))
		})
	}
	wg.Wait()
	thaw()
	recs := w.records(w.load.Stop())
	if all {
		fs.atMost("revocation → all reject, listen hung", worst, 3*time.Second)
	} else {
		fs.check("revocation → all reject, listen hung", "some replica still accepts after "+ms(limit), "<= 3000.0 ms", false)
	}
	fs.zero("401s for valid keys", wrongRejections(recs, rv))
	fs.info("503s", "%d", countStatus(recs, http.StatusServiceUnavailable))
	return fs.list, nil
}
