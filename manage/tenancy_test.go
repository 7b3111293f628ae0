package manage_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// Another owner's key is a 404 for every change, whatever its state: a
// revoked or rolled key of globex must not answer acme with 409.
func TestAnotherOwnersKeyIsUnknownWhateverItsState(t *testing.T) {
	e := newEnv(t)
	revoked, _ := e.key("globex", "revoked", "read")
	require.NoError(t, e.store.Revoke(t.Context(), revoked.ID))
	rolled, _ := e.key("globex", "rolled", "read")
	_, _, err := e.store.Roll(t.Context(), rolled.ID, 0)
	require.NoError(t, err)
	for _, id := range []string{revoked.ID, rolled.ID, "key_unknown"} {
		for _, req := range []struct{ method, path, body string }{
			{"PATCH", "/api/keys/" + id, `{"name":"x"}`},
			{"POST", "/api/keys/" + id + "/disable", ""},
			{"POST", "/api/keys/" + id + "/enable", ""},
		} {
			w := e.do(req.method, base+req.path, "acme", req.body)
			assert.Equal(t, http.StatusNotFound, w.Code, "%s %s: %s", req.method, req.path, w.Body.String())
		}
	}
}

// The metadata entries other packages keep on a key (sweep's records) are
// neither shown nor accepted, and an update of the metadata keeps them.
func TestReservedMetadata(t *testing.T) {
	e := newEnv(t)
	k, _ := e.key("acme", "k", "read")
	_, err := e.store.Update(t.Context(), k.ID, func(k *apikey.Key) error {
		k.Metadata = map[string]string{"team": "a", "sweep.unused": "2026-01-01T00:00:00Z key_x"}
		return nil
	})
	require.NoError(t, err)

	w := e.do("GET", base+"/api/keys/"+k.ID, "acme", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, map[string]any{"team": "a"}, object(t, w)["metadata"], "sweep's record is not shown")

	w = e.do("PATCH", base+"/api/keys/"+k.ID, "acme", `{"metadata":{"sweep.disabled-unused":"forged"}}`)
	assert.Equal(t, http.StatusBadRequest, w.Code, "a reserved key is refused")
	w = e.do("POST", base+"/api/keys", "acme", `{"name":"n","metadata":{"sweep.unused":"x"}}`)
	assert.Equal(t, http.StatusBadRequest, w.Code, "on create too")

	w = e.do("PATCH", base+"/api/keys/"+k.ID, "acme", `{"metadata":{"team":"b"}}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got, err := e.store.Get(t.Context(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"team": "b", "sweep.unused": "2026-01-01T00:00:00Z key_x"}, got.Metadata, "the record survives")

	// The update's audit entry names the metadata the customer sees: the
	// value changed, the names did not; sweep's record is not named.
	w = e.do("GET", base+"/api/audit", "acme", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), "metadata: team → team")
	assert.NotContains(t, w.Body.String(), "sweep.")
}

// A customer's audit log tells what was done to its keys, not who operates
// the service or from where; GitHub's secret scanning is named.
func TestAuditForACustomer(t *testing.T) {
	e := newEnv(t)
	k, _ := e.key("acme", "k", "read")
	for _, ev := range []manage.Event{
		{Actor: "user_acme", Action: "update", KeyID: k.ID, Owner: "acme", Remote: "198.51.100.7"},
		{Actor: "user_op", Action: "disable", KeyID: k.ID, Owner: "acme", Remote: "10.0.0.5"},
		{Actor: "github-secret-scanning", Action: "leak-revoke", KeyID: k.ID, Owner: "acme", Remote: "140.82.115.1"},
	} {
		require.NoError(t, e.audit.Record(t.Context(), ev))
	}
	w := e.do("GET", base+"/api/audit", "acme", "")
	require.Equal(t, http.StatusOK, w.Code)
	events := object(t, w)["events"].([]any)
	seen := map[string]string{}
	for _, ev := range events {
		m := ev.(map[string]any)
		remote, _ := m["remote"].(string)
		seen[m["actor"].(string)] = remote
	}
	assert.Equal(t, map[string]string{"user_acme": "198.51.100.7", "operator": "", "github-secret-scanning": ""}, seen)
	w = e.do("GET", base+"/api/audit", "op", "")
	assert.Contains(t, w.Body.String(), "10.0.0.5", "an operator sees everything")
}
