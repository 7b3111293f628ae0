package replicas

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// handlerForFailures returns, over replicas, handler calls minus 200s: the
// requests that reached the handler without a successful check.
func handlerForFailures(ss []Stats) int64 {
	var n int64
	for _, s := range ss {
		n += int64(s.HandlerCalls) - int64(s.Status[http.StatusOK])
	}
	return n
}

// dbstop: PostgreSQL stopped for a while under load.
func dbstop(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "dbstop"}
	w, err := e.setup(ctx, 100, 0, 400)
	if err != nil {
		return fs.list, err
	}
	defer w.close()
	w.load.Start()
	time.Sleep(time.Second)
	down := e.pickDuration(3*time.Second, 10*time.Second)
	stopProbing := w.probeDuring(ctx)
	accepted, err := e.outage(ctx, down)
	stopProbing()
	if err != nil {
		w.load.Stop()
		return fs.list, err
	}
	rec, ok := w.recovery(ctx, accepted, 8*time.Second)
	return w.outageFigures(ctx, fs, down, rec, ok, time.Second)
}

// outageFigures stops the load and adds the figures of an outage.
func (w *world) outageFigures(ctx context.Context, fs *figures, down, rec time.Duration, ok bool, bound time.Duration) ([]Figure, error) {
	time.Sleep(500 * time.Millisecond)
	recs := w.records(w.load.Stop())
	stats, err := w.c.allStats(ctx)
	if err != nil {
		return fs.list, err
	}
	fresh := w.fp.Records()
	fs.info("outage", "%s", ms(down))
	fs.zero("401s for valid keys", countStatus(recs, http.StatusUnauthorized)+countStatus(fresh, http.StatusUnauthorized))
	fs.zero("handler calls for failed checks", handlerForFailures(stats))
	fs.info("503s / no answer", "%d / %d", countStatus(recs, http.StatusServiceUnavailable)+countStatus(fresh, http.StatusServiceUnavailable),
		countStatus(recs, 0)+countStatus(fresh, 0))
	recoveryFigure(fs, rec, ok, bound)
	return fs.list, nil
}

// hang: the network to the database drops every packet for a while (every
// proxy, pool and listen, is a Blackhole), and the connections open
// meanwhile never come back, as when TCP gives up on them; only new ones
// work after it.
func hang(ctx context.Context, e *env) ([]Figure, error) {
	fs := &figures{scenario: "hang"}
	w, err := e.setup(ctx, 100, 0, 400)
	if err != nil {
		return fs.list, err
	}
	defer w.close()
	w.load.Start()
	time.Sleep(time.Second)
	down := e.pickDuration(3*time.Second, 10*time.Second)
	each := func(f func(p *proc)) {
		var wg sync.WaitGroup
		for _, p := range w.c.replicas {
			wg.Go(func() { f(p) })
		}
		wg.Wait()
	}
	each(func(p *proc) { p.poolProxy.Blackhole(); p.listenProxy.Blackhole() })
	stopProbing := w.probeDuring(ctx)
	time.Sleep(down)
	each(func(p *proc) { p.poolProxy.Restore(); p.listenProxy.Restore() })
	stopProbing()
	thawed := time.Now()
	rec, ok := w.recovery(ctx, thawed, 10*time.Second)
	return w.outageFigures(ctx, fs, down, rec, ok, 3*time.Second)
}

// probeDuring sends a fresh key to every replica every 100 ms until the
// returned function is called (which waits for the round in flight): what
// the replicas answer for keys they cannot have cached during a fault.
func (w *world) probeDuring(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			ki := int(w.next.Add(1) - 1)
			if ki >= len(w.fresh)/2 { // keep half for the recovery
				return
			}
			w.fp.all(ctx, w.urls, w.fresh, ki)
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
