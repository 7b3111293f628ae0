package manage

import (
	_ "embed"
	"net/http"
)

// openAPI describes the JSON API, OpenAPI 3.1; its paths are relative to
// the API's root, {Path}/api.
//
//go:embed openapi.json
var openAPI []byte

// apiOpenAPI: GET /api/openapi.json. It needs no caller: it describes the
// API, not the keys.
func (h *Handler) apiOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
