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
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/internal/faultstore"
	"github.com/keygate/apikey/storetest"
	"github.com/keygate/apikey/usage"
)

// leakWatch knows every secret and the pepper of a test, and finds them
// in any text, in plain and in the encodings fmt and JSON produce.
type leakWatch struct {
	secrets []string
	needles []leakNeedle
}

type leakNeedle struct{ what, text string }

func newLeakWatch(pepper []byte) *leakWatch {
	w := &leakWatch{}
	// HMAC keeps the pepper as key^0x36 and key^0x5c: those reveal it as
	// surely as the pepper itself.
	for _, mask := range []byte{0, 0x36, 0x5c} {
		d := make([]byte, len(pepper))
		for i := range pepper {
			d[i] = pepper[i] ^ mask
		}
		what := fmt.Sprintf("pepper^%#02x", mask)
		// The bytes without their brackets: "[102 102 …]", "[]byte{0x66, …}".
		inner := func(s string, open, close string) string {
			return s[strings.Index(s, open)+1 : strings.LastIndex(s, close)]
		}
		w.needles = append(w.needles,
			leakNeedle{what + " bytes", string(d[:12])},
			leakNeedle{what + " hex", hex.EncodeToString(d[:12])},
			leakNeedle{what + " HEX", strings.ToUpper(hex.EncodeToString(d[:12]))},
			leakNeedle{what + " base64", base64.StdEncoding.EncodeToString(d)[:16]},
			leakNeedle{what + " %v", inner(fmt.Sprint(d[:8]), "[", "]")},           // "102 102 …"
			leakNeedle{what + " %#v", inner(fmt.Sprintf("%#v", d[:8]), "{", "}")},  // "0x66, 0x66, …"
			leakNeedle{what + " %q", strings.Trim(fmt.Sprintf("%q", d[:12]), `"`)}, // escaped bytes
			leakNeedle{what + " spew", leakSpewBytes(d[:8])},                       // "66 66 66 …" (testify's diffs)
		)
	}
	return w
}

// leakSpewBytes is how go-spew (testify's diffs) dumps bytes: two hex
// digits each, separated by spaces.
func leakSpewBytes(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, " ")
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

// leakT collects what testify reports.
type leakT struct{ msgs []string }

func (l *leakT) Errorf(format string, args ...any) {
	l.msgs = append(l.msgs, fmt.Sprintf(format, args...))
}

// leakTestifyDiff is testify's report of v compared with the zero value of
// its type, and of two structs holding v that differ beside it: testify
// prints the values with %#v and diffs their go-spew dumps, which walk
// every field, unexported ones included, without calling any method.
//
// testify's copy of go-spew panics when it sorts the keys of a map it
// reached through unexported fields and whose keys are arrays (the cache's
// digest-keyed maps): a bug of the tool, reported as panicked, so that the
// caller decides where it is acceptable.
func leakTestifyDiff(v any) (out string, panicked bool) {
	type holder struct {
		V any
		N int
	}
	var lt leakT
	defer func() {
		if p := recover(); p != nil {
			out, panicked = fmt.Sprintf("%s\ntestify panicked: %v", strings.Join(lt.msgs, "\n"), p), true
		}
	}()
	assert.Equal(&lt, v, reflect.Zero(reflect.TypeOf(v)).Interface())
	assert.Equal(&lt, holder{v, 1}, holder{v, 2})
	return strings.Join(lt.msgs, "\n"), false
}

// leakDiff is leakTestifyDiff for values testify can dump.
func leakDiff(t *testing.T, v any) string {
	t.Helper()
	out, panicked := leakTestifyDiff(v)
	require.False(t, panicked, "testify cannot dump %T: %s", v, out)
	return out
}

// leakRenderings prints v every way a program might: fmt verbs, fmt inside a
// struct, log/slog's text and JSON handlers, encoding/json (when it does
// not fail) and testify's diff. It reports whether testify panicked.
func leakRenderings(v any) (map[string]string, bool) {
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
	var panicked bool
	out["testify diff"], panicked = leakTestifyDiff(v)
	return out, panicked
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
	keys, _ := testKeys()
	keys.Peppers = []apikey.Pepper{pep}
	storeCfg := apikey.MemoryStoreConfig{Keys: keys, Path: filepath.Join(t.TempDir(), "keys.json")}
	store, err := apikey.NewMemoryStore(storeCfg)
	require.NoError(t, err)
	key, sec, err := store.Create(ctx, apikey.KeySpec{Name: "leaky", Scopes: []apikey.Scope{"read"}, Owner: "o@example.com"})
	require.NoError(t, err)
	w.secret(sec.Reveal())
	issued, err := keys.NewKey(apikey.KeySpec{Name: "issued"})
	require.NoError(t, err)
	w.secret(issued.Secret.Reveal())
	_, rolledSec, err := store.Roll(ctx, key.ID, 24*time.Hour)
	require.NoError(t, err)
	w.secret(rolledSec.Reveal())
	successor, retired, err := keys.Successor(key, time.Hour)
	require.NoError(t, err)
	w.secret(successor.Secret.Reveal())

	rec, err := usage.New(store, usage.Config{Interval: time.Hour})
	require.NoError(t, err)
	defer rec.Close()
	cacheStore := faultstore.New(store)
	c, err := cache.New(cacheStore, cache.Config{Clock: keys.Clock})
	require.NoError(t, err)
	cfg := apikey.Config{Keys: keys, Store: c, Usage: rec, MethodPolicy: apikey.ReadWritePolicy()}
	mw := newMiddleware(t, cfg)
	// Fill the recorder and the cache the way traffic would.
	for _, s := range []string{sec.Reveal(), rolledSec.Reveal()} {
		k, err := mw.Verify(ctx, s)
		require.NoError(t, err)
		rec.Record(k, time.Now())
	}
	_, verr := mw.Verify(ctx, flipChecksum(sec.Reveal()))
	require.Error(t, verr)
	authErr := apikey.AuthError{Reason: apikey.ReasonStoreFailure, RequestID: "req_x", KeyID: key.ID, Err: verr}
	digest := keys.Digest(sec.Reveal())

	// Values made of the package's internals (a middleware, stores, a
	// cache) may hit the testify bug described at leakTestifyDiff; they are
	// still rendered every other way, and every value a test would compare
	// must be dumped by testify too.
	values := []struct {
		name string
		v    any
	}{
		{"Secret", sec}, {"*Secret", &sec},
		{"Pepper", pep}, {"*Pepper", &pep},
		{"[]Pepper", keys.Peppers},
		{"Key", *key}, {"*Key", key}, {"retired *Key", retired},
		{"Issued", issued}, {"*Issued", &issued}, {"Issued by Successor", successor},
		{"AuthError", authErr}, {"*AuthError", &authErr},
		{"KeyConfig", keys}, {"*KeyConfig", &keys},
		{"Format", *apikey.FormatDefault}, {"*Format", apikey.FormatDefault},
		{"MemoryStoreConfig", storeCfg},
		{"Config", cfg}, {"*Config", &cfg},
		{"*usage.Recorder", rec},
		{"*Middleware", mw},
		{"*MemoryStore", store},
		{"*cache.Cache", c},
		{"Digest", digest},
		{"KeySpec", apikey.KeySpec{Name: "n"}},
	}
	internals := map[string]bool{"Config": true, "*Config": true, "*Middleware": true, "*MemoryStore": true, "*cache.Cache": true, "*usage.Recorder": true}
	// fmt and go-spew read the Cache's internals (its singleflight group's
	// mutex) by reflection, which races with the goroutine of the last
	// cache miss as it unlocks. Park one more miss inside the store: this
	// goroutine then happens after every earlier flight, and the parked one
	// writes nothing until it is released.
	started, release, lookupDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	cacheStore.Set(faultstore.Fault{Before: func(context.Context) { close(started); <-release }})
	go func() {
		defer close(lookupDone)
		_, _ = c.Lookup(ctx, apikey.Digest{0xde, 0xad})
	}()
	<-started
	defer func() { close(release); <-lookupDone }()

	for _, tc := range values {
		t.Run(tc.name, func(t *testing.T) {
			outs, panicked := leakRenderings(tc.v)
			if panicked && !internals[tc.name] {
				t.Errorf("testify cannot dump %s: %s", tc.name, outs["testify diff"])
			}
			var leaks []string
			for how, out := range outs {
				for _, f := range w.find(out) {
					leaks = append(leaks, how+": "+f)
				}
			}
			if len(leaks) > 0 {
				t.Fatalf("%s leaks:\n%s", tc.name, strings.Join(leaks, "\n"))
			}
		})
	}

	// The watch finds what it is looking for, and the renderings produce
	// something to look in.
	require.NotEmpty(t, w.find("x"+sec.Reveal()[5:20]+"y"))
	require.NotEmpty(t, w.find(fmt.Sprint(pepperBytes)))
	require.NotEmpty(t, w.find(leakDiff(t, pepperBytes)), "a spew dump of the pepper's bytes is recognised")
	require.NotEmpty(t, w.find(leakDiff(t, struct{ S string }{sec.Reveal()})), "a spew dump of a plain string is recognised")
	require.Contains(t, leakDiff(t, sec), "Diff:", "testify dumped the values")

	// A failed comparison of secrets, or of structs holding them, in
	// testify's report.
	var lt leakT
	assert.Equal(&lt, sec, rolledSec)
	assert.Equal(&lt, issued, successor)
	assert.Equal(&lt, []apikey.Secret{sec}, []apikey.Secret{rolledSec})
	assert.Equal(&lt, map[string]apikey.Secret{"k": sec}, map[string]apikey.Secret{"k": rolledSec})
	require.Len(t, lt.msgs, 4)
	assert.Empty(t, w.find(strings.Join(lt.msgs, "\n")), "testify's reports")

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

// leakUsageStore is a UsageStore whose flushes fail, so that the recorder
// logs.
type leakUsageStore struct{}

func (leakUsageStore) RecordUsage(context.Context, string, []apikey.Usage) error {
	return errors.New("usage table is read-only")
}

// TestSecretsNeverLeakThroughLogsAndErrors runs the middleware through
// every rejection reason and through successes, with a logger, the hooks
// logging what they get, usage recording, a cache and pepper rotation, and
// looks for secrets in everything written: logs, error strings, response
// bodies and headers, and the store's file.
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
	ow := newLeakWatch(oldBytes)

	// The store makes its keys under the old pepper, so the middleware of
	// the rotation rehashes the first key it sees (and its rehash fails, to
	// log).
	oldKeys, clock := testKeys()
	oldKeys.Peppers = []apikey.Pepper{old}
	keys := oldKeys
	keys.Peppers = []apikey.Pepper{cur, old}
	dir := t.TempDir()
	mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: oldKeys, Path: filepath.Join(dir, "keys.json")})
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
	_, expired := create(apikey.KeySpec{Name: "expired", Scopes: []apikey.Scope{"read"}, ExpiresAt: storetest.Epoch.Add(time.Minute)})
	rollK, rolled := create(apikey.KeySpec{Name: "rolled", Scopes: []apikey.Scope{"read"}})
	_, newSec, err := mem.Roll(ctx, rollK.ID, time.Minute)
	require.NoError(t, err)
	successor := w.secret(newSec.Reveal())
	unissued := w.secret(newSecret(t))
	cached := w.secret(newSecret(t))
	w.secrets = append(w.secrets, ow.secrets...)
	w.needles = append(w.needles, ow.needles...)
	clock.Advance(time.Hour) // past the expiry and the roll's grace

	logs := newLeakLog()
	logger := slog.New(logs)
	fs := faultstore.New(mem)
	fs.SetRehash(faultstore.Fault{Err: errors.New("replica is read-only")})
	rec, err := usage.New(mem, usage.Config{Interval: 5 * time.Millisecond, Logger: logger})
	require.NoError(t, err)
	failing, err := usage.New(leakUsageStore{}, usage.Config{Interval: time.Millisecond, Logger: logger})
	require.NoError(t, err)
	var hookErrs []string
	var mu sync.Mutex
	base := apikey.Config{
		Keys: keys, Store: fs, MethodPolicy: apikey.ReadWritePolicy(), Logger: logger, Usage: rec,
		OnRejected: func(r *http.Request, e apikey.AuthError) {
			mu.Lock()
			diff, _ := leakTestifyDiff(e)
			hookErrs = append(hookErrs, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e), diff)
			mu.Unlock()
			logger.Info("hook: rejected", "error", e, "auth_error", fmt.Sprintf("%+v", e), "path", r.URL.Path)
		},
		OnAuthenticated: func(r *http.Request, k *apikey.Key) {
			logger.Info("hook: authenticated", "key", k, "key_struct", *k)
			failing.Record(k, clock.Now())
		},
	}
	build := func(edit func(*apikey.Config)) http.Handler {
		cfg := base
		if edit != nil {
			edit(&cfg)
		}
		m := newMiddleware(t, cfg)
		mux := http.NewServeMux()
		mux.Handle("/admin", m.Require("admin")(okHandler()))
		mux.Handle("/", okHandler())
		return m.Handler(mux)
	}
	plain := build(nil)
	owner := build(func(c *apikey.Config) { c.OwnerHeader = "Email" })
	liveOnly := build(func(c *apikey.Config) { c.Environment = apikey.EnvLive })
	sources := build(func(c *apikey.Config) {
		c.HideCredentials = true
		c.Sources = []apikey.Source{apikey.FromBearer(), apikey.FromHeader("X-API-Key"), apikey.FromQuery("api_key")}
	})
	optional := build(func(c *apikey.Config) { c.Anonymous = []string{"*"} })
	// Through a cache with its own lookup deadline.
	fsCached := faultstore.New(mem)
	cacheStore, err := cache.New(fsCached, cache.Config{LookupTimeout: 10 * time.Millisecond, Clock: keys.Clock})
	require.NoError(t, err)
	viaCache := build(func(c *apikey.Config) { c.Store = cacheStore })

	type req struct {
		h        http.Handler
		method   string
		target   string
		hdr      []string
		fault    *faultstore.Fault // of the store behind the middleware
		cacheFlt *faultstore.Fault // of the store behind the cache
		deadline bool              // the request's context ends soon
	}
	b := func(k string) []string { return []string{"Authorization", "Bearer " + k} }
	reqs := []req{
		{h: plain, hdr: b(read)},                             // success, rehash fails and is logged
		{h: plain, hdr: b(read)},                             // success again, under the old pepper
		{h: plain, hdr: b(successor)},                        // success
		{h: plain, hdr: b(rolled)},                           // rolled, grace over
		{h: plain},                                           // missing
		{h: plain, hdr: append(b(read), b(read)...)},         // duplicate
		{h: plain, hdr: b(read + strings.Repeat("x", 200))},  // too long
		{h: plain, hdr: b(read + strings.Repeat("x", 5000))}, // oversized header
		{h: plain, hdr: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+read))}}, // scheme
		{h: plain, hdr: []string{"Authorization", read}},                                                               // scheme, no "Bearer"
		{h: plain, hdr: b(read[:20])},                                // length
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
		{h: plain, hdr: b(read), fault: &faultstore.Fault{Hang: true}, deadline: true},
		{h: plain, hdr: b(read), fault: &faultstore.Fault{Panic: "store exploded"}},
		{h: viaCache, hdr: b(cached), cacheFlt: &faultstore.Fault{Hang: true}},              // the cache's deadline
		{h: viaCache, hdr: b(cached), cacheFlt: &faultstore.Fault{Panic: "store exploded"}}, // a panic in the cache's flight
		{h: viaCache, hdr: b(read)},                                         // success through the cache
		{h: sources, target: "/?api_key=" + read},                           // success from the query, hidden
		{h: sources, target: "/?api_key=" + read, hdr: b(read)},             // duplicate across sources
		{h: sources, hdr: []string{"X-API-Key", read[:len(read)-1] + "\n"}}, // alphabet, in a header
		{h: sources, target: "/?api_key=" + unissued},                       // unknown from the query
		{h: sources, target: "/?api_key=" + read + "&api_key=" + read},      // duplicate query parameter
	}
	var bodies strings.Builder
	for i, rq := range reqs {
		if rq.fault != nil {
			fs.Set(*rq.fault)
		}
		if rq.cacheFlt != nil {
			fsCached.Set(*rq.cacheFlt)
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
		if rq.deadline {
			rctx, cancel := context.WithTimeout(r.Context(), 10*time.Millisecond)
			defer cancel()
			r = r.WithContext(rctx)
		}
		rr := httptest.NewRecorder()
		rq.h.ServeHTTP(rr, r)
		fs.Clear()
		fs.SetRehash(faultstore.Fault{Err: errors.New("replica is read-only")})
		fsCached.Clear()
		fmt.Fprintf(&bodies, "%d %d %v %s\n", i, rr.Code, rr.Header(), rr.Body.String())
	}
	require.NoError(t, rec.Close())
	// Wait for the failing recorder's flusher to fail once (and log it:
	// Close waits for the flusher to stop).
	for failing.Stats().Failures == 0 {
		time.Sleep(time.Millisecond)
	}
	require.Error(t, failing.Close(), "usage that could not be delivered")

	// Verify and the stores' own errors.
	verifier := newMiddleware(t, apikey.Config{Keys: keys, Store: fs})
	var errs []error
	for _, c := range []string{read[:20], flipChecksum(read), unissued, revoked, expired, rolled, read + strings.Repeat("x", 200), read + "\n", " " + read} {
		_, err := verifier.Verify(ctx, c)
		require.Error(t, err)
		errs = append(errs, err)
	}
	_, _, err = mem.Roll(ctx, revK.ID, time.Hour)
	errs = append(errs, err)
	_, err = mem.Get(ctx, "key_nope")
	errs = append(errs, err)
	errs = append(errs, mem.Revoke(ctx, "key_nope"))
	_, _, err = mem.Create(ctx, apikey.KeySpec{Name: strings.Repeat("n", 300)})
	errs = append(errs, err)
	errs = append(errs, mem.Add(ctx, oldKeys.Digest(read), readK))
	_, err = apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: filepath.Join(dir, "keys.json", "nope")})
	errs = append(errs, err)
	revokedNow, err := mem.Get(ctx, revK.ID)
	require.NoError(t, err)
	_, _, err = keys.Successor(revokedNow, time.Hour)
	errs = append(errs, err)
	var errText strings.Builder
	for _, e := range errs {
		require.Error(t, e)
		fmt.Fprintf(&errText, "%v\n%+v\n%#v\n%s\n", e, e, e, leakDiff(t, e))
	}

	file, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	require.NoError(t, err)
	require.Contains(t, string(file), readK.ID, "the store file was written")

	logText := logs.String()
	require.NotEmpty(t, w.find(logText+read), "the watch works")
	require.Contains(t, logText, "rehash under current pepper failed", "the run reached the rehash path")
	require.Contains(t, logText, "usage table is read-only", "the run reached the usage logger")
	for _, reason := range []string{"missing", "malformed", "environment", "unknown", "revoked", "expired",
		"rolled", "owner", "scope", "unauthenticated", "store_failure"} {
		assert.Contains(t, logText, "reason="+reason+" ", "the run covered reason %s", reason)
	}
	for _, problem := range []string{"duplicate", "too_long", "scheme", "length", "checksum", "alphabet"} {
		assert.Contains(t, logText, "bad "+problem, "the run covered the malformed credential's %s", problem)
	}
	for _, fault := range []string{"connection refused", "deadline exceeded", "store panicked: store exploded", "cache: store panicked"} {
		assert.Contains(t, logText, fault, "the run covered the store fault %q", fault)
	}
	for what, text := range map[string]string{
		"logs":              logText,
		"hook errors":       strings.Join(hookErrs, "\n"),
		"Verify and stores": errText.String(),
		"responses":         bodies.String(),
		"the store file":    string(file),
	} {
		assert.Empty(t, w.find(text), "%s leak", what)
	}
}
