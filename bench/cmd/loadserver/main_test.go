package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/apikey"
)

func TestHandler(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		auth, resident   bool
		withKey, without int
	}{
		{auth: true, withKey: 200, without: 401},
		{auth: false, withKey: 200, without: 200},
		{auth: false, resident: true, withKey: 200, without: 200},
	} {
		h, key, store, err := newHandler(ctx, c.auth, c.resident, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.auth || c.resident; (store != nil) != want {
			t.Errorf("auth=%t resident=%t: store %v", c.auth, c.resident, store)
		} else if want {
			if keys, err := store.List(ctx, apikey.Filter{}); err != nil || len(keys) != 10 {
				t.Errorf("auth=%t resident=%t: %d keys in the store (%v), want 10", c.auth, c.resident, len(keys), err)
			}
		}
		if !strings.HasPrefix(key, "kg_live_") {
			t.Errorf("auth=%t: key %q is not in the default format", c.auth, key)
		}
		for _, send := range []struct {
			key  string
			want int
		}{{key, c.withKey}, {"", c.without}} {
			r := httptest.NewRequest("GET", "/v1/ping", nil)
			if send.key != "" {
				r.Header.Set("Authorization", "Bearer "+send.key)
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, r)
			if rr.Code != send.want {
				t.Errorf("auth=%t, key sent=%t: status %d, want %d", c.auth, send.key != "", rr.Code, send.want)
			}
			if rr.Code == 200 && rr.Body.String() != "pong\n" {
				t.Errorf("auth=%t: body %q", c.auth, rr.Body.String())
			}
		}
	}
}

// TestRun starts the server on a free port, sends one request with the key
// it prints and stops it.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-auth=true", "-keys=5", "-addr=127.0.0.1:0"}, outW, &stderr)
		outW.Close()
	}()
	key, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	// The memory figures and the address are in the log lines written
	// before the key.
	if !strings.Contains(stderr.String(), "loadserver: keys=5 heap_bytes_per_key=") ||
		!strings.Contains(stderr.String(), " scan_bytes_per_key=") {
		t.Errorf("no memory figures in %q", stderr.String())
	}
	_, addr, ok := strings.Cut(strings.TrimSpace(stderr.String()), "listening on ")
	addr, _, _ = strings.Cut(addr, " ")
	if !ok {
		t.Fatalf("no address in %q", stderr.String())
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/ping", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(key))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}
