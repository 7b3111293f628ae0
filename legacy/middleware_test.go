package legacy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/legacy"
)

// Through the middleware: a legacy key is served (200) with its scopes
// (403 without), keeps working once migrated, a revoked one is 401, an
// unknown one 401, and over the bound 503 with Retry-After.
func TestMiddleware(t *testing.T) {
	reader, readKey := cheapRecord(t, "key_reader")
	writer, writeKey := cheapRecord(t, "key_writer_")
	writer.Key.Scopes = []apikey.Scope{"write"}
	revoked, revokedKey := cheapRecord(t, "key_revoked")
	revoked.Key.RevokedAt = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	busy, busyKey := cheapRecord(t, "key_busy")
	e := newEnv(t, legacy.Config{Records: []legacy.Record{reader, writer, revoked, busy}, MaxSlowPerSecond: 2})
	mw, err := apikey.New(apikey.Config{Keys: e.keys, Store: e.store, Fallback: e.v.Fallback, MethodPolicy: apikey.ReadWritePolicy()})
	require.NoError(t, err)
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		w.Header().Set("X-Key", k.ID)
	}))
	call := func(method, cred string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/", nil)
		r.Header.Set("Authorization", "Bearer "+cred)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		return rr
	}

	rr := call("GET", readKey)
	assert.Equal(t, 200, rr.Code)
	assert.Equal(t, "key_reader", rr.Header().Get("X-Key"))
	assert.Equal(t, 403, call("POST", readKey).Code, "read only")
	assert.Equal(t, 200, call("POST", writeKey).Code, "write")
	assert.Equal(t, 401, call("GET", revokedKey).Code)
	assert.Equal(t, 401, call("GET", "not-a-key-of-anyone").Code)
	assert.Equal(t, map[string]int{legacy.SchemeBcrypt: 1}, e.v.Remaining())

	rr = call("GET", busyKey) // two slow verifications this second already
	assert.Equal(t, 503, rr.Code)
	assert.NotEmpty(t, rr.Header().Get("Retry-After"))
	e.clock.Advance(time.Second)
	assert.Equal(t, 200, call("GET", busyKey).Code)

	for range 5 { // migrated keys cost no legacy hash
		assert.Equal(t, 200, call("GET", readKey).Code)
	}
	assert.EqualValues(t, 3, e.v.Stats().Slow)
	assert.Equal(t, map[string]int{legacy.SchemeBcrypt: 0}, e.v.Remaining())
}
