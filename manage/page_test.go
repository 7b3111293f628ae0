package manage_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// secretIn returns the text of <code id="secret">, "" if none.
func secretIn(body string) string {
	m := regexp.MustCompile(`<code id="secret"[^>]*>([^<]*)</code>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestPageList: the list shows the caller's keys with the DOM the browser
// test drives, and usage totals; an empty list says so.
func TestPageList(t *testing.T) {
	e := newEnv(t)
	w := e.do("GET", base+"/", "acme", "")
	require.Equal(t, 200, w.Code)
	body := w.Body.String()
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	assert.Contains(t, body, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
	assert.Contains(t, body, `<h1>API keys</h1>`)
	assert.Contains(t, body, `id="no-keys"`)
	assert.Contains(t, body, `<a id="new-key-link" class="button" href="/settings/api-keys/new">New API key</a>`)
	assert.NotContains(t, body, `<table id="keys">`)

	k, _ := e.key("acme", "Zapier", "read", "write")
	e.key("globex", "Not yours")
	require.NoError(t, e.store.RecordUsage(t.Context(), "", []apikey.Usage{{KeyID: k.ID, Count: 12, LastUsed: time.Now()}}))
	body = e.do("GET", base+"/", "acme", "").Body.String()
	assert.NotContains(t, body, `id="no-keys"`)
	assert.Contains(t, body, `<table id="keys">`)
	assert.Contains(t, body, `<tr data-key-id="`+k.ID+`">`)
	for class, text := range map[string]string{
		"name": "Zapier", "hint": k.Hint, "scopes": "read write", "environment": "live", "expires": "Never",
	} {
		assert.Regexp(t, `<td class="`+class+`"[^>]*>`+regexp.QuoteMeta(text)+`</td>`, body, class)
	}
	for _, class := range []string{"created", "last-used", "state"} {
		assert.Contains(t, body, `<td class="`+class+`"`)
	}
	assert.Contains(t, body, `<span class="state state-active">active</span>`)
	assert.Contains(t, body, `class="edit" href="/settings/api-keys/keys/`+k.ID+`"`)
	assert.Contains(t, body, `<strong id="usage-live">12</strong>`)
	assert.Contains(t, body, `<strong id="usage-test">0</strong>`)
	assert.NotContains(t, body, "Not yours", "another owner's key")
	assert.NotContains(t, body, "<script>", "no inline script")
	assert.NotContains(t, body, "style=", "no inline style")
}

// TestPageEscapes: a key's name is text, never markup.
func TestPageEscapes(t *testing.T) {
	e := newEnv(t)
	k, _ := e.key("acme", `<script>alert(1)</script>`)
	for _, target := range []string{base + "/", base + "/keys/" + k.ID} {
		body := e.do("GET", target, "acme", "").Body.String()
		assert.NotContains(t, body, `<script>alert(1)</script>`, target)
		assert.Contains(t, body, `&lt;script&gt;alert(1)&lt;/script&gt;`, target)
	}
}

// TestPageCreate: the form, the secret shown once on a no-store page, and
// never again.
func TestPageCreate(t *testing.T) {
	e := newEnv(t)
	body := e.do("GET", base+"/new", "acme", "").Body.String()
	for _, s := range []string{
		`<form id="new-key" method="post" action="/settings/api-keys/keys">`,
		`<input id="name" name="name"`,
		`<input type="checkbox" name="scope" value="read" id="scope-read">`,
		`<label for="scope-read">read</label>`,
		`<input type="checkbox" name="scope" value="admin" id="scope-admin">`,
		`<select id="environment" name="environment">`,
		`<option value="live" selected>`,
		`<option value="test">`,
		`<input id="expires" name="expires" type="date"`,
		`<button id="create" type="submit">`,
	} {
		assert.Contains(t, body, s)
	}

	w := e.form(base+"/keys", "acme", "name=Zapier&scope=read&scope=write&environment=test&expires="+time.Now().AddDate(0, 1, 0).Format(time.DateOnly))
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.Empty(t, w.Header().Get("Set-Cookie"))
	assert.Empty(t, w.Header().Get("Location"))
	body = w.Body.String()
	secret := secretIn(body)
	require.Regexp(t, `^kg_test_[0-9A-Za-z]{36}$`, secret)
	assert.Equal(t, 1, strings.Count(body, secret), "the secret is on the page once")
	assert.Contains(t, body, `<button id="copy" type="button"`)
	assert.Contains(t, body, `id="copy-status" role="status" aria-live="polite"`)
	assert.Contains(t, body, `<a id="done" class="button secondary" href="/settings/api-keys/">Done</a>`)
	m := regexp.MustCompile(`<code id="secret-key-id">([^<]+)</code>`).FindStringSubmatch(body)
	require.NotNil(t, m)
	k, err := e.store.Get(t.Context(), m[1])
	require.NoError(t, err)
	assert.Equal(t, "Zapier", k.Name)
	assert.Equal(t, "acme", k.Owner)
	assert.Equal(t, apikey.EnvTest, k.Environment)
	assert.Equal(t, []apikey.Scope{"read", "write"}, k.Scopes)
	assert.WithinDuration(t, time.Now().AddDate(0, 1, 1), k.ExpiresAt, 25*time.Hour, "the end of the chosen day")

	for _, target := range []string{base + "/", base + "/keys/" + k.ID, base + "/new", base + "/api/keys", base + "/api/keys/" + k.ID} {
		assert.NotContains(t, e.do("GET", target, "acme", "").Body.String(), secret, target)
	}
}

// TestPageFormErrors: bad input re-renders the form with #error, 400,
// keeping what was entered.
func TestPageFormErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ name, form, msg string }{
		{"no name", "name=&scope=read", "name"},
		{"blank name", "name=+++", "name"},
		{"long name", "name=" + strings.Repeat("n", 201), "too long"},
		{"unoffered scope", "name=x&scope=billing", "billing"},
		{"bad environment", "name=x&environment=prod", "live or the test"},
		{"bad date", "name=x&expires=tomorrow", "YYYY-MM-DD"},
		{"past date", "name=x&expires=2001-01-01", "past"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := e.form(base+"/keys", "acme", c.form)
			require.Equal(t, 400, w.Code, w.Body.String())
			body := w.Body.String()
			assert.Regexp(t, `<p id="error" role="alert">[^<]*`+regexp.QuoteMeta(c.msg), body)
			assert.Contains(t, body, `<form id="new-key"`)
			assert.Empty(t, secretIn(body))
		})
	}
	w := e.form(base+"/keys", "acme", "name=&scope=write&environment=test")
	body := w.Body.String()
	assert.Contains(t, body, `id="scope-write" checked`, "the entered values are kept")
	assert.Contains(t, body, `<option value="test" selected>`)
	list, err := e.store.List(t.Context(), apikey.Filter{})
	require.NoError(t, err)
	assert.Empty(t, list)
}

// TestPageKey: the key's page and each of its forms: save, disable,
// enable, roll (the successor's secret, once), revoke with confirmation.
func TestPageKey(t *testing.T) {
	e := newEnv(t)
	k, _ := e.key("acme", "ci", "read")
	page := base + "/keys/" + k.ID
	body := e.do("GET", page, "acme", "").Body.String()
	for _, s := range []string{
		`<form id="edit-key" method="post" action="` + page + `">`,
		`<input id="name" name="name"`, `value="ci"`,
		`<input type="checkbox" name="scope" value="read" id="scope-read" checked>`,
		`<input type="checkbox" name="scope" value="write" id="scope-write">`,
		`<input id="expires" name="expires" type="date"`,
		`<button id="save" type="submit">`,
		`<form id="roll-form" method="post" action="` + page + `/roll">`,
		`<input id="grace" name="grace_hours" type="number" inputmode="numeric" value="24">`,
		`<button id="roll"`,
		`<form id="disable-form" method="post" action="` + page + `/disable">`,
		`<button id="disable"`,
		`<form id="revoke-form" method="post" action="` + page + `/revoke">`,
		`<button id="revoke"`,
	} {
		assert.Contains(t, body, s)
	}
	assert.NotContains(t, body, `id="enable-form"`)

	// Save.
	day := time.Now().AddDate(0, 2, 0).Format(time.DateOnly)
	w := e.form(page, "acme", "name=ci-2&scope=write&scope=admin&expires="+day)
	require.Equal(t, 303, w.Code, w.Body.String())
	assert.Equal(t, page, w.Header().Get("Location"))
	got, err := e.store.Get(t.Context(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, "ci-2", got.Name)
	assert.ElementsMatch(t, []apikey.Scope{"write", "admin"}, got.Scopes)
	body = e.do("GET", page, "acme", "").Body.String()
	assert.Contains(t, body, `value="`+day+`"`, "the expiry field shows the chosen day")
	// Saved again unchanged: the expiry stays to the second.
	exp := got.ExpiresAt
	require.Equal(t, 303, e.form(page, "acme", "name=ci-2&scope=write&scope=admin&expires="+day).Code)
	got, _ = e.store.Get(t.Context(), k.ID)
	assert.Equal(t, exp, got.ExpiresAt)
	// An empty date clears the expiry.
	require.Equal(t, 303, e.form(page, "acme", "name=ci-2&scope=write&expires=").Code)
	got, _ = e.store.Get(t.Context(), k.ID)
	assert.True(t, got.ExpiresAt.IsZero())
	// Save errors.
	w = e.form(page, "acme", "name=&scope=write")
	assert.Equal(t, 400, w.Code)
	assert.Contains(t, w.Body.String(), `<p id="error" role="alert">`)
	assert.Contains(t, w.Body.String(), `<form id="edit-key"`)

	// Disable, enable.
	w = e.form(page+"/disable", "acme", "")
	require.Equal(t, 303, w.Code)
	assert.Equal(t, page, w.Header().Get("Location"))
	body = e.do("GET", page, "acme", "").Body.String()
	assert.Contains(t, body, `<form id="enable-form" method="post" action="`+page+`/enable">`)
	assert.Contains(t, body, `<button id="enable"`)
	assert.NotContains(t, body, `id="disable-form"`)
	require.Equal(t, 303, e.form(page+"/enable", "acme", "").Code)
	got, _ = e.store.Get(t.Context(), k.ID)
	assert.False(t, got.Disabled)

	// Roll.
	w = e.form(page+"/roll", "acme", "grace_hours=-2")
	assert.Equal(t, 400, w.Code)
	assert.Contains(t, w.Body.String(), `<p id="error" role="alert">`)
	w = e.form(page+"/roll", "acme", "grace_hours=2")
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	secret := secretIn(w.Body.String())
	require.Regexp(t, `^kg_live_`, secret)
	got, _ = e.store.Get(t.Context(), k.ID)
	require.NotEmpty(t, got.RolledTo)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), got.ExpiresAt, time.Minute)
	assert.Contains(t, w.Body.String(), `<code id="secret-key-id">`+got.RolledTo+`</code>`)
	// A rolled key shows its state, no forms.
	body = e.do("GET", page, "acme", "").Body.String()
	for _, id := range []string{"edit-key", "roll-form", "disable-form", "enable-form", "revoke-form"} {
		assert.NotContains(t, body, `id="`+id+`"`)
	}
	assert.Contains(t, body, `href="`+base+`/keys/`+got.RolledTo+`"`)
	assert.NotContains(t, body, secret)
	w = e.form(page+"/roll", "acme", "")
	assert.Equal(t, 409, w.Code, "rolled once")

	// Revoke the successor: a confirmation first.
	next := base + "/keys/" + got.RolledTo
	w = e.form(next+"/revoke", "acme", "")
	require.Equal(t, 200, w.Code)
	body = w.Body.String()
	assert.Contains(t, body, `<form id="confirm-revoke-form" method="post" action="`+next+`/revoke">`)
	assert.Contains(t, body, `<input type="hidden" name="confirm" value="yes">`)
	assert.Contains(t, body, `<button id="confirm-revoke"`)
	succ, _ := e.store.Get(t.Context(), got.RolledTo)
	assert.True(t, succ.RevokedAt.IsZero(), "not yet")
	w = e.form(next+"/revoke", "acme", "confirm=yes")
	require.Equal(t, 303, w.Code)
	assert.Equal(t, base+"/", w.Header().Get("Location"))
	succ, _ = e.store.Get(t.Context(), got.RolledTo)
	assert.False(t, succ.RevokedAt.IsZero())
	body = e.do("GET", next, "acme", "").Body.String()
	assert.Contains(t, body, `id="final-state"`)
	assert.NotContains(t, body, `id="edit-key"`)
}

// TestPageTenancy: another owner's key is a 404 page, for every form.
func TestPageTenancy(t *testing.T) {
	e := newEnv(t)
	k, _ := e.key("globex", "theirs")
	page := base + "/keys/" + k.ID
	assert.Equal(t, 404, e.do("GET", page, "acme", "").Code)
	for _, c := range []struct{ target, form string }{
		{page, "name=mine"}, {page + "/roll", ""}, {page + "/revoke", ""}, {page + "/revoke", "confirm=yes"},
		{page + "/disable", ""}, {page + "/enable", ""},
	} {
		w := e.form(c.target, "acme", c.form)
		assert.Equal(t, 404, w.Code, c.target)
		assert.Contains(t, w.Body.String(), `<p id="error" role="alert">`)
	}
	got, err := e.store.Get(t.Context(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, k, got)
	assert.Equal(t, 200, e.do("GET", page, "op", "").Code, "an operator sees it")
	assert.Equal(t, 401, e.do("GET", base+"/", "", "").Code)
	assert.Equal(t, 403, e.do("GET", base+"/", "nobody", "").Code)
	assert.Equal(t, 500, e.do("GET", base+"/", "broken", "").Code)
	assert.Equal(t, 404, e.do("GET", base+"/nope", "acme", "").Code)
}

// TestPageNoScopes: with a nil ScopeSet the page offers no scopes, and
// keeps the scopes a key holds when saving.
func TestPageNoScopes(t *testing.T) {
	e := newEnv(t, func(c *manage.Config) { c.Keys.Scopes = nil })
	body := e.do("GET", base+"/new", "acme", "").Body.String()
	assert.NotContains(t, body, `name="scope"`)
	w := e.do("POST", base+"/api/keys", "acme", `{"name":"x","scopes":["reports:read"]}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	id := object(t, w)["key"].(map[string]any)["id"].(string)
	require.Equal(t, 303, e.form(base+"/keys/"+id, "acme", url.Values{"name": {"y"}}.Encode()).Code)
	got, err := e.store.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, "y", got.Name)
	assert.Equal(t, []apikey.Scope{"reports:read"}, got.Scopes)
}
