package presets_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/limit"
	"github.com/keygate/apikey/presets"
)

// Every API's 429, pinned: its own shape and the generic message (none of
// the APIs documents one), with Retry-After and the RateLimit fields.
func TestLimitedBodies(t *testing.T) {
	const msg = "This API key has used its allowance; retry after the time in Retry-After."
	for _, tc := range []struct {
		preset presets.Preset
		name   string
		status int
		body   string
	}{
		{presets.StairoidsV1, "stairoids-v1", 429, `{"error":"limited","message":"` + msg + `","request_id":"<rid>"}`},
		{presets.StairoidsV2, "stairoids-v2", 429, `{"error":{"code":"limited","message":"` + msg + `"},"meta":{"request_id":"<rid>"}}`},
		{presets.Stepsies, "stepsies", 429, `{"error":{"code":"limited","message":"` + msg + `"}}`},
		{presets.Stax, "stax", 429, `{"success":false,"authError":false,"error":"` + msg + `"}`},
		{presets.Straply, "straply", 429, `{"error":{"code":"limited","message":"` + msg + `","status":429}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAPIServer(t, tc.preset, func(c *apikey.Config) {
				c.MethodPolicy = nil
				l, err := limit.New(limit.Config{Live: []apikey.Limit{{Name: "requests", Count: 1, Per: time.Minute}}, Clock: c.Keys.Clock})
				require.NoError(t, err)
				c.Limiter = l
			})
			_, key := s.create(t, apikey.KeySpec{Name: "k", Owner: "a@example.com"})
			email := []string{"Email", "a@example.com"} // Stax binds keys to it
			first := apiCall(s.h, "GET", "/", key, email...)
			require.Equal(t, http.StatusOK, first.Code)
			require.NotContains(t, first.Body.String(), "authError")
			rr := apiCall(s.h, "GET", "/", key, email...)
			assert.Equal(t, tc.status, rr.Code)
			assert.Equal(t, "60", rr.Header().Get("Retry-After"))
			assert.Equal(t, `"requests";q=1;w=60`, rr.Header().Get("RateLimit-Policy"))
			assert.Equal(t, `"requests";r=0;t=60`, rr.Header().Get("RateLimit"))
			assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
			assert.JSONEq(t, strings.ReplaceAll(tc.body, "<rid>", rr.Header().Get("X-Request-Id")), rr.Body.String())
		})
	}
}
