package apikey_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/faultstore"
)

// fixture is a memory store with a read key, a read+write key and a test
// key in the default format.
type fixture struct {
	store           *apikey.MemoryStore
	read, rw, test  string
	readID          string
	readKey, rwKeyK *apikey.Key
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{store: apikey.NewMemoryStore(apikey.StoreConfig{})}
	k, s, err := f.store.Create(ctx, apikey.KeySpec{Name: "reader", Scopes: []apikey.Scope{"read"}, Owner: "ops@example.com"})
	require.NoError(t, err)
	f.read, f.readID, f.readKey = s.Reveal(), k.ID, k
	k, s, err = f.store.Create(ctx, apikey.KeySpec{Name: "writer", Scopes: []apikey.Scope{"read", "write"}})
	require.NoError(t, err)
	f.rw, f.rwKeyK = s.Reveal(), k
	_, s, err = f.store.Create(ctx, apikey.KeySpec{Name: "sandbox", Scopes: []apikey.Scope{"read"}, Environment: apikey.EnvTest})
	require.NoError(t, err)
	f.test = s.Reveal()
	return f
}

func TestExtraction(t *testing.T) {
	f := newFixture(t)
	h := apikey.Middleware(f.store)(okHandler())
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

func TestSourcesAndReasons(t *testing.T) {
	f := newFixture(t)
	var reasons []apikey.Reason
	hook := apikey.OnRejected(func(_ *http.Request, e apikey.AuthError) { reasons = append(reasons, e.Reason) })
	headerOnly := apikey.Middleware(f.store, apikey.WithSources(apikey.FromHeader("X-API-Key")), hook)(okHandler())
	both := apikey.Middleware(f.store, apikey.WithSources(apikey.FromBearer(), apikey.FromQuery("api_key")), hook)(okHandler())
	bearerOnly := apikey.Middleware(f.store, hook)(okHandler())

	tests := []struct {
		name   string
		h      http.Handler
		target string
		hdr    []string
		status int
		reason apikey.Reason
	}{
		{"named header", headerOnly, "/", []string{"X-API-Key", f.read}, 200, apikey.ReasonNone},
		{"named header ignores bearer", headerOnly, "/", []string{"Authorization", "Bearer " + f.read}, 401, apikey.ReasonMissing},
		{"named header twice", headerOnly, "/", []string{"X-API-Key", f.read, "X-API-Key", f.read}, 401, apikey.ReasonDuplicate},
		{"named header empty", headerOnly, "/", []string{"X-API-Key", ""}, 401, apikey.ReasonMalformed},
		{"query when enabled", both, "/?api_key=" + f.read, nil, 200, apikey.ReasonNone},
		{"query percent-encoded", both, "/?api_key=" + strings.Replace(f.read, "_", "%5F", 1), nil, 200, apikey.ReasonNone},
		{"query twice", both, "/?api_key=" + f.read + "&api_key=" + f.read, nil, 401, apikey.ReasonDuplicate},
		{"query empty", both, "/?api_key=", nil, 401, apikey.ReasonMalformed},
		{"query bad escape", both, "/?api_key=%zz", nil, 401, apikey.ReasonMalformed},
		{"header and query", both, "/?api_key=" + f.read, []string{"Authorization", "Bearer " + f.read}, 401, apikey.ReasonDuplicate},
		{"query off by default", bearerOnly, "/?api_key=" + f.read, nil, 401, apikey.ReasonMissing},
		{"percent-encoded in a header", bearerOnly, "/", []string{"Authorization", "Bearer " + strings.Replace(f.read, "_", "%5F", 1)}, 401, apikey.ReasonMalformed},
		{"oversized", bearerOnly, "/", []string{"Authorization", "Bearer " + strings.Repeat("k", 200)}, 401, apikey.ReasonOversized},
		{"huge header", bearerOnly, "/", []string{"Authorization", strings.Repeat("k", 1<<20)}, 401, apikey.ReasonOversized},
		{"bad checksum", bearerOnly, "/", []string{"Authorization", "Bearer " + flipChecksum(f.read)}, 401, apikey.ReasonChecksum},
		{"never issued", bearerOnly, "/", []string{"Authorization", "Bearer " + mustGenerate(t)}, 401, apikey.ReasonUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reasons = nil
			rr := call(tt.h, "GET", tt.target, "", tt.hdr...)
			assert.Equal(t, tt.status, rr.Code)
			if tt.reason == apikey.ReasonNone {
				assert.Empty(t, reasons)
			} else {
				assert.Equal(t, []apikey.Reason{tt.reason}, reasons)
			}
		})
	}
}

func flipChecksum(key string) string {
	b := []byte(key)
	if b[len(b)-1] == '0' {
		b[len(b)-1] = '1'
	} else {
		b[len(b)-1] = '0'
	}
	return string(b)
}

func mustGenerate(t *testing.T) string {
	s, err := apikey.Generate(apikey.FormatDefault, apikey.EnvLive)
	require.NoError(t, err)
	return s.Reveal()
}

// A format-level rejection never reaches the store.
func TestRejectedBeforeTheStore(t *testing.T) {
	var lookups atomic.Int32
	store := apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
		lookups.Add(1)
		return nil, apikey.ErrNotFound
	})
	h := apikey.Middleware(store, apikey.WithEnvironments(apikey.EnvLive))(okHandler())
	test, err := apikey.Generate(apikey.FormatDefault, apikey.EnvTest)
	require.NoError(t, err)
	for _, cred := range []string{"", "nope", flipChecksum(mustGenerate(t)), test.Reveal(), strings.Repeat("x", 5000)} {
		assert.Equal(t, 401, call(h, "GET", "/", cred).Code)
	}
	assert.Zero(t, lookups.Load())
	assert.Equal(t, 401, call(h, "GET", "/", mustGenerate(t)).Code)
	assert.EqualValues(t, 1, lookups.Load())
}

func TestRequireWithoutMiddlewareRejects(t *testing.T) {
	called := false
	h := apikey.Require("read")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	rr := call(h, "GET", "/", "")
	assert.Equal(t, 401, rr.Code, "no middleware upstream: reject, never pass (ezauth#184)")
	assert.False(t, called)
	assert.Equal(t, "application/problem+json", rr.Header().Get("Content-Type"))
	assert.Regexp(t, `^req_`, rr.Header().Get("X-Request-Id"))
	assert.Equal(t, challengeMissing, rr.Header().Get("Www-Authenticate"))

	// Even with a perfectly good key in the header: Require does not
	// authenticate, the middleware does.
	f := newFixture(t)
	assert.Equal(t, 401, call(h, "GET", "/", f.rw).Code)
	assert.False(t, called)
}

func TestRequireWithMiddleware(t *testing.T) {
	f := newFixture(t)
	scopes := apikey.MustDeclareScopes(map[apikey.Scope][]apikey.Scope{"read": nil, "write": nil, "admin": {"read", "write"}})
	auth := apikey.New(f.store, apikey.WithMethodPolicy(nil), apikey.WithScopes(scopes), apikey.WithStyle(apikey.StyleNested))
	mux := http.NewServeMux()
	mux.Handle("POST /things", apikey.Require("write")(okHandler()))
	mux.Handle("GET /things", auth.Require("read")(okHandler()))
	mux.Handle("GET /both", apikey.Require("read", "write")(okHandler()))
	h := auth.Handler(mux)

	assert.Equal(t, 200, call(h, "GET", "/things", f.read).Code)
	rr := call(h, "POST", "/things", f.read)
	assert.Equal(t, 403, rr.Code)
	assert.Equal(t, "Insufficient scope for this action", decode(t, rr)["error"].(map[string]any)["message"], "the middleware's style")
	assert.Equal(t, 200, call(h, "POST", "/things", f.rw).Code)
	assert.Equal(t, 403, call(h, "GET", "/both", f.read).Code)
	assert.Equal(t, 200, call(h, "GET", "/both", f.rw).Code)
	assert.Equal(t, 401, call(h, "GET", "/things", "").Code)
}

func TestOptionalMode(t *testing.T) {
	f := newFixture(t)
	mux := http.NewServeMux()
	mux.Handle("/public", okHandler())
	mux.Handle("/private", apikey.Require("read")(okHandler()))
	h := apikey.Middleware(f.store, apikey.WithOptional())(mux)

	rr := call(h, "GET", "/public", "")
	require.Equal(t, 200, rr.Code)
	body := decode(t, rr)
	assert.Equal(t, false, body["authenticated"], "anonymous: no key in the context")
	assert.Equal(t, rr.Header().Get("X-Request-Id"), body["request_id"])
	assert.Equal(t, true, decode(t, call(h, "GET", "/public", f.read))["authenticated"])
	assert.Equal(t, 401, call(h, "GET", "/public", "kg_live_bad").Code, "a bad credential is still rejected")
	assert.Equal(t, 401, call(h, "GET", "/private", "").Code, "Require still rejects anonymous requests")
	assert.Equal(t, 200, call(h, "GET", "/private", f.read).Code)
}

func TestEnvironmentFilter(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		envs       []apikey.Environment
		live, test int
	}{
		{"both by default", nil, 200, 200},
		{"live only", []apikey.Environment{apikey.EnvLive}, 200, 401},
		{"test only", []apikey.Environment{apikey.EnvTest}, 401, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []apikey.Option
			if tt.envs != nil {
				opts = append(opts, apikey.WithEnvironments(tt.envs...))
			}
			h := apikey.Middleware(f.store, opts...)(okHandler())
			assert.Equal(t, tt.live, call(h, "GET", "/", f.read).Code)
			assert.Equal(t, tt.test, call(h, "GET", "/", f.test).Code)
		})
	}
}

func TestOwnerBinding(t *testing.T) {
	f := newFixture(t)
	h := apikey.Middleware(f.store, apikey.WithOwnerHeader("Email"))(okHandler())
	assert.Equal(t, 200, call(h, "GET", "/", f.read, "Email", "OPS@example.com").Code)
	assert.Equal(t, 403, call(h, "GET", "/", f.read, "Email", "dev@example.com").Code)
	assert.Equal(t, 403, call(h, "GET", "/", f.read).Code)
	assert.Equal(t, 403, call(h, "GET", "/", f.rw, "Email", "").Code, "a key without owner never matches")
}

func TestHideCredentials(t *testing.T) {
	f := newFixture(t)
	var seen *http.Request
	capture := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r })
	for _, tt := range []struct {
		name   string
		opts   []apikey.Option
		target string
		hdr    []string
	}{
		{"bearer", nil, "/x?a=1", []string{"Authorization", "Bearer " + f.read}},
		{"header", []apikey.Option{apikey.WithSources(apikey.FromHeader("X-API-Key"))}, "/x?a=1", []string{"X-API-Key", f.read}},
		{"query", []apikey.Option{apikey.WithSources(apikey.FromQuery("key"))}, "/x?a=1&key=" + f.read, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seen = nil
			r := httptest.NewRequest("GET", tt.target, nil)
			for i := 0; i < len(tt.hdr); i += 2 {
				r.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			h := apikey.Middleware(f.store, append(tt.opts, apikey.WithHideCredentials())...)(capture)
			h.ServeHTTP(httptest.NewRecorder(), r)
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
	h := apikey.Middleware(f.store)(capture)
	call(h, "GET", "/", f.read)
	assert.NotEmpty(t, seen.Header.Get("Authorization"))
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	h := apikey.Middleware(f.store)(okHandler())
	tests := []struct {
		name     string
		incoming []string
		reused   bool
	}{
		{"none", nil, false},
		{"safe", []string{"abc-123_X.y"}, true},
		{"too long", []string{strings.Repeat("a", 65)}, false},
		{"longest kept", []string{strings.Repeat("a", 64)}, true},
		{"space", []string{"a b"}, false},
		{"quote", []string{`a"b`}, false},
		{"newline", []string{"a\nb"}, false},
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
				rr := call(h, "GET", "/", key, hdr...)
				got := rr.Header().Get("X-Request-Id")
				if tt.reused {
					assert.Equal(t, tt.incoming[0], got)
				} else {
					assert.Regexp(t, `^req_[0-9A-HJKMNP-TV-Z]{26}$`, got)
				}
				body := decode(t, rr)
				if key != "" {
					assert.Equal(t, got, body["request_id"], "the handler sees the same id")
				} else {
					assert.Equal(t, got, body["request_id"], "the error body carries it")
				}
			}
		})
	}
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := apikey.NewRequestID()
		require.False(t, seen[id])
		seen[id] = true
	}
	assert.Empty(t, apikey.RequestID(context.Background()))
	_, ok := apikey.FromContext(context.Background())
	assert.False(t, ok)
}

func TestHooksAndLogger(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	var authed []string
	var rejected []apikey.AuthError
	h := apikey.Middleware(f.store,
		apikey.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
		apikey.OnAuthenticated(func(_ *http.Request, k *apikey.Key) { authed = append(authed, k.ID) }),
		apikey.OnRejected(func(_ *http.Request, e apikey.AuthError) { rejected = append(rejected, e) }),
	)(okHandler())
	require.NoError(t, f.store.Revoke(context.Background(), f.readID))
	call(h, "GET", "/", f.rw)
	call(h, "GET", "/", f.read)
	call(h, "DELETE", "/", mustGenerate(t))
	assert.Equal(t, []string{f.rwKeyK.ID}, authed)
	require.Len(t, rejected, 2)
	assert.Equal(t, apikey.ReasonRevoked, rejected[0].Reason)
	assert.Equal(t, f.readID, rejected[0].KeyID)
	assert.Equal(t, apikey.ReasonUnknown, rejected[1].Reason)
	assert.Contains(t, logs.String(), `"reason":"revoked"`)
	assert.Contains(t, logs.String(), `"key_id":"`+f.readID+`"`)
	assert.Contains(t, logs.String(), `"reason":"unknown"`)
	assert.NotContains(t, logs.String(), f.read)
	assert.NotContains(t, logs.String(), f.rw)
	assert.Contains(t, rejected[0].Error(), "revoked")
}

func TestCustomStyleAndMessages(t *testing.T) {
	f := newFixture(t)
	style := apikey.StyleFlat.WithMessages(apikey.Messages{Unauthorized: "Nope.", Forbidden: "Needs {scope}."})
	h := apikey.Middleware(f.store, apikey.WithStyle(style))(okHandler())
	assert.Equal(t, "Nope.", decode(t, call(h, "GET", "/", ""))["message"])
	assert.Equal(t, "Needs write.", decode(t, call(h, "POST", "/", f.read))["message"])
	assert.Equal(t, "flat", style.Name())

	plain := apikey.ErrorStyleFunc(func(w http.ResponseWriter, _ *http.Request, e apikey.AuthError) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(e.Status())
		_, _ = w.Write([]byte(http.StatusText(e.Status())))
	})
	h = apikey.Middleware(f.store, apikey.WithStyle(plain), apikey.WithRealm(`my "api"`))(okHandler())
	rr := call(h, "GET", "/", "")
	assert.Equal(t, 401, rr.Code)
	assert.Equal(t, "Unauthorized", rr.Body.String())
	assert.Equal(t, `Bearer realm="my \"api\""`, rr.Header().Get("Www-Authenticate"))
	assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
}

func TestMethodPolicyRefusesUnlistedMethods(t *testing.T) {
	f := newFixture(t)
	h := apikey.Middleware(f.store, apikey.WithMethodPolicy(apikey.MethodPolicy{"GET": "read"}))(okHandler())
	assert.Equal(t, 200, call(h, "GET", "/", f.rw).Code)
	rr := call(h, "TRACE", "/", f.rw)
	assert.Equal(t, 403, rr.Code)
	assert.Equal(t, `Bearer realm="api", error="insufficient_scope"`, rr.Header().Get("Www-Authenticate"))
	open := apikey.Middleware(f.store, apikey.WithMethodPolicy(apikey.MethodPolicy{"*": ""}))(okHandler())
	assert.Equal(t, 200, call(open, "TRACE", "/", f.read).Code, "an empty scope needs none")
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
		{"wrapped not-found is 401", apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
			return nil, errors.Join(errors.New("no rows"), apikey.ErrNotFound)
		}), apikey.ReasonUnknown},
		{"nil key and nil error is a store failure", apikey.KeyStoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) {
			return nil, nil
		}), apikey.ReasonStoreFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got apikey.AuthError
			called := false
			h := apikey.Middleware(tt.store, apikey.OnRejected(func(_ *http.Request, e apikey.AuthError) { got = e }))(
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			rr := call(h, "GET", "/", f.read)
			assert.False(t, called)
			assert.Equal(t, tt.reason, got.Reason)
			assert.Equal(t, tt.reason.Status(), rr.Code)
		})
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	auth := apikey.New(f.store)
	k, err := auth.Verify(context.Background(), f.read)
	require.NoError(t, err)
	assert.Equal(t, f.readID, k.ID)
	_, err = auth.Verify(context.Background(), "nope")
	var ae apikey.AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonMalformed, ae.Reason)
	assert.ErrorIs(t, err, apikey.ErrMalformedKey)
	_, err = auth.Verify(context.Background(), strings.Repeat("a", 1000))
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apikey.ReasonOversized, ae.Reason)
}

// Keys made under a retiring pepper still verify, and are re-filed under
// the current pepper on first use.
func TestPepperRotationThroughMiddleware(t *testing.T) {
	ctx := context.Background()
	old, err := apikey.NewPepper("2025", bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)
	cur, err := apikey.NewPepper("2026", bytes.Repeat([]byte{2}, 32))
	require.NoError(t, err)
	oldHasher, err := apikey.NewHasher(old)
	require.NoError(t, err)
	store := apikey.NewMemoryStore(apikey.StoreConfig{Hasher: oldHasher})
	k, s, err := store.Create(ctx, apikey.KeySpec{Name: "before rotation", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	assert.Equal(t, "2025", k.PepperID)

	rotating, err := apikey.NewHasher(cur, old)
	require.NoError(t, err)
	h := apikey.Middleware(store, apikey.WithHasher(rotating))(okHandler())
	assert.Equal(t, 200, call(h, "GET", "/", s.Reveal()).Code)
	got, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "2026", got.PepperID, "re-digested under the current pepper")

	onlyNew, err := apikey.NewHasher(cur)
	require.NoError(t, err)
	h = apikey.Middleware(store, apikey.WithHasher(onlyNew))(okHandler())
	assert.Equal(t, 200, call(h, "GET", "/", s.Reveal()).Code, "works once the old pepper is gone")
}

// A digest copied from the store is not a credential.
func TestStoredDigestIsNotACredential(t *testing.T) {
	f := newFixture(t)
	h := apikey.Middleware(f.store, apikey.WithSources(apikey.FromHeader("X-API-Key")))(okHandler())
	var plain apikey.Hasher
	d := plain.Digest(f.read)
	for _, cred := range []string{d.String(), strings.ToUpper(d.String()), "kg_live_" + d.String()} {
		assert.Equal(t, 401, call(h, "GET", "/", "", "X-API-Key", cred).Code)
	}
}

func TestNewPanicsOnNilStore(t *testing.T) {
	assert.Panics(t, func() { apikey.New(nil) })
	assert.Panics(t, func() { apikey.New(newFixture(t).store).Handler(nil) })
}

// A deadline set upstream that expires during the lookup is a store
// timeout (503), not a client that went away: something must be answered.
func TestUpstreamDeadlineIs503(t *testing.T) {
	f := newFixture(t)
	fs := faultstore.New(f.store)
	fs.Set(faultstore.Fault{Hang: true})
	called := false
	auth := apikey.Middleware(fs, apikey.WithLookupTimeout(time.Minute))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Millisecond)
		defer cancel()
		auth.ServeHTTP(w, r.WithContext(ctx))
	})
	rr := call(h, "GET", "/", f.read)
	assert.Equal(t, 503, rr.Code)
	assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
	assert.False(t, called)
}
