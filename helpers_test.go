package apikey_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/storetest"
)

// Helpers shared by the root package's tests.

// testScopes: admin implies read and write.
var testScopes, _ = apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{
	"read": nil, "write": nil, "admin": {"read", "write"}, "billing": nil,
})

// testKeys is the default format with testScopes and a manual clock at
// storetest.Epoch.
func testKeys() (apikey.KeyConfig, *storetest.Clock) {
	clock := storetest.NewClock(storetest.Epoch)
	return apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: testScopes, Clock: clock.Now}, clock
}

// newMemoryStore is NewMemoryStore that fails the test on error.
func newMemoryStore(t testing.TB, keys apikey.KeyConfig) *apikey.MemoryStore {
	t.Helper()
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(t, err)
	return s
}

// newMiddleware is New that fails the test on error.
func newMiddleware(t testing.TB, cfg apikey.Config) *apikey.Middleware {
	t.Helper()
	m, err := apikey.New(cfg)
	require.NoError(t, err)
	return m
}

// fixture is a memory store with a read key, a read+write key and a test
// key in the default format, and the KeyConfig and clock it was made with.
type fixture struct {
	keys           apikey.KeyConfig
	clock          *storetest.Clock
	store          *apikey.MemoryStore
	read, rw, test string
	readID         string
	readKey, rwKey *apikey.Key
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{}
	f.keys, f.clock = testKeys()
	f.store = newMemoryStore(t, f.keys)
	k, s, err := f.store.Create(ctx, apikey.KeySpec{Name: "reader", Scopes: []apikey.Scope{"read"}, Owner: "ops@example.com"})
	require.NoError(t, err)
	f.read, f.readID, f.readKey = s.Reveal(), k.ID, k
	k, s, err = f.store.Create(ctx, apikey.KeySpec{Name: "writer", Scopes: []apikey.Scope{"read", "write"}})
	require.NoError(t, err)
	f.rw, f.rwKey = s.Reveal(), k
	_, s, err = f.store.Create(ctx, apikey.KeySpec{Name: "sandbox", Scopes: []apikey.Scope{"read"}, Environment: apikey.EnvTest})
	require.NoError(t, err)
	f.test = s.Reveal()
	return f
}

// config returns a middleware Config over the fixture's store with the
// usual REST policy (GET needs read, other methods write).
func (f *fixture) config() apikey.Config {
	return apikey.Config{Keys: f.keys, Store: f.store, MethodPolicy: apikey.ReadWritePolicy()}
}

// handler is the fixture's middleware around okHandler, with cfg changed
// by edit (nil for none).
func (f *fixture) handler(t testing.TB, edit func(*apikey.Config)) http.Handler {
	t.Helper()
	cfg := f.config()
	if edit != nil {
		edit(&cfg)
	}
	return newMiddleware(t, cfg).Handler(okHandler())
}

// newSecret makes a well-formed default-format live key that no store
// holds.
func newSecret(t testing.TB) string {
	t.Helper()
	is, err := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}.NewKey(apikey.KeySpec{Name: "unissued"})
	require.NoError(t, err)
	return is.Secret.Reveal()
}

// flipChecksum changes the last character of a key, which breaks a
// default-format checksum.
func flipChecksum(key string) string {
	b := []byte(key)
	if b[len(b)-1] == '0' {
		b[len(b)-1] = '1'
	} else {
		b[len(b)-1] = '0'
	}
	return string(b)
}

func pepper(t testing.TB, id string, fill byte) apikey.Pepper {
	t.Helper()
	p, err := apikey.NewPepper(id, []byte(strings.Repeat(string(fill), 32)))
	require.NoError(t, err)
	return p
}

// okHandler answers 200 with the authenticated key's ID and the request id.
var okHandler = testkit.OKHandler

func bearer(r *http.Request, key string) *http.Request {
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

// call sends one request through h.
func call(h http.Handler, method, target, key string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		bearer(r, key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr
}

func decode(t *testing.T, rr *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &m), "body: %s", rr.Body.String())
	return m
}

// replaceRID returns m with every string "<rid>" replaced by id.
func replaceRID(m map[string]any, id string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			if v == "<rid>" {
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

func slogText(v any) string {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
	return buf.String()
}

// formatEveryWay renders v through fmt's verbs, encoding/json and log/slog.
func formatEveryWay(t *testing.T, v any) []string {
	t.Helper()
	outs := []string{
		fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v),
		fmt.Sprintf("%s", v), fmt.Sprintf("%q", v), fmt.Sprintf("%x", v),
		fmt.Sprint(v), fmt.Sprintln(v),
		fmt.Sprintf("%v", struct{ V any }{v}), fmt.Sprintf("%+v", &struct{ V any }{v}),
	}
	j, err := json.Marshal(v)
	require.NoError(t, err)
	outs = append(outs, string(j))
	outs = append(outs, slogText(v))
	return outs
}
