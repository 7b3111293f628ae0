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
	"github.com/keygate/apikey/presets"
)

// hostileMaxKeyLength is the longest credential any format accepts.
const hostileMaxKeyLength = 128

// hostileOutcome is everything expected of one response. In body, "<rid>"
// (mwRID) stands for the response's request id.
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
	// The fixture's store and clock, the default style (problem+json) and
	// the REST method policy.
	def, liveOnly, withQuery, trusting                            http.Handler
	revoked, expired, rolledOld, rolledNew, rolledNewID, unissued string
	// The presets of package presets.
	stax, flat, straply, stairoidsV2, stepsies     http.Handler
	staxKey, staxID, straplyKey, v2Write, stepsKey string
}

// newHostileEnv builds the servers. Once the keys are made the shared
// clock moves an hour on, so a key created to expire in a minute is expired
// and a roll with a minute of grace is over, without sleeping.
func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	ctx := context.Background()
	e := &hostileEnv{fixture: newFixture(t)}
	s := e.store

	k, sec, err := s.Create(ctx, apikey.KeySpec{Name: "revoked", Scopes: []apikey.Scope{"read", "write"}})
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, k.ID))
	e.revoked = sec.Reveal()
	_, sec, err = s.Create(ctx, apikey.KeySpec{Name: "expired", Scopes: []apikey.Scope{"read"}, ExpiresAt: e.clock.Now().Add(time.Minute)})
	require.NoError(t, err)
	e.expired = sec.Reveal()
	k, sec, err = s.Create(ctx, apikey.KeySpec{Name: "rolled", Scopes: []apikey.Scope{"read"}})
	require.NoError(t, err)
	e.rolledOld = sec.Reveal()
	nk, nsec, err := s.Roll(ctx, k.ID, time.Minute)
	require.NoError(t, err)
	e.rolledNew, e.rolledNewID = nsec.Reveal(), nk.ID
	e.unissued = newSecret(t)
	e.clock.Advance(time.Hour)

	e.def = e.handler(t, nil)
	e.liveOnly = e.handler(t, func(c *apikey.Config) { c.Environment = apikey.EnvLive })
	e.withQuery = e.handler(t, func(c *apikey.Config) {
		c.Sources = []apikey.Source{apikey.FromBearer(), apikey.FromQuery("api_key")}
	})
	e.trusting = e.handler(t, func(c *apikey.Config) { c.RequestID = mwTrustOneHeader })

	preset := func(p presets.Preset, spec apikey.KeySpec) (http.Handler, *apikey.Key, string) {
		keys := p.Keys()
		store := newMemoryStore(t, keys)
		k, sec, err := store.Create(ctx, spec)
		require.NoError(t, err)
		return newMiddleware(t, p.Config(keys, store)).Handler(okHandler()), k, sec.Reveal()
	}
	var sk *apikey.Key
	e.stax, sk, e.staxKey = preset(presets.Stax, apikey.KeySpec{Name: "admin", Scopes: []apikey.Scope{"admin"}, Owner: "Admin@Example.com"})
	e.staxID = sk.ID
	e.flat, _, _ = preset(presets.StairoidsV1, apikey.KeySpec{Name: "r", Scopes: []apikey.Scope{"read"}})
	e.straply, _, e.straplyKey = preset(presets.Straply, apikey.KeySpec{Name: "r", Scopes: []apikey.Scope{"read"}})
	e.stairoidsV2, _, e.v2Write = preset(presets.StairoidsV2, apikey.KeySpec{Name: "w", Scopes: []apikey.Scope{"write"}})
	e.stepsies, _, e.stepsKey = preset(presets.Stepsies, apikey.KeySpec{Name: "r", Scopes: []apikey.Scope{"read"}})
	return e
}

// Expected outcomes, style by style.
func hostileAccepted(keyID, env string) hostileOutcome {
	return hostileOutcome{status: 200, ctype: "application/json", body: map[string]any{
		"authenticated": true, "key_id": keyID, "environment": env, "request_id": mwRID,
	}}
}

func hostileProblem401(challenge string) hostileOutcome {
	return hostileOutcome{status: 401, challenge: challenge, ctype: "application/problem+json", body: map[string]any{
		"type": "about:blank", "title": "Unauthorized", "status": float64(401),
		"detail": "A valid API key is required.", "request_id": mwRID,
	}}
}

func hostileProblem403(scope apikey.Scope) hostileOutcome {
	return hostileOutcome{status: 403, challenge: mwChallengeScope(scope), ctype: "application/problem+json", body: map[string]any{
		"type": "about:blank", "title": "Forbidden", "status": float64(403),
		"detail": "The API key does not have the '" + string(scope) + "' scope this request needs.",
		"scope":  string(scope), "request_id": mwRID,
	}}
}

var (
	hostileUnauthorized = hostileProblem401(mwChallengeInvalid) // a credential was sent and is no good
	hostileNoCredential = hostileProblem401(mwChallengeMissing) // none was sent
	hostileStaxAuthErr  = hostileOutcome{status: 200, ctype: "application/json", body: map[string]any{
		"success": false, "authError": true, "error": "Invalid authorization request",
	}}
	hostileFlat401 = hostileOutcome{status: 401, challenge: mwChallengeInvalid, ctype: "application/json", body: map[string]any{
		"error":      "unauthorized",
		"message":    "Missing or invalid API key. Provide a valid Bearer token in the Authorization header.",
		"request_id": mwRID,
	}}
	hostileNestedStatus401 = hostileOutcome{status: 401, challenge: mwChallengeInvalid, ctype: "application/json", body: map[string]any{
		"error": map[string]any{"code": "unauthorized", "message": "Invalid or missing API key.", "status": float64(401)},
	}}
	hostileNested401 = hostileOutcome{status: 401, challenge: mwChallengeInvalid, ctype: "application/json", body: map[string]any{
		"error": map[string]any{"code": "unauthorized", "message": "Missing or invalid API key"},
	}}
	hostileNestedMeta403Read = hostileOutcome{status: 403, challenge: mwChallengeScope("read"), ctype: "application/json", body: map[string]any{
		"error": map[string]any{
			"code": "forbidden", "message": "This API key does not have the 'read' scope required for this endpoint.", "param": "scope",
		},
		"meta": map[string]any{"request_id": mwRID},
	}}
)

// hostileReplaceAt returns s with the byte at i replaced by r.
func hostileReplaceAt(s string, i int, r string) string { return s[:i] + r + s[i+1:] }

// hostileUpperFirstLetter upper-cases the first letter of s.
func hostileUpperFirstLetter(s string) string {
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
	okRead := hostileAccepted(e.readID, "live")
	digest := hexDigest(e.keys.Digest(read))
	auth := func(v string) []string { return []string{"Authorization", v} }
	bearerOf := func(k string) []string { return auth("Bearer " + k) }
	email := func(v string) []string { return append(bearerOf(e.staxKey), "Email", v) }
	control := "\x00\x01\x02\x1b[31m\r\n\t\x7f"
	megabyte := strings.Repeat("a", 1<<20)
	staxOK := hostileAccepted(e.staxID, "live")

	cases := []hostileCase{
		// Sanity and the scheme (RFC 9110: case-insensitive, 1*SP).
		{name: "valid key", h: e.def, hdr: bearerOf(read), want: okRead},
		{name: "no credential", h: e.def, want: hostileNoCredential},
		{name: "two Authorization headers", h: e.def, hdr: append(bearerOf(read), bearerOf(read)...), want: hostileUnauthorized},
		{name: "two Authorization headers, one empty", h: e.def, hdr: append(bearerOf(read), auth("")...), want: hostileUnauthorized},
		{name: "scheme bearer", h: e.def, hdr: auth("bearer " + read), want: okRead},
		{name: "scheme BEARER", h: e.def, hdr: auth("BEARER " + read), want: okRead},
		{name: "scheme bEaReR", h: e.def, hdr: auth("bEaReR " + read), want: okRead},
		{name: "Bearer and two spaces, nothing after", h: e.def, hdr: auth("Bearer  "), want: hostileUnauthorized},
		{name: "two spaces before a valid key", h: e.def, hdr: auth("Bearer  " + read), want: okRead},
		{name: "tab between scheme and key", h: e.def, hdr: auth("Bearer\t" + read), want: hostileUnauthorized},
		{name: "tab after the key", h: e.def, hdr: auth("Bearer " + read + "\t"), want: hostileUnauthorized},
		{name: "no space after the scheme", h: e.def, hdr: auth("Bearer" + read), want: hostileUnauthorized},
		{name: "scheme only", h: e.def, hdr: auth("Bearer"), want: hostileUnauthorized},
		{name: "empty Authorization", h: e.def, hdr: auth(""), want: hostileUnauthorized},
		{name: "Basic scheme", h: e.def, hdr: auth("Basic " + base64.StdEncoding.EncodeToString([]byte("user:pass"))), want: hostileUnauthorized},
		{name: "Basic scheme carrying the key", h: e.def, hdr: auth("Basic " + read), want: hostileUnauthorized},
		{name: "Token scheme", h: e.def, hdr: auth("Token " + read), want: hostileUnauthorized},
		{name: "raw key without a scheme", h: e.def, hdr: auth(read), want: hostileUnauthorized},
		{name: "unicode scheme look-alike (Cyrillic е)", h: e.def, hdr: auth("B\u0435arer " + read), want: hostileUnauthorized},

		// Bytes that have no business in a key.
		{name: "NUL inside the key", h: e.def, hdr: bearerOf(hostileReplaceAt(read, 20, "\x00")), want: hostileUnauthorized},
		{name: "NUL after the key", h: e.def, hdr: bearerOf(read + "\x00"), want: hostileUnauthorized},
		{name: "CR LF header injection after the key", h: e.def, hdr: bearerOf(read + "\r\nX-Admin: true"), want: hostileUnauthorized},
		{name: "LF inside the key", h: e.def, hdr: bearerOf(hostileReplaceAt(read, 20, "\n")), want: hostileUnauthorized},
		{name: "non-UTF-8 bytes in the key", h: e.def, hdr: bearerOf(read[:20] + "\xff\xfe\xfd" + read[23:]), want: hostileUnauthorized},
		{name: "1 MB Authorization header", h: e.def, hdr: bearerOf(megabyte), want: hostileUnauthorized},
		{name: "1 MB of spaces before a valid key", h: e.def, hdr: auth("Bearer" + strings.Repeat(" ", 1<<20) + read), want: hostileUnauthorized},
		{name: "key with a trailing newline", h: e.def, hdr: bearerOf(read + "\n"), want: hostileUnauthorized},
		{name: "key with a trailing space", h: e.def, hdr: bearerOf(read + " "), want: hostileUnauthorized},
		{name: "percent-encoded key", h: e.def, hdr: bearerOf(strings.ReplaceAll(read, "_", "%5F")), want: hostileUnauthorized},
		{name: "quoted key", h: e.def, hdr: bearerOf(`"` + read + `"`), want: hostileUnauthorized},
		{name: "two keys in one header", h: e.def, hdr: bearerOf(read + " " + rw), want: hostileUnauthorized},
		{name: "credential one byte over the longest key", h: e.def, hdr: bearerOf(strings.Repeat("k", hostileMaxKeyLength+1)), want: hostileUnauthorized},

		// Keys that look right and are not.
		{name: "bad checksum", h: e.def, hdr: bearerOf(flipChecksum(read)), want: hostileUnauthorized},
		{name: "valid checksum, never issued", h: e.def, hdr: bearerOf(e.unissued), want: hostileUnauthorized},
		{name: "stored digest as a credential", h: e.def, hdr: bearerOf(digest), want: hostileUnauthorized},
		{name: "stored digest in upper case", h: e.def, hdr: bearerOf(strings.ToUpper(digest)), want: hostileUnauthorized},
		{name: "stored digest behind the key prefix", h: e.def, hdr: bearerOf("kg_live_" + digest), want: hostileUnauthorized},
		{name: "Cyrillic к look-alike prefix", h: e.def, hdr: bearerOf("\u043a" + read[1:]), want: hostileUnauthorized},
		{name: "fullwidth underscore in the prefix", h: e.def, hdr: bearerOf("kg\uff3f" + read[3:]), want: hostileUnauthorized},
		{name: "capital I for l in the prefix", h: e.def, hdr: bearerOf("kg_Iive_" + read[8:]), want: hostileUnauthorized},
		{name: "key in lower case", h: e.def, hdr: bearerOf(strings.ToLower(read)), want: hostileUnauthorized},

		// Lifecycle.
		{name: "revoked key", h: e.def, hdr: bearerOf(e.revoked), want: hostileUnauthorized},
		{name: "expired key", h: e.def, hdr: bearerOf(e.expired), want: hostileUnauthorized},
		{name: "old key after its roll grace", h: e.def, hdr: bearerOf(e.rolledOld), want: hostileUnauthorized},
		{name: "successor of a rolled key", h: e.def, hdr: bearerOf(e.rolledNew), want: hostileAccepted(e.rolledNewID, "live")},

		// Scopes.
		{name: "read key POST", h: e.def, method: "POST", hdr: bearerOf(read), want: hostileProblem403("write")},
		{name: "read key DELETE", h: e.def, method: "DELETE", hdr: bearerOf(read), want: hostileProblem403("write")},
		{name: "read key with an unlisted method", h: e.def, method: "PROPFIND", hdr: bearerOf(read), want: hostileProblem403("write")},
		{name: "read-write key POST", h: e.def, method: "POST", hdr: bearerOf(rw), want: hostileAccepted(e.rwKey.ID, "live")},

		// Sources.
		{name: "X-API-Key is not a default source", h: e.def, hdr: []string{"X-API-Key", read}, want: hostileNoCredential},
		{name: "query is not a default source", h: e.def, target: "/?api_key=" + read, want: hostileNoCredential},
		{name: "key in both header and query", h: e.withQuery, target: "/?api_key=" + read, hdr: bearerOf(read), want: hostileUnauthorized},
		{name: "key in query when enabled", h: e.withQuery, target: "/?api_key=" + read, want: okRead},
		{name: "key twice in query", h: e.withQuery, target: "/?api_key=" + read + "&api_key=" + read, want: hostileUnauthorized},
		{name: "query key with a bad escape", h: e.withQuery, target: "/?api_key=%zz" + read, want: hostileUnauthorized},

		// Environments.
		{name: "test key when only live is accepted", h: e.liveOnly, hdr: bearerOf(test), want: hostileUnauthorized},
		{name: "live key when only live is accepted", h: e.liveOnly, hdr: bearerOf(read), want: okRead},

		// Many, huge and hostile headers around the credential.
		{name: "10,000 distinct headers and a valid key", h: e.def, hdr: bearerOf(read), prep: hostileHeaders(10_000), want: okRead},
		{name: "10,000 distinct headers and no key", h: e.def, prep: hostileHeaders(10_000), want: hostileNoCredential},
		{name: "1 MB unrelated header and a valid key", h: e.def, hdr: append(bearerOf(read), "X-Junk", megabyte), want: okRead},
	}

	// Hostile request ids: by default the client's X-Request-Id is never
	// used; a middleware that trusts it (Config.RequestID) echoes only a
	// safe one.
	for _, tc := range []struct {
		name, id string
		keyed    bool
		safe     bool
	}{
		{name: "of control characters, valid key", id: control, keyed: true},
		{name: "of control characters, rejected", id: control},
		{name: "forging a log line", id: "x\nlevel=ERROR msg=forged"},
		{name: "breaking JSON", id: `a","admin":true,"b":"`},
		{name: "oversized (1 MB)", id: megabyte},
		{name: "of 129 characters", id: strings.Repeat("r", 129)},
		{name: "with a backslash", id: `a\b`},
		{name: "with a space", id: "a b"},
		{name: "non-ASCII", id: "trace-é"},
		{name: "safe", id: "trace-1.2_3", safe: true},
		{name: "safe, valid key", id: "trace-1.2_3", keyed: true, safe: true},
		{name: "with a slash", id: "host/AbCdEfGhIj-000001", safe: true},
		{name: "of 128 characters", id: strings.Repeat("r", 128), safe: true},
	} {
		hdr := []string{"X-Request-Id", tc.id}
		want := hostileNoCredential
		if tc.keyed {
			hdr, want = append(bearerOf(read), hdr...), okRead
		}
		cases = append(cases, hostileCase{name: "request id " + tc.name + ", not trusted by default", h: e.def, hdr: hdr, want: want})
		trusted := hostileCase{name: "request id " + tc.name + ", trusting middleware", h: e.trusting, hdr: hdr, want: want}
		if tc.safe {
			trusted.rid = tc.id
		}
		cases = append(cases, trusted)
	}
	cases = append(cases,
		hostileCase{name: "two request ids, trusting middleware", h: e.trusting, hdr: []string{"X-Request-Id", "a", "X-Request-Id", "b"}, want: hostileNoCredential},
	)

	return append(cases, []hostileCase{
		// Stax.ai: 200 with authError; the Email header names the owner.
		{name: "stax: key and Email", h: e.stax, hdr: email("Admin@Example.com"), want: staxOK},
		{name: "stax: Email value in another case", h: e.stax, hdr: email("ADMIN@example.com"), want: staxOK},
		{name: "stax: Email header name in another case", h: e.stax, hdr: append(bearerOf(e.staxKey), "eMAIL", "admin@example.com"), want: staxOK},
		{name: "stax: Email with extra whitespace", h: e.stax, hdr: email(" \tadmin@example.com  "), want: staxOK},
		{name: "stax: Email missing", h: e.stax, hdr: bearerOf(e.staxKey), want: hostileStaxAuthErr},
		{name: "stax: Email of someone else", h: e.stax, hdr: email("eve@example.com"), want: hostileStaxAuthErr},
		{name: "stax: Email with a NUL", h: e.stax, hdr: email("admin@example.com\x00"), want: hostileStaxAuthErr},
		{name: "stax: two Email headers", h: e.stax, hdr: append(email("admin@example.com"), "Email", "admin@example.com"), want: hostileStaxAuthErr},
		{name: "stax: no key", h: e.stax, hdr: []string{"Email", "admin@example.com"}, want: hostileStaxAuthErr},
		{name: "stax: upper-case letter outside the alphabet", h: e.stax, hdr: []string{"Authorization", "Bearer " + hostileUpperFirstLetter(e.staxKey), "Email", "admin@example.com"}, want: hostileStaxAuthErr},

		// Other styles.
		{name: "flat: malformed key", h: e.flat, hdr: bearerOf("sk_live_short"), want: hostileFlat401},
		{name: "nested-status: right prefix, letter outside [a-z0-9]", h: e.straply, hdr: bearerOf(e.straplyKey[:12] + "Z" + e.straplyKey[13:]), want: hostileNestedStatus401},
		{name: "nested-status: base62 outside the alphabet at the end", h: e.straply, hdr: bearerOf(e.straplyKey[:len(e.straplyKey)-1] + "Q"), want: hostileNestedStatus401},
		{name: "nested: upper-case hex", h: e.stepsies, hdr: bearerOf("sk_" + strings.ToUpper(e.stepsKey[3:])), want: hostileNested401},
		{name: "nested-meta: write key GET", h: e.stairoidsV2, hdr: bearerOf(e.v2Write), want: hostileNestedMeta403Read},
	}...)
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
				assert.Regexp(t, mwFreshRID, reqID)
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
