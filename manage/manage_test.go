package manage_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/manage"
)

// base is where the tests mount the handler.
const base = "/settings/api-keys"

// env is a handler over a memory store, with an audit log and a log.
type env struct {
	t     *testing.T
	h     *manage.Handler
	store *apikey.MemoryStore
	keys  apikey.KeyConfig
	audit *manage.MemoryAudit
	logs  *testkit.Buffer
}

// testScopes are the scopes the tests' page offers; admin implies both.
func testScopes(t *testing.T) *apikey.ScopeSet {
	t.Helper()
	s, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "write": nil, "admin": {"read", "write"}})
	require.NoError(t, err)
	return s
}

// callerFromHeader is the tests' Caller: X-Who names a tenant ("acme",
// "globex"), "op" an operator; "" is nobody signed in, "nobody" a
// forbidden user, "broken" a failing session store.
func callerFromHeader(r *http.Request) (manage.Caller, error) {
	switch who := r.Header.Get("X-Who"); who {
	case "":
		return manage.Caller{}, manage.ErrUnauthenticated
	case "nobody":
		return manage.Caller{}, fmt.Errorf("user_9 is a viewer: %w", manage.ErrForbidden)
	case "broken":
		return manage.Caller{}, errors.New("session store unreachable")
	case "op":
		return manage.Caller{ID: "user_op", Operator: true}, nil
	default:
		return manage.Caller{ID: "user_" + who, Owner: who}, nil
	}
}

func newEnv(t *testing.T, mods ...func(*manage.Config)) *env {
	t.Helper()
	e := &env{t: t, audit: manage.NewMemoryAudit(0), logs: &testkit.Buffer{}}
	cfg := manage.Config{
		Keys:   apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: testScopes(t)},
		Caller: callerFromHeader,
		Path:   base,
		Audit:  e.audit,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	for _, m := range mods {
		m(&cfg)
	}
	e.keys = cfg.Keys
	var err error
	e.store, err = apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: e.keys})
	require.NoError(t, err)
	e.h, err = manage.New(e.store, cfg)
	require.NoError(t, err)
	return e
}

// key creates a key in the store directly.
func (e *env) key(owner, name string, scopes ...apikey.Scope) (*apikey.Key, string) {
	e.t.Helper()
	k, s, err := e.store.Create(e.t.Context(), apikey.KeySpec{Name: name, Owner: owner, Scopes: scopes})
	require.NoError(e.t, err)
	return k, s.Reveal()
}

// do sends a request as who; hdr are name/value pairs.
func (e *env) do(method, target, who, body string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequestWithContext(e.t.Context(), method, target, rd)
	if who != "" {
		r.Header.Set("X-Who", who)
	}
	if strings.HasPrefix(body, "{") {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// form posts a form as who from the page's own origin.
func (e *env) form(target, who, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do("POST", target, who, body, "Content-Type", "application/x-www-form-urlencoded",
		"Origin", "http://example.com", "Sec-Fetch-Site", "same-origin")
}

// object decodes a JSON object body.
func object(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m), w.Body.String())
	return m
}

func TestNewRefusesBadConfig(t *testing.T) {
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(t, err)
	ok := manage.Config{Keys: keys, Caller: callerFromHeader}
	for _, c := range []struct {
		name  string
		store apikey.Manager
		mod   func(*manage.Config)
		field string
	}{
		{"no store", nil, func(*manage.Config) {}, "store"},
		{"no formats", store, func(c *manage.Config) { c.Keys = apikey.KeyConfig{} }, "Config.Keys"},
		{"no caller", store, func(c *manage.Config) { c.Caller = nil }, "Config.Caller"},
		{"relative path", store, func(c *manage.Config) { c.Path = "keys" }, "Config.Path"},
		{"trailing slash", store, func(c *manage.Config) { c.Path = "/keys/" }, "Config.Path"},
		{"root slash", store, func(c *manage.Config) { c.Path = "/" }, "Config.Path"},
		{"unclean path", store, func(c *manage.Config) { c.Path = "/a/../b" }, "Config.Path"},
		{"negative grace", store, func(c *manage.Config) { c.Grace = -time.Second }, "Config.Grace"},
		{"bad origin", store, func(c *manage.Config) { c.TrustedOrigins = []string{"not an origin"} }, "Config.TrustedOrigins[0]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.mod(&cfg)
			h, err := manage.New(c.store, cfg)
			require.Error(t, err)
			assert.Nil(t, h)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), c.field)
		})
	}
	h, err := manage.New(store, ok)
	require.NoError(t, err)
	assert.NotNil(t, h)
}

// TestHeaders: every response, page, API, error or redirect, carries the
// security headers and no-store; the assets a long cache.
func TestHeaders(t *testing.T) {
	e := newEnv(t)
	k, _ := e.key("acme", "ci")
	for _, c := range []struct {
		method, target, who string
		status              int
	}{
		{"GET", base + "/", "acme", 200},
		{"GET", base + "/new", "acme", 200},
		{"GET", base + "/keys/" + k.ID, "acme", 200},
		{"GET", base + "/keys/key_nope", "acme", 404},
		{"GET", base + "/api/keys", "acme", 200},
		{"GET", base + "/api/keys/" + k.ID, "acme", 200},
		{"GET", base + "/api/keys", "", 401},
		{"GET", base + "/api/nope", "acme", 404},
		{"GET", base, "acme", 301},
		{"GET", base + "/", "", 401},
	} {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			w := e.do(c.method, c.target, c.who, "")
			assert.Equal(t, c.status, w.Code, w.Body.String())
			hd := w.Header()
			assert.Equal(t, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'", hd.Get("Content-Security-Policy"))
			assert.Equal(t, "nosniff", hd.Get("X-Content-Type-Options"))
			assert.Equal(t, "no-referrer", hd.Get("Referrer-Policy"))
			assert.Equal(t, "no-store", hd.Get("Cache-Control"))
		})
	}
	for _, name := range []string{"manage.css", "manage.js"} {
		w := e.do("GET", base+"/assets/"+name, "", "")
		assert.Equal(t, 200, w.Code)
		assert.Contains(t, w.Header().Get("Cache-Control"), "max-age=31536000")
		assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
		assert.NotEmpty(t, w.Body.String())
	}
	assert.Equal(t, 404, e.do("GET", base+"/assets/nope.js", "", "").Code)
}

// TestCrossOrigin: a cross-origin browser request that changes state is
// refused, page or API; same-origin and header-less requests pass.
func TestCrossOrigin(t *testing.T) {
	e := newEnv(t, func(c *manage.Config) { c.TrustedOrigins = []string{"https://admin.example"} })
	k, _ := e.key("acme", "ci")
	evil := []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}
	for _, c := range []struct {
		name, method, target, body string
		hdr                        []string
		status                     int
	}{
		{"api create, cross-site", "POST", base + "/api/keys", `{"name":"x"}`, evil, 403},
		{"api disable, cross-site", "POST", base + "/api/keys/" + k.ID + "/disable", "", evil, 403},
		{"api patch, cross-site", "PATCH", base + "/api/keys/" + k.ID, `{"name":"y"}`, evil, 403},
		{"page create, cross-site", "POST", base + "/keys", "name=x", append([]string{"Content-Type", "application/x-www-form-urlencoded"}, evil...), 403},
		{"page revoke, cross-site", "POST", base + "/keys/" + k.ID + "/revoke", "confirm=yes", append([]string{"Content-Type", "application/x-www-form-urlencoded"}, evil...), 403},
		{"origin only, another host", "POST", base + "/api/keys", `{"name":"x"}`, []string{"Origin", "https://evil.example"}, 403},
		{"api create, same-origin", "POST", base + "/api/keys", `{"name":"x"}`, []string{"Origin", "http://example.com", "Sec-Fetch-Site", "same-origin"}, 201},
		{"api create, no browser headers", "POST", base + "/api/keys", `{"name":"x"}`, nil, 201},
		{"api create, trusted origin", "POST", base + "/api/keys", `{"name":"x"}`, []string{"Origin", "https://admin.example", "Sec-Fetch-Site", "cross-site"}, 201},
		{"page create, same-origin", "POST", base + "/keys", "name=x", []string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin"}, 200},
		{"cross-site read", "GET", base + "/api/keys", "", evil, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := e.do(c.method, c.target, "acme", c.body, c.hdr...)
			assert.Equal(t, c.status, w.Code, w.Body.String())
			assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		})
	}
	got, err := e.store.Get(t.Context(), k.ID)
	require.NoError(t, err)
	assert.False(t, got.Disabled, "the refused disable did nothing")
	assert.True(t, got.RevokedAt.IsZero(), "the refused revoke did nothing")
	assert.Equal(t, "ci", got.Name)
}

// TestMounting: the handler strips its Path, redirects the bare Path and
// knows nothing outside it; at the root it serves everything.
func TestMounting(t *testing.T) {
	e := newEnv(t)
	w := e.do("GET", base, "acme", "")
	assert.Equal(t, 301, w.Code)
	assert.Equal(t, base+"/", w.Header().Get("Location"))
	assert.Equal(t, 404, e.do("GET", "/elsewhere/", "acme", "").Code)
	assert.Equal(t, 404, e.do("GET", base+"x/", "acme", "").Code, "a prefix that is not a path segment")
	assert.Equal(t, 404, e.do("GET", base+"/keys/../new", "acme", "").Code, "an unclean path")
	assert.Equal(t, 405, e.do("DELETE", base+"/api/keys", "acme", "").Code)
	w = e.do("PUT", base+"/api/keys/key_x", "acme", "")
	assert.Equal(t, 405, w.Code)
	assert.Equal(t, "GET, HEAD, PATCH", w.Header().Get("Allow"))
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))

	root := newEnv(t, func(c *manage.Config) { c.Path = "" })
	w = root.do("GET", "/", "acme", "")
	assert.Equal(t, 200, w.Code)
	assert.Contains(t, w.Body.String(), `href="/new"`)
	assert.Equal(t, 200, root.do("GET", "/api/keys", "acme", "").Code)

	// Mounted in a host's mux as documented.
	mux := http.NewServeMux()
	mux.Handle(base+"/", e.h)
	mux.Handle(base, e.h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+base, nil)
	require.NoError(t, err)
	req.Header.Set("X-Who", "acme")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(body), `id="new-key-link"`)
}
