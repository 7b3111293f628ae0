package leak_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/leak"
	"github.com/keygate/apikey/manage"
)

// clock is a settable clock for the store, the middleware and the handler.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingStore is a MemoryStore that counts its lookups and management
// calls and can be made to fail.
type countingStore struct {
	*apikey.MemoryStore
	lookups atomic.Int64
	manages atomic.Int64 // Get, Revoke, Roll, Update
	fail    atomic.Bool
}

var errDown = errors.New("store down")

func (s *countingStore) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	s.lookups.Add(1)
	if s.fail.Load() {
		return nil, errDown
	}
	return s.MemoryStore.Lookup(ctx, d)
}

func (s *countingStore) Get(ctx context.Context, id string) (*apikey.Key, error) {
	s.manages.Add(1)
	return s.MemoryStore.Get(ctx, id)
}

func (s *countingStore) Revoke(ctx context.Context, id string) error {
	s.manages.Add(1)
	return s.MemoryStore.Revoke(ctx, id)
}

func (s *countingStore) Roll(ctx context.Context, id string, grace time.Duration) (*apikey.Key, apikey.Secret, error) {
	s.manages.Add(1)
	return s.MemoryStore.Roll(ctx, id, grace)
}

func (s *countingStore) Update(ctx context.Context, id string, change func(*apikey.Key) error) (*apikey.Key, error) {
	s.manages.Add(1)
	return s.MemoryStore.Update(ctx, id, change)
}

// signer is GitHub's side: a P-256 key and its identifier.
type signer struct {
	id  string
	key *ecdsa.PrivateKey
}

func newSigner(t testing.TB, id string) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return signer{id: id, key: k}
}

// sign returns the Github-Public-Key-Signature of body.
func (s signer) sign(t testing.TB, body []byte) string {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, d[:])
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(sig)
}

// fixture is a store with keys, a handler over it, and what it reported.
type fixture struct {
	t        testing.TB
	clock    *clock
	keys     apikey.KeyConfig
	store    *countingStore
	github   signer
	audit    *manage.MemoryAudit
	h        *leak.Handler
	mu       sync.Mutex
	findings []leak.Finding
}

// newFixture makes the fixture; edit changes the handler's Config.
func newFixture(t testing.TB, keys apikey.KeyConfig, edit func(*leak.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), github: newSigner(t, "github-key-1"), audit: manage.NewMemoryAudit(0)}
	keys.Clock = f.clock.Now
	f.keys = keys
	ms, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(t, err)
	f.store = &countingStore{MemoryStore: ms}
	cfg := leak.Config{
		Keys:      keys,
		KeySource: leak.StaticKeys(map[string]*ecdsa.PublicKey{f.github.id: &f.github.key.PublicKey}),
		Audit:     f.audit,
		OnLeak: func(_ context.Context, fd leak.Finding) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.findings = append(f.findings, fd)
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	f.h, err = leak.New(f.store, cfg)
	require.NoError(t, err)
	return f
}

func defaultKeys() apikey.KeyConfig {
	return apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
}

// create makes a key and returns it with its secret.
func (f *fixture) create(env apikey.Environment, owner string) (*apikey.Key, string) {
	f.t.Helper()
	k, s, err := f.store.Create(context.Background(), apikey.KeySpec{Name: "k", Environment: env, Owner: owner})
	require.NoError(f.t, err)
	return k, s.Reveal()
}

func (f *fixture) key(id string) *apikey.Key {
	f.t.Helper()
	k, err := f.store.MemoryStore.Get(context.Background(), id)
	require.NoError(f.t, err)
	return k
}

// works reports whether the middleware lets secret through.
func (f *fixture) works(secret string) bool {
	f.t.Helper()
	mw, err := apikey.New(apikey.Config{Keys: f.keys, Store: f.store.MemoryStore})
	require.NoError(f.t, err)
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	switch w.Code {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	}
	f.t.Fatalf("middleware answered %d", w.Code)
	return false
}

func (f *fixture) events() []manage.Event {
	f.t.Helper()
	ev, err := f.audit.Events(context.Background(), manage.EventFilter{})
	require.NoError(f.t, err)
	return ev
}

func (f *fixture) leaks() []leak.Finding {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]leak.Finding(nil), f.findings...)
}

// match is one entry of a report.
type match struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

const tokenType = "keygate_api_key"

func reportOf(tokens ...string) []byte {
	ms := make([]match, len(tokens))
	for i, tok := range tokens {
		ms[i] = match{Token: tok, Type: tokenType, URL: "https://github.com/octo/repo/blob/abc/config.yml", Source: "content"}
	}
	b, err := json.Marshal(ms)
	if err != nil {
		panic(err)
	}
	return b
}

// post sends body signed by GitHub's key.
func (f *fixture) post(body []byte) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.send(body, map[string]string{
		leak.HeaderKeyID:     f.github.id,
		leak.HeaderSignature: f.github.sign(f.t, body),
	})
}

func (f *fixture) send(body []byte, headers map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/github/secret-scanning", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// verdict is one element of the answer.
type verdict struct {
	TokenRaw  *string `json:"token_raw"`
	TokenHash string  `json:"token_hash"`
	TokenType string  `json:"token_type"`
	Label     string  `json:"label"`
}

func answerOf(t *testing.T, w *httptest.ResponseRecorder) []verdict {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var v []verdict
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v))
	return v
}

// labels maps token hashes to labels.
func labels(v []verdict) map[string]string {
	m := make(map[string]string, len(v))
	for _, e := range v {
		m[e.TokenHash] = e.Label
	}
	return m
}

func newRequest(method string, body []byte, headers map[string]string) *http.Request {
	r := httptest.NewRequest(method, "/github/secret-scanning", bytes.NewReader(body))
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
