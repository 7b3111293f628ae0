package redislimit

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/apikey"
)

// Redis killed, restarted and frozen (SIGSTOP) under traffic: every Take
// returns within Config.Timeout (and scheduling slack); rates admit when
// failing open, refuse with an error under FailClosed; credits always
// refuse with an error; a Warn line, at most one a second; decisions in
// Redis again once it is back. The client is go-redis with its default
// options (ReadTimeout 3 s, three retries): the limiter's deadline holds
// whatever the client's settings.
func TestFaults(t *testing.T) {
	s := ownServer(t)
	client := newClient(t, s.addr)
	const timeout = 100 * time.Millisecond
	slack := 150 * time.Millisecond
	if raceEnabled {
		slack = 250 * time.Millisecond
	}
	rate := []apikey.Limit{{Name: "rps", Count: 1_000_000, Per: time.Second}}
	var openLog, closedLog, creditsLog, leasedLog logLines
	open := newLimiter(t, client, Config{Timeout: timeout, Logger: openLog.logger(), Live: rate})
	closed := newLimiter(t, client, Config{Timeout: timeout, Logger: closedLog.logger(), FailClosed: true, Live: rate})
	credits := newLimiter(t, client, Config{Timeout: timeout, Logger: creditsLog.logger(),
		Live: []apikey.Limit{{Name: "credits", Count: 1_000_000_000, Credits: true}}})
	leased := newLimiter(t, client, Config{Timeout: timeout, Lease: 10, LeaseTTL: 20 * time.Millisecond, Logger: leasedLog.logger(), Live: rate})
	k := live("key_faults")

	// Traffic all along, through each limiter.
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range []*Limiter{open, closed, credits, leased} {
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					l.Take(context.Background(), k, 1, http.Header{})
					d := int64(time.Since(start))
					for {
						old := slowest.Load()
						if d <= old || slowest.CompareAndSwap(old, d) {
							break
						}
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
	}
	defer func() {
		close(stop)
		wg.Wait()
		t.Logf("slowest Take under traffic: %v", time.Duration(slowest.Load()))
		if d := time.Duration(slowest.Load()); d > timeout+slack {
			t.Errorf("a Take took %v, over Timeout %v and slack %v", d, timeout, slack)
		}
	}()

	// decide runs one Take through l and checks its time and answer.
	decide := func(phase string, l *Limiter, up bool) {
		t.Helper()
		h := http.Header{}
		start := time.Now()
		ok, err := l.Take(context.Background(), k, 1, h)
		d := time.Since(start)
		if d > timeout+slack {
			t.Errorf("%s: Take took %v", phase, d)
		}
		inRedis := h.Get("Ratelimit") != ""
		switch {
		case up && (!ok || err != nil || !inRedis):
			t.Errorf("%s: Take = %v, %v (headers %v), want admitted by Redis", phase, ok, err, h)
		case up:
		case l == open && (!ok || err != nil || inRedis):
			t.Errorf("%s: fail-open Take = %v, %v (headers %v), want admitted without Redis", phase, ok, err, h)
		case l != open && l != leased && (ok || err == nil):
			t.Errorf("%s: fail-closed Take = %v, %v, want an error", phase, ok, err)
		}
	}
	all := func(phase string, up bool) {
		t.Helper()
		for _, l := range []*Limiter{open, closed, credits} {
			decide(phase, l, up)
		}
	}
	// waitUp waits until Redis decides again.
	waitUp := func(phase string) {
		t.Helper()
		start := time.Now()
		for {
			h := http.Header{}
			ok, err := credits.Take(context.Background(), k, 1, h)
			if ok && err == nil {
				t.Logf("%s: deciding in Redis again after %v", phase, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: Redis not back after 10 s: %v", phase, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	all("up", true)

	s.kill()
	failStart := time.Now()
	for range 5 {
		all("killed", false)
	}
	start := time.Now()
	credits.Give(context.Background(), k, 1)
	if _, err := credits.Status(context.Background(), k); err == nil {
		t.Error("killed: Status without an error")
	}
	if d := time.Since(start); d > 2*(timeout+slack) {
		t.Errorf("killed: Give and Status took %v", d)
	}
	failed := time.Since(failStart)
	for name, lines := range map[string][]string{"fail-open": openLog.get(), "fail-closed": closedLog.get(), "credits": creditsLog.get()} {
		if len(lines) == 0 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], `msg="redislimit: Redis failed"`) {
			t.Errorf("%s: log %q, want a Warn line", name, lines)
			continue
		}
		if max := 1 + int(failed/time.Second); len(lines) > max {
			t.Errorf("%s: %d lines in %v, want at most one a second", name, len(lines), failed)
		}
		if !strings.Contains(lines[0], "key_id=key_faults") {
			t.Errorf("%s: log line %q without the key's ID", name, lines[0])
		}
	}
	t.Logf("log line: %s", strings.TrimSpace(creditsLog.get()[0]))

	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	waitUp("restarted")
	all("restarted", true)

	s.freeze()
	for range 5 {
		all("frozen", false)
	}
	s.thaw()
	waitUp("thawed")
	all("thawed", true)

	// A frozen server again, this time thawed while decisions wait.
	s.freeze()
	go func() {
		time.Sleep(timeout / 2)
		s.thaw()
	}()
	for range 3 {
		for _, l := range []*Limiter{open, closed, credits} {
			start := time.Now()
			l.Take(context.Background(), k, 1, nil)
			if d := time.Since(start); d > timeout+slack {
				t.Errorf("thawing: Take took %v", d)
			}
		}
	}
	waitUp("thawed again")
}

// A caller that gave up (a client that hung up) is not a fault of Redis:
// an error, which the middleware answers with nothing, and no Warn line;
// with and without leasing, for rates that fail open and for credits.
func TestCallerGone(t *testing.T) {
	c := sharedClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k := live("key_gone")
	for _, cfg := range []Config{
		{Live: []apikey.Limit{{Name: "rps", Count: 1000, Per: time.Second}}},
		{Lease: 10, Live: []apikey.Limit{{Name: "rps", Count: 1000, Per: time.Second}}},
		{Live: []apikey.Limit{{Name: "credits", Count: 1000, Credits: true}}},
	} {
		var logs logLines
		cfg.Logger = logs.logger()
		l := newLimiter(t, c, cfg)
		ok, err := l.Take(ctx, k, 1, http.Header{})
		if ok || !errors.Is(err, context.Canceled) {
			t.Errorf("lease %d, %s: Take = %v, %v; want false and the cancellation", cfg.Lease, cfg.Live[0].Name, ok, err)
		}
		if lines := logs.get(); len(lines) != 0 {
			t.Errorf("lease %d, %s: logged %q", cfg.Lease, cfg.Live[0].Name, lines)
		}
	}
}
