package apikey_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/storetest"
)

// seedCase is one request against a seed server and everything expected of
// the response. In body, the string "<rid>" stands for the request id the
// response carries in X-Request-Id.
type seedCase struct {
	name   string
	method string
	key    string // a name from the server's keys, or a literal credential
	auth   string // a raw Authorization header, instead of key
	hdr    []string
	status int
	body   map[string]any // nil: the handler's 200 answer
	// challenge is the expected WWW-Authenticate ("" for none).
	challenge string
}

const rid = "<rid>"

// runSeed sends every case through h and checks status, headers and body
// field for field.
func runSeed(t *testing.T, h http.Handler, keys map[string]string, contentType string, cases []seedCase) {
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
			hdr := tc.hdr
			if tc.auth != "" {
				hdr = append([]string{"Authorization", tc.auth}, hdr...)
			}
			rr := call(h, method, "/v1/resource", key, hdr...)
			assert.Equal(t, tc.status, rr.Code, "body: %s", rr.Body.String())
			reqID := rr.Header().Get("X-Request-Id")
			assert.Regexp(t, `^req_[0-9A-HJKMNP-TV-Z]{26}$`, reqID)
			if tc.body == nil {
				assert.Equal(t, true, decode(t, rr)["authenticated"], "the protected handler answered")
				assert.Empty(t, rr.Header().Get("Www-Authenticate"))
				return
			}
			assert.Equal(t, contentType, rr.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
			assert.Equal(t, tc.challenge, rr.Header().Get("Www-Authenticate"))
			want := replaceRID(tc.body, reqID)
			assert.Equal(t, want, decode(t, rr))
		})
	}
}

func replaceRID(m map[string]any, id string) map[string]any {
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
			out[k] = replaceRID(v, id)
		default:
			out[k] = v
		}
	}
	return out
}

// seedKeys creates one key per scope list and a revoked and an expired one.
func seedKeys(t *testing.T, s *seedServer, scopes map[string][]apikey.Scope, spec apikey.KeySpec) map[string]string {
	t.Helper()
	keys := map[string]string{}
	for name, sc := range scopes {
		sp := spec
		sp.Name, sp.Scopes = name, sc
		_, keys[name] = s.create(t, sp)
	}
	all := scopes[firstScopeName(scopes)]
	sp := spec
	sp.Name, sp.Scopes = "revoked", all
	k, sec := s.create(t, sp)
	require.NoError(t, s.store.Revoke(context.Background(), k.ID))
	keys["revoked"] = sec
	sp.Name, sp.ExpiresAt = "expired", storetest.Epoch.Add(time.Minute)
	_, keys["expired"] = s.create(t, sp)
	s.clock.Advance(time.Minute)
	return keys
}

func firstScopeName(m map[string][]apikey.Scope) string {
	best := ""
	for k := range m {
		if best == "" || k < best {
			best = k
		}
	}
	return best
}

const (
	challengeMissing = `Bearer realm="api"`
	challengeInvalid = `Bearer realm="api", error="invalid_token"`
)

func challengeScope(s string) string {
	return `Bearer realm="api", error="insufficient_scope", scope="` + s + `"`
}

// Seed 000, Stairoids v1: flat bodies; Read-only is GET only, Read-Write
// every method.
func TestSeed000StairoidsV1(t *testing.T) {
	s := newSeedServer(t, apikey.PresetStairoidsV1)
	keys := seedKeys(t, s, map[string][]apikey.Scope{"read": {"read"}, "read_write": {"read_write"}}, apikey.KeySpec{})
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
	runSeed(t, s.h, keys, "application/json", []seedCase{
		{name: "missing header", status: 401, body: unauthorized, challenge: challengeMissing},
		{name: "malformed", auth: "Bearer sk_live_short", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "wrong scheme", auth: "Basic dXNlcjpwYXNz", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "unknown key", key: "sk_live_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "revoked key", key: "revoked", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "expired key", key: "expired", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "read-only GET", key: "read", status: 200},
		{name: "read-only POST", method: "POST", key: "read", status: 403, body: forbidden("write"), challenge: challengeScope("write")},
		{name: "read-only DELETE", method: "DELETE", key: "read", status: 403, body: forbidden("write"), challenge: challengeScope("write")},
		{name: "read-write GET", key: "read_write", status: 200},
		{name: "read-write POST", method: "POST", key: "read_write", status: 200},
		{name: "read-write PUT", method: "PUT", key: "read_write", status: 200},
		{name: "read-write PATCH", method: "PATCH", key: "read_write", status: 200},
		{name: "read-write DELETE", method: "DELETE", key: "read_write", status: 200},
	})
}

// Seed 001, Stairoids v2: nested bodies with meta.request_id; read is GET,
// write is POST/PATCH/DELETE, read_write everything.
func TestSeed001StairoidsV2(t *testing.T) {
	s := newSeedServer(t, apikey.PresetStairoidsV2)
	keys := seedKeys(t, s, map[string][]apikey.Scope{"read": {"read"}, "write": {"write"}, "read_write": {"read_write"}}, apikey.KeySpec{})
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
	runSeed(t, s.h, keys, "application/json", []seedCase{
		{name: "missing header", status: 401, body: unauthorized, challenge: challengeMissing},
		{name: "extra spaces are fine", auth: "Bearer   " + keys["read"], status: 200},
		{name: "encoding issue", auth: "Bearer%20" + keys["read"], status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "revoked", key: "revoked", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "read GET", key: "read", status: 200},
		{name: "read POST", method: "POST", key: "read", status: 403, body: forbidden("write"), challenge: challengeScope("write")},
		{name: "write POST", method: "POST", key: "write", status: 200},
		{name: "write PATCH", method: "PATCH", key: "write", status: 200},
		{name: "write DELETE", method: "DELETE", key: "write", status: 200},
		{name: "write GET", key: "write", status: 403, body: forbidden("read"), challenge: challengeScope("read")},
		{name: "write PUT needs read_write", method: "PUT", key: "write", status: 403, body: forbidden("read_write"), challenge: challengeScope("read_write")},
		{name: "read_write GET", key: "read_write", status: 200},
		{name: "read_write POST", method: "POST", key: "read_write", status: 200},
		{name: "read_write PUT", method: "PUT", key: "read_write", status: 200},
	})
}

// Seed 002, Stepsies: sk_ + 48 hex, admin implies read and write, nested
// bodies without meta, expiry.
func TestSeed002Stepsies(t *testing.T) {
	s := newSeedServer(t, apikey.PresetStepsies)
	keys := seedKeys(t, s, map[string][]apikey.Scope{
		"read": {"read"}, "write": {"write"}, "admin": {"admin"}, "read+write": {"read", "write"},
	}, apikey.KeySpec{})
	unauthorized := map[string]any{"error": map[string]any{"code": "unauthorized", "message": "Missing or invalid API key"}}
	forbidden := map[string]any{"error": map[string]any{"code": "forbidden", "message": "Insufficient scope for this action"}}
	typo := []byte(keys["read"])
	typo[10] ^= 1 // still hex
	runSeed(t, s.h, keys, "application/json", []seedCase{
		{name: "missing Authorization header", status: 401, body: unauthorized, challenge: challengeMissing},
		{name: "typo in the key", key: string(typo), status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "revoked key", key: "revoked", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "expired key", key: "expired", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "GET /stepsies read", key: "read", status: 200},
		{name: "POST /stepsies read", method: "POST", key: "read", status: 403, body: forbidden, challenge: challengeScope("write")},
		{name: "POST /stepsies write", method: "POST", key: "write", status: 200},
		{name: "PATCH /stepsies/:id write", method: "PATCH", key: "write", status: 200},
		{name: "DELETE /stepsies/:id write", method: "DELETE", key: "write", status: 200},
		{name: "GET /stepsies write", key: "write", status: 403, body: forbidden, challenge: challengeScope("read")},
		{name: "GET admin", key: "admin", status: 200},
		{name: "POST admin", method: "POST", key: "admin", status: 200},
		{name: "DELETE admin", method: "DELETE", key: "admin", status: 200},
		{name: "several scopes", method: "POST", key: "read+write", status: 200},
	})

	// The admin endpoints: Require("admin") on top of the method policy.
	mux := http.NewServeMux()
	mux.Handle("GET /v1/keys", apikey.Require("admin")(okHandler()))
	h := apikey.Middleware(s.store, append(apikey.PresetStepsies.Options(), apikey.WithClock(s.clock))...)(mux)
	rr := call(h, "GET", "/v1/keys", keys["read+write"])
	assert.Equal(t, 403, rr.Code)
	assert.Equal(t, forbidden, decode(t, rr))
	assert.Equal(t, challengeScope("admin"), rr.Header().Get("Www-Authenticate"))
	assert.Equal(t, 200, call(h, "GET", "/v1/keys", keys["admin"]).Code)
}

// Seed 003, Stax.ai: 40 [a-z0-9] characters, an Email header bound to the
// key's owner, failures as HTTP 200 with authError.
func TestSeed003Stax(t *testing.T) {
	s := newSeedServer(t, apikey.PresetStax)
	const owner = "Admin@Example.com"
	keys := seedKeys(t, s, map[string][]apikey.Scope{"admin": {"admin"}, "none": nil}, apikey.KeySpec{Owner: owner})
	authErr := map[string]any{"success": false, "authError": true, "error": "Invalid authorization request"}
	email := func(v string) []string { return []string{"Email", v} }
	runSeed(t, s.h, keys, "application/json", []seedCase{
		{name: "valid", key: "admin", hdr: email(owner), status: 200},
		{name: "email in another case", key: "admin", hdr: email("admin@example.COM"), status: 200},
		{name: "email with surrounding whitespace", key: "admin", hdr: email("  admin@example.com\t"), status: 200},
		{name: "missing key", hdr: email(owner), status: 200, body: authErr},
		{name: "missing Email", key: "admin", status: 200, body: authErr},
		{name: "other Email", key: "admin", hdr: email("eve@example.com"), status: 200, body: authErr},
		{name: "two Email headers", key: "admin", hdr: append(email(owner), email(owner)...), status: 200, body: authErr},
		{name: "not an administrator", key: "none", hdr: email(owner), status: 200, body: authErr},
		{name: "deleted key", key: "revoked", hdr: email(owner), status: 200, body: authErr},
		{name: "seed example key, never issued", key: "w3i21te088qskae7p54nt7gm48ajqb2606f5801s", hdr: email("[email protected]"), status: 200, body: authErr},
	})
}

// Seed 004, Straply: stp_live_/stp_test_, nested bodies with status, the
// environment visible to the handler.
func TestSeed004Straply(t *testing.T) {
	s := newSeedServer(t, apikey.PresetStraply)
	keys := seedKeys(t, s, map[string][]apikey.Scope{"read": {"read"}, "admin": {"admin"}}, apikey.KeySpec{})
	_, keys["sandbox"] = s.create(t, apikey.KeySpec{Name: "ci", Environment: apikey.EnvTest, Scopes: []apikey.Scope{"read"}})
	unauthorized := map[string]any{"error": map[string]any{"code": "unauthorized", "message": "Invalid or missing API key.", "status": float64(401)}}
	forbidden := map[string]any{"error": map[string]any{"code": "forbidden", "message": "The key is valid but does not have permission for this resource.", "status": float64(403)}}
	runSeed(t, s.h, keys, "application/json", []seedCase{
		{name: "no Authorization header", status: 401, body: unauthorized, challenge: challengeMissing},
		{name: "malformed key", key: "stp_live_YOUR_KEY", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "seed example is one character too long", key: "stp_live_a1b2c3d4e5f6g7h8i9j0klmnopqrstuv", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "revoked key", key: "revoked", status: 401, body: unauthorized, challenge: challengeInvalid},
		{name: "live read", key: "read", status: 200},
		{name: "sandbox read", key: "sandbox", status: 200},
		{name: "no permission", method: "POST", key: "read", status: 403, body: forbidden, challenge: challengeScope("write")},
		{name: "admin write", method: "POST", key: "admin", status: 200},
	})
	rr := call(s.h, "GET", "/", keys["sandbox"])
	assert.Equal(t, "test", decode(t, rr)["environment"])
	rr = call(s.h, "GET", "/", keys["read"])
	assert.Equal(t, "live", decode(t, rr)["environment"])
}

// RFC 9457 problem+json, the default style.
func TestProblemStyle(t *testing.T) {
	store := apikey.NewMemoryStore(apikey.StoreConfig{})
	_, sec, err := store.Create(context.Background(), apikey.KeySpec{Name: "r", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	h := apikey.Middleware(store)(okHandler())
	keys := map[string]string{"read": sec.Reveal()}
	runSeed(t, h, keys, "application/problem+json", []seedCase{
		{name: "missing", status: 401, challenge: challengeMissing, body: map[string]any{
			"type": "about:blank", "title": "Unauthorized", "status": float64(401),
			"detail": "A valid API key is required.", "request_id": rid,
		}},
		{name: "scope", method: "DELETE", key: "read", status: 403, challenge: challengeScope("write"), body: map[string]any{
			"type": "about:blank", "title": "Forbidden", "status": float64(403),
			"detail": "The API key does not have the 'write' scope this request needs.", "scope": "write", "request_id": rid,
		}},
		{name: "read", key: "read", status: 200},
	})
}
