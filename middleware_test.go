package apikey_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/internal/faultstore"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/presets"
)

// Expected values shared by middleware_test.go, hostile_test.go and
// faults_test.go.

// mwRID stands for the response's request id in an expected body
// (replaceRID fills it in).
const mwRID = "<rid>"

// The WWW-Authenticate challenges of the default realm.
const (
	mwChallengeMissing = `Bearer realm="api"`
	mwChallengeInvalid = `Bearer realm="api", error="invalid_token"`
)

func mwChallengeScope(s apikey.Scope) string {
	return `Bearer realm="api", error="insufficient_scope", scope="` + string(s) + `"`
}

// mwFreshRID matches a request id the middleware made: "req_" and 26
// uppercase Crockford base32 characters.
var mwFreshRID = regexp.MustCompile(`^req_[0-9A-HJKMNP-TV-Z]{26}$`)

// mwProblem is AuthError.Err's *FormatError problem, "" for none.
func mwProblem(err error) string {
	var fe *apikey.FormatError
	if errors.As(err, &fe) {
		return fe.Problem
	}
	return ""
}

func TestExtraction(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, nil)
	tests := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"bearer", []string{"Authorization", "Bearer " + f.read}, 200},
		{"lower-case scheme", []string{"Authorization", "bearer " + f.read}, 200},
		{"upper-case scheme", []string{"Authorization", "BEARER " + f.read}, 200},
		{"several spaces", []string{"Authorization", "Bearer    " + f.read}, 200},
		{"missing", nil, 401},
		{"empty header", []string{"Authorization", ""}, 401},
		{"scheme only", []string{"Authorization", "Bearer"}, 401},
		{"scheme and two spaces", []string{"Authorization", "Bearer  "}, 401},
		{"tab separator", []string{"Authorization", "Bearer\t" + f.read}, 401},
		{"trailing space", []string{"Authorization", "Bearer " + f.read + " "}, 401},
		{"trailing newline", []string{"Authorization", "Bearer " + f.read + "\n"}, 401},
		{"two credentials", []string{"Authorization", "Bearer " + f.read + " " + f.rw}, 401},
		{"two headers", []string{"Authorization", "Bearer " + f.read, "Authorization", "Bearer " + f.read}, 401},
		{"Basic", []string{"Authorization", "Basic " + f.read}, 401},
		{"Token", []string{"Authorization", "Token " + f.read}, 401},
		{"raw key without scheme", []string{"Authorization", f.read}, 401},
		{"oversized", []string{"Authorization", "Bearer " + strings.Repeat("a", 8<<10)}, 401},
		{"X-API-Key is not a default source", []string{"X-Api-Key", f.read}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := call(h, "GET", "/", "", tt.hdr...)
			assert.Equal(t, tt.status, rr.Code, rr.Body.String())
		})
	}
}

// Each rejection is reported with its reason, and a malformed credential
// with the *FormatError that says which check failed.
func TestSourcesAndReasons(t *testing.T) {
	f := newFixture(t)
	var rejected []apikey.AuthError
	hook := func(c *apikey.Config) {
		c.OnRejected = func(_ *http.Request, e apikey.AuthError) { rejected = append(rejected, e) }
	}
	headerOnly := f.handler(t, func(c *apikey.Config) { hook(c); c.Sources = []apikey.Source{apikey.FromHeader("X-API-Key")} })
	both := f.handler(t, func(c *apikey.Config) {
		hook(c)
		c.Sources = []apikey.Source{apikey.FromBearer(), apikey.FromQuery("api_key")}
	})
	bearerOnly := f.handler(t, hook)

	tests := []struct {
		name    string
		h       http.Handler
		target  string
		hdr     []string
		status  int
		reason  apikey.Reason
		problem string // the *FormatError's Problem, for ReasonMalformed
	}{
		{"named header", headerOnly, "/", []string{"X-API-Key", f.read}, 200, 0, ""},
		{"named header ignores bearer", headerOnly, "/", []string{"Authorization", "Bearer " + f.read}, 401, apikey.ReasonMissing, ""},
		{"named header twice", headerOnly, "/", []string{"X-API-Key", f.read, "X-API-Key", f.read}, 401, apikey.ReasonMalformed, "duplicate"},
		{"named header empty", headerOnly, "/", []string{"X-API-Key", ""}, 401, apikey.ReasonMalformed, "empty"},
		{"query when enabled", both, "/?api_key=" + f.read, nil, 200, 0, ""},
		{"query percent-encoded", both, "/?api_key=" + strings.Replace(f.read, "_", "%5F", 1), nil, 200, 0, ""},
		{"query twice", both, "/?api_key=" + f.read + "&api_key=" + f.read, nil, 401, apikey.ReasonMalformed, "duplicate"},
		{"query empty", both, "/?api_key=", nil, 401, apikey.ReasonMalformed, "empty"},
		{"query bad escape", both, "/?api_key=%zz", nil, 401, apikey.ReasonMalformed, "escape"},
		{"header and query", both, "/?api_key=" + f.read, []string{"Authorization", "Bearer " + f.read}, 401, apikey.ReasonMalformed, "duplicate"},
		{"query off by default", bearerOnly, "/?api_key=" + f.read, nil, 401, apikey.ReasonMissing, ""},
		{"percent-encoded in a header", bearerOnly, "/", []string{"Authorization", "Bearer " + strings.Replace(f.read, "_", "%5F", 1)}, 401, apikey.ReasonMalformed, "prefix"},
		{"Basic scheme", bearerOnly, "/", []string{"Authorization", "Basic " + f.read}, 401, apikey.ReasonMalformed, "scheme"},
		{"oversized", bearerOnly, "/", []string{"Authorization", "Bearer " + strings.Repeat("k", 200)}, 401, apikey.ReasonMalformed, "too_long"},
		{"huge header", bearerOnly, "/", []string{"Authorization", strings.Repeat("k", 1<<20)}, 401, apikey.ReasonMalformed, "too_long"},
		{"bad checksum", bearerOnly, "/", []string{"Authorization", "Bearer " + flipChecksum(f.read)}, 401, apikey.ReasonMalformed, "checksum"},
		{"never issued", bearerOnly, "/", []string{"Authorization", "Bearer " + newSecret(t)}, 401, apikey.ReasonUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rejected = nil
			rr := call(tt.h, "GET", tt.target, "", tt.hdr...)
			assert.Equal(t, tt.status, rr.Code)
			if tt.reason == 0 {
				assert.Empty(t, rejected)
				return
			}
			require.Len(t, rejected, 1)
			assert.Equal(t, tt.reason, rejected[0].Reason)
			assert.Equal(t, tt.problem, mwProblem(rejected[0].Err))
			if tt.problem != "" {
				assert.ErrorIs(t, rejected[0], apikey.ErrMalformedKey)
			}
		})
	}
}

// A format-level rejection never reaches the store.
func TestRejectedBeforeTheStore(t *testing.T) {
	var lookups atomic.Int32
	store := testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
		lookups.Add(1)
		return nil, apikey.ErrNotFound
	})
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	h := newMiddleware(t, apikey.Config{Keys: keys, Store: store, Environment: apikey.EnvLive}).Handler(okHandler())
	test, err := keys.NewKey(apikey.KeySpec{Name: "sandbox", Environment: apikey.EnvTest})
	require.NoError(t, err)
	for _, cred := range []string{"", "nope", flipChecksum(newSecret(t)), test.Secret.Reveal(), strings.Repeat("x", 5000)} {
		assert.Equal(t, 401, call(h, "GET", "/", cred).Code)
	}
	assert.Zero(t, lookups.Load())
	assert.Equal(t, 401, call(h, "GET", "/", newSecret(t)).Code)
	assert.EqualValues(t, 1, lookups.Load())
}

// Every mistake in a Config is an error from New that wraps ErrInvalid and
// names the field to change.
func TestNewRejectsConfigMistakes(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		edit func(*apikey.Config)
		want []string // substrings of the error message
	}{
		{"empty Keys.Formats", func(c *apikey.Config) { c.Keys.Formats = nil }, []string{"Config.Keys", "KeyConfig.Formats"}},
		{"nil format", func(c *apikey.Config) { c.Keys.Formats = []*apikey.Format{nil} }, []string{"KeyConfig.Formats[0]"}},
		{"nil Store", func(c *apikey.Config) { c.Store = nil }, []string{"Config.Store"}},
		{"MethodPolicy scope not declared", func(c *apikey.Config) {
			c.MethodPolicy = apikey.MethodPolicy{"GET": "read", "POST": "publish"}
		}, []string{`Config.MethodPolicy["POST"]`, `"publish"`, "not declared", "KeyConfig.Scopes"}},
		{"MethodPolicy with an empty method", func(c *apikey.Config) { c.MethodPolicy = apikey.MethodPolicy{"": "read"} }, []string{"Config.MethodPolicy"}},
		{"negative RetryAfter", func(c *apikey.Config) { c.RetryAfter = -time.Second }, []string{"Config.RetryAfter"}},
		{"zero Source", func(c *apikey.Config) { c.Sources = []apikey.Source{apikey.FromBearer(), {}} }, []string{"Config.Sources[1]"}},
		{"Bearer twice", func(c *apikey.Config) { c.Sources = []apikey.Source{apikey.FromBearer(), apikey.FromBearer()} }, []string{"Config.Sources[1]", "Authorization"}},
		{"Bearer and the Authorization header", func(c *apikey.Config) {
			c.Sources = []apikey.Source{apikey.FromBearer(), apikey.FromHeader("authorization")}
		}, []string{"Config.Sources[1]", "Authorization"}},
		{"one header twice", func(c *apikey.Config) {
			c.Sources = []apikey.Source{apikey.FromHeader("X-API-Key"), apikey.FromHeader("x-api-key")}
		}, []string{"Config.Sources[1]", "X-Api-Key"}},
		{"unknown Environment", func(c *apikey.Config) { c.Environment = 3 }, []string{"Config.Environment"}},
		{"zero Pepper", func(c *apikey.Config) { c.Keys.Peppers = []apikey.Pepper{{}} }, []string{"KeyConfig.Peppers[0]", "NewPepper"}},
		{"duplicate pepper ids", func(c *apikey.Config) {
			c.Keys.Peppers = []apikey.Pepper{pepper(t, "p1", 'a'), pepper(t, "p1", 'b')}
		}, []string{"KeyConfig.Peppers", `"p1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config()
			tt.edit(&cfg)
			m, err := apikey.New(cfg)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
			for _, s := range tt.want {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
	// The unedited Config is fine: each error above is the edit's.
	_, err := apikey.New(f.config())
	require.NoError(t, err)
}

func TestHandlerPanicsOnNilNext(t *testing.T) {
	m := newMiddleware(t, newFixture(t).config())
	assert.Panics(t, func() { m.Handler(nil) })
}

func TestRequireWithoutMiddlewareRejects(t *testing.T) {
	f := newFixture(t)
	called := false
	h := newMiddleware(t, f.config()).Require("read")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	rr := call(h, "GET", "/", "")
	assert.Equal(t, 401, rr.Code, "no middleware upstream: reject, never pass")
	assert.False(t, called)
	assert.Equal(t, "application/problem+json", rr.Header().Get("Content-Type"))
	rid := rr.Header().Get("X-Request-Id")
	assert.Regexp(t, mwFreshRID, rid)
	assert.Equal(t, rid, decode(t, rr)["request_id"])
	assert.Equal(t, mwChallengeMissing, rr.Header().Get("Www-Authenticate"))

	// Even with a perfectly good key in the header: Require does not
	// authenticate, the middleware does.
	assert.Equal(t, 401, call(h, "GET", "/", f.rw).Code)
	assert.False(t, called)
}

func TestRequireWithMiddleware(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.MethodPolicy = nil
	cfg.Style = presets.Stepsies.Style
	mw := newMiddleware(t, cfg)
	mux := http.NewServeMux()
	mux.Handle("POST /things", mw.Require("write")(okHandler()))
	mux.Handle("GET /things", mw.Require("read")(okHandler()))
	mux.Handle("GET /both", mw.Require("read", "write")(okHandler()))
	h := mw.Handler(mux)

	assert.Equal(t, 200, call(h, "GET", "/things", f.read).Code)
	rr := call(h, "POST", "/things", f.read)
	assert.Equal(t, 403, rr.Code)
	assert.Equal(t, "Insufficient scope for this action", decode(t, rr)["error"].(map[string]any)["message"], "the middleware's style")
	assert.Equal(t, mwChallengeScope("write"), rr.Header().Get("Www-Authenticate"))
	assert.Equal(t, 200, call(h, "POST", "/things", f.rw).Code)
	assert.Equal(t, 403, call(h, "GET", "/both", f.read).Code)
	assert.Equal(t, 200, call(h, "GET", "/both", f.rw).Code)
	assert.Equal(t, 401, call(h, "GET", "/things", "").Code)
}

// Require is all-of, RequireAny any-of; both answer 401 without an
// authenticated key and 403 naming the missing scope, and refuse at setup a
// scope that Keys.Scopes does not declare.
func TestRequireAndRequireAny(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret := func(name string, scopes ...apikey.Scope) string {
		_, s, err := f.store.Create(ctx, apikey.KeySpec{Name: name, Scopes: scopes})
		require.NoError(t, err)
		return s.Reveal()
	}
	admin := secret("admin", "admin")
	readBilling := secret("read+billing", "read", "billing")
	billing := secret("billing", "billing")

	cfg := f.config()
	cfg.MethodPolicy = nil
	mw := newMiddleware(t, cfg)
	optCfg := cfg
	optCfg.Anonymous = []string{"*"}
	optional := newMiddleware(t, optCfg)

	allOf := mw.Require("read", "write")
	anyOf := mw.RequireAny([]apikey.Scope{"admin"}, []apikey.Scope{"read", "billing"})
	var ran atomic.Int32
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran.Add(1)
		okHandler().ServeHTTP(w, r)
	})
	tests := []struct {
		name    string
		h       http.Handler
		key     string
		status  int
		missing apikey.Scope // named in the challenge of a 403
	}{
		{"all-of: read and write", mw.Handler(allOf(next)), f.rw, 200, ""},
		{"all-of: admin implies both", mw.Handler(allOf(next)), admin, 200, ""},
		{"all-of: read alone", mw.Handler(allOf(next)), f.read, 403, "write"},
		{"all-of: billing alone", mw.Handler(allOf(next)), billing, 403, "read"},
		{"any-of: admin", mw.Handler(anyOf(next)), admin, 200, ""},
		{"any-of: read and billing", mw.Handler(anyOf(next)), readBilling, 200, ""},
		{"any-of: read alone", mw.Handler(anyOf(next)), f.read, 403, "admin"},
		{"any-of: billing alone", mw.Handler(anyOf(next)), billing, 403, "admin"},
		{"any-of: read and write", mw.Handler(anyOf(next)), f.rw, 403, "admin"},
		{"no middleware upstream", allOf(next), f.rw, 401, ""},
		{"no middleware upstream, any-of", anyOf(next), admin, 401, ""},
		{"anonymous, all methods open", optional.Handler(allOf(next)), "", 401, ""},
		{"anonymous, all methods open, any-of", optional.Handler(anyOf(next)), "", 401, ""},
		{"key, all methods open to anonymous", optional.Handler(anyOf(next)), readBilling, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran.Store(0)
			rr := call(tt.h, "GET", "/", tt.key)
			require.Equal(t, tt.status, rr.Code, rr.Body.String())
			rid := rr.Header().Get("X-Request-Id")
			assert.Regexp(t, mwFreshRID, rid)
			switch tt.status {
			case 200:
				assert.EqualValues(t, 1, ran.Load())
				return
			case 401:
				assert.Equal(t, mwChallengeMissing, rr.Header().Get("Www-Authenticate"))
				assert.Equal(t, replaceRID(map[string]any{
					"type": "about:blank", "title": "Unauthorized", "status": float64(401),
					"detail": "A valid API key is required.", "request_id": mwRID,
				}, rid), decode(t, rr))
			case 403:
				assert.Equal(t, mwChallengeScope(tt.missing), rr.Header().Get("Www-Authenticate"))
				body := decode(t, rr)
				assert.Equal(t, string(tt.missing), body["scope"])
				assert.Equal(t, rid, body["request_id"])
			}
			assert.Zero(t, ran.Load(), "the guarded handler never runs on a rejection")
			assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
		})
	}

	for _, tt := range []struct {
		name  string
		guard func()
	}{
		{"Require undeclared", func() { mw.Require("read", "publish") }},
		{"RequireAny undeclared in the second alternative", func() {
			mw.RequireAny([]apikey.Scope{"admin"}, []apikey.Scope{"read", "publish"})
		}},
		{"Require not a scope name", func() { mw.Require("Read Write") }},
		{"Require nothing", func() { mw.Require() }},
		{"RequireAny nothing", func() { mw.RequireAny() }},
		{"RequireAny empty alternative", func() { mw.RequireAny([]apikey.Scope{"admin"}, nil) }},
	} {
		t.Run("panics at setup/"+tt.name, func(t *testing.T) {
			assert.Panics(t, tt.guard)
		})
	}
	assert.NotPanics(t, func() { mw.Require("read", "billing") }, "declared scopes are fine")
}

// An RPC-style API, every call a POST, guards each route with Require and
// sets no MethodPolicy: the method says nothing about the scope.
func TestRPCStyleRoutesWithRequire(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.MethodPolicy = nil
	mw := newMiddleware(t, cfg)
	mux := http.NewServeMux()
	mux.Handle("POST /rpc/things.list", mw.Require("read")(okHandler()))
	mux.Handle("POST /rpc/things.delete", mw.Require("write")(okHandler()))
	h := mw.Handler(mux)

	tests := []struct {
		name, key, route string
		status           int
	}{
		{"read key calls read", f.read, "/rpc/things.list", 200},
		{"read key calls write", f.read, "/rpc/things.delete", 403},
		{"read-write key calls read", f.rw, "/rpc/things.list", 200},
		{"read-write key calls write", f.rw, "/rpc/things.delete", 200},
		{"no key", "", "/rpc/things.list", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := call(h, "POST", tt.route, tt.key)
			require.Equal(t, tt.status, rr.Code, rr.Body.String())
			if tt.status == 403 {
				assert.Equal(t, mwChallengeScope("write"), rr.Header().Get("Www-Authenticate"))
				assert.Equal(t, "write", decode(t, rr)["scope"])
			}
		})
	}
	// The same API under the REST policy would refuse every call of a
	// read-only key: which is why RPC APIs leave MethodPolicy out.
	rest := f.handler(t, nil)
	assert.Equal(t, 403, call(rest, "POST", "/rpc/things.list", f.read).Code)
}

// Config.Anonymous opens named methods to requests without a credential;
// every other method still needs a key, so no key never gets further than
// a read-only key would.
func TestAnonymousMethods(t *testing.T) {
	f := newFixture(t)
	mw := newMiddleware(t, func() apikey.Config {
		c := f.config() // ReadWritePolicy: GET needs read, other methods write
		c.Anonymous = []string{"GET", "HEAD"}
		return c
	}())
	mux := http.NewServeMux()
	mux.Handle("/public", okHandler())
	mux.Handle("/private", mw.Require("read")(okHandler()))
	h := mw.Handler(mux)

	rr := call(h, "GET", "/public", "")
	require.Equal(t, 200, rr.Code)
	body := decode(t, rr)
	assert.Equal(t, false, body["authenticated"], "anonymous: no key in the context")
	assert.Equal(t, rr.Header().Get("X-Request-Id"), body["request_id"])
	assert.Regexp(t, mwFreshRID, body["request_id"])
	assert.Equal(t, 200, call(h, "HEAD", "/public", "").Code)
	assert.Equal(t, true, decode(t, call(h, "GET", "/public", f.read))["authenticated"])
	assert.Equal(t, 401, call(h, "GET", "/public", "kg_live_bad").Code, "a bad credential is still rejected")
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "PROPFIND"} {
		assert.Equal(t, 403, call(h, method, "/public", f.read).Code, "%s with a read key", method)
		rr := call(h, method, "/public", "")
		assert.Equal(t, 401, rr.Code, "%s without a key goes no further than with a read key", method)
		assert.Equal(t, `Bearer realm="api"`, rr.Header().Get("Www-Authenticate"))
	}
	rr = call(h, "GET", "/private", "")
	assert.Equal(t, 401, rr.Code, "Require still rejects anonymous requests")
	assert.Equal(t, rr.Header().Get("X-Request-Id"), decode(t, rr)["request_id"], "with the request's one id")
	assert.Len(t, rr.Header()["X-Request-Id"], 1)
	assert.Equal(t, 200, call(h, "GET", "/private", f.read).Code)

	all := f.handler(t, func(c *apikey.Config) { c.Anonymous = []string{"*"} })
	assert.Equal(t, 200, call(all, "PROPFIND", "/", "").Code, `"*" opens every method`)
	_, err := apikey.New(func() apikey.Config { c := f.config(); c.Anonymous = []string{"GET", ""}; return c }())
	assert.ErrorIs(t, err, apikey.ErrInvalid, "an empty method")
}

func TestEnvironmentFilter(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		env        apikey.Environment
		live, test int
	}{
		{"both by default", 0, 200, 200},
		{"live only", apikey.EnvLive, 200, 401},
		{"test only", apikey.EnvTest, 401, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := f.handler(t, func(c *apikey.Config) { c.Environment = tt.env })
			assert.Equal(t, tt.live, call(h, "GET", "/", f.read).Code)
			assert.Equal(t, tt.test, call(h, "GET", "/", f.test).Code)
		})
	}
}

// The owner header matches an e-mail address with ASCII case folding only,
// and any other owner exactly.
func TestOwnerBinding(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, kate, err := f.store.Create(ctx, apikey.KeySpec{Name: "kate", Scopes: []apikey.Scope{"read"}, Owner: "kate@example.com"})
	require.NoError(t, err)
	_, team, err := f.store.Create(ctx, apikey.KeySpec{Name: "team", Scopes: []apikey.Scope{"read"}, Owner: "Team-7"})
	require.NoError(t, err)
	h := f.handler(t, func(c *apikey.Config) { c.OwnerHeader = "Email" })
	for _, tt := range []struct {
		name, key string
		hdr       []string
		status    int
	}{
		{"same address", kate.Reveal(), []string{"Email", "kate@example.com"}, 200},
		{"other case", f.read, []string{"Email", "OPS@example.com"}, 200},
		{"surrounding spaces", f.read, []string{"Email", " \tops@example.com "}, 200},
		{"Kelvin sign for k", kate.Reveal(), []string{"Email", "\u212Aate@example.com"}, 403},
		{"long s for s", f.read, []string{"Email", "op\u017F@example.com"}, 403},
		{"other owner", f.read, []string{"Email", "dev@example.com"}, 403},
		{"no header", f.read, nil, 403},
		{"two headers", f.read, []string{"Email", "ops@example.com", "Email", "ops@example.com"}, 403},
		{"not an address: exact", team.Reveal(), []string{"Email", "Team-7"}, 200},
		{"not an address: no case folding", team.Reveal(), []string{"Email", "team-7"}, 403},
		{"a key without owner never matches", f.rw, []string{"Email", ""}, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.status, call(h, "GET", "/", tt.key, tt.hdr...).Code)
		})
	}
}

func TestHideCredentials(t *testing.T) {
	f := newFixture(t)
	var seen *http.Request
	capture := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r })
	for _, tt := range []struct {
		name    string
		sources []apikey.Source
		target  string
		hdr     []string
	}{
		{"bearer", nil, "/x?a=1", []string{"Authorization", "Bearer " + f.read}},
		{"header", []apikey.Source{apikey.FromHeader("X-API-Key")}, "/x?a=1", []string{"X-API-Key", f.read}},
		{"query", []apikey.Source{apikey.FromQuery("key")}, "/x?a=1&key=" + f.read, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seen = nil
			r := httptest.NewRequest("GET", tt.target, nil)
			for i := 0; i < len(tt.hdr); i += 2 {
				r.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			cfg := f.config()
			cfg.Sources, cfg.HideCredentials = tt.sources, true
			newMiddleware(t, cfg).Handler(capture).ServeHTTP(httptest.NewRecorder(), r)
			require.NotNil(t, seen)
			assert.Empty(t, seen.Header.Get("Authorization"))
			assert.Empty(t, seen.Header.Get("X-Api-Key"))
			assert.NotContains(t, seen.URL.String(), f.read)
			assert.NotContains(t, seen.RequestURI, f.read)
			assert.Equal(t, "1", seen.URL.Query().Get("a"), "other parameters stay")
			_, ok := apikey.FromContext(seen.Context())
			assert.True(t, ok)
			if tt.hdr != nil {
				assert.NotEmpty(t, r.Header.Get(tt.hdr[0]), "the caller's request is not modified")
			}
		})
	}
	// Without the option the handler sees the header.
	call(newMiddleware(t, f.config()).Handler(capture), "GET", "/", f.read)
	assert.NotEmpty(t, seen.Header.Get("Authorization"))
}

// mwTrustOneHeader is a Config.RequestID that trusts the client's
// X-Request-Id when there is exactly one (behind a proxy that sets it).
func mwTrustOneHeader(_ http.ResponseWriter, r *http.Request) string {
	if v := r.Header.Values("X-Request-Id"); len(v) == 1 {
		return v[0]
	}
	return ""
}

// By default the client's X-Request-Id is ignored: every request gets a
// fresh id. Config.RequestID may supply one, which is used only when it is
// safe.
func TestIncomingRequestID(t *testing.T) {
	f := newFixture(t)
	byDefault := f.handler(t, nil)
	trusting := f.handler(t, func(c *apikey.Config) { c.RequestID = mwTrustOneHeader })
	tests := []struct {
		name     string
		incoming []string
		reused   bool // by the trusting middleware
	}{
		{"none", nil, false},
		{"safe", []string{"abc-123_X.y"}, true},
		{"chi's shape", []string{"host.example/AbCdEfGhIj-000001"}, true},
		{"every visible character but quote and backslash", []string{"!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}, true},
		{"too long", []string{strings.Repeat("a", 129)}, false},
		{"longest kept", []string{strings.Repeat("a", 128)}, true},
		{"space", []string{"a b"}, false},
		{"tab", []string{"a\tb"}, false},
		{"quote", []string{`a"b`}, false},
		{"backslash", []string{`a\b`}, false},
		{"newline", []string{"a\nb"}, false},
		{"DEL", []string{"a\x7fb"}, false},
		{"non-ASCII", []string{"é"}, false},
		{"two headers", []string{"a", "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			for _, v := range tt.incoming {
				hdr = append(hdr, "X-Request-Id", v)
			}
			for _, key := range []string{f.read, ""} {
				for i, h := range []http.Handler{byDefault, trusting} {
					rr := call(h, "GET", "/", key, hdr...)
					got := rr.Header().Values("X-Request-Id")
					require.Len(t, got, 1)
					if tt.reused && i == 1 {
						assert.Equal(t, tt.incoming[0], got[0])
					} else {
						assert.Regexp(t, mwFreshRID, got[0])
					}
					// The handler, or the error body, sees the same id.
					assert.Equal(t, got[0], decode(t, rr)["request_id"])
				}
			}
		})
	}

	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := call(byDefault, "GET", "/", "").Header().Get("X-Request-Id")
		require.Regexp(t, mwFreshRID, id)
		require.False(t, seen[id], "request id %s made twice", id)
		seen[id] = true
	}
	assert.Empty(t, apikey.RequestID(context.Background()))
	_, ok := apikey.FromContext(context.Background())
	assert.False(t, ok)
}

// mwChiKey is where the simulated chi middleware keeps its request id.
type mwChiKey struct{}

// Request ids from an upstream middleware (chi keeps its id in the context;
// echo sets the response header before calling the next handler), a
// renamed header, and request ids turned off.
func TestRequestIDConfig(t *testing.T) {
	f := newFixture(t)
	chiLike := func(id string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), mwChiKey{}, id)))
			})
		}
	}
	echoLike := func(header, id string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(header, id)
				next.ServeHTTP(w, r)
			})
		}
	}
	fromChi := func(_ http.ResponseWriter, r *http.Request) string {
		id, _ := r.Context().Value(mwChiKey{}).(string)
		return id
	}
	fromEcho := func(header string) func(http.ResponseWriter, *http.Request) string {
		return func(w http.ResponseWriter, _ *http.Request) string { return w.Header().Get(header) }
	}
	none := func(h http.Handler) http.Handler { return h }

	tests := []struct {
		name     string
		edit     func(*apikey.Config)
		upstream func(http.Handler) http.Handler
		header   string // the response header that carries the id
		want     string // the id expected; "" for a fresh one; "-" for none at all
	}{
		{"default ignores the client's id", nil, none, "X-Request-Id", ""},
		{"chi: id from the context", func(c *apikey.Config) { c.RequestID = fromChi }, chiLike("chi-000042"), "X-Request-Id", "chi-000042"},
		{"echo: id from the response header", func(c *apikey.Config) { c.RequestID = fromEcho("X-Request-Id") },
			echoLike("X-Request-Id", "k3XAYZb0q9hW2mPNr7sTuV1c4dEfGh6J"), "X-Request-Id", "k3XAYZb0q9hW2mPNr7sTuV1c4dEfGh6J"},
		{"unsafe id from RequestID is replaced", func(c *apikey.Config) { c.RequestID = fromChi }, chiLike(`x","admin":true`), "X-Request-Id", ""},
		{"empty id from RequestID is replaced", func(c *apikey.Config) { c.RequestID = fromChi }, none, "X-Request-Id", ""},
		{"chi's own id format", func(c *apikey.Config) { c.RequestID = fromChi }, chiLike("api-7.example/3kQ9zXwPbT-000017"), "X-Request-Id", "api-7.example/3kQ9zXwPbT-000017"},
		{"overlong id from RequestID is replaced", func(c *apikey.Config) { c.RequestID = fromChi }, chiLike(strings.Repeat("r", 129)), "X-Request-Id", ""},
		{"id with a space from RequestID is replaced", func(c *apikey.Config) { c.RequestID = fromChi }, chiLike("chi 000044"), "X-Request-Id", ""},
		{"RequestIDHeader renames the header", func(c *apikey.Config) { c.RequestIDHeader = "x-trace-id" }, none, "X-Trace-Id", ""},
		{"RequestIDHeader with an echo-like upstream", func(c *apikey.Config) {
			c.RequestIDHeader = "X-Trace-Id"
			c.RequestID = fromEcho("X-Trace-Id")
		}, echoLike("X-Trace-Id", "trace.7"), "X-Trace-Id", "trace.7"},
		{"NoRequestID", func(c *apikey.Config) { c.NoRequestID = true }, none, "X-Request-Id", "-"},
		{"NoRequestID wins over RequestID", func(c *apikey.Config) {
			c.NoRequestID = true
			c.RequestID = fromChi
		}, chiLike("chi-000043"), "X-Request-Id", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.upstream(f.handler(t, tt.edit))
			for _, key := range []string{f.read, ""} {
				rr := call(h, "GET", "/", key, "X-Request-Id", "client-chosen")
				body := decode(t, rr)
				if tt.want == "-" {
					assert.Empty(t, rr.Header().Values("X-Request-Id"))
					if key == "" {
						assert.NotContains(t, body, "request_id", "no request_id in a problem+json body")
						assert.Equal(t, "Unauthorized", body["title"])
					} else {
						assert.Equal(t, "", body["request_id"], "RequestID(ctx) is empty")
					}
					continue
				}
				got := rr.Header().Values(tt.header)
				require.Len(t, got, 1)
				if tt.want == "" {
					assert.Regexp(t, mwFreshRID, got[0])
				} else {
					assert.Equal(t, tt.want, got[0])
				}
				assert.Equal(t, got[0], body["request_id"], "the body carries the header's id")
				if tt.header != "X-Request-Id" {
					assert.Empty(t, rr.Header().Values("X-Request-Id"))
				}
			}
		})
	}
}

func TestHooksAndLogger(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	var authed []string
	var rejected []apikey.AuthError
	h := f.handler(t, func(c *apikey.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		c.OnAuthenticated = func(_ *http.Request, k *apikey.Key) { authed = append(authed, k.ID) }
		c.OnRejected = func(_ *http.Request, e apikey.AuthError) { rejected = append(rejected, e) }
	})
	require.NoError(t, f.store.Revoke(context.Background(), f.readID))
	call(h, "GET", "/", f.rw)
	rr := call(h, "GET", "/", f.read)
	call(h, "DELETE", "/", newSecret(t))
	assert.Equal(t, []string{f.rwKey.ID}, authed)
	require.Len(t, rejected, 2)
	assert.Equal(t, apikey.ReasonRevoked, rejected[0].Reason)
	assert.Equal(t, f.readID, rejected[0].KeyID)
	assert.Equal(t, rr.Header().Get("X-Request-Id"), rejected[0].RequestID)
	assert.Equal(t, apikey.ReasonUnknown, rejected[1].Reason)
	assert.ErrorIs(t, rejected[1], apikey.ErrNotFound)
	assert.Contains(t, logs.String(), `"reason":"revoked"`)
	assert.Contains(t, logs.String(), `"key_id":"`+f.readID+`"`)
	assert.Contains(t, logs.String(), `"request_id":"`+rejected[0].RequestID+`"`)
	assert.Contains(t, logs.String(), `"reason":"unknown"`)
	assert.NotContains(t, logs.String(), f.read)
	assert.NotContains(t, logs.String(), f.rw)
	assert.Contains(t, rejected[0].Error(), "revoked")
}

// mwPlainStyle answers with the status text alone.
type mwPlainStyle struct{}

func (mwPlainStyle) WriteError(w http.ResponseWriter, _ *http.Request, e apikey.AuthError) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(e.Reason.Status())
	_, _ = w.Write([]byte(http.StatusText(e.Reason.Status())))
}

func TestCustomStyleAndMessages(t *testing.T) {
	f := newFixture(t)
	style, err := apikey.NewErrorStyle(apikey.ShapeFlat, apikey.Messages{Unauthorized: "Nope.", Forbidden: "Needs {scope}."})
	require.NoError(t, err)
	h := f.handler(t, func(c *apikey.Config) { c.Style = style })
	assert.Equal(t, "Nope.", decode(t, call(h, "GET", "/", ""))["message"])
	assert.Equal(t, "Needs write.", decode(t, call(h, "POST", "/", f.read))["message"])

	_, err = apikey.NewErrorStyle(apikey.Shape(200), apikey.Messages{})
	assert.ErrorIs(t, err, apikey.ErrInvalid)

	h = f.handler(t, func(c *apikey.Config) { c.Style, c.Realm = mwPlainStyle{}, `my "api"` })
	rr := call(h, "GET", "/", "")
	assert.Equal(t, 401, rr.Code)
	assert.Equal(t, "Unauthorized", rr.Body.String())
	assert.Equal(t, `Bearer realm="my \"api\""`, rr.Header().Get("Www-Authenticate"))
	assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
	assert.Regexp(t, mwFreshRID, rr.Header().Get("X-Request-Id"), "shared headers are set before the style runs")
}

func TestMethodPolicyRefusesUnlistedMethods(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, func(c *apikey.Config) { c.MethodPolicy = apikey.MethodPolicy{"GET": "read"} })
	assert.Equal(t, 200, call(h, "GET", "/", f.rw).Code)
	rr := call(h, "TRACE", "/", f.rw)
	assert.Equal(t, 403, rr.Code)
	assert.Equal(t, `Bearer realm="api", error="insufficient_scope"`, rr.Header().Get("Www-Authenticate"))
	open := f.handler(t, func(c *apikey.Config) { c.MethodPolicy = apikey.MethodPolicy{"*": ""} })
	assert.Equal(t, 200, call(open, "TRACE", "/", f.read).Code, "an empty scope needs none")
	// No policy at all: the middleware checks no scope.
	none := f.handler(t, func(c *apikey.Config) { c.MethodPolicy = nil })
	assert.Equal(t, 200, call(none, "DELETE", "/", f.read).Code)
}

// The store-fault matrix lives in faults_test.go; these are the two
// answers a store can give that are not faults.
func TestStoreAnswersThatAreNotFaults(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		store  apikey.KeyStore
		reason apikey.Reason
	}{
		{"wrapped not-found is 401", testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
			return nil, errors.Join(errors.New("no rows"), apikey.ErrNotFound)
		}), apikey.ReasonUnknown},
		{"nil key and nil error is a store failure", testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
			return nil, nil
		}), apikey.ReasonStoreFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got apikey.AuthError
			called := false
			cfg := f.config()
			cfg.Store = tt.store
			cfg.OnRejected = func(_ *http.Request, e apikey.AuthError) { got = e }
			h := newMiddleware(t, cfg).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			rr := call(h, "GET", "/", f.read)
			assert.False(t, called)
			assert.Equal(t, tt.reason, got.Reason)
			assert.Equal(t, tt.reason.Status(), rr.Code)
		})
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	mw := newMiddleware(t, f.config())
	k, err := mw.Verify(context.Background(), f.read)
	require.NoError(t, err)
	assert.Equal(t, f.readID, k.ID)
	_, err = mw.Verify(context.Background(), "nope")
	var ae apikey.AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonMalformed, ae.Reason)
	assert.ErrorIs(t, err, apikey.ErrMalformedKey)
	_, err = mw.Verify(context.Background(), strings.Repeat("a", 1000))
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonMalformed, ae.Reason)
	assert.Equal(t, "too_long", mwProblem(err))
	_, err = mw.Verify(context.Background(), newSecret(t))
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonUnknown, ae.Reason)
	assert.ErrorIs(t, err, apikey.ErrNotFound)
}

// Keys made under a retiring pepper still verify, and are re-filed under
// the current pepper on first use.
func TestPepperRotationThroughMiddleware(t *testing.T) {
	ctx := context.Background()
	keys, _ := testKeys()
	old, cur := pepper(t, "2025", 1), pepper(t, "2026", 2)
	before := keys
	before.Peppers = []apikey.Pepper{old}
	store := newMemoryStore(t, before)
	k, s, err := store.Create(ctx, apikey.KeySpec{Name: "before rotation", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	assert.Equal(t, "2025", k.PepperID)

	rotating := keys
	rotating.Peppers = []apikey.Pepper{cur, old}
	h := newMiddleware(t, apikey.Config{Keys: rotating, Store: store}).Handler(okHandler())
	assert.Equal(t, 200, call(h, "GET", "/", s.Reveal()).Code)
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "2026", got.PepperID, "re-digested under the current pepper")

	onlyNew := keys
	onlyNew.Peppers = []apikey.Pepper{cur}
	h = newMiddleware(t, apikey.Config{Keys: onlyNew, Store: store}).Handler(okHandler())
	assert.Equal(t, 200, call(h, "GET", "/", s.Reveal()).Code, "works once the old pepper is gone")
}

// A digest copied from the store is not a credential.
func TestStoredDigestIsNotACredential(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, func(c *apikey.Config) { c.Sources = []apikey.Source{apikey.FromHeader("X-API-Key")} })
	d := f.keys.Digest(f.read)
	dh := hexDigest(d)
	for _, cred := range []string{dh, strings.ToUpper(dh), "kg_live_" + dh} {
		assert.Equal(t, 401, call(h, "GET", "/", "", "X-API-Key", cred).Code)
	}
}

// A deadline set upstream that expires during the lookup is a store
// failure (503), not a client that went away: something must be answered.
func TestUpstreamDeadlineIs503(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	fs.Set(faultstore.Fault{Hang: true})
	called := false
	var got apikey.AuthError
	cfg := f.config()
	cfg.Store = fs
	cfg.OnRejected = func(_ *http.Request, e apikey.AuthError) { got = e }
	auth := newMiddleware(t, cfg).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Millisecond)
		defer cancel()
		auth.ServeHTTP(w, r.WithContext(ctx))
	})
	rr := call(h, "GET", "/", f.read)
	assert.Equal(t, 503, rr.Code)
	assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
	assert.Equal(t, "1", rr.Header().Get("Retry-After"))
	assert.False(t, called)
	assert.Equal(t, apikey.ReasonStoreFailure, got.Reason)
	assert.ErrorIs(t, got.Err, context.DeadlineExceeded)
}

// Wrapping a store in a plain decorator changes nothing: valid, unknown,
// revoked and wrong-scope keys get the same answer from each shipped store,
// decorated or not.
// Every shipped store, wrapped in a plain decorator, answers as it does
// bare. The keys are in a format that is not the default, digested under a
// pepper, with an implied scope: what the middleware once learned from the
// store's type, and lost behind a decorator.
func TestDecoratedStoresAnswerTheSame(t *testing.T) {
	type store interface {
		apikey.KeyStore
		apikey.Manager
	}
	tests := []struct {
		name string
		// open returns the store to create keys in and the one to give
		// the middleware.
		open func(t *testing.T, keys apikey.KeyConfig) (store, apikey.KeyStore)
	}{
		{"MemoryStore", func(t *testing.T, keys apikey.KeyConfig) (store, apikey.KeyStore) {
			s := newMemoryStore(t, keys)
			return s, s
		}},
		{"file-backed MemoryStore", func(t *testing.T, keys apikey.KeyConfig) (store, apikey.KeyStore) {
			s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: filepath.Join(t.TempDir(), "keys.json")})
			require.NoError(t, err)
			return s, s
		}},
		{"cache over MemoryStore", func(t *testing.T, keys apikey.KeyConfig) (store, apikey.KeyStore) {
			s := newMemoryStore(t, keys)
			c, err := cache.New(s, cache.Config{Clock: keys.Clock})
			require.NoError(t, err)
			return s, c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			keys, _ := testKeys()
			format, err := apikey.NewFormat(apikey.FormatConfig{
				Name: "decorated", LivePrefix: "dk_live_", TestPrefix: "dk_test_",
				Alphabet: "abcdefghijklmnopqrstuvwxyz234567", Length: 32,
			})
			require.NoError(t, err)
			keys.Formats = []*apikey.Format{format}
			keys.Peppers = []apikey.Pepper{pepper(t, "p1", 'd')}
			mgr, ks := tt.open(t, keys)
			_, read, err := mgr.Create(ctx, apikey.KeySpec{Name: "reader", Scopes: []apikey.Scope{"read"}})
			require.NoError(t, err)
			_, admin, err := mgr.Create(ctx, apikey.KeySpec{Name: "admin", Scopes: []apikey.Scope{"admin"}})
			require.NoError(t, err)
			never, err := keys.NewKey(apikey.KeySpec{Name: "never stored"})
			require.NoError(t, err)
			k, revoked, err := mgr.Create(ctx, apikey.KeySpec{Name: "revoked", Scopes: []apikey.Scope{"read", "write"}})
			require.NoError(t, err)
			require.NoError(t, mgr.Revoke(ctx, k.ID))

			decorated := testkit.StoreFunc(func(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
				return ks.Lookup(ctx, d)
			})
			requests := []struct {
				name, method, key string
				status            int
			}{
				{"valid", "GET", read.Reveal(), 200},
				{"admin, which implies write", "POST", admin.Reveal(), 200},
				{"unknown", "GET", never.Secret.Reveal(), 401},
				{"revoked", "GET", revoked.Reveal(), 401},
				{"wrong scope", "POST", read.Reveal(), 403},
			}
			for _, rq := range requests {
				var statuses []int
				for _, s := range []apikey.KeyStore{ks, decorated, ks} {
					h := newMiddleware(t, apikey.Config{Keys: keys, Store: s, MethodPolicy: apikey.ReadWritePolicy()}).Handler(okHandler())
					statuses = append(statuses, call(h, rq.method, "/", rq.key).Code)
				}
				assert.Equal(t, []int{rq.status, rq.status, rq.status}, statuses, "%s: plain, decorated, plain again", rq.name)
			}
		})
	}
}

// mwUsage is a UsageRecorder that counts what it is told.
type mwUsage struct {
	mu sync.Mutex
	n  map[string]int
}

func (u *mwUsage) Record(k *apikey.Key, _ time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n == nil {
		u.n = map[string]int{}
	}
	u.n[k.ID]++
}

// Usage counts the requests served: authenticated and authorized by the
// method policy and by every Require on the way. A 403 from either is not
// counted, nor is a 401 or an anonymous request.
func TestUsageCountsServedRequests(t *testing.T) {
	f := newFixture(t)
	rec := &mwUsage{}
	mw := newMiddleware(t, func() apikey.Config {
		c := f.config()
		c.Usage, c.Anonymous = rec, []string{"GET"}
		return c
	}())
	mux := http.NewServeMux()
	mux.Handle("/open", okHandler())
	mux.Handle("/admin", mw.Require("admin")(okHandler()))
	h := mw.Handler(mux)
	for _, tt := range []struct {
		name, method, target, key string
		status                    int
		counted                   bool
	}{
		{"served", "GET", "/open", f.read, 200, true},
		{"refused by the method policy", "POST", "/open", f.read, 403, false},
		{"refused by Require", "GET", "/admin", f.read, 403, false},
		{"unknown key", "GET", "/open", newSecret(t), 401, false},
		{"anonymous", "GET", "/open", "", 200, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec.mu.Lock()
			before := rec.n[f.readID]
			rec.mu.Unlock()
			require.Equal(t, tt.status, call(h, tt.method, tt.target, tt.key).Code)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			want := before
			if tt.counted {
				want++
			}
			assert.Equal(t, want, rec.n[f.readID])
		})
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Len(t, rec.n, 1, "no other key was counted")
}

// What the README's performance table promises of allocations, for a key
// used again (the memory store keeps it decoded): the request context and
// r.WithContext's copy for Handler, the request id alone for HandlerFunc
// and for a refusal, nothing for HandlerFunc without request ids nor for
// Verify.
func TestAllocations(t *testing.T) {
	f := newFixture(t)
	m := newMiddleware(t, f.config())
	noID := func() apikey.Config { c := f.config(); c.NoRequestID = true; return c }()
	keyArg := func(w http.ResponseWriter, _ *http.Request, k *apikey.Key) {
		if k == nil {
			panic("no key")
		}
	}
	bare := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct {
		name   string
		h      http.Handler
		key    string
		method string
		want   float64
	}{
		{"Handler, valid", m.Handler(bare), f.read, "GET", 2},
		{"HandlerFunc, valid", m.HandlerFunc(keyArg), f.read, "GET", 1},
		{"HandlerFunc, NoRequestID", newMiddleware(t, noID).HandlerFunc(keyArg), f.read, "GET", 0},
		{"unknown key", m.Handler(bare), newSecret(t), "GET", 1},
		{"malformed key", m.Handler(bare), "kg_live_nope", "GET", 1},
		{"wrong scope", m.Handler(bare), f.read, "POST", 1},
	} {
		r := bearer(httptest.NewRequest(tc.method, "/", nil), tc.key)
		w := &discardWriter{h: http.Header{}}
		tc.h.ServeHTTP(w, r) // the key decoded once
		got := testing.AllocsPerRun(200, func() { tc.h.ServeHTTP(w, r) })
		assert.Equal(t, tc.want, got, tc.name)
	}
	assert.Zero(t, testing.AllocsPerRun(200, func() {
		if _, err := m.Verify(context.Background(), f.read); err != nil {
			panic(err)
		}
	}), "Verify")
}
