package leak_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/leak"
)

// keyServer serves GitHub's public keys document.
type keyServer struct {
	mu       sync.Mutex
	keys     []publicKey
	status   int // 0: 200
	requests int
	etags    []string // If-None-Match of each request
	raw      string   // served instead of the keys when set
}

type publicKey struct {
	KeyIdentifier string `json:"key_identifier"`
	Key           string `json:"key"`
	IsCurrent     bool   `json:"is_current"`
}

func pemOf(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func (s *keyServer) add(t testing.TB, sg signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, publicKey{KeyIdentifier: sg.id, Key: pemOf(t, &sg.key.PublicKey), IsCurrent: true})
}

func (s *keyServer) set(f func(*keyServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *keyServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *keyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.etags = append(s.etags, r.Header.Get("If-None-Match"))
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	if s.raw != "" {
		_, _ = io.WriteString(w, s.raw)
		return
	}
	body, _ := json.Marshal(map[string]any{"public_keys": s.keys})
	etag := `"` + leak.TokenHash(string(body))[:16] + `"`
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func newKeyServer(t *testing.T) (*keyServer, *httptest.Server) {
	ks := &keyServer{}
	srv := httptest.NewServer(ks)
	t.Cleanup(srv.Close)
	return ks, srv
}

func TestGitHubKeysRefreshOnUnknownIdentifier(t *testing.T) {
	ctx := context.Background()
	a, b := newSigner(t, "key-a"), newSigner(t, "key-b")
	ks, srv := newKeyServer(t)
	ks.add(t, a)
	clk := newClock()
	src := leak.NewGitHubKeysAt(srv.Client(), srv.URL, clk.Now)

	k, err := src.PublicKey(ctx, "key-a")
	require.NoError(t, err)
	assert.True(t, k.Equal(&a.key.PublicKey))
	_, err = src.PublicKey(ctx, "key-a")
	require.NoError(t, err)
	assert.Equal(t, 1, ks.count(), "a known key was fetched again")

	// GitHub rotates its keys: b appears. Within the minute of the last
	// fetch nothing is fetched, whoever asks.
	ks.add(t, b)
	clk.Advance(30 * time.Second)
	for range 5 {
		_, err = src.PublicKey(ctx, "key-b")
		require.ErrorIs(t, err, leak.ErrUnknownKey)
	}
	assert.Equal(t, 1, ks.count())

	clk.Advance(31 * time.Second)
	k, err = src.PublicKey(ctx, "key-b")
	require.NoError(t, err)
	assert.True(t, k.Equal(&b.key.PublicKey))
	assert.Equal(t, 2, ks.count())

	// A forged identifier: one fetch, then refused for a minute.
	clk.Advance(2 * time.Minute)
	_, err = src.PublicKey(ctx, "forged")
	require.ErrorIs(t, err, leak.ErrUnknownKey)
	assert.Contains(t, err.Error(), `"forged"`)
	_, err = src.PublicKey(ctx, "forged-2")
	require.ErrorIs(t, err, leak.ErrUnknownKey)
	assert.Equal(t, 3, ks.count())
}

func TestGitHubKeysFetchFailure(t *testing.T) {
	ctx := context.Background()
	a := newSigner(t, "key-a")
	ks, srv := newKeyServer(t)
	ks.add(t, a)
	ks.set(func(s *keyServer) { s.status = http.StatusBadGateway })
	clk := newClock()
	src := leak.NewGitHubKeysAt(srv.Client(), srv.URL, clk.Now)

	_, err := src.PublicKey(ctx, "key-a")
	require.Error(t, err)
	assert.NotErrorIs(t, err, leak.ErrUnknownKey, "a failure to fetch is not an unknown key")
	assert.Contains(t, err.Error(), "502")
	_, err = src.PublicKey(ctx, "key-a")
	require.Error(t, err)
	assert.NotErrorIs(t, err, leak.ErrUnknownKey)
	assert.Equal(t, 1, ks.count(), "retried within the minute")

	// The handler answers 503, so that GitHub retries.
	f := newFixture(t, defaultKeys(), func(c *leak.Config) { c.KeySource = src })
	f.github = a
	_, secret := f.create(apikey.EnvLive, "acme")
	w := f.post(reportOf(secret))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.NotEmpty(t, w.Header().Get("Retry-After"))
	assert.True(t, f.works(secret))

	ks.set(func(s *keyServer) { s.status = 0 })
	clk.Advance(time.Minute)
	v := answerOf(t, f.post(reportOf(secret)))
	assert.Equal(t, "true_positive", v[0].Label)
	assert.False(t, f.works(secret))
}

func TestGitHubKeysStaleAndConditional(t *testing.T) {
	ctx := context.Background()
	a := newSigner(t, "key-a")
	ks, srv := newKeyServer(t)
	ks.add(t, a)
	clk := newClock()
	src := leak.NewGitHubKeysAt(srv.Client(), srv.URL, clk.Now)
	_, err := src.PublicKey(ctx, "key-a")
	require.NoError(t, err)

	clk.Advance(25 * time.Hour) // stale: refetched, conditionally
	_, err = src.PublicKey(ctx, "key-a")
	require.NoError(t, err)
	require.Equal(t, 2, ks.count())
	assert.Empty(t, ks.etags[0])
	assert.NotEmpty(t, ks.etags[1], "no If-None-Match")

	// Stale again, and GitHub fails: the old key is kept.
	clk.Advance(25 * time.Hour)
	ks.set(func(s *keyServer) { s.status = http.StatusInternalServerError })
	_, err = src.PublicKey(ctx, "key-a")
	require.NoError(t, err)
}

func TestGitHubKeysBadDocuments(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	tests := map[string]string{
		"not JSON":       `<html>rate limited</html>`,
		"no keys":        `{"public_keys":[]}`,
		"not PEM":        `{"public_keys":[{"key_identifier":"k","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}]}`,
		"P-384":          `{"public_keys":[{"key_identifier":"k","key":` + mustJSON(t, pemOf(t, &p384.PublicKey)) + `}]}`,
		"no identifier":  `{"public_keys":[{"key":` + mustJSON(t, pemOf(t, &newSigner(t, "x").key.PublicKey)) + `}]}`,
		"public_keys {}": `{"public_keys":{}}`,
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			ks, srv := newKeyServer(t)
			ks.set(func(s *keyServer) { s.raw = doc })
			src := leak.NewGitHubKeysAt(srv.Client(), srv.URL, newClock().Now)
			_, err := src.PublicKey(context.Background(), "k")
			require.Error(t, err)
			assert.NotErrorIs(t, err, leak.ErrUnknownKey)
		})
	}
}

func TestGitHubKeysSkipsKeysItCannotUse(t *testing.T) {
	a := newSigner(t, "key-a")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	ks, srv := newKeyServer(t)
	ks.set(func(s *keyServer) {
		s.keys = []publicKey{{KeyIdentifier: "p384", Key: pemOf(t, &p384.PublicKey)}, {KeyIdentifier: "junk", Key: "junk"}}
	})
	ks.add(t, a)
	src := leak.NewGitHubKeysAt(srv.Client(), srv.URL, newClock().Now)
	_, err = src.PublicKey(context.Background(), "key-a")
	require.NoError(t, err)
	_, err = src.PublicKey(context.Background(), "p384")
	require.ErrorIs(t, err, leak.ErrUnknownKey)
}

// roundTrip answers every request of a client.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGitHubKeysAsksGitHub(t *testing.T) {
	a := newSigner(t, "key-a")
	doc := mustJSON(t, map[string]any{"public_keys": []publicKey{{KeyIdentifier: a.id, Key: pemOf(t, &a.key.PublicKey), IsCurrent: true}}})
	var got *http.Request
	client := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		got = r
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(doc)), Request: r}, nil
	})}
	src := leak.GitHubKeys(client)
	k, err := src.PublicKey(context.Background(), "key-a")
	require.NoError(t, err)
	assert.True(t, k.Equal(&a.key.PublicKey))
	require.NotNil(t, got)
	assert.Equal(t, leak.GitHubKeysURL, got.URL.String())
	assert.Equal(t, http.MethodGet, got.Method)
	assert.NotEmpty(t, got.Header.Get("User-Agent"))
}

func TestGitHubKeysThroughTheHandler(t *testing.T) {
	ks, srv := newKeyServer(t)
	clk := newClock()
	f := newFixture(t, defaultKeys(), func(c *leak.Config) {
		c.KeySource = leak.NewGitHubKeysAt(srv.Client(), srv.URL, clk.Now)
	})
	ks.add(t, f.github)
	_, secret := f.create(apikey.EnvLive, "acme")
	v := answerOf(t, f.post(reportOf(secret)))
	assert.Equal(t, "true_positive", v[0].Label)

	// A report signed by a key GitHub does not publish: 401.
	f.github = newSigner(t, "rogue")
	w := f.post(reportOf(secret))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestStaticKeys(t *testing.T) {
	a := newSigner(t, "key-a")
	m := map[string]*ecdsa.PublicKey{"key-a": &a.key.PublicKey}
	src := leak.StaticKeys(m)
	delete(m, "key-a") // copied
	k, err := src.PublicKey(context.Background(), "key-a")
	require.NoError(t, err)
	assert.True(t, k.Equal(&a.key.PublicKey))
	_, err = src.PublicKey(context.Background(), "key-b")
	require.ErrorIs(t, err, leak.ErrUnknownKey)
}
