package leak_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/leak"
	"github.com/keygate/apikey/manage"
)

// Receive a report of GitHub's secret scanning partner program: the
// leaked key is revoked, the audit log says so, and GitHub learns which
// tokens were real.
func ExampleNew() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		panic(err)
	}
	key, secret, err := store.Create(ctx, apikey.KeySpec{Name: "ci", Owner: "acme"})
	if err != nil {
		panic(err)
	}

	// GitHub's signing key; in production leave KeySource nil
	// (GitHubKeys) and let the handler fetch it.
	github, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	audit := manage.NewMemoryAudit(0)
	// readme:leak
	h, err := leak.New(store, leak.Config{
		Keys:      keys,
		KeySource: leak.StaticKeys(map[string]*ecdsa.PublicKey{"k1": &github.PublicKey}),
		Audit:     audit,
		OnLeak: func(_ context.Context, f leak.Finding) {
			fmt.Printf("tell %s: key %s found at %s: %s\n", f.Owner, f.Environment, f.URL, f.Action)
		},
	})
	// readme:end
	if err != nil {
		panic(err)
	}

	// What GitHub sends: the matches, signed.
	body := []byte(`[{"token":"` + secret.Reveal() + `","type":"keygate_api_key","url":"https://github.com/octo/app/blob/main/.env","source":"content"},` +
		`{"token":"kg_live_0000000000000000000000000000000000Ab","type":"keygate_api_key","url":"","source":"commit"}]`)
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, github, digest[:])
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/github/secret-scanning", bytes.NewReader(body))
	r.Header.Set("GITHUB-PUBLIC-KEY-IDENTIFIER", "k1")
	r.Header.Set("GITHUB-PUBLIC-KEY-SIGNATURE", base64.StdEncoding.EncodeToString(sig))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	var answer []struct {
		TokenHash string `json:"token_hash"`
		Label     string `json:"label"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
		panic(err)
	}
	fmt.Println(w.Code, answer[0].TokenHash == leak.TokenHash(secret.Reveal()), answer[0].Label, answer[1].Label)

	k, err := store.Get(ctx, key.ID)
	if err != nil {
		panic(err)
	}
	events, err := audit.Events(ctx, manage.EventFilter{KeyID: key.ID})
	if err != nil {
		panic(err)
	}
	fmt.Println(k.State(k.RevokedAt), events[0].Actor, events[0].Action)
	// Output:
	// tell acme: key live found at https://github.com/octo/app/blob/main/.env: revoke
	// 200 true true_positive false_positive
	// revoked github-secret-scanning leak-revoke
}

// What to send GitHub to join the partner program: for each format, a
// token type, its pattern (the key is the first submatch) and the URL
// where the handler is mounted.
func Example_register() {
	fmt.Println("token type: keygate_api_key")
	fmt.Println("endpoint:   https://api.example.com/github/secret-scanning")
	fmt.Println("pattern:   ", apikey.FormatDefault.Pattern())
	// Output:
	// token type: keygate_api_key
	// endpoint:   https://api.example.com/github/secret-scanning
	// pattern:    (?:^|[^0-9A-Za-z_])((?:kg_live_|kg_test_)[0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz]{30}[0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz]{6})(?:$|[^0-9A-Za-z_])
}

// A pre-commit hook: the format's pattern finds candidates in the staged
// text, Parse confirms them (prefix, length, checksum), so that a string
// that merely looks like a key does not stop the commit.
func Example_preCommit() {
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}})
	if err != nil {
		panic(err)
	}
	_, secret, err := store.Create(context.Background(), apikey.KeySpec{Name: "dev"})
	if err != nil {
		panic(err)
	}
	staged := "# settings\n" +
		"url = \"https://api.example.com\"\n" +
		"api_key = \"" + secret.Reveal() + "\"\n" +
		"example = \"kg_test_" + strings.Repeat("x", 30) + "000000\" # right shape, wrong checksum\n"

	pattern := regexp.MustCompile(apikey.FormatDefault.Pattern())
	lines := bufio.NewScanner(strings.NewReader(staged))
	for n := 1; lines.Scan(); n++ {
		for _, m := range pattern.FindAllStringSubmatch(lines.Text(), -1) {
			if _, err := apikey.FormatDefault.Parse(m[1]); err != nil {
				fmt.Printf("line %d: looks like a key, is not: %v\n", n, err)
				continue
			}
			fmt.Printf("line %d: API key %s…: remove it before committing\n", n, m[1][:8])
		}
	}
	// Output:
	// line 3: API key kg_live_…: remove it before committing
	// line 4: looks like a key, is not: apikey: malformed key: bad checksum
}
