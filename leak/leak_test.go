package leak_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/leak"
	"github.com/keygate/apikey/presets"
)

func TestValidReportRevokesTheKey(t *testing.T) {
	f := newFixture(t, defaultKeys(), nil)
	k, secret := f.create(apikey.EnvLive, "acme")
	require.True(t, f.works(secret))

	w := f.post(reportOf(secret, "kg_live_notakeyatall"))
	v := answerOf(t, w)
	require.Len(t, v, 2)
	assert.Equal(t, verdict{TokenHash: leak.TokenHash(secret), TokenType: tokenType, Label: "true_positive"}, v[0])
	assert.Equal(t, verdict{TokenHash: leak.TokenHash("kg_live_notakeyatall"), TokenType: tokenType, Label: "false_positive"}, v[1])

	assert.Equal(t, apikey.StateRevoked, f.key(k.ID).State(f.clock.Now()))
	assert.False(t, f.works(secret), "the middleware still accepts the leaked key")
}

func TestPolicy(t *testing.T) {
	const grace = 30 * time.Minute
	tests := []struct {
		env    apikey.Environment
		action leak.Action
	}{
		{apikey.EnvLive, leak.Revoke},
		{apikey.EnvTest, leak.Revoke},
		{apikey.EnvLive, leak.Roll},
		{apikey.EnvTest, leak.Roll},
		{apikey.EnvLive, leak.Disable},
		{apikey.EnvTest, leak.Disable},
		{apikey.EnvLive, leak.Notify},
		{apikey.EnvTest, leak.Notify},
	}
	for _, tt := range tests {
		t.Run(tt.env.String()+"/"+tt.action.String(), func(t *testing.T) {
			other := apikey.EnvTest
			if tt.env == apikey.EnvTest {
				other = apikey.EnvLive
			}
			f := newFixture(t, defaultKeys(), func(c *leak.Config) {
				c.Grace = grace
				// The other environment keeps the default, Revoke.
				c.Policy = map[apikey.Environment]leak.Action{tt.env: tt.action}
			})
			k, secret := f.create(tt.env, "acme")
			bystander, bysecret := f.create(other, "acme")
			url := "https://github.com/octo/repo/commit/123"
			body, err := json.Marshal([]match{{Token: secret, Type: tokenType, URL: url, Source: "commit"}})
			require.NoError(t, err)

			v := answerOf(t, f.post(body))
			require.Len(t, v, 1)
			assert.Equal(t, "true_positive", v[0].Label)
			assert.True(t, f.works(bysecret), "a key that did not leak was touched")
			assert.Equal(t, apikey.StateActive, f.key(bystander.ID).State(f.clock.Now()))

			got := f.key(k.ID)
			now := f.clock.Now()
			switch tt.action {
			case leak.Revoke:
				assert.Equal(t, apikey.StateRevoked, got.State(now))
				assert.False(t, f.works(secret))
			case leak.Roll:
				require.NotEmpty(t, got.RolledTo)
				assert.Equal(t, now.Add(grace), got.ExpiresAt)
				assert.True(t, f.works(secret), "the leaked key stops before its grace")
				fs := f.leaks()
				require.Len(t, fs, 1)
				assert.Equal(t, got.RolledTo, fs[0].SuccessorID)
				succ := fs[0].SuccessorSecret.Reveal()
				require.NotEmpty(t, succ)
				assert.True(t, f.works(succ))
				f.clock.Advance(grace)
				assert.False(t, f.works(secret), "the leaked key works after its grace")
				assert.True(t, f.works(succ), "the successor stopped with the leaked key")
			case leak.Disable:
				assert.True(t, got.Disabled)
				assert.Equal(t, apikey.StateDisabled, got.State(now))
				assert.False(t, f.works(secret))
			case leak.Notify:
				assert.Equal(t, apikey.StateActive, got.State(now))
				assert.False(t, got.Disabled)
				assert.Empty(t, got.RolledTo)
				assert.True(t, f.works(secret))
			}

			ev := f.events()
			require.Len(t, ev, 1)
			assert.Equal(t, leak.Actor, ev[0].Actor)
			assert.Equal(t, "leak-"+tt.action.String(), ev[0].Action)
			assert.Equal(t, k.ID, ev[0].KeyID)
			assert.Equal(t, "acme", ev[0].Owner)
			assert.Contains(t, ev[0].Detail, url)
			assert.Contains(t, ev[0].Detail, "commit")
			assert.Equal(t, now, ev[0].At)

			fs := f.leaks()
			require.Len(t, fs, 1)
			assert.Equal(t, k.ID, fs[0].KeyID)
			assert.Equal(t, "acme", fs[0].Owner)
			assert.Equal(t, tt.env, fs[0].Environment)
			assert.Equal(t, tt.action, fs[0].Action)
			assert.Equal(t, url, fs[0].URL)
			assert.Equal(t, "commit", fs[0].Source)
			assert.Equal(t, now, fs[0].At)
		})
	}
}

func TestRefused(t *testing.T) {
	other := newSigner(t, "github-key-2")
	tests := []struct {
		name    string
		method  string
		body    func(secret string) []byte
		headers func(f *fixture, body []byte) map[string]string
		status  int
	}{
		{
			name: "bad signature",
			headers: func(f *fixture, body []byte) map[string]string {
				return map[string]string{leak.HeaderKeyID: f.github.id, leak.HeaderSignature: f.github.sign(t, []byte("another body"))}
			},
			status: http.StatusUnauthorized,
		},
		{
			name: "signature garbage",
			headers: func(f *fixture, body []byte) map[string]string {
				return map[string]string{leak.HeaderKeyID: f.github.id, leak.HeaderSignature: "MEQCIA=="}
			},
			status: http.StatusUnauthorized,
		},
		{
			name: "signature not base64",
			headers: func(f *fixture, body []byte) map[string]string {
				return map[string]string{leak.HeaderKeyID: f.github.id, leak.HeaderSignature: "not base64!"}
			},
			status: http.StatusUnauthorized,
		},
		{
			name: "signature by another key",
			headers: func(f *fixture, body []byte) map[string]string {
				return map[string]string{leak.HeaderKeyID: f.github.id, leak.HeaderSignature: other.sign(t, body)}
			},
			status: http.StatusUnauthorized,
		},
		{
			name: "unknown key identifier",
			headers: func(f *fixture, body []byte) map[string]string {
				return map[string]string{leak.HeaderKeyID: other.id, leak.HeaderSignature: other.sign(t, body)}
			},
			status: http.StatusUnauthorized,
		},
		{
			name: "key identifier with a space",
			headers: func(f *fixture, body []byte) map[string]string {
				return map[string]string{leak.HeaderKeyID: "github key", leak.HeaderSignature: f.github.sign(t, body)}
			},
			status: http.StatusUnauthorized,
		},
		{
			name: "missing signature header",
			headers: func(f *fixture, body []byte) map[string]string {
				return map[string]string{leak.HeaderKeyID: f.github.id}
			},
			status: http.StatusUnauthorized,
		},
		{
			name: "missing identifier header",
			headers: func(f *fixture, body []byte) map[string]string {
				return map[string]string{leak.HeaderSignature: f.github.sign(t, body)}
			},
			status: http.StatusUnauthorized,
		},
		{
			name:    "no headers",
			headers: func(*fixture, []byte) map[string]string { return nil },
			status:  http.StatusUnauthorized,
		},
		{
			name:   "not JSON",
			body:   func(secret string) []byte { return []byte("token=" + secret) },
			status: http.StatusBadRequest,
		},
		{
			name:   "a JSON object",
			body:   func(secret string) []byte { return []byte(`{"token":"` + secret + `"}`) },
			status: http.StatusBadRequest,
		},
		{
			name:   "JSON null",
			body:   func(string) []byte { return []byte(`null`) },
			status: http.StatusBadRequest,
		},
		{
			name:   "wrong field type",
			body:   func(string) []byte { return []byte(`[{"token":42}]`) },
			status: http.StatusBadRequest,
		},
		{
			name:   "truncated array",
			body:   func(secret string) []byte { return reportOf(secret)[:30] },
			status: http.StatusBadRequest,
		},
		{
			name: "oversized body",
			body: func(secret string) []byte {
				return []byte(`[{"token":"` + secret + `","url":"` + strings.Repeat("x", 2000) + `"}]`)
			},
			status: http.StatusRequestEntityTooLarge,
		},
		{
			name:   "GET",
			method: http.MethodGet,
			status: http.StatusMethodNotAllowed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, defaultKeys(), func(c *leak.Config) { c.MaxBody = 1024 })
			k, secret := f.create(apikey.EnvLive, "acme")
			body := reportOf(secret)
			if tt.body != nil {
				body = tt.body(secret)
			}
			headers := map[string]string{leak.HeaderKeyID: f.github.id, leak.HeaderSignature: f.github.sign(t, body)}
			if tt.headers != nil {
				headers = tt.headers(f, body)
			}
			var w interface {
				Result() *http.Response
			}
			if tt.method != "" {
				r := newRequest(tt.method, body, headers)
				rec := newRecorder()
				f.h.ServeHTTP(rec, r)
				w = rec
				assert.Equal(t, http.MethodPost, rec.Header().Get("Allow"))
			} else {
				w = f.send(body, headers)
			}
			resp := w.Result()
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.NotContains(t, readAll(t, resp), secret)

			assert.Zero(t, f.store.lookups.Load(), "the store was asked")
			assert.Zero(t, f.store.manages.Load(), "a key was touched")
			assert.Equal(t, apikey.StateActive, f.key(k.ID).State(f.clock.Now()))
			assert.True(t, f.works(secret))
			assert.Empty(t, f.events())
			assert.Empty(t, f.leaks())
		})
	}
}

func TestReplayIsHarmless(t *testing.T) {
	for _, action := range []leak.Action{leak.Revoke, leak.Roll, leak.Disable, leak.Notify} {
		t.Run(action.String(), func(t *testing.T) {
			f := newFixture(t, defaultKeys(), func(c *leak.Config) {
				c.Policy = map[apikey.Environment]leak.Action{apikey.EnvLive: action}
			})
			k, secret := f.create(apikey.EnvLive, "acme")
			body := reportOf(secret, "kg_live_random")
			sig := f.github.sign(t, body)
			headers := map[string]string{leak.HeaderKeyID: f.github.id, leak.HeaderSignature: sig}

			first := f.send(body, headers)
			after := f.key(k.ID)
			second := f.send(body, headers)
			assert.Equal(t, first.Body.String(), second.Body.String(), "a replay answers otherwise")
			assert.Equal(t, after, f.key(k.ID), "a replay changed the key again")

			keys, err := f.store.List(context.Background(), apikey.Filter{})
			require.NoError(t, err)
			if action == leak.Roll {
				assert.Len(t, keys, 2, "rolled twice")
			} else {
				assert.Len(t, keys, 1)
			}
			want := 1
			if action == leak.Notify || action == leak.Disable {
				// Nothing changes on the key, so nothing says it was
				// reported: the owner hears again (documented).
				want = 2
			}
			assert.Len(t, f.events(), want)
			assert.Len(t, f.leaks(), want)
		})
	}
}

func TestConcurrentDeliveriesActOnce(t *testing.T) {
	f := newFixture(t, defaultKeys(), func(c *leak.Config) {
		c.Policy = map[apikey.Environment]leak.Action{apikey.EnvLive: leak.Roll}
	})
	_, secret := f.create(apikey.EnvLive, "acme")
	body := reportOf(secret)
	headers := map[string]string{leak.HeaderKeyID: f.github.id, leak.HeaderSignature: f.github.sign(t, body)}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			w := f.send(body, headers)
			assert.Equal(t, http.StatusOK, w.Code)
		})
	}
	wg.Wait()
	keys, err := f.store.List(context.Background(), apikey.Filter{})
	require.NoError(t, err)
	assert.Len(t, keys, 2, "one roll, one successor")
	assert.Len(t, f.events(), 1)
	assert.Len(t, f.leaks(), 1)
}

func TestBatchOfMostlyRandomTokens(t *testing.T) {
	f := newFixture(t, defaultKeys(), nil)
	var real []string
	for i := range 10 {
		env := apikey.EnvLive
		if i%2 == 1 {
			env = apikey.EnvTest
		}
		_, s := f.create(env, fmt.Sprintf("owner-%d", i))
		real = append(real, s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	randomString := func(prefix string, n int) string {
		b := []byte(prefix)
		for range n {
			b = append(b, alnum[rng.IntN(len(alnum))])
		}
		return string(b)
	}
	tokens := append([]string(nil), real...)
	for i := range 990 {
		switch i % 3 {
		case 0: // right prefix and length: only the checksum tells
			tokens = append(tokens, randomString("kg_live_", 36))
		case 1:
			tokens = append(tokens, randomString("kg_test_", 20+i%30))
		default:
			tokens = append(tokens, randomString("", 10+i%60))
		}
	}
	rng.Shuffle(len(tokens), func(i, j int) { tokens[i], tokens[j] = tokens[j], tokens[i] })

	v := answerOf(t, f.post(reportOf(tokens...)))
	require.Len(t, v, 1000)
	t.Logf("1,000 tokens, 990 random: %d store lookups", f.store.lookups.Load())
	assert.LessOrEqual(t, f.store.lookups.Load(), int64(10))
	got := labels(v)
	trues := 0
	for _, tok := range tokens {
		if got[leak.TokenHash(tok)] == "true_positive" {
			trues++
		}
	}
	assert.Equal(t, 10, trues)
	for _, s := range real {
		assert.Equal(t, "true_positive", got[leak.TokenHash(s)])
		assert.False(t, f.works(s))
	}
	assert.Len(t, f.events(), 10)
	assert.Len(t, f.leaks(), 10)
}

func TestDuplicateTokensAreCheckedOnce(t *testing.T) {
	f := newFixture(t, defaultKeys(), nil)
	_, secret := f.create(apikey.EnvLive, "acme")
	v := answerOf(t, f.post(reportOf(secret, "nope", secret, secret, "nope")))
	require.Len(t, v, 2)
	assert.Equal(t, leak.TokenHash(secret), v[0].TokenHash)
	assert.Equal(t, leak.TokenHash("nope"), v[1].TokenHash)
	assert.Equal(t, int64(1), f.store.lookups.Load())
	assert.Len(t, f.events(), 1)
}

func TestEmptyReport(t *testing.T) {
	f := newFixture(t, defaultKeys(), nil)
	for _, body := range []string{`[]`, ` [ ] `, `[{"token":""}]`, `[null]`} {
		w := f.post([]byte(body))
		require.Equal(t, http.StatusOK, w.Code, body)
		assert.JSONEq(t, `[]`, w.Body.String(), body)
	}
}

func TestAnswerAndRecordsNeverHoldTheToken(t *testing.T) {
	var logs strings.Builder
	f := newFixture(t, defaultKeys(), func(c *leak.Config) {
		c.Logger = newTextLogger(&logs)
		c.Policy = map[apikey.Environment]leak.Action{apikey.EnvLive: leak.Roll}
	})
	_, secret := f.create(apikey.EnvLive, "acme")
	// A URL with the token in it: kept as [REDACTED].
	body, err := json.Marshal([]match{
		{Token: secret, Type: tokenType, URL: "https://gist.github.com/x?k=" + secret, Source: "gist_content"},
		{Token: "kg_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Type: tokenType, Source: "npm"},
	})
	require.NoError(t, err)
	w := f.post(body)
	v := answerOf(t, w)
	require.Len(t, v, 2)
	for _, e := range v {
		assert.Nil(t, e.TokenRaw)
		assert.Len(t, e.TokenHash, 64)
		assert.Equal(t, strings.ToLower(e.TokenHash), e.TokenHash)
	}
	assert.NotContains(t, w.Body.String(), secret)
	assert.NotContains(t, w.Body.String(), "kg_live_AAAA")

	ev := f.events()
	require.Len(t, ev, 1)
	evJSON, err := json.Marshal(ev)
	require.NoError(t, err)
	assert.NotContains(t, string(evJSON), secret)
	assert.Contains(t, ev[0].Detail, "https://gist.github.com/x?k=[REDACTED]")

	fs := f.leaks()
	require.Len(t, fs, 1)
	for _, s := range []string{fmt.Sprintf("%v", fs[0]), fmt.Sprintf("%+v", fs[0]), fmt.Sprintf("%#v", fs[0]), mustJSON(t, fs[0])} {
		assert.NotContains(t, s, secret)
		assert.NotContains(t, s, fs[0].SuccessorSecret.Reveal(), "the successor's secret prints")
	}
	assert.NotContains(t, logs.String(), secret)
	assert.Contains(t, logs.String(), "leaked API key")
}

func TestAnswerRaw(t *testing.T) {
	f := newFixture(t, defaultKeys(), func(c *leak.Config) { c.AnswerRaw = true })
	_, secret := f.create(apikey.EnvLive, "acme")
	v := answerOf(t, f.post(reportOf(secret)))
	require.Len(t, v, 1)
	require.NotNil(t, v[0].TokenRaw)
	assert.Equal(t, secret, *v[0].TokenRaw)
	assert.Empty(t, v[0].TokenHash)
	assert.Equal(t, "true_positive", v[0].Label)
}

func TestKeysNoLongerActive(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, defaultKeys(), nil)
	revoked, s1 := f.create(apikey.EnvLive, "a")
	require.NoError(t, f.store.MemoryStore.Revoke(ctx, revoked.ID))
	rolled, s2 := f.create(apikey.EnvLive, "b")
	_, _, err := f.store.MemoryStore.Roll(ctx, rolled.ID, 0)
	require.NoError(t, err)
	expiring, s3, err := f.store.MemoryStore.Create(ctx, apikey.KeySpec{Name: "e", ExpiresAt: f.clock.Now().Add(time.Minute)})
	require.NoError(t, err)
	f.clock.Advance(time.Hour)

	v := answerOf(t, f.post(reportOf(s1, s2, s3.Reveal())))
	for _, e := range v {
		assert.Equal(t, "true_positive", e.Label)
	}
	assert.Empty(t, f.events(), "a key that cannot work was acted on")
	assert.Empty(t, f.leaks())
	assert.Equal(t, apikey.StateExpired, f.key(expiring.ID).State(f.clock.Now()))
}

func TestDisabledKeyIsRevoked(t *testing.T) {
	// A disabled key could be enabled again: under Revoke it is revoked.
	ctx := context.Background()
	f := newFixture(t, defaultKeys(), nil)
	k, secret := f.create(apikey.EnvLive, "acme")
	_, err := f.store.MemoryStore.Update(ctx, k.ID, func(k *apikey.Key) error { k.Disabled = true; return nil })
	require.NoError(t, err)
	v := answerOf(t, f.post(reportOf(secret)))
	assert.Equal(t, "true_positive", v[0].Label)
	assert.Equal(t, apikey.StateRevoked, f.key(k.ID).State(f.clock.Now()))
	require.Len(t, f.events(), 1)
	assert.Equal(t, "leak-revoke", f.events()[0].Action)
}

func TestDisableInRollGraceRevokes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, defaultKeys(), func(c *leak.Config) {
		c.Policy = map[apikey.Environment]leak.Action{apikey.EnvLive: leak.Disable}
	})
	k, secret := f.create(apikey.EnvLive, "acme")
	succ, succSecret, err := f.store.MemoryStore.Roll(ctx, k.ID, time.Hour)
	require.NoError(t, err)
	require.True(t, f.works(secret), "in its grace period")

	answerOf(t, f.post(reportOf(secret)))
	assert.False(t, f.works(secret))
	assert.True(t, f.works(succSecret.Reveal()))
	assert.Equal(t, apikey.StateActive, f.key(succ.ID).State(f.clock.Now()))
	require.Len(t, f.events(), 1)
	assert.Equal(t, "leak-revoke", f.events()[0].Action)
}

func TestStoreFailureAsksForARetry(t *testing.T) {
	f := newFixture(t, defaultKeys(), nil)
	_, secret := f.create(apikey.EnvLive, "acme")
	body := reportOf(secret)
	f.store.fail.Store(true)
	w := f.post(body)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.NotEmpty(t, w.Header().Get("Retry-After"))
	assert.NotContains(t, w.Body.String(), secret)
	assert.True(t, f.works(secret))
	assert.Empty(t, f.events())

	f.store.fail.Store(false) // GitHub retries
	v := answerOf(t, f.post(body))
	assert.Equal(t, "true_positive", v[0].Label)
	assert.False(t, f.works(secret))
}

func TestPresetFormat(t *testing.T) {
	for _, p := range []presets.Preset{presets.Straply, presets.StairoidsV2} {
		t.Run(p.Name, func(t *testing.T) {
			f := newFixture(t, p.Keys(), nil)
			k, secret := f.create(apikey.EnvLive, "acme")
			v := answerOf(t, f.post(reportOf(secret, "kg_live_x", secret[:len(secret)-1])))
			require.Len(t, v, 3)
			assert.Equal(t, []string{"true_positive", "false_positive", "false_positive"}, []string{v[0].Label, v[1].Label, v[2].Label})
			assert.Equal(t, apikey.StateRevoked, f.key(k.ID).State(f.clock.Now()))
			assert.LessOrEqual(t, f.store.lookups.Load(), int64(1))
		})
	}
}

func TestPeppers(t *testing.T) {
	// A key made under a retiring pepper is found as the middleware finds it.
	old, err := apikey.NewPepper("p1", []byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	cur, err := apikey.NewPepper("p2", []byte("fedcba9876543210fedcba9876543210"))
	require.NoError(t, err)
	keys := defaultKeys()
	keys.Peppers = []apikey.Pepper{old}
	f := newFixture(t, keys, nil)
	k, secret := f.create(apikey.EnvLive, "acme")

	keys.Peppers = []apikey.Pepper{cur, old}
	keys.Clock = f.clock.Now
	h, err := leak.New(f.store, leak.Config{Keys: keys, KeySource: leak.StaticKeys(map[string]*ecdsa.PublicKey{f.github.id: &f.github.key.PublicKey})})
	require.NoError(t, err)
	f.h = h
	v := answerOf(t, f.post(reportOf(secret)))
	assert.Equal(t, "true_positive", v[0].Label)
	assert.Equal(t, apikey.StateRevoked, f.key(k.ID).State(f.clock.Now()))
}

func TestNewChecksConfig(t *testing.T) {
	ms, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: defaultKeys()})
	require.NoError(t, err)
	tests := []struct {
		name  string
		store apikey.Manager
		cfg   leak.Config
		field string
	}{
		{"nil store", nil, leak.Config{Keys: defaultKeys()}, "store"},
		{"no keys", ms, leak.Config{}, "Config.Keys"},
		{"bad environment", ms, leak.Config{Keys: defaultKeys(), Policy: map[apikey.Environment]leak.Action{7: leak.Roll}}, "Config.Policy"},
		{"bad action", ms, leak.Config{Keys: defaultKeys(), Policy: map[apikey.Environment]leak.Action{apikey.EnvLive: 9}}, "Config.Policy"},
		{"negative grace", ms, leak.Config{Keys: defaultKeys(), Grace: -time.Second}, "Config.Grace"},
		{"long grace", ms, leak.Config{Keys: defaultKeys(), Grace: 8 * 24 * time.Hour}, "Config.Grace"},
		{"negative body", ms, leak.Config{Keys: defaultKeys(), MaxBody: -1}, "Config.MaxBody"},
		{"huge body", ms, leak.Config{Keys: defaultKeys(), MaxBody: 1 << 30}, "Config.MaxBody"},
		{"not a key store", managerOnly{ms}, leak.Config{Keys: defaultKeys()}, "KeyStore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := leak.New(tt.store, tt.cfg)
			assert.Nil(t, h)
			require.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
	h, err := leak.New(ms, leak.Config{Keys: defaultKeys()})
	require.NoError(t, err)
	assert.NotNil(t, h)
}

// managerOnly hides the store's Lookup.
type managerOnly struct{ apikey.Manager }

func TestActionString(t *testing.T) {
	assert.Equal(t, "revoke", leak.Revoke.String())
	assert.Equal(t, "roll", leak.Roll.String())
	assert.Equal(t, "disable", leak.Disable.String())
	assert.Equal(t, "notify", leak.Notify.String())
	assert.Equal(t, "action(9)", leak.Action(9).String())
	var zero leak.Action
	assert.Equal(t, leak.Revoke, zero, "the zero Action is the safest")
}

// A key its owner rolled with a long grace: a report of its old secret
// revokes it at once (its successor works), under every policy; a key this
// policy rolled keeps the grace it gave. A key already disabled is
// reported, not ignored.
func TestReportOfARolledOrDisabledKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, defaultKeys(), func(c *leak.Config) {
		c.Policy = map[apikey.Environment]leak.Action{apikey.EnvLive: leak.Roll}
	})
	k, secret := f.create(apikey.EnvLive, "acme")
	next, nextSecret, err := f.store.Roll(ctx, k.ID, 300*24*time.Hour)
	require.NoError(t, err)
	body := reportOf(secret, "kg_live_random")
	f.send(body, map[string]string{leak.HeaderKeyID: f.github.id, leak.HeaderSignature: f.github.sign(t, body)})
	assert.Equal(t, apikey.StateRevoked, f.key(k.ID).State(time.Now()), "the leaked secret stops at once")
	assert.Equal(t, apikey.StateActive, f.key(next.ID).State(time.Now()), "its successor is not touched")
	_ = nextSecret
	assert.Len(t, f.events(), 1)
	assert.Len(t, f.leaks(), 1)

	g := newFixture(t, defaultKeys(), func(c *leak.Config) {
		c.Policy = map[apikey.Environment]leak.Action{apikey.EnvLive: leak.Disable}
	})
	d, dsecret := g.create(apikey.EnvLive, "acme")
	_, err = g.store.Update(ctx, d.ID, func(k *apikey.Key) error { k.Disabled = true; return nil })
	require.NoError(t, err)
	body = reportOf(dsecret, "kg_live_random")
	g.send(body, map[string]string{leak.HeaderKeyID: g.github.id, leak.HeaderSignature: g.github.sign(t, body)})
	assert.Len(t, g.events(), 1, "a disabled key's leak is recorded")
	assert.Len(t, g.leaks(), 1, "and its owner told")
}
