package presets_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/faultstore"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/presets"
	"github.com/keygate/apikey/storetest"
	"github.com/keygate/apikey/usage"
)

// allPresets lists every API the package reproduces.
var allPresets = []presets.Preset{presets.StairoidsV1, presets.StairoidsV2, presets.Stepsies, presets.Stax, presets.Straply}

// apiServer is one API's memory store and middleware around apiOK, on a
// manual clock, with usage recorded. The middleware reaches the store
// through a fault injector, so a test can make the store fail and count
// how often it was asked.
type apiServer struct {
	keys   apikey.KeyConfig
	clock  *storetest.Clock
	store  *apikey.MemoryStore
	faults *faultstore.Store
	usage  *usage.Recorder
	mw     *apikey.Middleware
	h      http.Handler

	mu       sync.Mutex
	rejected []apikey.AuthError
}

// newAPIServer builds p's server; edit (nil for none) changes the
// middleware's Config before New.
func newAPIServer(t *testing.T, p presets.Preset, edit func(*apikey.Config)) *apiServer {
	t.Helper()
	s := &apiServer{clock: storetest.NewClock(storetest.Epoch)}
	s.keys = p.Keys()
	s.keys.Clock = s.clock.Now
	var err error
	s.store, err = apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: s.keys})
	require.NoError(t, err)
	s.faults = faultstore.New(s.store)
	s.usage, err = usage.New(s.store, usage.Config{Interval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.usage.Close()) })
	cfg := p.Config(s.keys, s.faults)
	cfg.Usage = s.usage
	cfg.OnRejected = func(_ *http.Request, e apikey.AuthError) {
		s.mu.Lock()
		s.rejected = append(s.rejected, e)
		s.mu.Unlock()
	}
	if edit != nil {
		edit(&cfg)
	}
	s.mw, err = apikey.New(cfg)
	require.NoError(t, err)
	s.h = s.mw.Handler(testkit.OKHandler())
	return s
}

// create makes a key in the server's store and returns it with its
// plaintext.
func (s *apiServer) create(t *testing.T, spec apikey.KeySpec) (*apikey.Key, string) {
	t.Helper()
	k, sec, err := s.store.Create(context.Background(), spec)
	require.NoError(t, err)
	return k, sec.Reveal()
}

// takeRejections returns the rejections seen since the last call.
func (s *apiServer) takeRejections() []apikey.AuthError {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rejected
	s.rejected = nil
	return r
}

// apiCall sends one request through h, with key as a Bearer token (none
// when empty) and hdr as name, value pairs.
func apiCall(h http.Handler, method, target, key string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr
}

func apiDecode(t *testing.T, rr *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &m), "body: %s", rr.Body.String())
	return m
}

// rid stands, in an expected body, for the request id the response carries
// in X-Request-Id.
const rid = "<rid>"

// apiReplaceRID returns m with every string rid replaced by id.
func apiReplaceRID(m map[string]any, id string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			if v == rid {
				out[k] = id
				continue
			}
			out[k] = v
		case map[string]any:
			out[k] = apiReplaceRID(v, id)
		default:
			out[k] = v
		}
	}
	return out
}

var generatedRequestID = regexp.MustCompile(`^req_[0-9A-HJKMNP-TV-Z]{26}$`)

// clientRequestID is sent with every request: the middleware does not trust
// it by default, so it must never come back.
const clientRequestID = "client-chosen-id"

// apiCase is one request against an API's server and everything expected
// of the response.
type apiCase struct {
	name   string
	method string   // default GET
	key    string   // a name from the server's keys, or a literal credential
	auth   string   // a raw Authorization header, instead of key
	hdr    []string // more headers, as name, value pairs
	fail   bool     // the store fails during this request
	status int
	// body is the expected error body; nil means the protected handler
	// answers.
	body map[string]any
	// challenge is the expected WWW-Authenticate ("" for none).
	challenge string
	// reason is the rejection's precise reason, as OnRejected sees it.
	reason apikey.Reason
}

// runAPI sends every case through s and checks the status, the headers
// (Content-Type, Cache-Control, WWW-Authenticate, Retry-After,
// X-Request-Id), the body field for field and the reason of a rejection.
func runAPI(t *testing.T, s *apiServer, keys map[string]string, contentType string, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			key := tc.key
			if k, ok := keys[tc.key]; ok {
				key = k
			}
			hdr := append([]string{"X-Request-Id", clientRequestID}, tc.hdr...)
			if tc.auth != "" {
				hdr = append(hdr, "Authorization", tc.auth)
			}
			if tc.fail {
				s.faults.Set(faultstore.Fault{Err: errors.New("database unreachable")})
				defer s.faults.Clear()
			}
			s.takeRejections()
			callsBefore := s.faults.Calls()
			rr := apiCall(s.h, method, "/v1/resource", key, hdr...)
			storeAsked := s.faults.Calls() > callsBefore
			rejections := s.takeRejections()

			assert.Equal(t, tc.status, rr.Code, "body: %s", rr.Body.String())
			reqID := rr.Header().Get("X-Request-Id")
			assert.Regexp(t, generatedRequestID, reqID, "a fresh id, never the client's")
			if tc.body == nil {
				assert.Empty(t, rejections)
				assert.Equal(t, true, apiDecode(t, rr)["authenticated"], "the protected handler answered")
				assert.Equal(t, reqID, apiDecode(t, rr)["request_id"], "the handler sees the id the response carries")
				assert.Empty(t, rr.Header().Get("Www-Authenticate"))
				return
			}
			if assert.Len(t, rejections, 1) {
				assert.Equal(t, tc.reason, rejections[0].Reason, "reason")
				assert.Equal(t, reqID, rejections[0].RequestID)
			}
			switch tc.reason {
			case apikey.ReasonMissing, apikey.ReasonMalformed, apikey.ReasonEnvironment:
				assert.False(t, storeAsked, "a credential refused offline never reaches the store")
			default:
				assert.True(t, storeAsked)
			}
			assert.Equal(t, contentType, rr.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
			assert.Equal(t, tc.challenge, rr.Header().Get("Www-Authenticate"))
			if tc.reason == apikey.ReasonStoreFailure {
				assert.Equal(t, "1", rr.Header().Get("Retry-After"))
			} else {
				assert.Empty(t, rr.Header().Get("Retry-After"))
			}
			assert.Equal(t, apiReplaceRID(tc.body, reqID), apiDecode(t, rr))
		})
	}
}

// apiKeys creates one key per entry of scopes (named by its key), and a
// revoked and an expired one with the scopes of the alphabetically first
// entry.
func apiKeys(t *testing.T, s *apiServer, scopes map[string][]apikey.Scope, spec apikey.KeySpec) map[string]string {
	t.Helper()
	keys := map[string]string{}
	names := make([]string, 0, len(scopes))
	for name := range scopes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		sp := spec
		sp.Name, sp.Scopes = name, scopes[name]
		_, keys[name] = s.create(t, sp)
	}
	sp := spec
	sp.Name, sp.Scopes = "revoked", scopes[names[0]]
	k, sec := s.create(t, sp)
	require.NoError(t, s.store.Revoke(context.Background(), k.ID))
	keys["revoked"] = sec
	sp.Name, sp.ExpiresAt = "expired", storetest.Epoch.Add(time.Minute)
	_, keys["expired"] = s.create(t, sp)
	s.clock.Advance(time.Minute)
	return keys
}

const (
	challengeMissing = `Bearer realm="api"`
	challengeInvalid = `Bearer realm="api", error="invalid_token"`
)

func challengeScope(s string) string {
	return `Bearer realm="api", error="insufficient_scope", scope="` + s + `"`
}

// Stairoids API v1: flat bodies with request_id; Read-only is GET only,
// Read-Write every method.
func TestStairoidsV1(t *testing.T) {
	s := newAPIServer(t, presets.StairoidsV1, nil)
	keys := apiKeys(t, s, map[string][]apikey.Scope{"read": {"read"}, "read_write": {"read_write"}}, apikey.KeySpec{})
	unauthorized := map[string]any{
		"error":      "unauthorized",
		"message":    "Missing or invalid API key. Provide a valid Bearer token in the Authorization header.",
		"request_id": rid,
	}
	forbidden := func(scope string) map[string]any {
		return map[string]any{
			"error":      "forbidden",
			"message":    "This API key does not have " + scope + " access. Generate a Read-Write key to perform this operation.",
			"request_id": rid,
		}
	}
	unavailable := map[string]any{
		"error":      "unavailable",
		"message":    "Authentication is temporarily unavailable. Retry the request shortly.",
		"request_id": rid,
	}
	runAPI(t, s, keys, "application/json", []apiCase{
		{name: "missing header", status: 401, body: unauthorized, challenge: challengeMissing, reason: apikey.ReasonMissing},
		{name: "malformed", auth: "Bearer sk_live_short", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonMalformed},
		{name: "wrong scheme", auth: "Basic dXNlcjpwYXNz", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonMalformed},
		{name: "unknown key", key: "sk_live_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonUnknown},
		{name: "revoked key", key: "revoked", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonRevoked},
		{name: "expired key", key: "expired", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonExpired},
		{name: "store down", key: "read", fail: true, status: 503, body: unavailable, reason: apikey.ReasonStoreFailure},
		{name: "read-only GET", key: "read", status: 200},
		{name: "read-only POST", method: "POST", key: "read", status: 403, body: forbidden("write"), challenge: challengeScope("write"), reason: apikey.ReasonScope},
		{name: "read-only DELETE", method: "DELETE", key: "read", status: 403, body: forbidden("write"), challenge: challengeScope("write"), reason: apikey.ReasonScope},
		{name: "read-write GET", key: "read_write", status: 200},
		{name: "read-write POST", method: "POST", key: "read_write", status: 200},
		{name: "read-write PUT", method: "PUT", key: "read_write", status: 200},
		{name: "read-write PATCH", method: "PATCH", key: "read_write", status: 200},
		{name: "read-write DELETE", method: "DELETE", key: "read_write", status: 200},
	})
}

// Stairoids API v2: nested bodies with meta.request_id; read is GET, write
// is POST, PATCH and DELETE, read_write everything.
func TestStairoidsV2(t *testing.T) {
	s := newAPIServer(t, presets.StairoidsV2, nil)
	keys := apiKeys(t, s, map[string][]apikey.Scope{"read": {"read"}, "write": {"write"}, "read_write": {"read_write"}}, apikey.KeySpec{})
	unauthorized := map[string]any{
		"error": map[string]any{"code": "unauthorized", "message": "A valid API key is required. Provide it as 'Authorization: Bearer <key>'."},
		"meta":  map[string]any{"request_id": rid},
	}
	forbidden := func(scope string) map[string]any {
		return map[string]any{
			"error": map[string]any{
				"code":    "forbidden",
				"message": "This API key does not have the '" + scope + "' scope required for this endpoint.",
				"param":   "scope",
			},
			"meta": map[string]any{"request_id": rid},
		}
	}
	unavailable := map[string]any{
		"error": map[string]any{"code": "unavailable", "message": "Authentication is temporarily unavailable. Retry the request shortly."},
		"meta":  map[string]any{"request_id": rid},
	}
	runAPI(t, s, keys, "application/json", []apiCase{
		{name: "missing header", status: 401, body: unauthorized, challenge: challengeMissing, reason: apikey.ReasonMissing},
		{name: "extra spaces are fine", auth: "Bearer   " + keys["read"], status: 200},
		{name: "encoding issue", auth: "Bearer%20" + keys["read"], status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonMalformed},
		{name: "revoked", key: "revoked", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonRevoked},
		{name: "expired", key: "expired", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonExpired},
		{name: "store down", key: "read", fail: true, status: 503, body: unavailable, reason: apikey.ReasonStoreFailure},
		{name: "read GET", key: "read", status: 200},
		{name: "read POST", method: "POST", key: "read", status: 403, body: forbidden("write"), challenge: challengeScope("write"), reason: apikey.ReasonScope},
		{name: "write POST", method: "POST", key: "write", status: 200},
		{name: "write PATCH", method: "PATCH", key: "write", status: 200},
		{name: "write DELETE", method: "DELETE", key: "write", status: 200},
		{name: "write GET", key: "write", status: 403, body: forbidden("read"), challenge: challengeScope("read"), reason: apikey.ReasonScope},
		{name: "write PUT needs read_write", method: "PUT", key: "write", status: 403, body: forbidden("read_write"), challenge: challengeScope("read_write"), reason: apikey.ReasonScope},
		{name: "read_write GET", key: "read_write", status: 200},
		{name: "read_write POST", method: "POST", key: "read_write", status: 200},
		{name: "read_write PUT", method: "PUT", key: "read_write", status: 200},
	})
}

// Stepsies: sk_ and 48 hex characters, admin implies read and write, nested
// bodies without request id, expiry; admin endpoints guarded with
// Require("admin").
func TestStepsies(t *testing.T) {
	s := newAPIServer(t, presets.Stepsies, nil)
	keys := apiKeys(t, s, map[string][]apikey.Scope{
		"read": {"read"}, "write": {"write"}, "admin": {"admin"}, "read+write": {"read", "write"},
	}, apikey.KeySpec{})
	unauthorized := map[string]any{"error": map[string]any{"code": "unauthorized", "message": "Missing or invalid API key"}}
	forbidden := map[string]any{"error": map[string]any{"code": "forbidden", "message": "Insufficient scope for this action"}}
	unavailable := map[string]any{"error": map[string]any{"code": "unavailable", "message": "Authentication is temporarily unavailable"}}
	typo := []byte(keys["read"])
	if typo[10] == '0' { // another hex digit: well-formed, but no such key
		typo[10] = '1'
	} else {
		typo[10] = '0'
	}
	runAPI(t, s, keys, "application/json", []apiCase{
		{name: "missing Authorization header", status: 401, body: unauthorized, challenge: challengeMissing, reason: apikey.ReasonMissing},
		{name: "typo in the key", key: string(typo), status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonUnknown},
		{name: "not hex", key: "sk_" + "x0123456789abcdef0123456789abcdef0123456789abcde", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonMalformed},
		{name: "revoked key", key: "revoked", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonRevoked},
		{name: "expired key", key: "expired", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonExpired},
		{name: "store down", key: "read", fail: true, status: 503, body: unavailable, reason: apikey.ReasonStoreFailure},
		{name: "GET /stepsies read", key: "read", status: 200},
		{name: "POST /stepsies read", method: "POST", key: "read", status: 403, body: forbidden, challenge: challengeScope("write"), reason: apikey.ReasonScope},
		{name: "POST /stepsies write", method: "POST", key: "write", status: 200},
		{name: "PATCH /stepsies/:id write", method: "PATCH", key: "write", status: 200},
		{name: "DELETE /stepsies/:id write", method: "DELETE", key: "write", status: 200},
		{name: "GET /stepsies write", key: "write", status: 403, body: forbidden, challenge: challengeScope("read"), reason: apikey.ReasonScope},
		{name: "GET admin", key: "admin", status: 200},
		{name: "POST admin", method: "POST", key: "admin", status: 200},
		{name: "DELETE admin", method: "DELETE", key: "admin", status: 200},
		{name: "several scopes", method: "POST", key: "read+write", status: 200},
	})

	t.Run("admin endpoint", func(t *testing.T) {
		// Require("admin") on top of the method policy.
		mux := http.NewServeMux()
		mux.Handle("GET /v1/keys", s.mw.Require("admin")(testkit.OKHandler()))
		h := s.mw.Handler(mux)
		s.takeRejections()
		rr := apiCall(h, "GET", "/v1/keys", keys["read+write"])
		assert.Equal(t, 403, rr.Code)
		assert.Equal(t, forbidden, apiDecode(t, rr))
		assert.Equal(t, challengeScope("admin"), rr.Header().Get("Www-Authenticate"))
		assert.Equal(t, "application/json", rr.Header().Get("Content-Type"))
		assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
		assert.Regexp(t, generatedRequestID, rr.Header().Get("X-Request-Id"))
		if r := s.takeRejections(); assert.Len(t, r, 1) {
			assert.Equal(t, apikey.ReasonScope, r[0].Reason)
			assert.Equal(t, apikey.Scope("admin"), r[0].Scope)
		}
		rr = apiCall(h, "GET", "/v1/keys", keys["admin"])
		assert.Equal(t, 200, rr.Code)
		assert.Equal(t, true, apiDecode(t, rr)["authenticated"])
	})
}

// Stax.ai: 40 [a-z0-9] characters, an Email header bound to the key's
// owner, failures as HTTP 200 with authError and no challenge.
func TestStax(t *testing.T) {
	s := newAPIServer(t, presets.Stax, nil)
	const owner = "Admin@Example.com"
	keys := apiKeys(t, s, map[string][]apikey.Scope{"admin": {"admin"}, "none": nil}, apikey.KeySpec{Owner: owner})
	authErr := map[string]any{"success": false, "authError": true, "error": "Invalid authorization request"}
	unavailable := map[string]any{"success": false, "authError": false, "error": "Authorization service unavailable"}
	email := func(v string) []string { return []string{"Email", v} }
	runAPI(t, s, keys, "application/json", []apiCase{
		{name: "valid", key: "admin", hdr: email(owner), status: 200},
		{name: "email in another case", key: "admin", hdr: email("admin@example.COM"), status: 200},
		{name: "email with surrounding whitespace", key: "admin", hdr: email("  admin@example.com\t"), status: 200},
		{name: "missing key", hdr: email(owner), status: 200, body: authErr, reason: apikey.ReasonMissing},
		{name: "malformed key", key: "W3I21TE088QSKAE7P54NT7GM48AJQB2606F5801S", hdr: email(owner), status: 200, body: authErr, reason: apikey.ReasonMalformed},
		{name: "missing Email", key: "admin", status: 200, body: authErr, reason: apikey.ReasonOwner},
		{name: "other Email", key: "admin", hdr: email("eve@example.com"), status: 200, body: authErr, reason: apikey.ReasonOwner},
		{name: "two Email headers", key: "admin", hdr: append(email(owner), email(owner)...), status: 200, body: authErr, reason: apikey.ReasonOwner},
		{name: "not an administrator", key: "none", hdr: email(owner), status: 200, body: authErr, reason: apikey.ReasonScope},
		{name: "deleted key", key: "revoked", hdr: email(owner), status: 200, body: authErr, reason: apikey.ReasonRevoked},
		{name: "expired key", key: "expired", hdr: email(owner), status: 200, body: authErr, reason: apikey.ReasonExpired},
		{name: "documented example key, never issued", key: "w3i21te088qskae7p54nt7gm48ajqb2606f5801s", hdr: email("[email protected]"), status: 200, body: authErr, reason: apikey.ReasonUnknown},
		{name: "store down is still 503", key: "admin", hdr: email(owner), fail: true, status: 503, body: unavailable, reason: apikey.ReasonStoreFailure},
	})
}

// Straply: stp_live_ and stp_test_, nested bodies with status, the
// environment visible to the handler.
func TestStraply(t *testing.T) {
	s := newAPIServer(t, presets.Straply, nil)
	keys := apiKeys(t, s, map[string][]apikey.Scope{"read": {"read"}, "admin": {"admin"}}, apikey.KeySpec{})
	_, keys["sandbox"] = s.create(t, apikey.KeySpec{Name: "ci", Environment: apikey.EnvTest, Scopes: []apikey.Scope{"read"}})
	unauthorized := map[string]any{"error": map[string]any{"code": "unauthorized", "message": "Invalid or missing API key.", "status": float64(401)}}
	forbidden := map[string]any{"error": map[string]any{"code": "forbidden", "message": "The key is valid but does not have permission for this resource.", "status": float64(403)}}
	unavailable := map[string]any{"error": map[string]any{"code": "unavailable", "message": "Authentication is temporarily unavailable.", "status": float64(503)}}
	runAPI(t, s, keys, "application/json", []apiCase{
		{name: "no Authorization header", status: 401, body: unauthorized, challenge: challengeMissing, reason: apikey.ReasonMissing},
		{name: "malformed key", key: "stp_live_YOUR_KEY", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonMalformed},
		{name: "documented example is one character too long", key: "stp_live_a1b2c3d4e5f6g7h8i9j0klmnopqrstuv", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonMalformed},
		{name: "documented example without the extra character", key: "stp_live_a1b2c3d4e5f6g7h8i9j0klmnopqrstu", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonUnknown},
		{name: "revoked key", key: "revoked", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonRevoked},
		{name: "expired key", key: "expired", status: 401, body: unauthorized, challenge: challengeInvalid, reason: apikey.ReasonExpired},
		{name: "store down", key: "read", fail: true, status: 503, body: unavailable, reason: apikey.ReasonStoreFailure},
		{name: "live read", key: "read", status: 200},
		{name: "sandbox read", key: "sandbox", status: 200},
		{name: "no permission", method: "POST", key: "read", status: 403, body: forbidden, challenge: challengeScope("write"), reason: apikey.ReasonScope},
		{name: "admin write", method: "POST", key: "admin", status: 200},
	})
	rr := apiCall(s.h, "GET", "/", keys["sandbox"])
	assert.Equal(t, "test", apiDecode(t, rr)["environment"])
	rr = apiCall(s.h, "GET", "/", keys["read"])
	assert.Equal(t, "live", apiDecode(t, rr)["environment"])
}

// Config hands the preset's settings to the middleware, over the store and
// KeyConfig it is given.
func TestPresetConfig(t *testing.T) {
	for _, p := range allPresets {
		t.Run(p.Name, func(t *testing.T) {
			keys := p.Keys()
			require.Equal(t, []*apikey.Format{p.Format}, keys.Formats)
			require.Same(t, p.Scopes, keys.Scopes)
			assert.Nil(t, keys.Peppers)
			assert.Nil(t, keys.Clock)

			clock := storetest.NewClock(storetest.Epoch)
			keys.Clock = clock.Now
			store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
			require.NoError(t, err)
			cfg := p.Config(keys, store)
			assert.Same(t, store, cfg.Store)
			assert.Equal(t, keys.Formats, cfg.Keys.Formats)
			assert.Same(t, keys.Scopes, cfg.Keys.Scopes)
			require.NotNil(t, cfg.Keys.Clock, "the KeyConfig given is kept, with what was added to it")
			assert.Equal(t, storetest.Epoch, cfg.Keys.Clock())
			assert.Equal(t, p.MethodPolicy, cfg.MethodPolicy)
			assert.Equal(t, p.Style, cfg.Style)
			assert.Equal(t, p.OwnerHeader, cfg.OwnerHeader)
		})
	}
}

// Every scope a preset's MethodPolicy needs is declared by the preset, so
// New accepts its Config; a policy naming an undeclared scope is refused.
func TestPresetPolicyScopesAreDeclared(t *testing.T) {
	for _, p := range allPresets {
		t.Run(p.Name, func(t *testing.T) {
			require.NotNil(t, p.Scopes)
			require.NotEmpty(t, p.MethodPolicy)
			require.NotNil(t, p.Style)
			declared := p.Scopes.Scopes()
			for method, scope := range p.MethodPolicy {
				assert.Contains(t, declared, scope, "the scope %s needs", method)
			}
			keys := p.Keys()
			store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
			require.NoError(t, err)
			_, err = apikey.New(p.Config(keys, store))
			require.NoError(t, err)

			cfg := p.Config(keys, store)
			cfg.MethodPolicy = apikey.MethodPolicy{"GET": "undeclared"}
			_, err = apikey.New(cfg)
			assert.ErrorIs(t, err, apikey.ErrInvalid, "New checks policy scopes against the declared ones")
		})
	}
}

// Each preset's format makes keys of the documented shape that it parses
// back, in each environment it has; the others are refused.
func TestPresetFormatsMakeKeysThatParse(t *testing.T) {
	for _, tc := range []struct {
		preset presets.Preset
		live   string // pattern of a live key
		test   string // pattern of a test key; "" when the API has none
	}{
		{presets.StairoidsV1, `^sk_live_[0-9A-Za-z]{32}$`, `^sk_test_[0-9A-Za-z]{32}$`},
		{presets.StairoidsV2, `^sk_live_[0-9A-Za-z]{32}$`, `^sk_test_[0-9A-Za-z]{32}$`},
		{presets.Stepsies, `^sk_[0-9a-f]{48}$`, ""},
		{presets.Stax, `^[0-9a-z]{40}$`, ""},
		{presets.Straply, `^stp_live_[0-9a-z]{31}$`, `^stp_test_[0-9a-z]{31}$`},
	} {
		t.Run(tc.preset.Name, func(t *testing.T) {
			keys := tc.preset.Keys()
			for _, env := range []apikey.Environment{apikey.EnvLive, apikey.EnvTest} {
				pattern := tc.live
				if env == apikey.EnvTest {
					pattern = tc.test
				}
				if pattern == "" {
					_, err := keys.NewKey(apikey.KeySpec{Name: "k", Environment: env})
					assert.ErrorIs(t, err, apikey.ErrInvalid, "no %s keys in this format", env)
					continue
				}
				seen := map[string]bool{}
				for i := 0; i < 50; i++ {
					is, err := keys.NewKey(apikey.KeySpec{Name: "k", Environment: env})
					require.NoError(t, err)
					key := is.Secret.Reveal()
					require.Regexp(t, pattern, key)
					got, err := tc.preset.Format.Parse(key)
					require.NoError(t, err, "key %d", i)
					assert.Equal(t, env, got)
					assert.Equal(t, env, is.Key.Environment)
					assert.Equal(t, keys.Digest(key), is.Digest)
					assert.Equal(t, key[len(key)-4:], is.Key.Hint[len(is.Key.Hint)-4:], "hint ends like the key")
					assert.False(t, seen[key], "keys are unique")
					seen[key] = true
				}
			}
		})
	}
}

// A key in one API's format is refused by another API's middleware before
// its store is asked, even when that store holds its digest; the Stairoids
// v1 and v2 APIs share a format, so their keys work with either.
func TestPresetFormatsRefuseEachOther(t *testing.T) {
	ctx := context.Background()
	for _, from := range allPresets {
		is, err := from.Keys().NewKey(apikey.KeySpec{Name: "foreign", Owner: "admin@example.com"})
		require.NoError(t, err)
		key := is.Secret.Reveal()
		for _, to := range allPresets {
			t.Run(from.Name+" key to "+to.Name, func(t *testing.T) {
				s := newAPIServer(t, to, nil)
				k := is.Key.Clone()
				k.Scopes = to.Scopes.Scopes() // every scope: only the format may refuse it
				require.NoError(t, s.store.Add(ctx, s.keys.Digest(key), k))

				got, err := s.mw.Verify(ctx, key)
				if from.Format == to.Format {
					require.NoError(t, err, "same format")
					assert.Equal(t, k.ID, got.ID)
					return
				}
				var ae apikey.AuthError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, apikey.ReasonMalformed, ae.Reason)
				var fe *apikey.FormatError
				assert.ErrorAs(t, err, &fe)

				rr := apiCall(s.h, "GET", "/", key, "Email", "admin@example.com")
				if to.OwnerHeader == "" {
					assert.Equal(t, 401, rr.Code)
				} else {
					assert.Equal(t, 200, rr.Code, "Stax.ai answers 200")
					assert.Equal(t, true, apiDecode(t, rr)["authError"])
				}
				if r := s.takeRejections(); assert.Len(t, r, 1) {
					assert.Equal(t, apikey.ReasonMalformed, r[0].Reason)
				}
				assert.Zero(t, s.faults.Calls(), "refused before the store is asked")
			})
		}
	}
}
