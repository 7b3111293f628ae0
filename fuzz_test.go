package apikey_test

// Fuzz targets. In a plain `go test` run each one only replays its
// corpus (testdata/fuzz/<FuzzName>/); scripts/fuzz.sh fuzzes them for
// real. The corpora use placeholders such as {READ} for the secrets of
// keys created when the target starts (see fuzzWorld.expand), since a
// secret cannot be checked in.
//
// Every expectation is computed from the request itself with the rules
// the package documents, never by calling the library's own extraction,
// parsing or authorization code.

import (
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/presets"
	"github.com/keygate/apikey/storetest"
)

// fuzzMaxHeaderValue is the longest credential header the middleware
// examines; fuzzMaxKeyLength the longest key any format accepts.
const (
	fuzzMaxHeaderValue = 4096
	fuzzMaxKeyLength   = 128
)

// fuzzKey is what the oracle knows about one secret of the fuzz world.
type fuzzKey struct {
	placeholder string
	secret      string
	id          string
	usable      bool     // active: not revoked, not expired, not past its roll grace
	scopes      []string // granted scopes after implication (admin ⇒ read, write)
}

// fuzzWorld is a memory store holding keys in every state, on a manual
// clock, and the secrets behind them.
type fuzzWorld struct {
	cfg     apikey.KeyConfig // testScopes and the manual clock
	store   *apikey.MemoryStore
	clock   *storetest.Clock
	secrets map[string]*fuzzKey // by secret
	subst   *strings.Replacer
}

var (
	fuzzWorldOnce sync.Once
	fuzzWorldVal  *fuzzWorld
	fuzzWorldErr  error
)

// newFuzzWorld builds the world once per process: every fuzz worker is a
// process of its own, and the targets only read the store.
func newFuzzWorld(t testing.TB) *fuzzWorld {
	fuzzWorldOnce.Do(func() { fuzzWorldVal, fuzzWorldErr = buildFuzzWorld() })
	require.NoError(t, fuzzWorldErr)
	return fuzzWorldVal
}

func buildFuzzWorld() (*fuzzWorld, error) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	cfg := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: testScopes, Clock: clock.Now}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: cfg})
	if err != nil {
		return nil, err
	}
	w := &fuzzWorld{cfg: cfg, store: store, clock: clock, secrets: map[string]*fuzzKey{}}
	add := func(ph string, spec apikey.KeySpec) (*apikey.Key, error) {
		spec.Name = strings.Trim(ph, "{}")
		k, s, err := store.Create(ctx, spec)
		if err != nil {
			return nil, err
		}
		w.secrets[s.Reveal()] = &fuzzKey{placeholder: ph, secret: s.Reveal(), id: k.ID, usable: true, scopes: fuzzImplied(spec.Scopes)}
		return k, nil
	}
	sc := func(s ...apikey.Scope) []apikey.Scope { return s }
	for _, c := range []struct {
		ph   string
		spec apikey.KeySpec
	}{
		{"{READ}", apikey.KeySpec{Scopes: sc("read")}},
		{"{WRITE}", apikey.KeySpec{Scopes: sc("write")}},
		{"{RW}", apikey.KeySpec{Scopes: sc("read", "write")}},
		{"{ADMIN}", apikey.KeySpec{Scopes: sc("admin")}},
		{"{NONE}", apikey.KeySpec{}},
		{"{TEST}", apikey.KeySpec{Scopes: sc("read"), Environment: apikey.EnvTest}},
		{"{REVOKED}", apikey.KeySpec{Scopes: sc("admin")}},
		{"{EXPIRED}", apikey.KeySpec{Scopes: sc("admin"), ExpiresAt: storetest.Epoch.Add(time.Minute)}},
		{"{ROLLED}", apikey.KeySpec{Scopes: sc("admin")}},
		{"{GRACE}", apikey.KeySpec{Scopes: sc("read")}},
	} {
		k, err := add(c.ph, c.spec)
		if err != nil {
			return nil, err
		}
		switch c.ph {
		case "{REVOKED}":
			if err := store.Revoke(ctx, k.ID); err != nil {
				return nil, err
			}
		case "{ROLLED}", "{GRACE}":
			grace := time.Minute // over once the clock moves on
			if c.ph == "{GRACE}" {
				grace = 24 * time.Hour
			}
			nk, ns, err := store.Roll(ctx, k.ID, grace)
			if err != nil {
				return nil, err
			}
			ph := "{NEW}"
			if c.ph == "{GRACE}" {
				ph = "{GRACENEW}"
			}
			w.secrets[ns.Reveal()] = &fuzzKey{placeholder: ph, secret: ns.Reveal(), id: nk.ID, usable: true, scopes: fuzzImplied(c.spec.Scopes)}
		}
	}
	clock.Advance(2 * time.Minute) // EXPIRED expires, ROLLED's grace ends
	pairs := []string{}
	for s, k := range w.secrets {
		if k.placeholder == "{REVOKED}" || k.placeholder == "{EXPIRED}" || k.placeholder == "{ROLLED}" {
			k.usable = false
		}
		pairs = append(pairs, k.placeholder, s)
		if k.placeholder == "{READ}" {
			pairs = append(pairs, "{DIGEST}", hexDigest(cfg.Digest(s)))
		}
	}
	unissued, err := cfg.NewKey(apikey.KeySpec{Name: "unissued"})
	if err != nil {
		return nil, err
	}
	pairs = append(pairs, "{UNISSUED}", unissued.Secret.Reveal(), "{1MB}", strings.Repeat("a", 1<<20))
	w.subst = strings.NewReplacer(pairs...)
	return w, nil
}

// fuzzImplied applies admin ⇒ read + write, independently of ScopeSet.
func fuzzImplied(granted []apikey.Scope) []string {
	var out []string
	for _, s := range granted {
		out = append(out, string(s))
		if s == "admin" {
			out = append(out, "read", "write")
		}
	}
	return out
}

// expand replaces the placeholders ({READ}, {DIGEST}, {1MB}…) by their
// values.
func (w *fuzzWorld) expand(s string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	return w.subst.Replace(s)
}

func (w *fuzzWorld) secret(ph string) string {
	for s, k := range w.secrets {
		if k.placeholder == ph {
			return s
		}
	}
	panic("no key " + ph)
}

// middleware is New over the world's store, failing the test on error.
func (w *fuzzWorld) middleware(t testing.TB, edit func(*apikey.Config)) *apikey.Middleware {
	t.Helper()
	cfg := apikey.Config{Keys: w.cfg, Store: w.store}
	if edit != nil {
		edit(&cfg)
	}
	return newMiddleware(t, cfg)
}

// fuzzMarkedHandler marks the response so the caller can tell that the
// protected handler ran.
func fuzzMarkedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := apikey.FromContext(r.Context())
		w.Header().Set("X-Protected", "ran")
		w.Header().Set("Content-Type", "application/json")
		out := map[string]any{"authenticated": ok, "request_id": apikey.RequestID(r.Context())}
		if ok {
			out["key_id"] = k.ID
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

// fuzzASCIIFold reports whether a equals b ignoring ASCII case only.
func fuzzASCIIFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// fuzzOracleBearer is the credential of a request's Authorization headers
// per RFC 6750/9110: exactly one header, at most 4096 bytes, the scheme
// "Bearer" in any ASCII case, one or more spaces, a token.
func fuzzOracleBearer(vals []string) (string, bool) {
	if len(vals) != 1 || len(vals[0]) > fuzzMaxHeaderValue {
		return "", false
	}
	v := vals[0]
	if len(v) < 7 || !fuzzASCIIFold(v[:6], "bearer") || v[6] != ' ' {
		return "", false
	}
	cred := strings.TrimLeft(v[7:], " ")
	return cred, cred != ""
}

// fuzzSafeRequestID is the rule for an id from Config.RequestID: 1 to 128
// visible ASCII characters (0x21 to 0x7E) other than a quote and a
// backslash.
var fuzzSafeRequestID = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]{1,128}$`)

// fuzzCheckRequestID asserts that the response carries one request id:
// echoed, or a fresh one when echoed is "".
func fuzzCheckRequestID(t *testing.T, echoed string, rr *httptest.ResponseRecorder) string {
	t.Helper()
	got := rr.Header()["X-Request-Id"]
	require.Len(t, got, 1)
	if echoed != "" {
		require.Equal(t, echoed, got[0])
	} else {
		require.Regexp(t, mwFreshRID, got[0])
	}
	return got[0]
}

// FuzzExtract fuzzes credential extraction with three sources on: a bearer
// token, an X-API-Key header and an api_key query parameter. The request is
// accepted exactly when one source, and one only, carries the one valid
// key; everything else is a 401 with a JSON body.
func FuzzExtract(f *testing.F) {
	w := newFuzzWorld(f)
	valid := w.secret("{READ}")
	var rejected sync.Map
	h := w.middleware(f, func(c *apikey.Config) {
		c.Sources = []apikey.Source{apikey.FromBearer(), apikey.FromHeader("X-API-Key"), apikey.FromQuery("api_key")}
		c.OnRejected = func(r *http.Request, e apikey.AuthError) { rejected.Store(r, e.Reason) }
	}).Handler(fuzzMarkedHandler())

	f.Fuzz(func(t *testing.T, auth string, nAuth uint8, apiKey string, nKey uint8, rawQuery string) {
		auth, apiKey, rawQuery = w.expand(auth), w.expand(apiKey), w.expand(rawQuery)
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = rawQuery
		for i := 0; i < int(nAuth%3); i++ {
			r.Header["Authorization"] = append(r.Header["Authorization"], auth)
		}
		for i := 0; i < int(nKey%3); i++ {
			r.Header["X-Api-Key"] = append(r.Header["X-Api-Key"], apiKey)
		}

		// The oracle: collect every source that is present, and the
		// credential of each when it is usable.
		present, usable := 0, ""
		if vals := r.Header["Authorization"]; len(vals) > 0 {
			present++
			if c, ok := fuzzOracleBearer(vals); ok {
				usable = c
			}
		}
		if vals := r.Header["X-Api-Key"]; len(vals) > 0 {
			present++
			if len(vals) == 1 && len(vals[0]) <= fuzzMaxHeaderValue {
				usable = vals[0]
			}
		}
		occurrences := 0
		for _, pair := range strings.Split(rawQuery, "&") {
			k, v, _ := strings.Cut(pair, "=")
			if uk, err := url.QueryUnescape(k); err != nil || uk != "api_key" {
				continue
			}
			occurrences++
			if uv, err := url.QueryUnescape(v); err == nil && len(v) <= fuzzMaxHeaderValue {
				usable = uv
			}
		}
		if occurrences > 0 {
			present++
		}
		accept := present == 1 && occurrences <= 1 && usable == valid

		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		ran := rr.Header().Get("X-Protected") == "ran"
		if accept {
			require.Equal(t, http.StatusOK, rr.Code, "body %s", rr.Body)
			require.True(t, ran)
			_, hooked := rejected.Load(r)
			require.False(t, hooked)
			return
		}
		require.False(t, ran, "the protected handler ran for a request the oracle rejects")
		require.Equal(t, http.StatusUnauthorized, rr.Code)
		require.True(t, json.Valid(rr.Body.Bytes()), "body %q", rr.Body)
		require.True(t, strings.HasPrefix(rr.Header().Get("Www-Authenticate"), `Bearer realm="api"`))
		reason, hooked := rejected.LoadAndDelete(r)
		require.True(t, hooked)
		require.Equal(t, 401, reason.(apikey.Reason).Status())
	})
}

// fuzzFormatRules is what the documentation says about each shipped
// format, written out independently of the Format values.
type fuzzFormatRules struct {
	name     string
	f        *apikey.Format
	prefixes map[string]apikey.Environment
	alphabet string
	length   int
	checksum bool
}

const (
	fuzzBase62     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	fuzzLowerAlnum = "0123456789abcdefghijklmnopqrstuvwxyz"
	fuzzLowerHex   = "0123456789abcdef"
)

var fuzzShippedFormats = []fuzzFormatRules{
	{"default", apikey.FormatDefault, map[string]apikey.Environment{"kg_live_": apikey.EnvLive, "kg_test_": apikey.EnvTest}, fuzzBase62, 30, true},
	{"stairoids", presets.FormatStairoids, map[string]apikey.Environment{"sk_live_": apikey.EnvLive, "sk_test_": apikey.EnvTest}, fuzzBase62, 32, false},
	{"stepsies", presets.FormatStepsies, map[string]apikey.Environment{"sk_": apikey.EnvLive}, fuzzLowerHex, 48, false},
	{"stax", presets.FormatStax, map[string]apikey.Environment{"": apikey.EnvLive}, fuzzLowerAlnum, 40, false},
	{"straply", presets.FormatStraply, map[string]apikey.Environment{"stp_live_": apikey.EnvLive, "stp_test_": apikey.EnvTest}, fuzzLowerAlnum, 31, false},
}

// fuzzCastagnoli is the CRC-32C table: the default format's checksum.
var fuzzCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// fuzzChecksum6 is the 6-digit base62 CRC-32C of s, most significant digit
// first.
func fuzzChecksum6(s string) string {
	v := uint64(crc32.Checksum([]byte(s), fuzzCastagnoli))
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = fuzzBase62[v%62]
		v /= 62
	}
	return string(d[:])
}

// valid reports whether key obeys the rules, and its environment.
func (fr fuzzFormatRules) valid(key string) (apikey.Environment, string, bool) {
	for p, env := range fr.prefixes {
		if !strings.HasPrefix(key, p) {
			continue
		}
		body := key[len(p):]
		want := fr.length
		if fr.checksum {
			want += 6
		}
		if len(body) != want {
			return 0, p, false
		}
		for i := 0; i < fr.length; i++ {
			if !strings.ContainsRune(fr.alphabet, rune(body[i])) || body[i] >= 0x80 {
				return 0, p, false
			}
		}
		if fr.checksum {
			n := len(key) - 6
			var v uint64
			for i := n; i < len(key); i++ {
				d := strings.IndexByte(fuzzBase62, key[i])
				if d < 0 {
					return 0, p, false
				}
				v = v*62 + uint64(d)
			}
			if v > math.MaxUint32 || uint32(v) != crc32.Checksum([]byte(key[:n]), fuzzCastagnoli) {
				return 0, p, false
			}
		}
		return env, p, true
	}
	return 0, "", false
}

// fuzzFormatProblems are the Problems Format.Parse reports.
var fuzzFormatProblems = []string{"empty", "too_long", "prefix", "length", "alphabet", "checksum"}

// FuzzParse checks every shipped Format against its rules: Parse never
// panics, is deterministic, accepts exactly the keys that obey the rules
// (prefix → environment, length, alphabet, checksum), and a key built from
// the rules always parses, while a one-character typo in a key with a
// checksum never does. A KeyConfig listing every format takes the first
// that accepts, as Verify shows through Config.Environment.
func FuzzParse(f *testing.F) {
	formats := make([]*apikey.Format, len(fuzzShippedFormats))
	for i, fr := range fuzzShippedFormats {
		formats[i] = fr.f
	}
	notFound := testkit.StoreFunc(func(context.Context, apikey.Digest) (*apikey.Key, error) { return nil, apikey.ErrNotFound })
	all := apikey.KeyConfig{Formats: formats}
	byEnv := map[apikey.Environment]*apikey.Middleware{
		apikey.EnvLive: newMiddleware(f, apikey.Config{Keys: all, Store: notFound, Environment: apikey.EnvLive}),
		apikey.EnvTest: newMiddleware(f, apikey.Config{Keys: all, Store: notFound, Environment: apikey.EnvTest}),
	}

	f.Fuzz(func(t *testing.T, key string) {
		var firstEnv apikey.Environment
		for _, fr := range fuzzShippedFormats {
			env, err := fr.f.Parse(key)
			env2, err2 := fr.f.Parse(key)
			require.Equal(t, env, env2, "deterministic")
			require.Equal(t, err, err2, "deterministic")

			wantEnv, _, ok := fr.valid(key)
			if !ok {
				require.Error(t, err, "%s accepted %q, which breaks its rules", fr.name, key)
				require.ErrorIs(t, err, apikey.ErrMalformedKey)
				var fe *apikey.FormatError
				require.ErrorAs(t, err, &fe)
				require.Contains(t, fuzzFormatProblems, fe.Problem)
				if len(key) > fuzzMaxKeyLength {
					require.Equal(t, "too_long", fe.Problem)
				}
				if len(key) >= 8 {
					require.NotContains(t, err.Error(), key, "the error never contains the key")
				}
			} else {
				require.NoError(t, err, "%s rejected %q, which obeys its rules", fr.name, key)
				require.Equal(t, wantEnv, env)
				if firstEnv == 0 {
					firstEnv = env
				}
			}

			// Build a key from the input by the rules alone: it must parse.
			for p, penv := range fr.prefixes {
				b := []byte(p)
				for i := 0; i < fr.length; i++ {
					c := i
					if len(key) > 0 {
						c += int(key[i%len(key)])
					}
					b = append(b, fr.alphabet[c%len(fr.alphabet)])
				}
				built := string(b)
				if fr.checksum {
					built += fuzzChecksum6(built)
				}
				env, err := fr.f.Parse(built)
				require.NoError(t, err, "%s: %q built by the rules", fr.name, built)
				require.Equal(t, penv, env)
				if !fr.checksum {
					continue
				}
				// Any one-character substitution is caught by CRC-32C.
				pos := len(p) + len(key)%(len(built)-len(p))
				typo := []byte(built)
				typo[pos] = fuzzBase62[(strings.IndexByte(fuzzBase62, typo[pos])+1+len(key)%61)%62]
				_, err = fr.f.Parse(string(typo))
				require.Error(t, err, "typo at %d of %q accepted", pos, built)
			}
		}

		// Several formats: the first that accepts decides the environment.
		for env, mw := range byEnv {
			_, err := mw.Verify(context.Background(), key)
			var ae apikey.AuthError
			require.ErrorAs(t, err, &ae)
			switch {
			case firstEnv == 0:
				require.Equal(t, apikey.ReasonMalformed, ae.Reason)
				require.ErrorIs(t, err, apikey.ErrMalformedKey)
			case firstEnv == env:
				require.Equal(t, apikey.ReasonUnknown, ae.Reason, "accepted, then not found")
			default:
				require.Equal(t, apikey.ReasonEnvironment, ae.Reason)
			}
		}
	})
}

// FuzzRequestID sends arbitrary incoming X-Request-Id headers, with and
// without a valid key, through the middleware and through Require without
// any middleware. By default the incoming id is never used: every response
// carries a fresh "req_" + 26 Crockford characters. With a Config.RequestID
// that returns the incoming header, the id is echoed when it is 1 to 128
// visible ASCII characters other than a quote and a backslash, and replaced
// by a fresh one otherwise. The
// body and the handler see the same id as the header.
func FuzzRequestID(f *testing.F) {
	w := newFuzzWorld(f)
	valid := w.secret("{READ}")
	def := w.middleware(f, nil)
	trusting := w.middleware(f, func(c *apikey.Config) {
		c.RequestID = func(_ http.ResponseWriter, r *http.Request) string { return r.Header.Get("X-Request-Id") }
	})
	targets := []struct {
		h        http.Handler
		trusting bool
		bare     bool // Require without a middleware upstream
	}{
		{def.Handler(fuzzMarkedHandler()), false, false},
		{trusting.Handler(fuzzMarkedHandler()), true, false},
		{def.Require("read")(fuzzMarkedHandler()), false, true},
		{trusting.Require("read")(fuzzMarkedHandler()), true, true},
	}
	f.Fuzz(func(t *testing.T, id string, copies uint8, withKey bool) {
		id = w.expand(id)
		n := int(copies % 3)
		for _, target := range targets {
			r := httptest.NewRequest("GET", "/", nil)
			for i := 0; i < n; i++ {
				r.Header["X-Request-Id"] = append(r.Header["X-Request-Id"], id)
			}
			if withKey {
				bearer(r, valid)
			}
			rr := httptest.NewRecorder()
			target.h.ServeHTTP(rr, r)
			echoed := ""
			if target.trusting && n > 0 && fuzzSafeRequestID.MatchString(id) {
				echoed = id
			}
			got := fuzzCheckRequestID(t, echoed, rr)
			var body map[string]any
			require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &body), "body %q", rr.Body)
			require.Equal(t, got, body["request_id"])
			if withKey && !target.bare {
				require.Equal(t, http.StatusOK, rr.Code)
			} else {
				require.Equal(t, http.StatusUnauthorized, rr.Code)
			}
		}
	})
}

// fuzzStyles are the error shapes FuzzMiddleware's style byte picks from,
// in the order the checked-in corpus expects.
var fuzzStyles = []apikey.Shape{
	apikey.ShapeFlat, apikey.ShapeNested, apikey.ShapeNestedMeta,
	apikey.ShapeNestedStatus, apikey.ShapeProblem, apikey.ShapeAuthError,
}

// FuzzMiddleware drives the whole middleware with arbitrary methods,
// targets and headers, the secrets of keys in every state spliced in
// through placeholders, in every error shape, under ReadWritePolicy. The
// status is always 200, 401, 403 or 503; the protected handler runs
// exactly when the oracle says so: one Bearer credential that is a usable
// key holding the scope the method needs (GET, HEAD, OPTIONS → read; any
// other → write). Every rejection has a JSON body; ShapeAuthError turns 401
// and 403 into 200 with "authError": true. The client's X-Request-Id is
// never echoed.
func FuzzMiddleware(f *testing.F) {
	w := newFuzzWorld(f)
	handlers := make([]http.Handler, len(fuzzStyles))
	for i, shape := range fuzzStyles {
		st, err := apikey.NewErrorStyle(shape, apikey.Messages{})
		require.NoError(f, err)
		handlers[i] = w.middleware(f, func(c *apikey.Config) {
			c.Style, c.MethodPolicy = st, apikey.ReadWritePolicy()
		}).Handler(fuzzMarkedHandler())
	}
	f.Fuzz(func(t *testing.T, method, target, n1, v1, n2, v2, n3, v3 string, style uint8) {
		si := int(style) % len(fuzzStyles)
		r := httptest.NewRequest("GET", "/", nil)
		r.Method = method
		target = w.expand(target)
		r.RequestURI = target
		path, query, _ := strings.Cut(target, "?")
		r.URL = &url.URL{Path: path, RawQuery: query}
		for _, hv := range [][2]string{{n1, v1}, {n2, v2}, {n3, v3}} {
			if hv[0] == "" && hv[1] == "" {
				continue
			}
			r.Header.Add(hv[0], w.expand(hv[1]))
		}

		want := http.StatusUnauthorized
		if cred, ok := fuzzOracleBearer(r.Header["Authorization"]); ok {
			if k := w.secrets[cred]; k != nil && k.usable {
				need := "write"
				switch method {
				case "GET", "HEAD", "OPTIONS":
					need = "read"
				}
				want = http.StatusForbidden
				for _, s := range k.scopes {
					if s == need {
						want = http.StatusOK
					}
				}
			}
		}

		rr := httptest.NewRecorder()
		handlers[si].ServeHTTP(rr, r)
		require.Contains(t, []int{200, 401, 403, 503}, rr.Code)
		fuzzCheckRequestID(t, "", rr)
		ran := rr.Header().Get("X-Protected") == "ran"
		if want == http.StatusOK {
			require.True(t, ran, "the oracle accepts; got %d %s", rr.Code, rr.Body)
			require.Equal(t, http.StatusOK, rr.Code)
			return
		}
		require.False(t, ran, "the protected handler ran; the oracle says %d", want)
		var body map[string]any
		require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &body), "error body %q", rr.Body)
		require.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
		if fuzzStyles[si] == apikey.ShapeAuthError {
			require.Equal(t, http.StatusOK, rr.Code)
			require.Equal(t, true, body["authError"])
			require.Equal(t, false, body["success"])
			require.Empty(t, rr.Header().Get("Www-Authenticate"))
			return
		}
		require.Equal(t, want, rr.Code)
		challenge := rr.Header().Get("Www-Authenticate")
		require.True(t, strings.HasPrefix(challenge, `Bearer realm="api"`), challenge)
		if want == http.StatusForbidden {
			require.Contains(t, challenge, `error="insufficient_scope"`)
		}
	})
}

// The fuzz oracles are only worth something if they agree with the
// documented behaviour on the obvious cases.
func TestFuzzOracles(t *testing.T) {
	w := newFuzzWorld(t)
	read := w.secret("{READ}")
	for _, tt := range []struct {
		vals []string
		want string
		ok   bool
	}{
		{[]string{"Bearer " + read}, read, true},
		{[]string{"bEaReR   " + read}, read, true},
		{[]string{"Bearer\t" + read}, "", false},
		{[]string{"Bearer  "}, "", false},
		{[]string{"Bearer " + read, "Bearer " + read}, "", false},
		{[]string{"Basic " + read}, "", false},
		{[]string{"Bearer " + strings.Repeat(" ", fuzzMaxHeaderValue) + read}, "", false},
	} {
		got, ok := fuzzOracleBearer(tt.vals)
		assert.Equal(t, tt.ok, ok, "%q", tt.vals)
		assert.Equal(t, tt.want, got)
	}
	for _, fr := range fuzzShippedFormats {
		for p, env := range fr.prefixes {
			is, err := apikey.KeyConfig{Formats: []*apikey.Format{fr.f}}.NewKey(apikey.KeySpec{Name: "oracle", Environment: env})
			require.NoError(t, err)
			got, prefix, ok := fr.valid(is.Secret.Reveal())
			assert.True(t, ok, "%s: a new key obeys the written-out rules", fr.name)
			assert.Equal(t, env, got)
			assert.Equal(t, p, prefix)
		}
	}
	states := map[string]bool{}
	for _, k := range w.secrets {
		states[k.placeholder] = k.usable
		_, err := w.store.Get(context.Background(), k.id)
		require.NoError(t, err)
	}
	assert.Equal(t, map[string]bool{
		"{READ}": true, "{WRITE}": true, "{RW}": true, "{ADMIN}": true, "{NONE}": true, "{TEST}": true,
		"{REVOKED}": false, "{EXPIRED}": false, "{ROLLED}": false, "{NEW}": true, "{GRACE}": true, "{GRACENEW}": true,
	}, states)
	assert.True(t, errors.Is(&apikey.FormatError{Problem: "checksum"}, apikey.ErrMalformedKey))
	for _, id := range []string{"a", "trace-1.2_3", "host/AbCdEfGhIj-000001", "!~#[]'", strings.Repeat("r", 128)} {
		assert.Regexp(t, fuzzSafeRequestID, id)
	}
	for _, id := range []string{"", "a b", `a"b`, `a\b`, "a\n", "a\x7f", strings.Repeat("r", 129), "é"} {
		assert.NotRegexp(t, fuzzSafeRequestID, id)
	}
}
