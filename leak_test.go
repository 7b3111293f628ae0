package apikey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/faultstore"
)

// leakWatch knows every secret and the pepper of a test, and finds them
// in any text, in plain and in the encodings fmt and JSON produce.
type leakWatch struct {
	secrets []string
	pepper  []byte
	needles []leakNeedle
}

type leakNeedle struct{ what, text string }

func newLeakWatch(pepper []byte) *leakWatch {
	w := &leakWatch{pepper: pepper}
	// HMAC keeps the pepper as key^0x36 and key^0x5c: those reveal it as
	// surely as the pepper itself.
	for _, mask := range []byte{0, 0x36, 0x5c} {
		d := make([]byte, len(pepper))
		for i := range pepper {
			d[i] = pepper[i] ^ mask
		}
		what := fmt.Sprintf("pepper^%#02x", mask)
		inner := func(s string) string { return s[strings.IndexAny(s, "[{")+1 : strings.LastIndexAny(s, "]}")] }
		w.needles = append(w.needles,
			leakNeedle{what + " bytes", string(d[:12])},
			leakNeedle{what + " hex", hex.EncodeToString(d[:12])},
			leakNeedle{what + " HEX", strings.ToUpper(hex.EncodeToString(d[:12]))},
			leakNeedle{what + " base64", base64.StdEncoding.EncodeToString(d)[:16]},
			leakNeedle{what + " %v", inner(fmt.Sprint(d[:8]))},                     // "102 102 …"
			leakNeedle{what + " %#v", inner(fmt.Sprintf("%#v", d[:8]))},            // "0x66, 0x66, …"
			leakNeedle{what + " %q", strings.Trim(fmt.Sprintf("%q", d[:12]), `"`)}, // escaped bytes
		)
	}
	return w
}

// secret registers a generated secret.
func (w *leakWatch) secret(s string) string {
	w.secrets = append(w.secrets, s)
	return s
}

// find returns a description of every secret or pepper found in out.
func (w *leakWatch) find(out string) []string {
	var found []string
	for _, s := range w.secrets {
		forms := []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s))}
		for _, f := range forms {
			if strings.Contains(out, f) {
				found = append(found, "secret "+s[:6]+"…")
			}
		}
		for i := 0; i+12 <= len(s); i++ {
			if strings.Contains(out, s[i:i+12]) {
				found = append(found, fmt.Sprintf("12 characters of secret %s… at %d", s[:6], i))
				break
			}
		}
	}
	for _, n := range w.needles {
		if strings.Contains(out, n.text) {
			found = append(found, n.what)
		}
	}
	return found
}

// leakRenderings prints v every way a program might: fmt verbs, fmt inside a
// struct, log/slog's text and JSON handlers, and encoding/json (when it
// does not fail).
func leakRenderings(v any) map[string]string {
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out["fmt "+verb] = fmt.Sprintf(verb, v)
		out["fmt "+verb+" in a struct"] = fmt.Sprintf(verb, struct{ V any }{v})
	}
	out["fmt.Sprint"] = fmt.Sprint(v)
	out["fmt %v in a slice"] = fmt.Sprintf("%v", []any{v})
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("msg", "v", v, slog.Group("g", "v", v))
	slog.New(slog.NewJSONHandler(&js, nil)).Info("msg", "v", v, slog.Group("g", "v", v))
	out["slog text"] = text.String()
	out["slog json"] = js.String()
	if b, err := json.Marshal(v); err == nil {
		out["json"] = string(b)
	}
	if b, err := json.Marshal(struct{ V any }{v}); err == nil {
		out["json in a struct"] = string(b)
	}
	return out
}

// TestSecretsNeverLeakThroughTypes renders every exported type that can
// hold a key, secret, pepper or digest, and looks for the secrets and the
// pepper in the output.
func TestSecretsNeverLeakThroughTypes(t *testing.T) {
	ctx := context.Background()
	pepperBytes := make([]byte, 32)
	_, err := rand.Read(pepperBytes)
	require.NoError(t, err)
	w := newLeakWatch(pepperBytes)

	pep, err := apikey.NewPepper("2026-01", pepperBytes)
	require.NoError(t, err)
	hasher, err := apikey.NewHasher(pep)
	require.NoError(t, err)
	cfg := apikey.StoreConfig{Hasher: hasher}.WithDefaults()
	store := apikey.NewMemoryStore(cfg)
	key, sec, err := store.Create(ctx, apikey.KeySpec{Name: "leaky", Scopes: []apikey.Scope{"read"}, Owner: "o@example.com"})
	require.NoError(t, err)
	w.secret(sec.Reveal())
	issued, err := cfg.Issue(apikey.KeySpec{Name: "issued"})
	require.NoError(t, err)
	w.secret(issued.Secret.Reveal())
	_, rolledSec, err := store.Roll(ctx, key.ID)
	require.NoError(t, err)
	w.secret(rolledSec.Reveal())

	usage := apikey.NewUsageRecorder(store, apikey.FlushEvery(time.Hour))
	defer usage.Close()
	cacheStore := faultstore.New(store)
	cache := apikey.NewCache(cacheStore)
	auth := apikey.New(cache, apikey.WithHasher(hasher), apikey.WithUsage(usage))
	// Fill the recorder and the cache the way traffic would.
	for _, s := range []string{sec.Reveal(), rolledSec.Reveal()} {
		k, err := auth.Verify(ctx, s)
		require.NoError(t, err)
		usage.Record(k, time.Now())
	}
	_, verr := auth.Verify(ctx, flipChecksum(sec.Reveal()))
	require.Error(t, verr)
	authErr := apikey.AuthError{Reason: apikey.ReasonStoreFailure, RequestID: "req_x", KeyID: key.ID, Err: verr, Realm: "api"}
	digest := hasher.Digest(sec.Reveal())

	values := []struct {
		name string
		v    any
	}{
		{"Secret", sec}, {"*Secret", &sec},
		{"Pepper", pep}, {"*Pepper", &pep},
		{"Key", *key}, {"*Key", key},
		{"Issued", issued}, {"*Issued", &issued},
		{"AuthError", authErr}, {"*AuthError", &authErr},
		{"Hasher", *hasher}, {"*Hasher", hasher},
		{"Format", *apikey.FormatDefault}, {"*Format", apikey.FormatDefault},
		{"StoreConfig", cfg}, {"*StoreConfig", &cfg},
		{"*UsageRecorder", usage},
		{"*Authenticator", auth},
		{"*MemoryStore", store},
		{"*Cache", cache},
		{"Digest", digest},
		{"KeySpec", apikey.KeySpec{Name: "n"}},
	}
	// fmt reads the Cache's internals (its singleflight group's mutex)
	// by reflection, which races with the goroutine of the last cache miss
	// as it unlocks. Park one more miss inside the store: this goroutine
	// then happens after every earlier flight, and the parked one writes
	// nothing until it is released.
	started, release, lookupDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	cacheStore.Set(faultstore.Fault{Before: func(context.Context) { close(started); <-release }})
	go func() {
		defer close(lookupDone)
		_, _ = cache.Lookup(ctx, apikey.Digest{0xde, 0xad})
	}()
	<-started
	defer func() { close(release); <-lookupDone }()

	for _, tc := range values {
		t.Run(tc.name, func(t *testing.T) {
			var leaks []string
			for how, out := range leakRenderings(tc.v) {
				for _, f := range w.find(out) {
					leaks = append(leaks, how+": "+f)
				}
			}
			if len(leaks) > 0 {
				t.Fatalf("%s leaks:\n%s", tc.name, strings.Join(leaks, "\n"))
			}
		})
	}

	// The watch finds what it is looking for.
	require.NotEmpty(t, w.find("x"+sec.Reveal()[5:20]+"y"))
	require.NotEmpty(t, w.find(fmt.Sprint(pepperBytes)))

	// Error strings.
	for _, e := range []error{verr, authErr, apikey.AuthError{Reason: apikey.ReasonRevoked, KeyID: key.ID}} {
		assert.Empty(t, w.find(e.Error()), e.Error())
	}
}

// leakLog is a slog.Handler that writes every record through both the
// text and the JSON handler into one buffer, safely for concurrent use.
type leakLog struct {
	mu   *sync.Mutex
	buf  *bytes.Buffer
	text slog.Handler
	json slog.Handler
}

func newLeakLog() *leakLog {
	buf := &bytes.Buffer{}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	return &leakLog{mu: &sync.Mutex{}, buf: buf, text: slog.NewTextHandler(buf, opts), json: slog.NewJSONHandler(buf, opts)}
}

func (l *leakLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *leakLog) Handle(ctx context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.text.Handle(ctx, r); err != nil {
		return err
	}
	return l.json.Handle(ctx, r.Clone())
}
func (l *leakLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &leakLog{mu: l.mu, buf: l.buf, text: l.text.WithAttrs(as), json: l.json.WithAttrs(as)}
}
func (l *leakLog) WithGroup(n string) slog.Handler {
	return &leakLog{mu: l.mu, buf: l.buf, text: l.text.WithGroup(n), json: l.json.WithGroup(n)}
}
func (l *leakLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestSecretsNeverLeakThroughLogsAndErrors runs the middleware through
// every rejection reason and through successes, with a logger, the hooks
// logging what they get, usage recording and pepper rotation, and looks
// for secrets in everything written: logs, error strings, response
// bodies and headers.
func TestSecretsNeverLeakThroughLogsAndErrors(t *testing.T) {
	ctx := context.Background()
	pepperBytes := make([]byte, 48)
	_, err := rand.Read(pepperBytes)
	require.NoError(t, err)
	w := newLeakWatch(pepperBytes)
	cur, err := apikey.NewPepper("cur", pepperBytes)
	require.NoError(t, err)
	oldBytes := make([]byte, 32)
	_, err = rand.Read(oldBytes)
	require.NoError(t, err)
	old, err := apikey.NewPepper("old", oldBytes)
	require.NoError(t, err)
	oldHasher, err := apikey.NewHasher(old)
	require.NoError(t, err)
	hasher, err := apikey.NewHasher(cur, old)
	require.NoError(t, err)

	// The store starts under the old pepper, so the first key is rehashed
	// (and its rehash fails, to log).
	dir := t.TempDir()
	mem, err := apikey.OpenMemoryStore(filepath.Join(dir, "keys.json"), apikey.StoreConfig{Hasher: oldHasher})
	require.NoError(t, err)
	create := func(spec apikey.KeySpec) (*apikey.Key, string) {
		k, s, err := mem.Create(ctx, spec)
		require.NoError(t, err)
		return k, w.secret(s.Reveal())
	}
	readK, read := create(apikey.KeySpec{Name: "read", Scopes: []apikey.Scope{"read"}, Owner: "o@example.com"})
	_, test := create(apikey.KeySpec{Name: "test", Scopes: []apikey.Scope{"read"}, Environment: apikey.EnvTest, Owner: "o@example.com"})
	revK, revoked := create(apikey.KeySpec{Name: "revoked", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, mem.Revoke(ctx, revK.ID))
	_, expired := create(apikey.KeySpec{Name: "expired", Scopes: []apikey.Scope{"read"}, ExpiresAt: time.Now().Add(time.Minute)})
	rollK, rolled := create(apikey.KeySpec{Name: "rolled", Scopes: []apikey.Scope{"read"}})
	_, newSec, err := mem.Roll(ctx, rollK.ID, apikey.WithGrace(time.Minute))
	require.NoError(t, err)
	successor := w.secret(newSec.Reveal())
	unissued := w.secret(mustGenerate(t))

	logs := newLeakLog()
	logger := slog.New(logs)
	fs := faultstore.New(mem)
	fs.SetRehash(faultstore.Fault{Err: errors.New("replica is read-only")})
	usage := apikey.NewUsageRecorder(mem, apikey.FlushEvery(5*time.Millisecond), apikey.UsageLogger(logger))
	var hookErrs []string
	var mu sync.Mutex
	later := apikey.WithClock(apikey.ClockFunc(func() time.Time { return time.Now().Add(time.Hour) }))
	opts := []apikey.Option{
		later, apikey.WithHasher(hasher), apikey.WithLogger(logger), apikey.WithUsage(usage),
		apikey.WithLookupTimeout(20 * time.Millisecond),
		apikey.OnRejected(func(r *http.Request, e apikey.AuthError) {
			mu.Lock()
			hookErrs = append(hookErrs, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
			mu.Unlock()
			logger.Info("hook: rejected", "error", e, "auth_error", fmt.Sprintf("%+v", e), "path", r.URL.Path)
		}),
		apikey.OnAuthenticated(func(r *http.Request, k *apikey.Key) {
			logger.Info("hook: authenticated", "key", k, "key_struct", *k)
		}),
	}
	mux := http.NewServeMux()
	mux.Handle("/admin", apikey.Require("admin")(okHandler()))
	mux.Handle("/", okHandler())
	plain := apikey.Middleware(fs, opts...)(mux)
	owner := apikey.Middleware(fs, append(opts, apikey.WithOwnerHeader("Email"))...)(mux)
	liveOnly := apikey.Middleware(fs, append(opts, apikey.WithEnvironments(apikey.EnvLive))...)(mux)
	sources := apikey.Middleware(fs, append(opts, apikey.WithHideCredentials(),
		apikey.WithSources(apikey.FromBearer(), apikey.FromHeader("X-API-Key"), apikey.FromQuery("api_key")))...)(mux)
	optional := apikey.Middleware(fs, append(opts, apikey.WithOptional())...)(mux)

	type req struct {
		h      http.Handler
		method string
		target string
		hdr    []string
		fault  *faultstore.Fault
	}
	b := func(k string) []string { return []string{"Authorization", "Bearer " + k} }
	reqs := []req{
		{h: plain, hdr: b(read)},                                     // success, rehash fails and is logged
		{h: plain, hdr: b(read)},                                     // success under the current pepper
		{h: plain, hdr: b(successor)},                                // success
		{h: plain, hdr: b(rolled)},                                   // rolled, grace over
		{h: plain},                                                   // missing
		{h: plain, hdr: append(b(read), b(read)...)},                 // duplicate
		{h: plain, hdr: b(read + strings.Repeat("x", 200))},          // oversized
		{h: plain, hdr: b(read[:20])},                                // malformed
		{h: plain, hdr: b(flipChecksum(read))},                       // checksum
		{h: liveOnly, hdr: b(test)},                                  // environment
		{h: plain, hdr: b(unissued)},                                 // unknown
		{h: plain, hdr: b(revoked)},                                  // revoked
		{h: plain, hdr: b(expired)},                                  // expired
		{h: owner, hdr: append(b(read), "Email", "eve@example.com")}, // owner
		{h: plain, method: "POST", hdr: b(read)},                     // scope
		{h: plain, target: "/admin", hdr: b(read)},                   // scope through Require
		{h: optional, target: "/admin"},                              // unauthenticated
		{h: plain, hdr: b(read), fault: &faultstore.Fault{Err: errors.New("connection refused")}},
		{h: plain, hdr: b(read), fault: &faultstore.Fault{Hang: true}},
		{h: plain, hdr: b(read), fault: &faultstore.Fault{Panic: "store exploded"}},
		{h: sources, target: "/?api_key=" + read},               // success from the query, hidden
		{h: sources, target: "/?api_key=" + read, hdr: b(read)}, // duplicate across sources
		{h: sources, hdr: []string{"X-API-Key", read + "\n"}},   // malformed in a header
		{h: sources, target: "/?api_key=" + unissued},           // unknown from the query
	}
	var bodies strings.Builder
	for i, rq := range reqs {
		if rq.fault != nil {
			fs.Set(*rq.fault)
		}
		method, target := rq.method, rq.target
		if method == "" {
			method = "GET"
		}
		if target == "" {
			target = "/"
		}
		r := httptest.NewRequest(method, target, nil)
		for j := 0; j+1 < len(rq.hdr); j += 2 {
			r.Header.Add(rq.hdr[j], rq.hdr[j+1])
		}
		rr := httptest.NewRecorder()
		rq.h.ServeHTTP(rr, r)
		fs.Clear()
		fs.SetRehash(faultstore.Fault{Err: errors.New("replica is read-only")})
		fmt.Fprintf(&bodies, "%d %d %v %s\n", i, rr.Code, rr.Header(), rr.Body.String())
	}
	require.NoError(t, usage.Close())

	// Verify and the store's own errors.
	auth := apikey.New(fs, later, apikey.WithHasher(hasher))
	var errs []error
	for _, c := range []string{read[:20], flipChecksum(read), unissued, revoked, expired, rolled, read + strings.Repeat("x", 200)} {
		_, err := auth.Verify(ctx, c)
		require.Error(t, err)
		errs = append(errs, err)
	}
	_, _, err = mem.Roll(ctx, revK.ID)
	errs = append(errs, err)
	_, err = mem.Get(ctx, "key_nope")
	errs = append(errs, err)
	errs = append(errs, mem.Revoke(ctx, "key_nope"))
	_, _, err = mem.Create(ctx, apikey.KeySpec{Name: strings.Repeat("n", 300)})
	errs = append(errs, err)
	errs = append(errs, mem.Add(ctx, hasher.Digest(read), readK))
	_, err = apikey.OpenMemoryStore(filepath.Join(dir, "keys.json")+"/nope", apikey.StoreConfig{})
	errs = append(errs, err)
	var errText strings.Builder
	for _, e := range errs {
		require.Error(t, e)
		fmt.Fprintf(&errText, "%v\n%+v\n%#v\n", e, e, e)
	}

	file, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	require.NoError(t, err)
	require.Contains(t, string(file), readK.ID, "the store file was written")
	assert.Empty(t, w.find(string(file)), "no plaintext at rest")

	logText := logs.String()
	require.NotEmpty(t, w.find(logText+read), "the watch works")
	require.Contains(t, logText, "rehash under current pepper failed", "the run reached the rehash path")
	for _, reason := range []string{"missing", "duplicate", "oversized", "malformed", "bad_checksum", "environment",
		"unknown", "revoked", "expired", "rolled", "owner", "scope", "unauthenticated", "store_failure", "store_timeout", "store_panic"} {
		assert.Contains(t, logText, "reason="+reason+" ", "the run covered reason %s", reason)
	}
	for what, text := range map[string]string{
		"logs":              logText,
		"hook errors":       strings.Join(hookErrs, "\n"),
		"Verify and stores": errText.String(),
		"responses":         bodies.String(),
	} {
		assert.Empty(t, w.find(text), "%s leak", what)
	}
}
