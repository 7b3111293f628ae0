package apikey_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

// hostileOutcome is everything expected of one response. In body, "<rid>" stands
// for the response's X-Request-Id.
type hostileOutcome struct {
	status    int
	body      map[string]any
	challenge string // WWW-Authenticate, "" for none
	ctype     string // Content-Type
}

// hostileCase is one hostile request. The request gets hdr (name, value
// pairs, added in order), then prep.
type hostileCase struct {
	name   string
	h      http.Handler
	method string
	target string
	hdr    []string
	prep   func(*http.Request)
	want   hostileOutcome
	rid    string // the X-Request-Id expected back; "" for a fresh "req_…"
}

// hostileEnv holds the servers and secrets of the hostile table.
type hostileEnv struct {
	*fixture
	// Default store, default style (problem+json).
	def, liveOnly, withQuery                                      http.Handler
	revoked, expired, rolledOld, rolledNew, rolledNewID, unissued string
	// Seed presets.
	stax, flat, straply, stairoidsV2, stepsies     http.Handler
	staxKey, staxID, straplyKey, v2Write, stepsKey string
}

// newHostileEnv builds the servers. The middleware's clock runs an hour
// ahead of the store's, so a key created to expire in a minute is expired
// and a roll with a minute of grace is over, without sleeping.
func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	ctx := context.Background()
	e := &hostileEnv{fixture: newFixture(t)}
	later := apikey.WithClock(apikey.ClockFunc(func() time.Time { return time.Now().Add(time.Hour) }))
	s := e.store

	k, sec, err := s.Create(ctx, apikey.KeySpec{Name: "revoked", Scopes: []apikey.Scope{"read", "write"}})
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, k.ID))
	e.revoked = sec.Reveal()
	_, sec, err = s.Create(ctx, apikey.KeySpec{Name: "expired", Scopes: []apikey.Scope{"read"}, ExpiresAt: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	e.expired = sec.Reveal()
	k, sec, err = s.Create(ctx, apikey.KeySpec{Name: "rolled", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	e.rolledOld = sec.Reveal()
	nk, nsec, err := s.Roll(ctx, k.ID, apikey.WithGrace(time.Minute))
	require.NoError(t, err)
	e.rolledNew, e.rolledNewID = nsec.Reveal(), nk.ID
	e.unissued = mustGenerate(t)

	e.def = apikey.Middleware(s, later)(okHandler())
	e.liveOnly = apikey.Middleware(s, later, apikey.WithEnvironments(apikey.EnvLive))(okHandler())
	e.withQuery = apikey.Middleware(s, later, apikey.WithSources(apikey.FromBearer(), apikey.FromQuery("api_key")))(okHandler())

	preset := func(p apikey.Preset, spec apikey.KeySpec) (http.Handler, *apikey.Key, string) {
		store := apikey.NewMemoryStore(p.StoreConfig())
		k, sec, err := store.Create(ctx, spec)
		require.NoError(t, err)
		return apikey.Middleware(store, p.Options()...)(okHandler()), k, sec.Reveal()
	}
	var sk *apikey.Key
	e.stax, sk, e.staxKey = preset(apikey.PresetStax, apikey.KeySpec{Name: "admin", Scopes: []apikey.Scope{"admin"}, Owner: "Admin@Example.com"})
	e.staxID = sk.ID
	e.flat, _, _ = preset(apikey.PresetStairoidsV1, apikey.KeySpec{Name: "r", Scopes: []apikey.Scope{"read"}})
	e.straply, _, e.straplyKey = preset(apikey.PresetStraply, apikey.KeySpec{Name: "r", Scopes: []apikey.Scope{"read"}})
	e.stairoidsV2, _, e.v2Write = preset(apikey.PresetStairoidsV2, apikey.KeySpec{Name: "w", Scopes: []apikey.Scope{"write"}})
	e.stepsies, _, e.stepsKey = preset(apikey.PresetStepsies, apikey.KeySpec{Name: "r", Scopes: []apikey.Scope{"read"}})
	return e
}

// Expected outcomes, style by style.
func wantAccepted(keyID, env string) hostileOutcome {
	return hostileOutcome{status: 200, ctype: "application/json", body: map[string]any{
		"authenticated": true, "key_id": keyID, "environment": env, "request_id": rid,
	}}
}

func wantProblem401(challenge string) hostileOutcome {
	return hostileOutcome{status: 401, challenge: challenge, ctype: "application/problem+json", body: map[string]any{
		"type": "about:blank", "title": "Unauthorized", "status": float64(401),
		"detail": "A valid API key is required.", "request_id": rid,
	}}
}

func wantProblem403(scope string) hostileOutcome {
	return hostileOutcome{status: 403, challenge: challengeScope(scope), ctype: "application/problem+json", body: map[string]any{
		"type": "about:blank", "title": "Forbidden", "status": float64(403),
		"detail": "The API key does not have the '" + scope + "' scope this request needs.",
		"scope":  scope, "request_id": rid,
	}}
}

var (
	wantUnauthorized = wantProblem401(challengeInvalid) // a credential was sent and is no good
	wantNoCredential = wantProblem401(challengeMissing) // none was sent
	wantStaxAuthErr  = hostileOutcome{status: 200, ctype: "application/json", body: map[string]any{
		"success": false, "authError": true, "error": "Invalid authorization request",
	}}
	wantFlat401 = hostileOutcome{status: 401, challenge: challengeInvalid, ctype: "application/json", body: map[string]any{
		"error":      "unauthorized",
		"message":    "Missing or invalid API key. Provide a valid Bearer token in the Authorization header.",
		"request_id": rid,
	}}
	wantNestedStatus401 = hostileOutcome{status: 401, challenge: challengeInvalid, ctype: "application/json", body: map[string]any{
		"error": map[string]any{"code": "unauthorized", "message": "Invalid or missing API key.", "status": float64(401)},
	}}
	wantNested401 = hostileOutcome{status: 401, challenge: challengeInvalid, ctype: "application/json", body: map[string]any{
		"error": map[string]any{"code": "unauthorized", "message": "Missing or invalid API key"},
	}}
	wantNestedMeta403Read = hostileOutcome{status: 403, challenge: challengeScope("read"), ctype: "application/json", body: map[string]any{
		"error": map[string]any{
			"code": "forbidden", "message": "This API key does not have the 'read' scope required for this endpoint.", "param": "scope",
		},
		"meta": map[string]any{"request_id": rid},
	}}
)

// hostileReplaceAt returns s with the byte at i replaced by r.
func hostileReplaceAt(s string, i int, r string) string { return s[:i] + r + s[i+1:] }

// upperFirstLetter upper-cases the first letter of s.
func upperFirstLetter(s string) string {
	i := strings.IndexAny(s, "abcdefghijklmnopqrstuvwxyz")
	if i < 0 {
		panic("no letter in " + s)
	}
	return s[:i] + strings.ToUpper(s[i:i+1]) + s[i+1:]
}

func hostileHeaders(n int) func(*http.Request) {
	return func(r *http.Request) {
		for i := 0; i < n; i++ {
			r.Header[fmt.Sprintf("X-Hostile-%05d", i)] = []string{"v"}
		}
	}
}

func (e *hostileEnv) cases() []hostileCase {
	read, rw, test := e.read, e.rw, e.test
	okRead := wantAccepted(e.readID, "live")
	var plain apikey.Hasher
	digest := plain.Digest(read).String()
	auth := func(v string) []string { return []string{"Authorization", v} }
	bearerOf := func(k string) []string { return auth("Bearer " + k) }
	email := func(v string) []string { return append(bearerOf(e.staxKey), "Email", v) }
	control := "\x00\x01\x02\x1b[31m\r\n\t\x7f"
	megabyte := strings.Repeat("a", 1<<20)
	staxOK := wantAccepted(e.staxID, "live")

	return []hostileCase{
		// Sanity and the scheme (RFC 9110: case-insensitive, 1*SP).
		{name: "valid key", h: e.def, hdr: bearerOf(read), want: okRead},
		{name: "no credential", h: e.def, want: wantNoCredential},
		{name: "two Authorization headers", h: e.def, hdr: append(bearerOf(read), bearerOf(read)...), want: wantUnauthorized},
		{name: "two Authorization headers, one empty", h: e.def, hdr: append(bearerOf(read), auth("")...), want: wantUnauthorized},
		{name: "scheme bearer", h: e.def, hdr: auth("bearer " + read), want: okRead},
		{name: "scheme BEARER", h: e.def, hdr: auth("BEARER " + read), want: okRead},
		{name: "scheme bEaReR", h: e.def, hdr: auth("bEaReR " + read), want: okRead},
		{name: "Bearer and two spaces, nothing after", h: e.def, hdr: auth("Bearer  "), want: wantUnauthorized},
		{name: "two spaces before a valid key", h: e.def, hdr: auth("Bearer  " + read), want: okRead},
		{name: "tab between scheme and key", h: e.def, hdr: auth("Bearer\t" + read), want: wantUnauthorized},
		{name: "tab after the key", h: e.def, hdr: auth("Bearer " + read + "\t"), want: wantUnauthorized},
		{name: "no space after the scheme", h: e.def, hdr: auth("Bearer" + read), want: wantUnauthorized},
		{name: "scheme only", h: e.def, hdr: auth("Bearer"), want: wantUnauthorized},
		{name: "empty Authorization", h: e.def, hdr: auth(""), want: wantUnauthorized},
		{name: "Basic scheme", h: e.def, hdr: auth("Basic " + base64.StdEncoding.EncodeToString([]byte("user:pass"))), want: wantUnauthorized},
		{name: "Basic scheme carrying the key", h: e.def, hdr: auth("Basic " + read), want: wantUnauthorized},
		{name: "Token scheme", h: e.def, hdr: auth("Token " + read), want: wantUnauthorized},
		{name: "raw key without a scheme", h: e.def, hdr: auth(read), want: wantUnauthorized},
		{name: "unicode scheme look-alike (Cyrillic е)", h: e.def, hdr: auth("B\u0435arer " + read), want: wantUnauthorized},

		// Bytes that have no business in a key.
		{name: "NUL inside the key", h: e.def, hdr: bearerOf(hostileReplaceAt(read, 20, "\x00")), want: wantUnauthorized},
		{name: "NUL after the key", h: e.def, hdr: bearerOf(read + "\x00"), want: wantUnauthorized},
		{name: "CR LF header injection after the key", h: e.def, hdr: bearerOf(read + "\r\nX-Admin: true"), want: wantUnauthorized},
		{name: "LF inside the key", h: e.def, hdr: bearerOf(hostileReplaceAt(read, 20, "\n")), want: wantUnauthorized},
		{name: "non-UTF-8 bytes in the key", h: e.def, hdr: bearerOf(read[:20] + "\xff\xfe\xfd" + read[23:]), want: wantUnauthorized},
		{name: "1 MB Authorization header", h: e.def, hdr: bearerOf(megabyte), want: wantUnauthorized},
		{name: "1 MB of spaces before a valid key", h: e.def, hdr: auth("Bearer" + strings.Repeat(" ", 1<<20) + read), want: wantUnauthorized},
		{name: "key with a trailing newline", h: e.def, hdr: bearerOf(read + "\n"), want: wantUnauthorized},
		{name: "key with a trailing space", h: e.def, hdr: bearerOf(read + " "), want: wantUnauthorized},
		{name: "percent-encoded key", h: e.def, hdr: bearerOf(strings.ReplaceAll(read, "_", "%5F")), want: wantUnauthorized},
		{name: "quoted key", h: e.def, hdr: bearerOf(`"` + read + `"`), want: wantUnauthorized},
		{name: "two keys in one header", h: e.def, hdr: bearerOf(read + " " + rw), want: wantUnauthorized},
		{name: "credential one byte over MaxKeyLength", h: e.def, hdr: bearerOf(strings.Repeat("k", apikey.MaxKeyLength+1)), want: wantUnauthorized},

		// Keys that look right and are not.
		{name: "bad checksum", h: e.def, hdr: bearerOf(flipChecksum(read)), want: wantUnauthorized},
		{name: "valid checksum, never issued", h: e.def, hdr: bearerOf(e.unissued), want: wantUnauthorized},
		{name: "stored digest as a credential", h: e.def, hdr: bearerOf(digest), want: wantUnauthorized},
		{name: "stored digest in upper case", h: e.def, hdr: bearerOf(strings.ToUpper(digest)), want: wantUnauthorized},
		{name: "stored digest behind the key prefix", h: e.def, hdr: bearerOf("kg_live_" + digest), want: wantUnauthorized},
		{name: "Cyrillic к look-alike prefix", h: e.def, hdr: bearerOf("\u043a" + read[1:]), want: wantUnauthorized},
		{name: "fullwidth underscore in the prefix", h: e.def, hdr: bearerOf("kg\uff3f" + read[3:]), want: wantUnauthorized},
		{name: "capital I for l in the prefix", h: e.def, hdr: bearerOf("kg_Iive_" + read[8:]), want: wantUnauthorized},
		{name: "key in lower case", h: e.def, hdr: bearerOf(strings.ToLower(read)), want: wantUnauthorized},

		// Lifecycle.
		{name: "revoked key", h: e.def, hdr: bearerOf(e.revoked), want: wantUnauthorized},
		{name: "expired key", h: e.def, hdr: bearerOf(e.expired), want: wantUnauthorized},
		{name: "old key after its roll grace", h: e.def, hdr: bearerOf(e.rolledOld), want: wantUnauthorized},
		{name: "successor of a rolled key", h: e.def, hdr: bearerOf(e.rolledNew), want: wantAccepted(e.rolledNewID, "live")},

		// Scopes.
		{name: "read key POST", h: e.def, method: "POST", hdr: bearerOf(read), want: wantProblem403("write")},
		{name: "read key DELETE", h: e.def, method: "DELETE", hdr: bearerOf(read), want: wantProblem403("write")},
		{name: "read key with an unlisted method", h: e.def, method: "PROPFIND", hdr: bearerOf(read), want: wantProblem403("write")},
		{name: "read-write key POST", h: e.def, method: "POST", hdr: bearerOf(rw), want: wantAccepted(e.rwKeyK.ID, "live")},

		// Sources.
		{name: "X-API-Key is not a default source", h: e.def, hdr: []string{"X-API-Key", read}, want: wantNoCredential},
		{name: "query is not a default source", h: e.def, target: "/?api_key=" + read, want: wantNoCredential},
		{name: "key in both header and query", h: e.withQuery, target: "/?api_key=" + read, hdr: bearerOf(read), want: wantUnauthorized},
		{name: "key in query when enabled", h: e.withQuery, target: "/?api_key=" + read, want: okRead},
		{name: "key twice in query", h: e.withQuery, target: "/?api_key=" + read + "&api_key=" + read, want: wantUnauthorized},
		{name: "query key with a bad escape", h: e.withQuery, target: "/?api_key=%zz" + read, want: wantUnauthorized},

		// Environments.
		{name: "test key when only live is accepted", h: e.liveOnly, hdr: bearerOf(test), want: wantUnauthorized},
		{name: "live key when only live is accepted", h: e.liveOnly, hdr: bearerOf(read), want: okRead},

		// Many, huge and hostile headers around the credential.
		{name: "10,000 distinct headers and a valid key", h: e.def, hdr: bearerOf(read), prep: hostileHeaders(10_000), want: okRead},
		{name: "10,000 distinct headers and no key", h: e.def, prep: hostileHeaders(10_000), want: wantNoCredential},
		{name: "1 MB unrelated header and a valid key", h: e.def, hdr: append(bearerOf(read), "X-Junk", megabyte), want: okRead},
		{name: "request id of control characters, valid key", h: e.def, hdr: append(bearerOf(read), "X-Request-Id", control), want: okRead},
		{name: "request id of control characters, rejected", h: e.def, hdr: []string{"X-Request-Id", control}, want: wantNoCredential},
		{name: "request id forging a log line", h: e.def, hdr: []string{"X-Request-Id", "x\nlevel=ERROR msg=forged"}, want: wantNoCredential},
		{name: "request id breaking JSON", h: e.def, hdr: []string{"X-Request-Id", `a","admin":true,"b":"`}, want: wantNoCredential},
		{name: "oversized request id (1 MB)", h: e.def, hdr: []string{"X-Request-Id", megabyte}, want: wantNoCredential},
		{name: "request id of 65 characters", h: e.def, hdr: []string{"X-Request-Id", strings.Repeat("r", 65)}, want: wantNoCredential},
		{name: "two request ids", h: e.def, hdr: []string{"X-Request-Id", "a", "X-Request-Id", "b"}, want: wantNoCredential},
		{name: "safe request id is echoed", h: e.def, hdr: []string{"X-Request-Id", "trace-1.2_3"}, want: wantNoCredential, rid: "trace-1.2_3"},

		// Stax (seed 003): 200 with authError; the Email header names the owner.
		{name: "stax: key and Email", h: e.stax, hdr: email("Admin@Example.com"), want: staxOK},
		{name: "stax: Email value in another case", h: e.stax, hdr: email("ADMIN@example.com"), want: staxOK},
		{name: "stax: Email header name in another case", h: e.stax, hdr: append(bearerOf(e.staxKey), "eMAIL", "admin@example.com"), want: staxOK},
		{name: "stax: Email with extra whitespace", h: e.stax, hdr: email(" \tadmin@example.com  "), want: staxOK},
		{name: "stax: Email missing", h: e.stax, hdr: bearerOf(e.staxKey), want: wantStaxAuthErr},
		{name: "stax: Email of someone else", h: e.stax, hdr: email("eve@example.com"), want: wantStaxAuthErr},
		{name: "stax: Email with a NUL", h: e.stax, hdr: email("admin@example.com\x00"), want: wantStaxAuthErr},
		{name: "stax: two Email headers", h: e.stax, hdr: append(email("admin@example.com"), "Email", "admin@example.com"), want: wantStaxAuthErr},
		{name: "stax: no key", h: e.stax, hdr: []string{"Email", "admin@example.com"}, want: wantStaxAuthErr},
		{name: "stax: upper-case letter outside the alphabet", h: e.stax, hdr: []string{"Authorization", "Bearer " + upperFirstLetter(e.staxKey), "Email", "admin@example.com"}, want: wantStaxAuthErr},

		// Other styles.
		{name: "flat: malformed key", h: e.flat, hdr: bearerOf("sk_live_short"), want: wantFlat401},
		{name: "nested-status: right prefix, letter outside [a-z0-9]", h: e.straply, hdr: bearerOf(e.straplyKey[:12] + "Z" + e.straplyKey[13:]), want: wantNestedStatus401},
		{name: "nested-status: base62 outside the alphabet at the end", h: e.straply, hdr: bearerOf(e.straplyKey[:len(e.straplyKey)-1] + "Q"), want: wantNestedStatus401},
		{name: "nested: upper-case hex", h: e.stepsies, hdr: bearerOf("sk_" + strings.ToUpper(e.stepsKey[3:])), want: wantNested401},
		{name: "nested-meta: write key GET", h: e.stairoidsV2, hdr: bearerOf(e.v2Write), want: wantNestedMeta403Read},
	}
}

// TestHostileInput sends each hostile request and checks the status, the
// whole decoded body against the style's shape, and the headers every
// response carries. Nothing hostile may reach the protected handler, and
// every error body is generic.
func TestHostileInput(t *testing.T) {
	e := newHostileEnv(t)
	cases := e.cases()
	require.GreaterOrEqual(t, len(cases), 40)
	t.Logf("%d hostile cases", len(cases))
	secrets := []string{e.read, e.rw, e.test, e.revoked, e.expired, e.rolledOld, e.rolledNew, e.unissued, e.staxKey, e.straplyKey, e.v2Write, e.stepsKey}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			target := tc.target
			if target == "" {
				target = "/v1/resource"
			}
			r := httptest.NewRequest(method, target, nil)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				r.Header.Add(tc.hdr[i], tc.hdr[i+1])
			}
			if tc.prep != nil {
				tc.prep(r)
			}
			rr := httptest.NewRecorder()
			tc.h.ServeHTTP(rr, r)

			require.Equal(t, tc.want.status, rr.Code, "body: %.300s", rr.Body.String())
			reqID := rr.Header().Get("X-Request-Id")
			if tc.rid != "" {
				assert.Equal(t, tc.rid, reqID)
			} else {
				assert.Regexp(t, freshRequestID, reqID)
			}
			assert.Len(t, rr.Header()["X-Request-Id"], 1)
			assert.Equal(t, tc.want.ctype, rr.Header().Get("Content-Type"))
			assert.Equal(t, tc.want.challenge, rr.Header().Get("Www-Authenticate"))
			if tc.want.body["authenticated"] == nil {
				assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"), "rejections are never cached")
			}
			assert.Equal(t, replaceRID(tc.want.body, reqID), decode(t, rr))
			for _, s := range secrets {
				assert.NotContains(t, rr.Body.String(), s, "a response never echoes a credential")
			}
		})
	}
}
