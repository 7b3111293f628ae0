package manage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey/manage"
)

func TestMemoryAudit(t *testing.T) {
	ctx := t.Context()
	m := manage.NewMemoryAudit(3)
	for i := range 5 {
		require.NoError(t, m.Record(ctx, manage.Event{Action: "update", KeyID: fmt.Sprintf("k%d", i), Owner: []string{"a", "b"}[i%2]}))
	}
	ids := func(f manage.EventFilter) []string {
		evs, err := m.Events(ctx, f)
		require.NoError(t, err)
		out := []string{}
		for _, e := range evs {
			out = append(out, e.KeyID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    manage.EventFilter
		want []string
	}{
		{"all, newest first, the newest 3 kept", manage.EventFilter{}, []string{"k4", "k3", "k2"}},
		{"owner", manage.EventFilter{Owner: "a"}, []string{"k4", "k2"}},
		{"key", manage.EventFilter{KeyID: "k3"}, []string{"k3"}},
		{"limit", manage.EventFilter{Limit: 2}, []string{"k4", "k3"}},
		{"forgotten", manage.EventFilter{KeyID: "k0"}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) { assert.Equal(t, c.want, ids(c.f)) })
	}

	// Safe for concurrent use.
	m = manage.NewMemoryAudit(0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				_ = m.Record(ctx, manage.Event{KeyID: fmt.Sprint(i, j)})
				_, _ = m.Events(ctx, manage.EventFilter{Limit: 5})
			}
		})
	}
	wg.Wait()
	evs, err := m.Events(ctx, manage.EventFilter{})
	require.NoError(t, err)
	assert.Len(t, evs, 800)
}

func TestSlogAudit(t *testing.T) {
	var buf bytes.Buffer
	sink := manage.NewSlogAudit(slog.New(slog.NewJSONHandler(&buf, nil)))
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, sink.Record(t.Context(), manage.Event{
		At: at, Actor: "user_42", Action: "update", KeyID: "key_1", Owner: "acme", Remote: "192.0.2.1", Detail: "scopes: read → read write",
	}))
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 1, "one line per event")
	var got map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &got))
	assert.Equal(t, "INFO", got["level"])
	for k, v := range map[string]any{
		"at": "2026-05-01T12:00:00Z", "actor": "user_42", "action": "update", "key_id": "key_1",
		"owner": "acme", "remote": "192.0.2.1", "detail": "scopes: read → read write",
	} {
		assert.Equal(t, v, got[k], k)
	}
}

// TestAuditActions: each action is recorded once done, by whom, from
// where, with what changed, and never a secret; the API serves the log,
// a tenant's own events only.
func TestAuditActions(t *testing.T) {
	e := newEnv(t)
	keys := base + "/api/keys"
	w := e.do("POST", keys, "acme", `{"name":"ci","scopes":["read"]}`)
	require.Equal(t, 201, w.Code)
	created := object(t, w)
	secret := created["secret"].(string)
	id := created["key"].(map[string]any)["id"].(string)
	require.Equal(t, 200, e.do("PATCH", keys+"/"+id, "acme", `{"scopes":["read","write"]}`).Code)
	require.Equal(t, 200, e.do("POST", keys+"/"+id+"/disable", "acme", "").Code)
	require.Equal(t, 200, e.do("POST", keys+"/"+id+"/enable", "acme", "").Code)
	w = e.do("POST", keys+"/"+id+"/roll", "acme", "")
	require.Equal(t, 201, w.Code)
	rolled := object(t, w)
	next := rolled["key"].(map[string]any)["id"].(string)
	require.Equal(t, 200, e.do("POST", keys+"/"+next+"/revoke", "acme", "").Code)
	require.Equal(t, 200, e.do("POST", keys+"/"+next+"/revoke", "acme", "").Code)
	other, _ := e.key("globex", "theirs")
	require.Equal(t, 200, e.do("POST", keys+"/"+other.ID+"/disable", "op", "").Code)

	evs, err := e.audit.Events(t.Context(), manage.EventFilter{})
	require.NoError(t, err)
	type row struct{ actor, action, key, owner, detail string }
	var got []row
	for _, ev := range evs {
		got = append(got, row{ev.Actor, ev.Action, ev.KeyID, ev.Owner, ev.Detail})
		assert.Equal(t, "192.0.2.1", ev.Remote, "httptest's client address, without the port")
		assert.WithinDuration(t, time.Now(), ev.At, time.Minute)
		assert.NotContains(t, ev.Detail, secret)
		assert.NotContains(t, ev.Detail, rolled["secret"])
	}
	assert.Equal(t, []row{
		{"user_op", "disable", other.ID, "globex", "disabled"},
		{"user_acme", "revoke", next, "acme", "already revoked"},
		{"user_acme", "revoke", next, "acme", ""},
		{"user_acme", "roll", id, "acme", "successor " + next + ", grace 24h0m0s"},
		{"user_acme", "enable", id, "acme", "enabled"},
		{"user_acme", "disable", id, "acme", "disabled"},
		{"user_acme", "update", id, "acme", "scopes: read → read write"},
		{"user_acme", "create", id, "acme", `name "ci", live, scopes: read, expires: never`},
	}, got)

	w = e.do("GET", base+"/api/audit?key_id="+id+"&limit=2", "acme", "")
	require.Equal(t, 200, w.Code, w.Body.String())
	var page struct {
		Events []manage.Event `json:"events"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Len(t, page.Events, 2)
	assert.Equal(t, "roll", page.Events[0].Action)
	w = e.do("GET", base+"/api/audit", "acme", "")
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	assert.Len(t, page.Events, 7, "not globex's")
	w = e.do("GET", base+"/api/audit?owner=globex", "op", "")
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	assert.Len(t, page.Events, 1)
	assert.NotContains(t, w.Body.String(), secret)
}

// failingSink refuses every event.
type failingSink struct{}

func (failingSink) Record(context.Context, manage.Event) error { return errors.New("audit db down") }

// TestAuditFailure: a failing sink is logged; the action stands and the
// response does not mention it. Without an AuditLog there is no audit
// route.
func TestAuditFailure(t *testing.T) {
	e := newEnv(t, func(c *manage.Config) { c.Audit = failingSink{} })
	k, _ := e.key("acme", "ci")
	w := e.do("POST", base+"/api/keys/"+k.ID+"/disable", "acme", "")
	require.Equal(t, 200, w.Code)
	assert.NotContains(t, w.Body.String(), "audit")
	got, err := e.store.Get(t.Context(), k.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	assert.Contains(t, e.logs.String(), "audit db down")
	assert.Equal(t, 404, e.do("GET", base+"/api/audit", "acme", "").Code)

	none := newEnv(t, func(c *manage.Config) { c.Audit = nil })
	assert.Equal(t, 404, none.do("GET", base+"/api/audit", "acme", "").Code)
	assert.Equal(t, 201, none.do("POST", base+"/api/keys", "acme", `{"name":"x"}`).Code)
}
