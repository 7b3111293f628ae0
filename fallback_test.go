package apikey_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keygate/apikey"
)

// Config.Fallback answers for credentials no format accepts, and what it
// finds is checked like any key: state, scopes, environment. Keys of our
// formats never reach it, and a failing or panicking fallback is a 503.
func TestConfigFallback(t *testing.T) {
	f := newFixture(t)
	legacy := &apikey.Key{ID: "key_legacy", Name: "old system", Environment: apikey.EnvLive, Scopes: []apikey.Scope{"read"}}
	revoked := &apikey.Key{ID: "key_gone", Name: "old, revoked", Environment: apikey.EnvLive, RevokedAt: f.clock.Now()}
	sandbox := &apikey.Key{ID: "key_sandbox", Name: "old sandbox", Environment: apikey.EnvTest, Scopes: []apikey.Scope{"read"}}
	var asked []string
	fallback := func(_ context.Context, cred string) (*apikey.Key, error) {
		asked = append(asked, cred)
		switch cred {
		case "legacy-valid":
			return legacy, nil
		case "legacy-revoked":
			return revoked, nil
		case "legacy-sandbox":
			return sandbox, nil
		case "legacy-down":
			return nil, errors.New("legacy database unreachable")
		case "legacy-panic":
			panic("boom")
		case "legacy-nothing":
			return nil, nil
		}
		return nil, apikey.ErrNotFound
	}
	tests := []struct {
		name, method, cred string
		env                apikey.Environment
		want               int
	}{
		{"a legacy key", "GET", "legacy-valid", 0, 200},
		{"its scopes apply", "POST", "legacy-valid", 0, 403},
		{"a revoked legacy key", "GET", "legacy-revoked", 0, 401},
		{"unknown to the fallback", "GET", "random-string", 0, 401},
		{"the fallback fails", "GET", "legacy-down", 0, 503},
		{"the fallback panics", "GET", "legacy-panic", 0, 503},
		{"no key and no error", "GET", "legacy-nothing", 0, 503},
		{"another environment refused", "GET", "legacy-sandbox", apikey.EnvLive, 401},
		{"our key, not asked", "GET", f.read, 0, 200},
		{"our format with a bad checksum, asked", "GET", flipChecksum(f.read), 0, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked = nil
			h := f.handler(t, func(c *apikey.Config) { c.Fallback, c.Environment = fallback, tt.env })
			assert.Equal(t, tt.want, call(h, tt.method, "/", tt.cred).Code)
			if tt.cred == f.read {
				assert.Empty(t, asked, "a key of our format never reaches the fallback")
			}
		})
	}
	// Without a fallback, a credential no format accepts is malformed.
	mw, err := apikey.New(f.config())
	if err != nil {
		t.Fatal(err)
	}
	_, err = mw.Verify(context.Background(), "legacy-valid")
	var ae apikey.AuthError
	if assert.ErrorAs(t, err, &ae) {
		assert.Equal(t, apikey.ReasonMalformed, ae.Reason)
	}
}
