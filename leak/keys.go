package leak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnknownKey is wrapped by a KeySource's error for an identifier it
// does not know: the handler then refuses the report (401). Any other
// error from a KeySource is a failure to get the keys (503, so that
// GitHub retries).
var ErrUnknownKey = errors.New("leak: unknown public key identifier")

// KeySource gives the public key that signed a report, by the identifier
// GitHub sends in the Github-Public-Key-Identifier header. PublicKey
// returns a P-256 key, or an error wrapping ErrUnknownKey for an
// identifier it does not know. It is safe for concurrent use.
type KeySource interface {
	PublicKey(ctx context.Context, id string) (*ecdsa.PublicKey, error)
}

// GitHubKeysURL is where GitHub publishes the public keys of its secret
// scanning partner program.
const GitHubKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// StaticKeys is a KeySource of fixed keys, by identifier: for tests and
// for servers that cannot reach api.github.com (copy the keys from
// GitHubKeysURL). The map is copied.
func StaticKeys(keys map[string]*ecdsa.PublicKey) KeySource {
	return staticKeys(maps.Clone(keys))
}

type staticKeys map[string]*ecdsa.PublicKey

func (s staticKeys) PublicKey(_ context.Context, id string) (*ecdsa.PublicKey, error) {
	if k := s[id]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
}

// Limits of GitHubKeys.
const (
	refreshInterval = time.Minute      // at most one fetch per minute
	keysMaxAge      = 24 * time.Hour   // then refetched on the next request
	fetchTimeout    = 10 * time.Second // one fetch, whatever the client
	maxKeysBody     = 1 << 20
)

// GitHubKeys is the KeySource that fetches GitHub's keys from
// GitHubKeysURL with client (default: an http.Client with a 10 s
// timeout) and caches them. An identifier it does not know makes it fetch
// the keys again, at most once a minute, whoever asks: a flood of forged
// identifiers costs GitHub one request a minute. Keys older than a day are
// refetched; when that fails the old ones are kept. Fetches are
// conditional (ETag), so that they seldom count against GitHub's rate
// limit of unauthenticated requests; a client whose Transport adds
// "Authorization: Bearer <token>" (a token without scopes) raises it.
func GitHubKeys(client *http.Client) KeySource {
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	return &githubKeys{client: client, url: GitHubKeysURL, now: time.Now}
}

type githubKeys struct {
	client *http.Client
	url    string
	now    func() time.Time

	mu   sync.RWMutex // guards keys
	keys map[string]*ecdsa.PublicKey

	loaded atomic.Int64 // the last successful fetch, in Unix nanoseconds; 0: never

	fetchMu   sync.Mutex // one fetch at a time; guards what follows
	fetched   time.Time  // the last attempt
	lastErr   error      // of the last attempt
	etag      string
	attempted bool
}

func (g *githubKeys) lookup(id string) *ecdsa.PublicKey {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.keys[id]
}

// PublicKey returns GitHub's key id, fetching the keys when needed.
func (g *githubKeys) PublicKey(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	k := g.lookup(id)
	if k != nil && !g.stale() {
		return k, nil
	}
	g.fetchMu.Lock()
	defer g.fetchMu.Unlock()
	now := g.now()
	if k = g.lookup(id); k != nil && !g.staleAt(now) {
		return k, nil // another request refreshed them meanwhile
	}
	if g.attempted && now.Sub(g.fetched) < refreshInterval && !now.Before(g.fetched) {
		switch {
		case k != nil:
			return k, nil // stale, and the last refresh failed: keep it
		case g.lastErr != nil:
			return nil, fmt.Errorf("leak: GitHub's public keys: %w", g.lastErr)
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	g.attempted, g.fetched = true, now
	g.lastErr = g.fetch(ctx)
	if g.lastErr == nil {
		g.loaded.Store(now.UnixNano())
	}
	if k = g.lookup(id); k != nil {
		return k, nil
	}
	if g.lastErr != nil {
		return nil, fmt.Errorf("leak: GitHub's public keys: %w", g.lastErr)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
}

func (g *githubKeys) stale() bool { return g.staleAt(g.now()) }

// staleAt reports whether the keys are over a day old, or were never
// fetched, at now.
func (g *githubKeys) staleAt(now time.Time) bool {
	n := g.loaded.Load()
	return n == 0 || now.Sub(time.Unix(0, n)) >= keysMaxAge
}

// fetch gets the keys and replaces the cache; a 304 keeps it.
func (g *githubKeys) fetch(ctx context.Context) error {
	// The fetch serves every later request: the one that asked may go.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "keygate-apikey-leak")
	if g.etag != "" && g.lookupAny() {
		req.Header.Set("If-None-Match", g.etag)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil
	case http.StatusOK:
	default:
		return fmt.Errorf("GET %s: %s", g.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBody+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", g.url, err)
	}
	if len(body) > maxKeysBody {
		return fmt.Errorf("GET %s: the answer is over %d bytes", g.url, maxKeysBody)
	}
	keys, err := parsePublicKeys(body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", g.url, err)
	}
	g.mu.Lock()
	g.keys = keys
	g.mu.Unlock()
	g.etag = resp.Header.Get("ETag")
	return nil
}

func (g *githubKeys) lookupAny() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.keys) > 0
}

// parsePublicKeys reads GitHub's document of public keys:
// {"public_keys":[{"key_identifier","key" (PEM),"is_current"}]}. Entries
// that are not P-256 keys are skipped; none left is an error.
func parsePublicKeys(body []byte) (map[string]*ecdsa.PublicKey, error) {
	var doc struct {
		PublicKeys []struct {
			KeyIdentifier string `json:"key_identifier"`
			Key           string `json:"key"`
		} `json:"public_keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("public keys: %w", err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for _, e := range doc.PublicKeys {
		if e.KeyIdentifier == "" {
			continue
		}
		k, err := parsePublicKey(e.Key)
		if err != nil {
			continue
		}
		keys[e.KeyIdentifier] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("public keys: no P-256 key in the document")
	}
	return keys, nil
}

// parsePublicKey reads a PEM "PUBLIC KEY" (PKIX) holding a P-256 key.
func parsePublicKey(s string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 ECDSA key")
	}
	return k, nil
}
