package apikey_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

// okHandler answers 200 with the authenticated key's ID and the request id.
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := apikey.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		out := map[string]any{"request_id": apikey.RequestID(r.Context()), "authenticated": ok}
		if ok {
			out["key_id"] = k.ID
			out["environment"] = k.Environment.String()
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

func bearer(r *http.Request, key string) *http.Request {
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

// call sends one request through h.
func call(h http.Handler, method, target, key string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		bearer(r, key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr
}

func decode(t *testing.T, rr *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &m), "body: %s", rr.Body.String())
	return m
}
