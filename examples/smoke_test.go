// Package examples holds the runnable examples; this smoke test builds each
// one, starts it on a free loopback port, checks a 200, a 401 and a 403 over
// real HTTP and stops it with SIGINT.
package examples

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// running is a started example: its printed lines and its base URL.
type running struct {
	base  string
	lines map[string]string // "read key" → value
}

// start builds the example in dir (a package or a module directory) and
// runs it on 127.0.0.1:0 until the test ends.
func start(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(dir))
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build %s: %s", dir, out)

	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			assert.NoError(t, err, "%s exits cleanly on SIGINT", dir)
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGINT", dir)
		}
	})

	r := &running{lines: map[string]string{}}
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			r.lines[name] = value
		}
		if url, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			r.base = url
			break
		}
	}
	require.NotEmpty(t, r.base, "%s printed no listening line", dir)
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return r
}

func get(t *testing.T, method, url, key string, hdr ...string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(`{"title":"smoke"}`))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestSmokeBasic(t *testing.T) {
	for _, style := range []string{"problem", "flat"} {
		t.Run(style, func(t *testing.T) {
			r := start(t, "basic", "-style", style)
			for _, k := range []string{"read key", "write key", "admin key"} {
				require.Regexp(t, `^sk_test_[0-9A-Za-z]{32}$`, r.lines[k])
			}
			code, _ := get(t, "GET", r.base+"/v1/stepsies", r.lines["read key"])
			assert.Equal(t, 200, code)
			code, _ = get(t, "GET", r.base+"/v1/stepsies", "")
			assert.Equal(t, 401, code)
			code, _ = get(t, "POST", r.base+"/v1/stepsies", r.lines["read key"])
			assert.Equal(t, 403, code)
			code, _ = get(t, "POST", r.base+"/v1/stepsies", r.lines["write key"])
			assert.Equal(t, 201, code)
			code, _ = get(t, "GET", r.base+"/v1/keys", r.lines["write key"])
			assert.Equal(t, 403, code)
			code, body := get(t, "GET", r.base+"/v1/keys", r.lines["admin key"])
			assert.Equal(t, 200, code)
			assert.Len(t, body["data"], 3)
			assert.NotContains(t, jsonString(t, body), r.lines["read key"], "listing never shows secrets")
		})
	}
}

func TestSmokeStax(t *testing.T) {
	r := start(t, "stax")
	owner := r.lines["owner"]
	require.Regexp(t, `^[a-z0-9]{40}$`, r.lines["admin key"])
	code, body := get(t, "GET", r.base+"/stacks", r.lines["admin key"], "Email", owner)
	assert.Equal(t, 200, code)
	assert.Equal(t, true, body["success"])
	authError := map[string]any{"success": false, "authError": true, "error": "Invalid authorization request"}
	// The 401 case: no key. The 403 cases: wrong owner, not an administrator.
	for _, tc := range [][]string{
		{"", "Email", owner},
		{r.lines["admin key"], "Email", "eve@example.com"},
		{r.lines["member key"], "Email", owner},
	} {
		code, body := get(t, "GET", r.base+"/stacks", tc[0], tc[1:]...)
		assert.Equal(t, 200, code, "Stax answers authentication failures with 200")
		assert.Equal(t, authError, body)
	}
}

func TestSmokeChi(t *testing.T) {
	if _, err := os.Stat("chi/go.mod"); err != nil {
		t.Fatal("examples/chi is missing")
	}
	r := start(t, "chi")
	code, _ := get(t, "GET", r.base+"/v1/stepsies", r.lines["read key"])
	assert.Equal(t, 200, code)
	code, _ = get(t, "GET", r.base+"/v1/stepsies", "")
	assert.Equal(t, 401, code)
	code, _ = get(t, "GET", r.base+"/admin/keys", r.lines["write key"])
	assert.Equal(t, 403, code)
	code, _ = get(t, "GET", r.base+"/admin/keys", r.lines["admin key"])
	assert.Equal(t, 200, code)
}

func jsonString(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
