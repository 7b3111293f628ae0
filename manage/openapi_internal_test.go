package manage

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

// TestOpenAPIMatchesRoutes: the document parses, is OpenAPI 3.1, and
// lists exactly the JSON API's routes, each with its responses.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	var documented []string
	for p, item := range doc.Paths {
		for method, op := range item {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" /api"+p)
			var o struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			require.NoError(t, json.Unmarshal(op, &o))
			assert.NotEmpty(t, o.Responses, "%s %s", method, p)
		}
	}
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(t, err)
	h, err := New(store, Config{Keys: keys, Caller: func(*http.Request) (Caller, error) { return Caller{}, ErrUnauthenticated }})
	require.NoError(t, err)
	var served []string
	for _, rt := range h.routes() {
		if rt.api {
			served = append(served, rt.method+" "+rt.pattern)
		} else {
			assert.False(t, strings.HasPrefix(rt.pattern, "/api/"), rt.pattern)
		}
	}
	slices.Sort(documented)
	slices.Sort(served)
	assert.Equal(t, served, documented)

	// Every $ref points into the document.
	var all map[string]any
	require.NoError(t, json.Unmarshal(openAPI, &all))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				var node any = all
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := node.(map[string]any)
					node = m[part]
				}
				assert.NotNil(t, node, "$ref %s", ref)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(all)
}
