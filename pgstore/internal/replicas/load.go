package replicas

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Record is one request the harness sent: to which replica, with which key
// (an index in the key list of its load or probe), the status (0: no
// answer), when it left and when its answer came.
type Record struct {
	Replica int
	Key     int
	Status  int
	Start   time.Time
	End     time.Time
}

// client sends the harness's requests; loopback, many idle connections.
func newClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// send sends one authenticated GET and returns the status (0 when there
// was no answer).
func send(ctx context.Context, client *http.Client, url, secret string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/things", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// Load sends requests at a fixed total rate, round robin over the
// replicas, with keys chosen by a picker, through a bounded set of
// workers: when they are all busy a tick's requests are skipped and
// counted, never queued without bound.
type Load struct {
	client  *http.Client
	urls    []string
	keys    []key
	pick    func(replica int, seq uint64) int
	rate    int
	workers int

	jobs    chan Record
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	records []Record
	skipped atomic.Uint64
}

// newLoad prepares a load of rate requests per second over urls. pick
// returns the index of the key to send to a replica; nil means round
// robin over all keys.
func newLoad(urls []string, keys []key, rate int, pick func(replica int, seq uint64) int) *Load {
	if pick == nil {
		pick = func(_ int, seq uint64) int { return int(seq/uint64(len(urls))) % len(keys) }
	}
	return &Load{
		client:  newClient(),
		urls:    urls,
		keys:    keys,
		pick:    pick,
		rate:    max(rate, 1),
		workers: 64,
		jobs:    make(chan Record, 64),
		stop:    make(chan struct{}),
	}
}

// Start starts sending.
func (l *Load) Start() {
	for range l.workers {
		l.wg.Go(l.work)
	}
	l.wg.Go(l.pace)
}

// pace queues rate requests per second, in ticks of 5 ms.
func (l *Load) pace() {
	defer close(l.jobs)
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var seq uint64
	for {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			due := uint64(now.Sub(start).Seconds() * float64(l.rate))
			for ; seq < due; seq++ {
				r := int(seq % uint64(len(l.urls)))
				job := Record{Replica: r, Key: l.pick(r, seq)}
				select {
				case l.jobs <- job:
				default:
					l.skipped.Add(1)
				}
			}
		}
	}
}

func (l *Load) work() {
	for job := range l.jobs {
		job.Start = time.Now()
		job.Status = send(context.Background(), l.client, l.urls[job.Replica], l.keys[job.Key].secret)
		job.End = time.Now()
		l.mu.Lock()
		l.records = append(l.records, job)
		l.mu.Unlock()
	}
}

// Stop stops sending, waits for the requests in flight and returns every
// record.
func (l *Load) Stop() []Record {
	close(l.stop)
	l.wg.Wait()
	l.client.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records
}

// Skipped returns how many requests were not sent because every worker was
// busy.
func (l *Load) Skipped() uint64 { return l.skipped.Load() }

// prober sends single requests outside the load, recording them too.
type prober struct {
	client  *http.Client
	mu      sync.Mutex
	records []Record
}

func newProber() *prober { return &prober{client: newClient()} }

// probe sends one request with k (index ki) to replica r of urls.
func (p *prober) probe(ctx context.Context, urls []string, r int, keys []key, ki int) int {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rec := Record{Replica: r, Key: ki, Start: time.Now()}
	rec.Status = send(ctx, p.client, urls[r], keys[ki].secret)
	rec.End = time.Now()
	p.mu.Lock()
	p.records = append(p.records, rec)
	p.mu.Unlock()
	return rec.Status
}

// all sends k to every replica at once and returns the statuses.
func (p *prober) all(ctx context.Context, urls []string, keys []key, ki int) []int {
	out := make([]int, len(urls))
	var wg sync.WaitGroup
	for r := range urls {
		wg.Go(func() { out[r] = p.probe(ctx, urls, r, keys, ki) })
	}
	wg.Wait()
	return out
}

// warm sends every key to every replica, 16 at a time, so that each
// replica has cached them; it returns the statuses seen, by code.
func (p *prober) warm(ctx context.Context, urls []string, keys []key) map[int]int {
	type job struct{ r, k int }
	jobs := make(chan job)
	counts := make(map[int]int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for j := range jobs {
				code := p.probe(ctx, urls, j.r, keys, j.k)
				mu.Lock()
				counts[code]++
				mu.Unlock()
			}
		})
	}
	for k := range keys {
		for r := range urls {
			jobs <- job{r, k}
		}
	}
	close(jobs)
	wg.Wait()
	return counts
}

// untilRejected probes every replica with key ki every interval until each
// has answered 401, and returns when the last one first did (the end of
// its first 401), or false when
// some replica still accepted it at the deadline.
func (p *prober) untilRejected(ctx context.Context, urls []string, keys []key, ki int, interval time.Duration, deadline time.Time) (time.Time, bool) {
	last := make([]time.Time, len(urls))
	var wg sync.WaitGroup
	for r := range urls {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				start := time.Now()
				if p.probe(ctx, urls, r, keys, ki) == http.StatusUnauthorized {
					last[r] = time.Now()
					return
				}
				time.Sleep(interval - min(interval, time.Since(start)))
			}
		})
	}
	wg.Wait()
	var latest time.Time
	for _, t := range last {
		if t.IsZero() {
			return time.Time{}, false
		}
		if t.After(latest) {
			latest = t
		}
	}
	return latest, true
}

// watch probes every replica with each of the keys ki every interval
// until the window ends; the records say what was accepted when.
func (p *prober) watch(ctx context.Context, urls []string, keys []key, kis []int, interval, window time.Duration) {
	end := time.Now().Add(window)
	var wg sync.WaitGroup
	for r := range urls {
		for _, ki := range kis {
			wg.Go(func() {
				for time.Now().Before(end) && ctx.Err() == nil {
					start := time.Now()
					p.probe(ctx, urls, r, keys, ki)
					time.Sleep(interval - min(interval, time.Since(start)))
				}
			})
		}
	}
	wg.Wait()
}

// recovery probes every replica with a fresh key (one never sent before)
// every interval, from now until all answer 200 in one round, and returns
// the time of that round's start, or false when the fresh keys or the
// limit ran out first.
func (p *prober) recovery(ctx context.Context, urls []string, fresh []key, next *atomic.Int64, interval time.Duration, limit time.Time) (time.Time, bool) {
	for time.Now().Before(limit) && ctx.Err() == nil {
		ki := int(next.Add(1) - 1)
		if ki >= len(fresh) {
			return time.Time{}, false
		}
		start := time.Now()
		ok := true
		for _, code := range p.all(ctx, urls, fresh, ki) {
			ok = ok && code == http.StatusOK
		}
		if ok {
			return start, true
		}
		time.Sleep(interval - min(interval, time.Since(start)))
	}
	return time.Time{}, false
}

// Records returns what the prober sent.
func (p *prober) Records() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.records...)
}
