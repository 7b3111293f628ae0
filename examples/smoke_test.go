// Package examples holds the runnable examples; this smoke test builds each
// one, starts it on a free loopback port, checks a 200, a 401 and a 403 over
// real HTTP and stops it with SIGINT.
package examples

import (
	"bufio"
	"bytes"
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

// build compiles the example in dir (a package or a module directory) and
// returns the binary's path.
func build(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(dir))
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build %s: %s", dir, out)
	return bin
}

// start builds the example in dir and runs it on 127.0.0.1:0 until the
// test ends, when it must exit cleanly on SIGINT.
func start(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	bin := build(t, dir)
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

// response is what a request got back.
type response struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

// requestID is the response's X-Request-Id.
func (r response) requestID() string { return r.header.Get("X-Request-Id") }

// send sends method url with the key (none when "") and a JSON body, plus
// header name/value pairs.
func send(t *testing.T, method, url, key, body string, hdr ...string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
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
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := response{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// get sends method url with the key and a small JSON body.
func get(t *testing.T, method, url, key string, hdr ...string) response {
	t.Helper()
	return send(t, method, url, key, `{"title":"smoke"}`, hdr...)
}

const (
	defaultKey   = `^kg_(live|test)_[0-9A-Za-z]{36}$`
	generatedRID = `^req_[0-9A-Z]{26}$`
)

// TestSmokeBasic runs the main example with several -style values: the
// statuses, and the exact body of a 401 with the response's request id.
func TestSmokeBasic(t *testing.T) {
	const rid = "{rid}" // replaced by the response's X-Request-Id
	for _, c := range []struct {
		style            string
		status401, st403 int
		body401          map[string]any
	}{
		{"problem", 401, 403, map[string]any{
			"type": "about:blank", "title": "Unauthorized", "status": 401.0,
			"detail": "A valid API key is required.", "request_id": rid,
		}},
		{"flat", 401, 403, map[string]any{
			"error": "unauthorized", "message": "A valid API key is required.", "request_id": rid,
		}},
		{"nested-meta", 401, 403, map[string]any{
			"error": map[string]any{"code": "unauthorized", "message": "A valid API key is required."},
			"meta":  map[string]any{"request_id": rid},
		}},
		// Stax.ai's shape answers 200 for 401 and 403 alike.
		{"auth-error", 200, 200, map[string]any{
			"success": false, "authError": true, "error": "A valid API key is required.",
		}},
	} {
		t.Run(c.style, func(t *testing.T) {
			r := start(t, "basic", "-style", c.style)
			for _, k := range []string{"read key", "write key", "admin key"} {
				require.Regexp(t, `^kg_test_[0-9A-Za-z]{36}$`, r.lines[k])
			}
			res := get(t, "GET", r.base+"/v1/stepsies", r.lines["read key"])
			assert.Equal(t, 200, res.code)
			assert.Equal(t, "test", res.body["environment"])
			assert.Regexp(t, generatedRID, res.requestID())

			res = get(t, "GET", r.base+"/v1/stepsies", "")
			assert.Equal(t, c.status401, res.code)
			assert.Regexp(t, generatedRID, res.requestID())
			assert.Equal(t, fillRID(c.body401, rid, res.requestID()), res.body, res.raw)

			res = get(t, "POST", r.base+"/v1/stepsies", r.lines["read key"])
			assert.Equal(t, c.st403, res.code, "read key, POST")
			res = get(t, "POST", r.base+"/v1/stepsies", r.lines["write key"])
			assert.Equal(t, 201, res.code, "write key, POST")
			res = send(t, "GET", r.base+"/v1/manage/api/keys", r.lines["write key"], "")
			assert.Equal(t, c.st403, res.code, "write key, admin route")
			res = send(t, "GET", r.base+"/v1/manage/api/keys", r.lines["admin key"], "")
			assert.Equal(t, 200, res.code, "admin key, admin route")
			assert.Len(t, res.body["keys"], 3)
			for _, k := range []string{"read key", "write key", "admin key"} {
				assert.NotContains(t, res.raw, r.lines[k], "listing never shows secrets")
			}
		})
	}
}

// fillRID returns a copy of want with every string placeholder replaced by
// id.
func fillRID(want map[string]any, placeholder, id string) map[string]any {
	out := make(map[string]any, len(want))
	for k, v := range want {
		switch v := v.(type) {
		case string:
			if v == placeholder {
				out[k] = id
				continue
			}
		case map[string]any:
			out[k] = fillRID(v, placeholder, id)
			continue
		}
		out[k] = v
	}
	return out
}

// TestSmokeBasicBadStyle: an unknown -style stops the example at once and
// names the valid ones.
func TestSmokeBasicBadStyle(t *testing.T) {
	bin := build(t, "basic")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-style", "xml")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "an unknown style is an error")
	assert.Equal(t, 1, exit.ExitCode())
	for _, name := range []string{"problem", "flat", "nested", "nested-meta", "nested-status", "auth-error"} {
		assert.Contains(t, stderr.String(), name)
	}
}

// TestSmokeBasicKeys drives the key-management API (package manage) with
// the admin key: create (the secret shown once), list, roll with a grace
// period, revoke; and the demo account's API keys page.
func TestSmokeBasicKeys(t *testing.T) {
	r := start(t, "basic")
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/settings/api-keys/$`, r.lines["keys page"])
	admin := r.lines["admin key"]
	keys := r.base + "/v1/manage/api/keys"

	res := send(t, "POST", keys, r.lines["write key"], `{"name":"ci"}`)
	assert.Equal(t, 403, res.code, "creating a key needs admin")
	res = send(t, "POST", keys, admin, `{"name":"ci","scopes":["billing"]}`)
	assert.Equal(t, 400, res.code, "an undeclared scope: %s", res.raw)
	res = send(t, "POST", keys, admin, `{"name":"ci","environment":"staging"}`)
	assert.Equal(t, 400, res.code, "an unknown environment: %s", res.raw)

	expires := time.Now().Add(720 * time.Hour).UTC().Format(time.RFC3339)
	res = send(t, "POST", keys, admin, `{"name":"ci","scopes":["read"],"expires_at":"`+expires+`"}`)
	require.Equal(t, 201, res.code, res.raw)
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	secret, _ := res.body["secret"].(string)
	require.Regexp(t, `^kg_live_[0-9A-Za-z]{36}$`, secret, "a live key by default")
	created, _ := res.body["key"].(map[string]any)
	id, _ := created["id"].(string)
	require.NotEmpty(t, id)
	assert.Equal(t, "active", created["state"])
	assert.Equal(t, []any{"read"}, created["scopes"])
	assert.NotEmpty(t, created["expires_at"])
	assert.Equal(t, 200, get(t, "GET", r.base+"/v1/stepsies", secret).code, "the new key works")
	assert.Equal(t, 403, get(t, "POST", r.base+"/v1/stepsies", secret).code, "with its scopes only")

	res = send(t, "GET", keys, admin, "")
	require.Equal(t, 200, res.code)
	assert.Len(t, res.body["keys"], 4)
	assert.NotContains(t, res.raw, secret, "the secret is shown once")

	res = send(t, "POST", keys+"/"+id+"/roll", admin, "")
	require.Equal(t, 201, res.code, res.raw)
	next, _ := res.body["secret"].(string)
	require.Regexp(t, `^kg_live_[0-9A-Za-z]{36}$`, next)
	assert.NotEqual(t, secret, next)
	successor, _ := res.body["key"].(map[string]any)
	nextID, _ := successor["id"].(string)
	assert.Equal(t, id, successor["rolled_from"])
	assert.Equal(t, 200, get(t, "GET", r.base+"/v1/stepsies", next).code, "the successor works")
	assert.Equal(t, 200, get(t, "GET", r.base+"/v1/stepsies", secret).code, "the old key works during its grace period")
	assert.Equal(t, 409, send(t, "POST", keys+"/"+id+"/roll", admin, "").code, "a key is rolled once")

	assert.Equal(t, 200, send(t, "POST", keys+"/"+nextID+"/revoke", admin, "").code)
	assert.Equal(t, 401, get(t, "GET", r.base+"/v1/stepsies", next).code, "a revoked key is refused")
	assert.Equal(t, 404, send(t, "POST", keys+"/key_nosuchkey/revoke", admin, "").code)

	// The page: the demo account's keys, no key needed (the session's
	// job); a cross-site form post is refused.
	res = send(t, "GET", r.lines["keys page"], "", "")
	require.Equal(t, 200, res.code, res.raw)
	assert.Contains(t, res.raw, `id="new-key-link"`)
	assert.Equal(t, 3, strings.Count(res.raw, "<tr data-key-id="), "the demo account's three keys")
	assert.NotContains(t, res.raw, r.lines["read key"])
	res = send(t, "POST", r.base+"/settings/api-keys/keys", "", "name=evil",
		"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, 403, res.code)
}

func TestSmokeStax(t *testing.T) {
	r := start(t, "stax")
	owner := r.lines["owner"]
	require.Regexp(t, `^[a-z0-9]{40}$`, r.lines["admin key"])
	require.Regexp(t, `^[a-z0-9]{40}$`, r.lines["member key"])
	res := get(t, "GET", r.base+"/stacks", r.lines["admin key"], "Email", owner)
	assert.Equal(t, 200, res.code)
	assert.Equal(t, true, res.body["success"])
	assert.Equal(t, owner, res.body["team"])
	authError := map[string]any{"success": false, "authError": true, "error": "Invalid authorization request"}
	// The 401 cases: no key, an unknown key. The 403 cases: wrong owner,
	// no owner, not an administrator.
	for _, tc := range [][]string{
		{"", "Email", owner},
		{strings.Repeat("a", 40), "Email", owner},
		{r.lines["admin key"], "Email", "eve@example.com"},
		{r.lines["admin key"]},
		{r.lines["member key"], "Email", owner},
	} {
		res := get(t, "GET", r.base+"/stacks", tc[0], tc[1:]...)
		assert.Equal(t, 200, res.code, "Stax answers authentication failures with 200")
		assert.Equal(t, authError, res.body, "%v", tc[1:])
	}
}

// TestSmokeChi also checks that chi's request id is the one the apikey
// middleware answers with: in the X-Request-Id header, in error bodies and
// in the handler's context.
func TestSmokeChi(t *testing.T) {
	if _, err := os.Stat("chi/go.mod"); err != nil {
		t.Fatal("examples/chi is missing")
	}
	r := start(t, "chi")
	for _, k := range []string{"read key", "write key", "admin key"} {
		require.Regexp(t, defaultKey, r.lines[k])
	}
	res := get(t, "GET", r.base+"/v1/stepsies", r.lines["read key"])
	assert.Equal(t, 200, res.code)
	assert.NotEmpty(t, res.requestID())
	assert.Equal(t, res.requestID(), res.body["request_id"], "chi's id (in the handler) is the response's")

	res = get(t, "GET", r.base+"/v1/stepsies", "")
	assert.Equal(t, 401, res.code)
	assert.NotEmpty(t, res.requestID())
	assert.Equal(t, res.requestID(), res.body["request_id"], "one id in the header and the body")

	// chi takes the client's X-Request-Id; the apikey middleware, left to
	// itself, would not.
	res = get(t, "GET", r.base+"/v1/stepsies", "", "X-Request-Id", "smoke-42")
	assert.Equal(t, 401, res.code)
	assert.Equal(t, "smoke-42", res.requestID())
	assert.Equal(t, "smoke-42", res.body["request_id"])

	res = get(t, "POST", r.base+"/v1/stepsies", r.lines["read key"])
	assert.Equal(t, 403, res.code)
	res = get(t, "POST", r.base+"/v1/stepsies", r.lines["write key"])
	assert.Equal(t, 201, res.code)
	res = get(t, "GET", r.base+"/admin/keys", r.lines["write key"])
	assert.Equal(t, 403, res.code)
	assert.Equal(t, res.requestID(), res.body["request_id"])
	res = get(t, "GET", r.base+"/admin/keys", r.lines["admin key"])
	assert.Equal(t, 200, res.code)
	assert.Len(t, res.body["data"], 3)
}
