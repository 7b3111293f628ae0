package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSmoke starts the example on a free loopback port, sends a known mix
// of requests and scrapes /metrics for the counts.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, pw)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the example did not stop")
		}
	})

	lines := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ": "); ok {
			lines[name] = value
		}
		if strings.HasPrefix(sc.Text(), "listening on ") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	base := strings.TrimSuffix(lines["metrics"], "/metrics")
	key := lines["read key"]
	if base == "" || key == "" {
		t.Fatalf("printed %v", lines)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	send := func(method, auth string, want int) {
		t.Helper()
		req, err := http.NewRequest(method, base+"/v1/reports", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %q: %d, want %d", method, auth, resp.StatusCode, want)
		}
	}
	for range 3 {
		send("GET", "Bearer "+key, 200)
	}
	send("GET", "Bearer kg_test_nope", 401)
	send("GET", "", 401)
	send("POST", "Bearer "+key, 403)

	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d, %v", resp.StatusCode, err)
	}
	text := string(body)
	if strings.Contains(text, key) {
		t.Fatal("/metrics shows the key")
	}

	verifications := series(t, text, "apikey_verifications_total")
	want := map[string]float64{
		`outcome="accepted"`:                    3,
		`outcome="rejected",reason="malformed"`: 1,
		`outcome="rejected",reason="missing"`:   1,
		`outcome="rejected",reason="scope"`:     1,
	}
	if len(verifications) != len(want) {
		t.Errorf("apikey_verifications_total: %v, want %v", verifications, want)
	}
	for labels, n := range want {
		if verifications[labels] != n {
			t.Errorf("apikey_verifications_total{%s} = %v, want %v (all: %v)", labels, verifications[labels], n, verifications)
		}
	}
	var timed float64
	for _, n := range series(t, text, "apikey_verification_duration_seconds_count") {
		timed += n
	}
	if timed != 6 {
		t.Errorf("apikey_verification_duration_seconds_count adds up to %v, want 6", timed)
	}
	for _, name := range []string{"apikey_cache_hits_total", "apikey_cache_misses_total", "apikey_cache_breaker_open", "apikey_usage_pending", "apikey_usage_flush_failures_total"} {
		if len(series(t, text, name)) == 0 {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if hits := series(t, text, "apikey_cache_hits_total")[""]; hits != 3 {
		t.Errorf("apikey_cache_hits_total = %v, want 3 (the first of 4 lookups of the key is a miss)", hits)
	}
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)

// series returns the samples of one metric by their labels, in order,
// without the exporter's otel_scope_* labels.
func series(t *testing.T, text, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l != "" && !strings.HasPrefix(l, "otel_scope_") {
				labels = append(labels, l)
			}
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out[strings.Join(labels, ",")] = v
	}
	return out
}
