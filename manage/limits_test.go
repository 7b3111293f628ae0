package manage_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/limit"
	"github.com/keygate/apikey/manage"
)

// viewLimits decodes the limits of a key as the API shows it.
func viewLimits(t *testing.T, key map[string]any) []any {
	t.Helper()
	l, ok := key["limits"].([]any)
	require.True(t, ok, "limits is an array: %v", key["limits"])
	return l
}

// TestAPILimitsRoundTrip: an operator creates a key with limits, reads
// them back as it sent them, replaces and clears them.
func TestAPILimitsRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name  string
		json  string // a limit as sent
		want  apikey.Limit
		shown string // as shown, when not as sent
	}{
		{"rate", `{"name":"requests","count":100,"per_seconds":60,"burst":200}`,
			apikey.Limit{Name: "requests", Count: 100, Per: time.Minute, Burst: 200},
			`{"name":"requests","kind":"rate","count":100,"per_seconds":60,"burst":200}`},
		{"fast rate", `{"name":"burst","kind":"rate","count":5,"per_seconds":0.25}`,
			apikey.Limit{Name: "burst", Count: 5, Per: 250 * time.Millisecond}, ""},
		{"quota", `{"name":"monthly","kind":"quota","count":10000,"period":"month","zone":"America/New_York","owner":true}`,
			apikey.Limit{Name: "monthly", Count: 10000, Period: "month", Zone: "America/New_York", Owner: true}, ""},
		{"credits", `{"name":"render","kind":"credits","count":500,"period":"day","credits":true}`,
			apikey.Limit{Name: "render", Count: 500, Period: "day", Credits: true}, ""},
		{"unlimited", `{"name":"search","kind":"unlimited","count":-1}`, apikey.Limit{Name: "search", Count: -1}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			keys := base + "/api/keys"
			shown := c.shown
			if shown == "" {
				shown = c.json
			}
			w := e.do("POST", keys, "op", `{"name":"ci","owner":"acme","limits":[`+c.json+`]}`)
			require.Equal(t, 201, w.Code, w.Body.String())
			k := object(t, w)["key"].(map[string]any)
			id := k["id"].(string)
			sent, _ := json.Marshal(viewLimits(t, k)[0])
			assert.JSONEq(t, shown, string(sent))
			got, err := e.store.Get(t.Context(), id)
			require.NoError(t, err)
			assert.Equal(t, []apikey.Limit{c.want}, got.Limits)

			// GET shows them as created; what GET shows can be sent back.
			w = e.do("GET", keys+"/"+id, "acme", "")
			require.Equal(t, 200, w.Code)
			back, _ := json.Marshal(viewLimits(t, object(t, w)))
			w = e.do("PATCH", keys+"/"+id, "op", `{"limits":`+string(back)+`}`)
			require.Equal(t, 200, w.Code, w.Body.String())
			got, _ = e.store.Get(t.Context(), id)
			assert.Equal(t, []apikey.Limit{c.want}, got.Limits)

			// PATCH replaces the list; other fields are kept.
			w = e.do("PATCH", keys+"/"+id, "op", `{"limits":[{"name":"other","count":1,"per_seconds":1}]}`)
			require.Equal(t, 200, w.Code, w.Body.String())
			assert.Len(t, viewLimits(t, object(t, w)), 1)
			got, _ = e.store.Get(t.Context(), id)
			assert.Equal(t, []apikey.Limit{{Name: "other", Count: 1, Per: time.Second}}, got.Limits)
			assert.Equal(t, "ci", got.Name)

			// A PATCH without limits keeps them; [] and null clear them.
			require.Equal(t, 200, e.do("PATCH", keys+"/"+id, "op", `{"name":"ci-2"}`).Code)
			got, _ = e.store.Get(t.Context(), id)
			assert.Len(t, got.Limits, 1)
			for _, clear := range []string{`[]`, `null`} {
				require.Equal(t, 200, e.do("PATCH", keys+"/"+id, "op", `{"limits":[{"name":"x","count":1,"period":"day"}]}`).Code)
				w = e.do("PATCH", keys+"/"+id, "op", `{"limits":`+clear+`}`)
				require.Equal(t, 200, w.Code, w.Body.String())
				assert.Empty(t, viewLimits(t, object(t, w)), clear)
				got, _ = e.store.Get(t.Context(), id)
				assert.Empty(t, got.Limits, clear)
			}
		})
	}
}

// TestAPILimitsInvalid: an invalid limit is a 400 that says what is
// wrong, on create and on PATCH, and nothing changes.
func TestAPILimitsInvalid(t *testing.T) {
	e := newEnv(t)
	k, _ := e.key("acme", "ci")
	own := []apikey.Limit{{Name: "requests", Count: 10, Per: time.Second}}
	k, err := e.store.Update(t.Context(), k.ID, func(k *apikey.Key) error { k.Limits = own; return nil })
	require.NoError(t, err)
	for _, c := range []struct{ name, limits, detail string }{
		{"bad name", `[{"name":"Requests","count":1,"per_seconds":1}]`, `limit name "Requests"`},
		{"no kind", `[{"name":"x","count":1}]`, `limit "x"`},
		{"rate and period", `[{"name":"x","count":1,"per_seconds":1,"period":"day"}]`, "not both"},
		{"per too short", `[{"name":"x","count":1,"per_seconds":0.0001}]`, "outside"},
		{"per huge", `[{"name":"x","count":1,"per_seconds":1e300}]`, "per_seconds"},
		{"negative per", `[{"name":"x","count":1,"per_seconds":-1}]`, "per_seconds"},
		{"bad period", `[{"name":"x","count":1,"period":"week"}]`, `"week"`},
		{"bad zone", `[{"name":"x","count":1,"period":"day","zone":"Mars/Olympus"}]`, "Mars/Olympus"},
		{"count too big", `[{"name":"x","count":9007199254740991,"period":"day"}]`, "more than"},
		{"twice", `[{"name":"x","count":1,"period":"day"},{"name":"x","count":2,"period":"day"}]`, "twice"},
		{"wrong kind", `[{"name":"x","kind":"quota","count":1,"per_seconds":1}]`, `kind "quota"`},
		{"unknown field", `[{"name":"x","count":1,"per":"1m"}]`, `unknown field "per"`},
		{"not an array", `{"name":"x"}`, "limits"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, req := range []struct{ method, target, body string }{
				{"POST", base + "/api/keys", `{"name":"new","limits":` + c.limits + `}`},
				{"PATCH", base + "/api/keys/" + k.ID, `{"name":"renamed","limits":` + c.limits + `}`},
			} {
				w := e.do(req.method, req.target, "op", req.body)
				require.Equal(t, 400, w.Code, "%s: %s", req.method, w.Body.String())
				p := object(t, w)
				assert.Equal(t, "invalid_request", p["code"])
				assert.Contains(t, p["detail"], c.detail)
				assert.NotContains(t, p["detail"], "KeySpec", "the detail speaks to users")
			}
		})
	}
	got, err := e.store.Get(t.Context(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, k, got)
	list, err := e.store.List(t.Context(), apikey.Filter{})
	require.NoError(t, err)
	assert.Len(t, list, 1)
	events, err := e.audit.Events(t.Context(), manage.EventFilter{})
	require.NoError(t, err)
	assert.Empty(t, events)
}

// TestAPILimitsTenant: a customer reads its keys' limits but cannot set
// them (403), on create or PATCH, even to what they are; another owner's
// key is still unknown (404).
func TestAPILimitsTenant(t *testing.T) {
	e := newEnv(t)
	keys := base + "/api/keys"
	w := e.do("POST", keys, "op", `{"name":"ci","owner":"acme","limits":[{"name":"requests","count":10,"per_seconds":1}]}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	k := object(t, w)["key"].(map[string]any)
	id := k["id"].(string)
	theirs, _ := e.key("globex", "theirs")
	before, err := e.store.Get(t.Context(), id)
	require.NoError(t, err)
	raise := `{"limits":[{"name":"requests","count":1000000,"per_seconds":1}]}`
	for _, c := range []struct {
		name, method, target, body string
		status                     int
		code                       string
	}{
		{"create with limits", "POST", keys, `{"name":"mine","limits":[{"name":"requests","count":1,"per_seconds":1}]}`, 403, "forbidden"},
		{"raise", "PATCH", keys + "/" + id, raise, 403, "forbidden"},
		{"lift", "PATCH", keys + "/" + id, `{"limits":[{"name":"requests","count":-1}]}`, 403, "forbidden"},
		{"clear", "PATCH", keys + "/" + id, `{"limits":[]}`, 403, "forbidden"},
		{"null", "PATCH", keys + "/" + id, `{"limits":null}`, 403, "forbidden"},
		{"the same", "PATCH", keys + "/" + id, `{"limits":[{"name":"requests","count":10,"per_seconds":1}]}`, 403, "forbidden"},
		{"with a name", "PATCH", keys + "/" + id, `{"name":"x","limits":[]}`, 403, "forbidden"},
		{"invalid", "PATCH", keys + "/" + id, `{"limits":[{"name":"X","count":1}]}`, 403, "forbidden"},
		{"another owner's key", "PATCH", keys + "/" + theirs.ID, raise, 404, "not_found"},
		{"another owner's limits", "GET", keys + "/" + theirs.ID + "/limits", "", 404, "not_found"},
		{"no such key's limits", "GET", keys + "/key_nosuchkey/limits", "", 404, "not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := e.do(c.method, c.target, "acme", c.body)
			require.Equal(t, c.status, w.Code, w.Body.String())
			assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			assert.Equal(t, c.code, object(t, w)["code"])
		})
	}
	got, err := e.store.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, before, got, "nothing changed")
	list, err := e.store.List(t.Context(), apikey.Filter{Owner: "acme"})
	require.NoError(t, err)
	assert.Len(t, list, 1, "no key was created")

	// It reads them: on the key, and without a limiter, its own with
	// nothing known of what remains.
	w = e.do("GET", keys+"/"+id, "acme", "")
	require.Equal(t, 200, w.Code)
	assert.Equal(t, []any{map[string]any{"name": "requests", "kind": "rate", "count": 10.0, "per_seconds": 1.0}}, viewLimits(t, object(t, w)))
	w = e.do("GET", keys+"/"+id+"/limits", "acme", "")
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.JSONEq(t, `{"key_id":"`+id+`","effective":false,"limits":[
		{"name":"requests","kind":"rate","count":10,"per_seconds":1,"remaining":null,"reset_at":null}]}`, w.Body.String())
	// Its other changes pass.
	require.Equal(t, 200, e.do("PATCH", keys+"/"+id, "acme", `{"name":"renamed"}`).Code)
}

// TestAPILimitsRemaining: with a limiter, GET limits shows the effective
// limits, the environment's defaults with the key's own over them, and
// what remains of each falls as the key is used, until its reset.
func TestAPILimitsRemaining(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	lim, err := limit.New(limit.Config{
		Live: []apikey.Limit{
			{Name: "requests", Count: 10, Per: time.Minute},
			{Name: "search", Count: 5, Per: time.Second},
			{Name: "monthly", Count: 1000, Period: "month"},
		},
		Clock: func() time.Time { return now },
	})
	require.NoError(t, err)
	e := newEnv(t, func(c *manage.Config) { c.Limits = lim })
	keys := base + "/api/keys"
	w := e.do("POST", keys, "op", `{"name":"ci","owner":"acme","limits":[
		{"name":"requests","count":60,"per_seconds":60},
		{"name":"search","count":-1},
		{"name":"render","count":50,"credits":true}]}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	id := object(t, w)["key"].(map[string]any)["id"].(string)
	k, err := e.store.Get(t.Context(), id)
	require.NoError(t, err)

	type state struct {
		Name      string     `json:"name"`
		Default   bool       `json:"default"`
		Remaining *int64     `json:"remaining"`
		ResetAt   *time.Time `json:"reset_at"`
	}
	read := func() []state {
		t.Helper()
		w := e.do("GET", keys+"/"+id+"/limits", "acme", "")
		require.Equal(t, 200, w.Code, w.Body.String())
		var out struct {
			KeyID     string  `json:"key_id"`
			Effective bool    `json:"effective"`
			Limits    []state `json:"limits"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
		assert.Equal(t, id, out.KeyID)
		assert.True(t, out.Effective)
		return out.Limits
	}
	n := func(v int64) *int64 { return &v }
	at := func(t time.Time) *time.Time { return &t }
	nextMonth := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, []state{
		{Name: "monthly", Default: true, Remaining: n(1000), ResetAt: at(nextMonth)},
		{Name: "requests", Remaining: n(60), ResetAt: at(now)},
		{Name: "render", Remaining: n(50)},
	}, read(), "whole: search is lifted, requests the key's own")

	for range 3 {
		ok, err := lim.Take(t.Context(), k, 1, nil)
		require.NoError(t, err)
		require.True(t, ok)
	}
	ok, err := lim.Take(t.Context(), k, 10, nil)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, []state{
		{Name: "monthly", Default: true, Remaining: n(987), ResetAt: at(nextMonth)},
		{Name: "requests", Remaining: n(47), ResetAt: at(now.Add(13 * time.Second))},
		{Name: "render", Remaining: n(37)},
	}, read(), "13 spent: each limit's remaining falls, the rate whole again in 13 s, the quota next month, the credits never")

	// Another owner's key's limits are unknown to a tenant; an operator
	// reads them.
	theirs, _ := e.key("globex", "theirs")
	assert.Equal(t, 404, e.do("GET", keys+"/"+theirs.ID+"/limits", "acme", "").Code)
	assert.Equal(t, 200, e.do("GET", keys+"/"+theirs.ID+"/limits", "op", "").Code)
}

// failingLimits is a limiter that cannot be reached.
type failingLimits struct{}

func (failingLimits) Status(context.Context, *apikey.Key) ([]limit.Status, error) {
	return nil, errors.New("redis: connection refused")
}

// TestLimitsUnavailable: a failing limiter is a logged 503 in the API;
// the page still shows the key and its own limits, and says so.
func TestLimitsUnavailable(t *testing.T) {
	e := newEnv(t, func(c *manage.Config) { c.Limits = failingLimits{} })
	k, _ := e.key("acme", "ci")
	_, err := e.store.Update(t.Context(), k.ID, func(k *apikey.Key) error {
		k.Limits = []apikey.Limit{{Name: "requests", Count: 10, Per: time.Second}}
		return nil
	})
	require.NoError(t, err)
	w := e.do("GET", base+"/api/keys/"+k.ID+"/limits", "acme", "")
	require.Equal(t, 503, w.Code, w.Body.String())
	assert.Equal(t, "unavailable", object(t, w)["code"])
	assert.NotContains(t, w.Body.String(), "redis")
	assert.Contains(t, e.logs.String(), "connection refused")

	w = e.do("GET", base+"/keys/"+k.ID, "acme", "")
	require.Equal(t, 200, w.Code)
	assert.Contains(t, w.Body.String(), `<tr data-limit="requests">`)
	assert.Contains(t, w.Body.String(), "What remains of these limits cannot be read now.")
	assert.NotContains(t, w.Body.String(), `class="remaining"`)
}

// TestPageLimits: the key's page shows its limits to operator and
// customer, with what remains when there is a limiter; only an operator
// gets the form, and only an operator's form is obeyed.
func TestPageLimits(t *testing.T) {
	now := time.Now()
	lim, err := limit.New(limit.Config{
		Live:  []apikey.Limit{{Name: "monthly", Count: 1000, Period: "month", Zone: "America/New_York", Owner: true}},
		Clock: func() time.Time { return now },
	})
	require.NoError(t, err)
	for _, c := range []struct {
		name      string
		limiter   manage.LimitStatus
		rows      []string
		remaining bool
	}{
		{"no limiter", nil, []string{
			`<td data-label="Limit">100 per minute, burst 200</td>`,
			`<td data-label="Limit">500 credits per day</td>`,
		}, false},
		{"a limiter", lim, []string{
			`<td data-label="Limit">100 per minute, burst 200</td>`,
			`<td data-label="Limit">500 credits per day</td>`,
			`<td data-label="Name"><span>monthly <span class="hint-text">(default)</span></span></td>`,
			`<td data-label="Kind">quota</td>`,
			`<td data-label="Limit">1000 per month in America/New_York, shared by owner</td>`,
			`<td class="remaining" data-label="Remaining">199</td>`,
			`<td class="remaining" data-label="Remaining">999</td>`,
			`<th scope="col">Resets</th>`,
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *manage.Config) {
				if c.limiter != nil {
					cfg.Limits = c.limiter
				}
			})
			k, _ := e.key("acme", "ci")
			own := []apikey.Limit{
				{Name: "requests", Count: 100, Per: time.Minute, Burst: 200},
				{Name: "render", Count: 500, Period: "day", Credits: true},
			}
			k, err := e.store.Update(t.Context(), k.ID, func(k *apikey.Key) error { k.Limits = own; return nil })
			require.NoError(t, err)
			if c.limiter != nil {
				ok, err := lim.Take(t.Context(), k, 1, nil)
				require.NoError(t, err)
				require.True(t, ok)
			}
			page := base + "/keys/" + k.ID
			for _, who := range []string{"op", "acme"} {
				body := e.do("GET", page, who, "").Body.String()
				assert.Contains(t, body, `<table id="limits">`, who)
				assert.Contains(t, body, `<td data-label="Kind">rate</td>`, who)
				assert.Contains(t, body, `<td data-label="Kind">credits</td>`, who)
				for _, row := range c.rows {
					assert.Contains(t, body, row, who)
				}
				assert.Equal(t, c.remaining, strings.Contains(body, `class="remaining"`), who)
				assert.Equal(t, who == "op", strings.Contains(body, `<form id="limits-form" method="post" action="`+page+`/limits">`), who)
				assert.Equal(t, who == "op", strings.Contains(body, "requests: 100 per minute, burst 200\nrender: 500 credits per day</textarea>"), who)
			}
		})
	}
}

// TestPageSetLimits: an operator's form sets, replaces and clears a
// key's limits; a line it cannot read is a 400 with the text kept; a
// customer's post is refused (403), another owner's key unknown (404).
func TestPageSetLimits(t *testing.T) {
	e := newEnv(t)
	k, _ := e.key("acme", "ci")
	theirs, _ := e.key("globex", "theirs")
	page := base + "/keys/" + k.ID
	set := func(who, id, text string) int {
		t.Helper()
		return e.form(base+"/keys/"+id+"/limits", who, url.Values{"limits": {text}}.Encode()).Code
	}
	require.Equal(t, 303, set("op", k.ID, "requests: 100 per minute, burst 200\r\nmonthly: 10000 per month in America/New_York, shared by owner\r\n"))
	got, err := e.store.Get(t.Context(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, []apikey.Limit{
		{Name: "requests", Count: 100, Per: time.Minute, Burst: 200},
		{Name: "monthly", Count: 10000, Period: "month", Zone: "America/New_York", Owner: true},
	}, got.Limits)

	for _, c := range []struct{ text, detail string }{
		{"requests: 100 per fortnight", "line 1"},
		{"requests: 100 per minute\nRequests: 1 per second", "Requests"},
		{"requests: 1 per day in Mars/Olympus", "Mars/Olympus"},
	} {
		w := e.form(page+"/limits", "op", url.Values{"limits": {c.text}}.Encode())
		require.Equal(t, 400, w.Code, c.text)
		body := w.Body.String()
		assert.Contains(t, body, `<p id="error" role="alert">`)
		assert.Contains(t, body, c.detail)
		assert.Contains(t, body, `<form id="limits-form"`)
	}
	w := e.form(page+"/limits", "op", url.Values{"limits": {"requests: 100 per fortnight"}}.Encode())
	assert.Contains(t, w.Body.String(), ">requests: 100 per fortnight</textarea>", "the text as entered")

	w = e.form(page+"/limits", "acme", url.Values{"limits": {"requests: 1000000 per second"}}.Encode())
	assert.Equal(t, 403, w.Code)
	assert.Contains(t, w.Body.String(), "Only an operator")
	assert.Equal(t, 404, set("acme", theirs.ID, ""))
	after, _ := e.store.Get(t.Context(), k.ID)
	assert.Equal(t, got, after, "nothing changed")

	require.Equal(t, 303, set("op", k.ID, ""))
	got, _ = e.store.Get(t.Context(), k.ID)
	assert.Empty(t, got.Limits, "empty: no limits of its own")
	body := e.do("GET", page, "op", "").Body.String()
	assert.Contains(t, body, `<p id="no-limits">This key has no limits of its own.</p>`)
}

// TestAuditLimits: each change of limits is an update event that says
// what they were and are; a create with limits lists them.
func TestAuditLimits(t *testing.T) {
	e := newEnv(t)
	keys := base + "/api/keys"
	w := e.do("POST", keys, "op", `{"name":"ci","owner":"acme","limits":[{"name":"requests","count":100,"per_seconds":60}]}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	id := object(t, w)["key"].(map[string]any)["id"].(string)
	require.Equal(t, 200, e.do("PATCH", keys+"/"+id, "op", `{"limits":[{"name":"requests","count":50,"per_seconds":60,"burst":80},{"name":"monthly","count":1000,"period":"month","owner":true}]}`).Code)
	require.Equal(t, 303, e.form(base+"/keys/"+id+"/limits", "op", url.Values{"limits": {"search: unlimited"}}.Encode()).Code)
	require.Equal(t, 200, e.do("PATCH", keys+"/"+id, "op", `{"limits":[]}`).Code)

	evs, err := e.audit.Events(t.Context(), manage.EventFilter{KeyID: id})
	require.NoError(t, err)
	type row struct{ actor, action, owner, detail string }
	var got []row
	for _, ev := range evs {
		got = append(got, row{ev.Actor, ev.Action, ev.Owner, ev.Detail})
	}
	assert.Equal(t, []row{
		{"user_op", "update", "acme", "limits: search (unlimited) → none"},
		{"user_op", "update", "acme", "limits: requests (50 per minute, burst 80), monthly (1000 per month, shared by owner) → search (unlimited)"},
		{"user_op", "update", "acme", "limits: requests (100 per minute) → requests (50 per minute, burst 80), monthly (1000 per month, shared by owner)"},
		{"user_op", "create", "acme", `name "ci", live, scopes: none, expires: never, limits: requests (100 per minute)`},
	}, got)
}
