package apikey

import (
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/keygate/apikey/internal/jsonw"
)

// ErrorStyle writes a rejection. Before it is called the middleware has set
// the headers every style shares: Cache-Control: no-store, X-Request-Id,
// WWW-Authenticate on 401 and 403 (RFC 6750 §3) and Retry-After on 503. A
// style writes the status, Content-Type and body; one that answers with
// another status than e.Status() should delete the headers that no longer
// apply. The body must stay generic: e.Reason is for logs, not clients.
type ErrorStyle interface {
	WriteError(w http.ResponseWriter, r *http.Request, e AuthError)
}

// ErrorStyleFunc adapts a function to ErrorStyle.
type ErrorStyleFunc func(w http.ResponseWriter, r *http.Request, e AuthError)

// WriteError calls f.
func (f ErrorStyleFunc) WriteError(w http.ResponseWriter, r *http.Request, e AuthError) { f(w, r, e) }

// Messages are the human-readable texts of an error body. In Forbidden,
// "{scope}" is replaced by the scope the request needed.
type Messages struct {
	Unauthorized string
	Forbidden    string
	Unavailable  string
}

// shape is the JSON layout of a JSONStyle.
type shape uint8

const (
	shapeFlat         shape = iota + 1 // seed 000
	shapeNestedMeta                    // seed 001
	shapeNested                        // seed 002
	shapeNestedStatus                  // seed 004
	shapeStax                          // seed 003
	shapeProblem                       // RFC 9457
)

// JSONStyle is one of the ready-made error styles. The zero value is not
// usable; start from one of the Style variables and adjust its messages
// with WithMessages.
type JSONStyle struct {
	name  string
	shape shape
	msgs  Messages
}

// The ready-made styles, each reproducing a seed API's bodies field for
// field with its wording.
var (
	// StyleFlat is seed 000 (Stairoids v1):
	// {"error":"unauthorized","message":…,"request_id":"req_…"}.
	StyleFlat = JSONStyle{name: "flat", shape: shapeFlat, msgs: Messages{
		Unauthorized: "Missing or invalid API key. Provide a valid Bearer token in the Authorization header.",
		Forbidden:    "This API key does not have {scope} access. Generate a Read-Write key to perform this operation.",
		Unavailable:  "Authentication is temporarily unavailable. Retry the request shortly.",
	}}

	// StyleNestedMeta is seed 001 (Stairoids v2):
	// {"error":{"code":"unauthorized","message":…},"meta":{"request_id":…}},
	// with "param":"scope" in a 403.
	StyleNestedMeta = JSONStyle{name: "nested-meta", shape: shapeNestedMeta, msgs: Messages{
		Unauthorized: "A valid API key is required. Provide it as 'Authorization: Bearer <key>'.",
		Forbidden:    "This API key does not have the '{scope}' scope required for this endpoint.",
		Unavailable:  "Authentication is temporarily unavailable. Retry the request shortly.",
	}}

	// StyleNested is seed 002 (Stepsies):
	// {"error":{"code":"unauthorized","message":"Missing or invalid API key"}}.
	StyleNested = JSONStyle{name: "nested", shape: shapeNested, msgs: Messages{
		Unauthorized: "Missing or invalid API key",
		Forbidden:    "Insufficient scope for this action",
		Unavailable:  "Authentication is temporarily unavailable",
	}}

	// StyleNestedStatus is seed 004 (Straply):
	// {"error":{"code":"unauthorized","message":…,"status":401}}.
	StyleNestedStatus = JSONStyle{name: "nested-status", shape: shapeNestedStatus, msgs: Messages{
		Unauthorized: "Invalid or missing API key.",
		Forbidden:    "The key is valid but does not have permission for this resource.",
		Unavailable:  "Authentication is temporarily unavailable.",
	}}

	// StyleStax is seed 003 (Stax.ai): HTTP 200 with
	// {"success":false,"authError":true,"error":"Invalid authorization request"}
	// for 401 and 403 alike. A store failure still answers 503, with
	// "authError":false.
	StyleStax = JSONStyle{name: "stax", shape: shapeStax, msgs: Messages{
		Unauthorized: "Invalid authorization request",
		Forbidden:    "Invalid authorization request",
		Unavailable:  "Authorization service unavailable",
	}}

	// StyleProblem is RFC 9457 application/problem+json:
	// {"type":"about:blank","title":"Unauthorized","status":401,"detail":…,
	// "request_id":…}, with "scope" in a 403. The default style.
	StyleProblem = JSONStyle{name: "problem", shape: shapeProblem, msgs: Messages{
		Unauthorized: "A valid API key is required.",
		Forbidden:    "The API key does not have the '{scope}' scope this request needs.",
		Unavailable:  "The API key store is unavailable; retry the request shortly.",
	}}
)

var stylesByName = map[string]JSONStyle{}

func init() {
	for _, s := range []JSONStyle{StyleFlat, StyleNestedMeta, StyleNested, StyleNestedStatus, StyleStax, StyleProblem} {
		stylesByName[s.name] = s
	}
}

// StyleByName returns the ready-made style with this name: "flat",
// "nested-meta", "nested", "nested-status", "stax" or "problem".
func StyleByName(name string) (JSONStyle, bool) {
	s, ok := stylesByName[name]
	return s, ok
}

// StyleNames lists the names StyleByName knows, sorted.
func StyleNames() []string {
	out := make([]string, 0, len(stylesByName))
	for n := range stylesByName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Name returns the style's name.
func (s JSONStyle) Name() string { return s.name }

// Messages returns the style's messages.
func (s JSONStyle) Messages() Messages { return s.msgs }

// WithMessages returns a copy of the style with the non-empty fields of m
// replacing its messages.
func (s JSONStyle) WithMessages(m Messages) JSONStyle {
	if m.Unauthorized != "" {
		s.msgs.Unauthorized = m.Unauthorized
	}
	if m.Forbidden != "" {
		s.msgs.Forbidden = m.Forbidden
	}
	if m.Unavailable != "" {
		s.msgs.Unavailable = m.Unavailable
	}
	return s
}

var (
	contentJSON    = []string{"application/json"}
	contentProblem = []string{"application/problem+json"}
	bufPool        = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
)

// WriteError implements ErrorStyle.
func (s JSONStyle) WriteError(w http.ResponseWriter, _ *http.Request, e AuthError) {
	status := e.Status()
	code, msg, title := "unauthorized", s.msgs.Unauthorized, "Unauthorized"
	switch status {
	case http.StatusForbidden:
		code, msg, title = "forbidden", s.msgs.Forbidden, "Forbidden"
	case http.StatusServiceUnavailable:
		code, msg, title = "unavailable", s.msgs.Unavailable, "Service Unavailable"
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	h := w.Header()
	h["Content-Type"] = contentJSON
	switch s.shape {
	case shapeFlat:
		b = jsonw.Field(append(b, '{'), "error", true)
		b = jsonw.String(b, code)
		b = appendMessage(jsonw.Field(b, "message", false), msg, e.Scope)
		b = jsonw.String(jsonw.Field(b, "request_id", false), e.RequestID)
		b = append(b, '}')
	case shapeNestedMeta, shapeNested, shapeNestedStatus:
		b = jsonw.Field(append(b, '{'), "error", true)
		b = jsonw.String(jsonw.Field(append(b, '{'), "code", true), code)
		b = appendMessage(jsonw.Field(b, "message", false), msg, e.Scope)
		if s.shape == shapeNestedMeta && status == http.StatusForbidden {
			b = jsonw.String(jsonw.Field(b, "param", false), "scope")
		}
		if s.shape == shapeNestedStatus {
			b = jsonw.Int(jsonw.Field(b, "status", false), status)
		}
		b = append(b, '}')
		if s.shape == shapeNestedMeta {
			b = jsonw.Field(b, "meta", false)
			b = jsonw.String(jsonw.Field(append(b, '{'), "request_id", true), e.RequestID)
			b = append(b, '}')
		}
		b = append(b, '}')
	case shapeStax:
		if status != http.StatusServiceUnavailable {
			status = http.StatusOK
			h.Del("Www-Authenticate")
		}
		b = jsonw.Bool(jsonw.Field(append(b, '{'), "success", true), false)
		b = jsonw.Bool(jsonw.Field(b, "authError", false), status == http.StatusOK)
		b = appendMessage(jsonw.Field(b, "error", false), msg, e.Scope)
		b = append(b, '}')
	default: // shapeProblem
		h["Content-Type"] = contentProblem
		b = jsonw.String(jsonw.Field(append(b, '{'), "type", true), "about:blank")
		b = jsonw.String(jsonw.Field(b, "title", false), title)
		b = jsonw.Int(jsonw.Field(b, "status", false), status)
		b = appendMessage(jsonw.Field(b, "detail", false), msg, e.Scope)
		if status == http.StatusForbidden && e.Scope != "" {
			b = jsonw.String(jsonw.Field(b, "scope", false), string(e.Scope))
		}
		b = jsonw.String(jsonw.Field(b, "request_id", false), e.RequestID)
		b = append(b, '}')
	}
	b = append(b, '\n')
	w.WriteHeader(status)
	_, _ = w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

// appendMessage appends msg as a JSON string with "{scope}" replaced.
func appendMessage(dst []byte, msg string, scope Scope) []byte {
	before, after, found := strings.Cut(msg, "{scope}")
	if !found {
		return jsonw.String(dst, msg)
	}
	if scope == "" {
		scope = "required"
	}
	dst = jsonw.Escape(append(dst, '"'), before)
	dst = jsonw.Escape(dst, string(scope))
	return append(jsonw.Escape(dst, after), '"')
}
