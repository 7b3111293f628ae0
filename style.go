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
	// bodies are the precomputed bodies by status class (401, 403, 503),
	// split where the request id goes; nil where the body depends on more
	// than the request id (a 403 naming its scope).
	bodies *[3]*bodyTemplate
}

// bodyTemplate is an error body with a hole for the request id.
type bodyTemplate struct {
	status        int
	before, after []byte
	hasRequestID  bool
}

func newStyle(name string, sh shape, msgs Messages) JSONStyle {
	s := JSONStyle{name: name, shape: sh, msgs: msgs}
	s.bodies = s.templates()
	return s
}

// templates renders each status class once with a placeholder request id.
func (s JSONStyle) templates() *[3]*bodyTemplate {
	var out [3]*bodyTemplate
	for _, m := range []string{s.msgs.Unauthorized, s.msgs.Forbidden, s.msgs.Unavailable} {
		if strings.ContainsRune(m, 0) {
			return &out // the placeholder could be confused with the message
		}
	}
	for i, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable} {
		if status == http.StatusForbidden && (strings.Contains(s.msgs.Forbidden, "{scope}") || s.shape == shapeProblem) {
			continue // names the scope: rendered per request
		}
		const hole = `\u0000` // how jsonw escapes the placeholder "\x00"
		body, code := s.appendBody(nil, status, "\x00", "")
		before, after, found := strings.Cut(string(body), hole)
		out[i] = &bodyTemplate{status: code, before: []byte(before), after: []byte(after), hasRequestID: found}
		if !found {
			out[i].before = body
		}
	}
	return &out
}

// The ready-made styles, each reproducing a seed API's bodies field for
// field with its wording.
var (
	// StyleFlat is seed 000 (Stairoids v1):
	// {"error":"unauthorized","message":…,"request_id":"req_…"}.
	StyleFlat = newStyle("flat", shapeFlat, Messages{
		Unauthorized: "Missing or invalid API key. Provide a valid Bearer token in the Authorization header.",
		Forbidden:    "This API key does not have {scope} access. Generate a Read-Write key to perform this operation.",
		Unavailable:  "Authentication is temporarily unavailable. Retry the request shortly.",
	})

	// StyleNestedMeta is seed 001 (Stairoids v2):
	// {"error":{"code":"unauthorized","message":…},"meta":{"request_id":…}},
	// with "param":"scope" in a 403.
	StyleNestedMeta = newStyle("nested-meta", shapeNestedMeta, Messages{
		Unauthorized: "A valid API key is required. Provide it as 'Authorization: Bearer <key>'.",
		Forbidden:    "This API key does not have the '{scope}' scope required for this endpoint.",
		Unavailable:  "Authentication is temporarily unavailable. Retry the request shortly.",
	})

	// StyleNested is seed 002 (Stepsies):
	// {"error":{"code":"unauthorized","message":"Missing or invalid API key"}}.
	StyleNested = newStyle("nested", shapeNested, Messages{
		Unauthorized: "Missing or invalid API key",
		Forbidden:    "Insufficient scope for this action",
		Unavailable:  "Authentication is temporarily unavailable",
	})

	// StyleNestedStatus is seed 004 (Straply):
	// {"error":{"code":"unauthorized","message":…,"status":401}}.
	StyleNestedStatus = newStyle("nested-status", shapeNestedStatus, Messages{
		Unauthorized: "Invalid or missing API key.",
		Forbidden:    "The key is valid but does not have permission for this resource.",
		Unavailable:  "Authentication is temporarily unavailable.",
	})

	// StyleStax is seed 003 (Stax.ai): HTTP 200 with
	// {"success":false,"authError":true,"error":"Invalid authorization request"}
	// for 401 and 403 alike. A store failure still answers 503, with
	// "authError":false.
	StyleStax = newStyle("stax", shapeStax, Messages{
		Unauthorized: "Invalid authorization request",
		Forbidden:    "Invalid authorization request",
		Unavailable:  "Authorization service unavailable",
	})

	// StyleProblem is RFC 9457 application/problem+json:
	// {"type":"about:blank","title":"Unauthorized","status":401,"detail":…,
	// "request_id":…}, with "scope" in a 403. The default style.
	StyleProblem = newStyle("problem", shapeProblem, Messages{
		Unauthorized: "A valid API key is required.",
		Forbidden:    "The API key does not have the '{scope}' scope this request needs.",
		Unavailable:  "The API key store is unavailable; retry the request shortly.",
	})
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
	s.bodies = s.templates()
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
	h := w.Header()
	h["Content-Type"] = contentJSON
	if s.shape == shapeProblem {
		h["Content-Type"] = contentProblem
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	var t *bodyTemplate
	if s.bodies != nil {
		t = s.bodies[statusClass(status)]
	}
	if t != nil {
		b = append(b, t.before...)
		if t.hasRequestID {
			b = jsonw.Escape(b, e.RequestID)
			b = append(b, t.after...)
		}
		status = t.status
	} else {
		b, status = s.appendBody(b, status, e.RequestID, e.Scope)
	}
	if status != e.Status() {
		// Stax answers 200: a challenge would contradict the status.
		h.Del("Www-Authenticate")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

func statusClass(status int) int {
	switch status {
	case http.StatusForbidden:
		return 1
	case http.StatusServiceUnavailable:
		return 2
	default:
		return 0
	}
}

// appendBody renders the body for a status and returns it with the status
// to answer with.
func (s JSONStyle) appendBody(b []byte, status int, requestID string, scope Scope) ([]byte, int) {
	code, msg, title := "unauthorized", s.msgs.Unauthorized, "Unauthorized"
	switch status {
	case http.StatusForbidden:
		code, msg, title = "forbidden", s.msgs.Forbidden, "Forbidden"
	case http.StatusServiceUnavailable:
		code, msg, title = "unavailable", s.msgs.Unavailable, "Service Unavailable"
	}
	switch s.shape {
	case shapeFlat:
		b = jsonw.Field(append(b, '{'), "error", true)
		b = jsonw.String(b, code)
		b = appendMessage(jsonw.Field(b, "message", false), msg, scope)
		b = jsonw.String(jsonw.Field(b, "request_id", false), requestID)
		b = append(b, '}')
	case shapeNestedMeta, shapeNested, shapeNestedStatus:
		b = jsonw.Field(append(b, '{'), "error", true)
		b = jsonw.String(jsonw.Field(append(b, '{'), "code", true), code)
		b = appendMessage(jsonw.Field(b, "message", false), msg, scope)
		if s.shape == shapeNestedMeta && status == http.StatusForbidden {
			b = jsonw.String(jsonw.Field(b, "param", false), "scope")
		}
		if s.shape == shapeNestedStatus {
			b = jsonw.Int(jsonw.Field(b, "status", false), status)
		}
		b = append(b, '}')
		if s.shape == shapeNestedMeta {
			b = jsonw.Field(b, "meta", false)
			b = jsonw.String(jsonw.Field(append(b, '{'), "request_id", true), requestID)
			b = append(b, '}')
		}
		b = append(b, '}')
	case shapeStax:
		if status != http.StatusServiceUnavailable {
			status = http.StatusOK
		}
		b = jsonw.Bool(jsonw.Field(append(b, '{'), "success", true), false)
		b = jsonw.Bool(jsonw.Field(b, "authError", false), status == http.StatusOK)
		b = appendMessage(jsonw.Field(b, "error", false), msg, scope)
		b = append(b, '}')
	default: // shapeProblem
		b = jsonw.String(jsonw.Field(append(b, '{'), "type", true), "about:blank")
		b = jsonw.String(jsonw.Field(b, "title", false), title)
		b = jsonw.Int(jsonw.Field(b, "status", false), status)
		b = appendMessage(jsonw.Field(b, "detail", false), msg, scope)
		if status == http.StatusForbidden && scope != "" {
			b = jsonw.String(jsonw.Field(b, "scope", false), string(scope))
		}
		b = jsonw.String(jsonw.Field(b, "request_id", false), requestID)
		b = append(b, '}')
	}
	return append(b, '\n'), status
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
