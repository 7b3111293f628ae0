package manage_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// TestAPIErrors: every kind of bad request gets its status, as
// problem+json with a code, and the store is left alone.
func TestAPIErrors(t *testing.T) {
	e := newEnv(t)
	mine, _ := e.key("acme", "mine", "read")
	theirs, _ := e.key("globex", "theirs", "read")
	revoked, _ := e.key("acme", "revoked")
	require.NoError(t, e.store.Revoke(t.Context(), revoked.ID))
	rolled, _ := e.key("acme", "rolled")
	_, _, err := e.store.Roll(t.Context(), rolled.ID, time.Hour)
	require.NoError(t, err)
	keys := base + "/api/keys"
	for _, c := range []struct {
		name, method, target, body string
		status                     int
		code, detail               string
	}{
		{"unknown id", "GET", keys + "/key_nosuchkey", "", 404, "not_found", ""},
		{"unknown id, patch", "PATCH", keys + "/key_nosuchkey", `{"name":"x"}`, 404, "not_found", ""},
		{"unknown id, roll", "POST", keys + "/key_nosuchkey/roll", "", 404, "not_found", ""},
		{"unknown id, revoke", "POST", keys + "/key_nosuchkey/revoke", "", 404, "not_found", ""},
		{"unknown id, usage", "GET", keys + "/key_nosuchkey/usage", "", 404, "not_found", ""},
		{"another owner's key", "GET", keys + "/" + theirs.ID, "", 404, "not_found", ""},
		{"another owner's key, patch", "PATCH", keys + "/" + theirs.ID, `{"name":"mine now"}`, 404, "not_found", ""},
		{"another owner's key, roll", "POST", keys + "/" + theirs.ID + "/roll", "", 404, "not_found", ""},
		{"another owner's key, revoke", "POST", keys + "/" + theirs.ID + "/revoke", "", 404, "not_found", ""},
		{"another owner's key, disable", "POST", keys + "/" + theirs.ID + "/disable", "", 404, "not_found", ""},
		{"another owner's key, usage", "GET", keys + "/" + theirs.ID + "/usage", "", 404, "not_found", ""},
		{"another owner's keys, list", "GET", keys + "?owner=globex", "", 400, "invalid_request", "owner"},
		{"another owner's key as after", "GET", keys + "?after=" + theirs.ID, "", 400, "invalid_request", "after"},
		{"a key for another owner", "POST", keys, `{"name":"x","owner":"globex"}`, 400, "invalid_request", "owner"},
		{"undeclared scope", "POST", keys, `{"name":"x","scopes":["billing"]}`, 400, "invalid_request", `"billing"`},
		{"malformed scope", "POST", keys, `{"name":"x","scopes":["Not A Scope"]}`, 400, "invalid_request", "scope"},
		{"undeclared scope, patch", "PATCH", keys + "/" + mine.ID, `{"scopes":["billing"]}`, 400, "invalid_request", `"billing"`},
		{"no name", "POST", keys, `{"scopes":["read"]}`, 400, "invalid_request", "name"},
		{"empty name, patch", "PATCH", keys + "/" + mine.ID, `{"name":""}`, 400, "invalid_request", "name"},
		{"long name", "POST", keys, `{"name":"` + strings.Repeat("n", 201) + `"}`, 400, "invalid_request", "name"},
		{"unknown environment", "POST", keys, `{"name":"x","environment":"staging"}`, 400, "invalid_request", "environment"},
		{"expiry in the past", "POST", keys, `{"name":"x","expires_at":"2001-01-01T00:00:00Z"}`, 400, "invalid_request", "expires_at"},
		{"expiry not RFC 3339", "POST", keys, `{"name":"x","expires_at":"tomorrow"}`, 400, "invalid_request", ""},
		{"bad JSON", "POST", keys, `{"name":`, 400, "invalid_request", "JSON"},
		{"not JSON", "POST", keys, `name=x`, 400, "invalid_request", "JSON"},
		{"an array", "POST", keys, `["x"]`, 400, "invalid_request", "object"},
		{"wrong type", "POST", keys, `{"name":42}`, 400, "invalid_request", "name"},
		{"unknown field", "POST", keys, `{"name":"x","secret":"kg_live_x"}`, 400, "invalid_request", `unknown field "secret"`},
		{"unknown field, patch", "PATCH", keys + "/" + mine.ID, `{"owner":"globex"}`, 400, "invalid_request", `unknown field "owner"`},
		{"unknown field, roll", "POST", keys + "/" + mine.ID + "/roll", `{"grace":"1h"}`, 400, "invalid_request", `unknown field "grace"`},
		{"two objects", "POST", keys, `{"name":"x"}{"name":"y"}`, 400, "invalid_request", "more"},
		{"empty body", "POST", keys, "", 400, "invalid_request", "empty"},
		{"oversized body", "POST", keys, `{"name":"x","metadata":{"a":"` + strings.Repeat("a", 70<<10) + `"}}`, 413, "too_large", "65536"},
		{"negative grace", "POST", keys + "/" + mine.ID + "/roll", `{"grace_seconds":-1}`, 400, "invalid_request", "grace_seconds"},
		{"huge grace", "POST", keys + "/" + mine.ID + "/roll", `{"grace_seconds":9223372036854775807}`, 400, "invalid_request", "grace_seconds"},
		{"fractional grace", "POST", keys + "/" + mine.ID + "/roll", `{"grace_seconds":1.5}`, 400, "invalid_request", "grace_seconds"},
		{"limit zero", "GET", keys + "?limit=0", "", 400, "invalid_request", "limit"},
		{"limit too big", "GET", keys + "?limit=201", "", 400, "invalid_request", "limit"},
		{"limit not a number", "GET", keys + "?limit=ten", "", 400, "invalid_request", "limit"},
		{"limit twice", "GET", keys + "?limit=1&limit=2", "", 400, "invalid_request", "limit"},
		{"unknown state", "GET", keys + "?state=dead", "", 400, "invalid_request", "state"},
		{"unknown environment, list", "GET", keys + "?environment=prod", "", 400, "invalid_request", "environment"},
		{"unknown parameter", "GET", keys + "?sort=name", "", 400, "invalid_request", "sort"},
		{"unknown after", "GET", keys + "?after=key_nosuchkey", "", 400, "invalid_request", "after"},
		{"bad audit limit", "GET", base + "/api/audit?limit=-1", "", 400, "invalid_request", "limit"},
		{"rolling a rolled key", "POST", keys + "/" + rolled.ID + "/roll", "", 409, "rolled", ""},
		{"editing a rolled key", "PATCH", keys + "/" + rolled.ID, `{"name":"x"}`, 409, "rolled", ""},
		{"rolling a revoked key", "POST", keys + "/" + revoked.ID + "/roll", "", 409, "revoked", ""},
		{"editing a revoked key", "PATCH", keys + "/" + revoked.ID, `{"name":"x"}`, 409, "revoked", ""},
		{"enabling a revoked key", "POST", keys + "/" + revoked.ID + "/enable", "", 409, "revoked", ""},
		{"unknown route", "GET", base + "/api/nope", "", 404, "not_found", ""},
		{"wrong method", "DELETE", keys + "/" + mine.ID, "", 405, "method_not_allowed", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := e.do(c.method, c.target, "acme", c.body)
			require.Equal(t, c.status, w.Code, w.Body.String())
			assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			p := object(t, w)
			assert.Equal(t, c.code, p["code"])
			assert.Equal(t, float64(c.status), p["status"])
			assert.NotEmpty(t, p["title"])
			assert.NotEmpty(t, p["type"])
			assert.Contains(t, p["detail"], c.detail)
			assert.NotContains(t, p["detail"], "apikey:", "the detail speaks to users")
		})
	}
	// Nothing changed: the keys are as they were, theirs untouched.
	got, err := e.store.Get(t.Context(), theirs.ID)
	require.NoError(t, err)
	assert.Equal(t, theirs, got)
	list, err := e.store.List(t.Context(), apikey.Filter{})
	require.NoError(t, err)
	assert.Len(t, list, 5, "4 keys and the successor of the rolled one")
	events, err := e.audit.Events(t.Context(), manage.EventFilter{})
	require.NoError(t, err)
	assert.Empty(t, events, "a refused action is not recorded")
}

// TestAPICallers: who asks decides 401, 403 and 500, in the configured
// style for 401 and 403; the 500 says nothing and is logged.
func TestAPICallers(t *testing.T) {
	flat, err := apikey.NewErrorStyle(apikey.ShapeFlat, apikey.Messages{Unauthorized: "Sign in first."})
	require.NoError(t, err)
	for _, c := range []struct {
		name  string
		style apikey.ErrorStyle
		who   string
		want  int
		body  map[string]any
	}{
		{"unauthenticated, default style", nil, "", 401, map[string]any{
			"type": "about:blank", "title": "Unauthorized", "status": 401.0, "detail": "A valid API key is required.",
		}},
		{"unauthenticated, flat style", flat, "", 401, map[string]any{"error": "unauthorized", "message": "Sign in first."}},
		{"forbidden, flat style", flat, "nobody", 403, map[string]any{"error": "forbidden", "message": "The API key does not have the 'required' scope this request needs."}},
		{"forbidden, default style", nil, "nobody", 403, nil},
		{"a failing Caller", nil, "broken", 500, map[string]any{
			"type": "about:blank", "title": "Internal Server Error", "status": 500.0,
			"detail": "The request could not be completed.", "code": "internal",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *manage.Config) { cfg.Style = c.style })
			for _, rt := range []struct{ method, target, body string }{
				{"GET", base + "/api/keys", ""},
				{"POST", base + "/api/keys", `{"name":"x"}`},
				{"GET", base + "/api/usage", ""},
				{"GET", base + "/api/audit", ""},
			} {
				w := e.do(rt.method, rt.target, c.who, rt.body)
				require.Equal(t, c.want, w.Code, "%s %s: %s", rt.method, rt.target, w.Body.String())
				if c.body != nil {
					assert.Equal(t, c.body, object(t, w))
				}
				if c.want == 401 {
					assert.NotEmpty(t, w.Header().Get("WWW-Authenticate"))
				}
			}
			if c.want == 500 {
				assert.Contains(t, e.logs.String(), "session store unreachable")
			}
			list, err := e.store.List(t.Context(), apikey.Filter{})
			require.NoError(t, err)
			assert.Empty(t, list)
		})
	}
	// A Caller that returns no ID, or a tenant without an owner (which
	// would see every key), is a bug of the host: 500.
	for _, bad := range []manage.Caller{{Owner: "acme"}, {ID: "user_1"}} {
		e := newEnv(t, func(cfg *manage.Config) {
			cfg.Caller = func(*http.Request) (manage.Caller, error) { return bad, nil }
		})
		e.key("acme", "ci")
		w := e.do("GET", base+"/api/keys", "acme", "")
		assert.Equal(t, 500, w.Code)
		assert.NotContains(t, w.Body.String(), "ci")
	}
}

// TestAPILifecycle drives every operation as a tenant: create, read,
// list, edit, disable, enable, roll, revoke, usage; the secret appears in
// the create and roll answers only.
func TestAPILifecycle(t *testing.T) {
	e := newEnv(t)
	keys := base + "/api/keys"

	w := e.do("POST", keys, "acme", `{"name":"ci","environment":"test","scopes":["read"],"metadata":{"team":"data"}}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	created := object(t, w)
	secret := created["secret"].(string)
	require.Regexp(t, `^kg_test_[0-9A-Za-z]{36}$`, secret)
	assert.Equal(t, 1, strings.Count(w.Body.String(), secret), "the secret is in the answer once")
	k := created["key"].(map[string]any)
	id := k["id"].(string)
	assert.Equal(t, "ci", k["name"])
	assert.Equal(t, "acme", k["owner"], "a tenant's key is its own")
	assert.Equal(t, "test", k["environment"])
	assert.Equal(t, "active", k["state"])
	assert.Equal(t, []any{"read"}, k["scopes"])
	assert.Equal(t, map[string]any{"team": "data"}, k["metadata"])
	assert.NotContains(t, k, "secret")

	// The secret works with the middleware on the same store.
	mw, err := apikey.New(apikey.Config{Keys: e.keys, Store: e.store})
	require.NoError(t, err)
	got, err := mw.Verify(t.Context(), secret)
	require.NoError(t, err)
	assert.Equal(t, id, got.ID)

	var reads []string // every answer that must not hold a secret
	get := func(target string) map[string]any {
		t.Helper()
		w := e.do("GET", target, "acme", "")
		require.Equal(t, 200, w.Code, w.Body.String())
		reads = append(reads, w.Body.String())
		return object(t, w)
	}
	assert.Equal(t, id, get(keys + "/" + id)["id"])
	list := get(keys)
	assert.Len(t, list["keys"], 1)
	assert.Equal(t, "", list["next"])

	w = e.do("PATCH", keys+"/"+id, "acme", `{"name":"ci-2","scopes":["read","write"],"expires_at":"2999-01-01T00:00:00Z"}`)
	require.Equal(t, 200, w.Code, w.Body.String())
	k = object(t, w)
	assert.Equal(t, "ci-2", k["name"])
	assert.Equal(t, []any{"read", "write"}, k["scopes"])
	assert.Equal(t, "2999-01-01T00:00:00Z", k["expires_at"])
	assert.Equal(t, map[string]any{"team": "data"}, k["metadata"], "an absent field is kept")

	w = e.do("PATCH", keys+"/"+id, "acme", `{"expires_at":null,"metadata":{}}`)
	require.Equal(t, 200, w.Code, w.Body.String())
	k = object(t, w)
	assert.NotContains(t, k, "expires_at", "null clears the expiry")
	assert.NotContains(t, k, "metadata")
	assert.Equal(t, "ci-2", k["name"])

	w = e.do("POST", keys+"/"+id+"/disable", "acme", "")
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "disabled", object(t, w)["state"])
	_, err = mw.Verify(t.Context(), secret)
	assert.Error(t, err, "a disabled key is refused")
	w = e.do("POST", keys+"/"+id+"/enable", "acme", "{}")
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "active", object(t, w)["state"])
	_, err = mw.Verify(t.Context(), secret)
	assert.NoError(t, err, "enabled again")

	require.NoError(t, e.store.RecordUsage(t.Context(), "", []apikey.Usage{{KeyID: id, Environment: apikey.EnvTest, Count: 7, LastUsed: time.Now()}}))
	u := get(keys + "/" + id + "/usage")
	assert.Equal(t, id, u["key_id"])
	assert.Equal(t, "test", u["environment"])
	assert.Equal(t, 7.0, u["requests"])
	assert.NotNil(t, u["last_used_at"])
	assert.Equal(t, map[string]any{"live": 0.0, "test": 7.0}, get(base+"/api/usage"))

	w = e.do("POST", keys+"/"+id+"/roll", "acme", `{"grace_seconds":3600}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	rolled := object(t, w)
	next := rolled["secret"].(string)
	assert.Equal(t, 1, strings.Count(w.Body.String(), next))
	assert.NotContains(t, w.Body.String(), secret, "a roll shows the successor's secret only")
	require.Regexp(t, `^kg_test_[0-9A-Za-z]{36}$`, next)
	assert.NotEqual(t, secret, next)
	successor := rolled["key"].(map[string]any)
	nextID := successor["id"].(string)
	assert.Equal(t, id, successor["rolled_from"])
	prev := rolled["previous"].(map[string]any)
	assert.Equal(t, id, prev["id"])
	assert.Equal(t, nextID, prev["rolled_to"])
	assert.Equal(t, "active", prev["state"], "in its grace period")
	exp, err := time.Parse(time.RFC3339, prev["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), exp, time.Minute)

	w = e.do("POST", keys+"/"+id+"/roll", "acme", "")
	assert.Equal(t, 409, w.Code, "a key is rolled once")

	for range 2 { // revoking twice is 200 again
		w = e.do("POST", keys+"/"+nextID+"/revoke", "acme", "")
		require.Equal(t, 200, w.Code, w.Body.String())
		assert.Equal(t, "revoked", object(t, w)["state"])
	}
	_, err = mw.Verify(t.Context(), next)
	assert.Error(t, err)

	for _, s := range []string{"", "?state=revoked", "?environment=test", "?state=active&limit=1"} {
		get(keys + s)
	}
	assert.Len(t, get(keys + "?state=revoked")["keys"], 1)
	assert.Len(t, get(keys + "?environment=live")["keys"], 0)
	for _, body := range reads {
		assert.NotContains(t, body, secret, "a read never shows a secret")
		assert.NotContains(t, body, next)
		assert.NotContains(t, body, `"secret"`)
	}
}

// TestAPIDefaultGrace: a roll without grace_seconds keeps the old key 24 h,
// or Config.Grace; grace_seconds 0 retires it at once.
func TestAPIDefaultGrace(t *testing.T) {
	for _, c := range []struct {
		name  string
		grace time.Duration
		body  string
		want  time.Duration
		state string
	}{
		{"default", 0, "", 24 * time.Hour, "active"},
		{"configured", 2 * time.Hour, "", 2 * time.Hour, "active"},
		{"no grace", 0, `{"grace_seconds":0}`, 0, "rolled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *manage.Config) { cfg.Grace = c.grace })
			k, _ := e.key("acme", "ci")
			w := e.do("POST", base+"/api/keys/"+k.ID+"/roll", "acme", c.body)
			require.Equal(t, 201, w.Code, w.Body.String())
			prev := object(t, w)["previous"].(map[string]any)
			assert.Equal(t, c.state, prev["state"])
			exp, err := time.Parse(time.RFC3339, prev["expires_at"].(string))
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now().Add(c.want), exp, time.Minute)
		})
	}
}

// TestAPIPages walks a listing page by page with after and next.
func TestAPIPages(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 7 {
		k, _ := e.key("acme", fmt.Sprintf("k%d", i))
		want = append(want, k.ID)
		e.key("globex", fmt.Sprintf("other%d", i))
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		target := base + "/api/keys?limit=3"
		if after != "" {
			target += "&after=" + after
		}
		w := e.do("GET", target, "acme", "")
		require.Equal(t, 200, w.Code, w.Body.String())
		var page struct {
			Keys []struct {
				ID    string `json:"id"`
				Owner string `json:"owner"`
			} `json:"keys"`
			Next string `json:"next"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
		for _, k := range page.Keys {
			assert.Equal(t, "acme", k.Owner)
			got = append(got, k.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	assert.Equal(t, want, got)
}

// TestAPIOperator: an operator sees every owner's keys, may filter by
// owner and create keys for an owner.
func TestAPIOperator(t *testing.T) {
	e := newEnv(t)
	a, _ := e.key("acme", "a")
	g, _ := e.key("globex", "g")
	w := e.do("GET", base+"/api/keys", "op", "")
	require.Equal(t, 200, w.Code)
	assert.Len(t, object(t, w)["keys"], 2)
	w = e.do("GET", base+"/api/keys?owner=globex", "op", "")
	require.Equal(t, 200, w.Code)
	keys := object(t, w)["keys"].([]any)
	require.Len(t, keys, 1)
	assert.Equal(t, g.ID, keys[0].(map[string]any)["id"])
	assert.Equal(t, 200, e.do("GET", base+"/api/keys/"+a.ID, "op", "").Code)
	w = e.do("POST", base+"/api/keys", "op", `{"name":"for globex","owner":"globex"}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	assert.Equal(t, "globex", object(t, w)["key"].(map[string]any)["owner"])
	w = e.do("POST", base+"/api/keys/"+a.ID+"/disable", "op", "")
	require.Equal(t, 200, w.Code)
	require.NoError(t, e.store.RecordUsage(t.Context(), "", []apikey.Usage{{KeyID: a.ID, Count: 2}, {KeyID: g.ID, Count: 3}}))
	w = e.do("GET", base+"/api/usage", "op", "")
	assert.Equal(t, map[string]any{"live": 5.0, "test": 0.0}, object(t, w))
	w = e.do("GET", base+"/api/usage?owner=acme", "op", "")
	assert.Equal(t, map[string]any{"live": 2.0, "test": 0.0}, object(t, w))
	w = e.do("GET", base+"/api/usage", "globex", "")
	assert.Equal(t, map[string]any{"live": 3.0, "test": 0.0}, object(t, w), "a tenant's own keys only")
}

// TestAPIOpenAPIServed: the document is served without a caller.
func TestAPIOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	w := e.do("GET", base+"/api/openapi.json", "", "")
	require.Equal(t, 200, w.Code)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	assert.Equal(t, "3.1.0", object(t, w)["openapi"])
}
