package manage

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
)

//go:embed assets/manage.css assets/manage.js
var assetFS embed.FS

// asset is an embedded file served under {Path}/assets/.
type asset struct {
	body        []byte
	contentType string
	version     string // of its content: links carry it, so a long cache is safe
}

// assets are the embedded files by name.
var assets = func() map[string]asset {
	out := map[string]asset{}
	for name, ct := range map[string]string{
		"manage.css": "text/css; charset=utf-8",
		"manage.js":  "text/javascript; charset=utf-8",
	} {
		b, err := assetFS.ReadFile(path.Join("assets", name))
		if err != nil {
			continue // cannot happen: embedded above; parsePages checks
		}
		sum := sha256.Sum256(b)
		out[name] = asset{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	return out
}()

// assetURL is the link to an embedded file, with its version.
func (h *Handler) assetURL(name string) string {
	return h.path + "/assets/" + name + "?v=" + assets[name].version
}

// asset: GET /assets/{name}, cached for a year.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("name")]
	if !ok {
		h.errorPage(w, r, http.StatusNotFound, "There is no such page.")
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+a.version+`"`)
	if r.Header.Get("If-None-Match") == `"`+a.version+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}
