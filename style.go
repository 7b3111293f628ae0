package apikey

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/keygate/apikey/internal/jsonw"
)

// ErrorStyle writes a rejection: status, Content-Type and a generic body
// (e.Reason is for logs). The middleware has set Cache-Control: no-store,
// the request id, WWW-Authenticate (401, 403), Retry-After (429, 503); a
// style that answers another status removes what no longer applies.
type ErrorStyle interface {
	WriteError(w http.ResponseWriter, r *http.Request, e AuthError)
}

// Messages are the texts of an error body; "{scope}" in Forbidden is the
// scope needed. An empty field takes a generic English default.
type Messages struct {
	Unauthorized string
	Forbidden    string
	Unavailable  string
	Limited      string
}

var defaultMessages = Messages{
	Unauthorized: "A valid API key is required.",
	Forbidden:    "The API key does not have the '{scope}' scope this request needs.",
	Unavailable:  "Authentication is temporarily unavailable; retry the request shortly.",
	Limited:      "This API key has used its allowance; retry after the time in Retry-After.",
}

// Shape is the JSON layout of an error body (package presets maps real
// APIs to them). code is "unauthorized", "forbidden", "limited" (429) or
// "unavailable"; request_id is left out when request ids are off.
//
//	ShapeProblem       RFC 9457 problem+json (the default): {"type","title","status","detail","request_id"}, "scope" in a 403
//	ShapeFlat          {"error":code,"message","request_id"}
//	ShapeNested        {"error":{"code","message"}}
//	ShapeNestedMeta    {"error":{"code","message"},"meta":{"request_id"}}, "param":"scope" in a 403
//	ShapeNestedStatus  {"error":{"code","message","status"}}
//	ShapeAuthError     HTTP 200 {"success":false,"authError":true,"error"} for 401 and 403; 429 and 503 keep theirs, "authError":false
type Shape uint8

// The shapes.
const (
	ShapeProblem Shape = iota
	ShapeFlat
	ShapeNested
	ShapeNestedMeta
	ShapeNestedStatus
	ShapeAuthError
	shapeCount
)

// jsonStyle is the ErrorStyle NewErrorStyle makes.
type jsonStyle struct {
	shape Shape
	msgs  Messages
	// bodies are the precomputed bodies by status class (401, 403, 503),
	// split where the request id goes; nil where the body depends on more
	// than the request id (a 403 naming its scope).
	bodies    [4]*bodyTemplate
	templated bool     // the messages allow templates
	byScope   sync.Map // Scope -> *bodyTemplate of a 403 naming it
}

// NewErrorStyle returns the style that writes JSON bodies in shape with
// msgs. Bodies are rendered once, here; a request fills in its id.
func NewErrorStyle(shape Shape, msgs Messages) (ErrorStyle, error) {
	if shape >= shapeCount {
		return nil, fmt.Errorf("%w: NewErrorStyle: unknown Shape %d", ErrInvalid, shape)
	}
	s := &jsonStyle{shape: shape, msgs: defaultMessages}
	if msgs.Unauthorized != "" {
		s.msgs.Unauthorized = msgs.Unauthorized
	}
	if msgs.Forbidden != "" {
		s.msgs.Forbidden = msgs.Forbidden
	}
	if msgs.Unavailable != "" {
		s.msgs.Unavailable = msgs.Unavailable
	}
	if msgs.Limited != "" {
		s.msgs.Limited = msgs.Limited
	}
	s.templates()
	return s, nil
}

// bodyTemplate is an error body with a hole for the request id.
type bodyTemplate struct {
	status        int
	before, after []byte
	hasRequestID  bool
}

// templates renders each status class once with a placeholder request id.
func (s *jsonStyle) templates() {
	for _, m := range []string{s.msgs.Unauthorized, s.msgs.Forbidden, s.msgs.Unavailable, s.msgs.Limited} {
		if strings.ContainsRune(m, 0) {
			return // the placeholder could be confused with the message
		}
	}
	s.templated = true
	for i, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		if status == http.StatusForbidden && (strings.Contains(s.msgs.Forbidden, "{scope}") || s.shape == ShapeProblem) {
			continue // names the scope: one template per scope (scoped)
		}
		s.bodies[i] = s.template(status, "")
	}
}

// template renders the body of status and scope with a hole for the
// request id. The placeholder "\x00" is written as the JSON string
// "\u0000", quotes included. A message or a scope cannot produce that:
// jsonw escapes a quote or a backslash in it, so the hole is the request
// id's own.
func (s *jsonStyle) template(status int, scope Scope) *bodyTemplate {
	const hole = `"\u0000"`
	body, code := s.appendBody(nil, status, "\x00", scope)
	before, after, found := strings.Cut(string(body), hole)
	t := &bodyTemplate{status: code, before: []byte(before + `"`), after: []byte(`"` + after), hasRequestID: found}
	if !found {
		t.before = body
	}
	return t
}

// scoped returns the 403 template of a scope, made on first use: scopes
// come from the configuration, never from a request, so they are few.
func (s *jsonStyle) scoped(scope Scope) *bodyTemplate {
	if !s.templated || strings.ContainsRune(string(scope), 0) {
		return nil
	}
	if t, ok := s.byScope.Load(scope); ok {
		return t.(*bodyTemplate)
	}
	t, _ := s.byScope.LoadOrStore(scope, s.template(http.StatusForbidden, scope))
	return t.(*bodyTemplate)
}

var (
	contentJSON    = []string{"application/json"}
	contentProblem = []string{"application/problem+json"}
	bufPool        = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
)

// WriteError implements ErrorStyle.
func (s *jsonStyle) WriteError(w http.ResponseWriter, _ *http.Request, e AuthError) {
	status := e.Reason.Status()
	h := w.Header()
	h["Content-Type"] = contentJSON
	if s.shape == ShapeProblem {
		h["Content-Type"] = contentProblem
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	t := s.bodies[statusClass(status)]
	if t == nil && status == http.StatusForbidden {
		t = s.scoped(e.Scope)
	}
	if t != nil && e.RequestID != "" {
		b = append(b, t.before...)
		if t.hasRequestID {
			b = jsonw.Escape(b, e.RequestID)
			b = append(b, t.after...)
		}
		status = t.status
	} else {
		b, status = s.appendBody(b, status, e.RequestID, e.Scope)
	}
	if status != e.Reason.Status() {
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
	case http.StatusTooManyRequests:
		return 3
	default:
		return 0
	}
}

// appendBody renders the body for a status and returns it with the status
// to answer with.
func (s *jsonStyle) appendBody(b []byte, status int, requestID string, scope Scope) ([]byte, int) {
	code, msg, title := "unauthorized", s.msgs.Unauthorized, "Unauthorized"
	switch status {
	case http.StatusForbidden:
		code, msg, title = "forbidden", s.msgs.Forbidden, "Forbidden"
	case http.StatusServiceUnavailable:
		code, msg, title = "unavailable", s.msgs.Unavailable, "Service Unavailable"
	case http.StatusTooManyRequests:
		code, msg, title = "limited", s.msgs.Limited, "Too Many Requests"
	}
	switch s.shape {
	case ShapeFlat:
		b = jsonw.Field(append(b, '{'), "error", true)
		b = jsonw.String(b, code)
		b = appendMessage(jsonw.Field(b, "message", false), msg, scope)
		if requestID != "" {
			b = jsonw.String(jsonw.Field(b, "request_id", false), requestID)
		}
		b = append(b, '}')
	case ShapeNestedMeta, ShapeNested, ShapeNestedStatus:
		b = jsonw.Field(append(b, '{'), "error", true)
		b = jsonw.String(jsonw.Field(append(b, '{'), "code", true), code)
		b = appendMessage(jsonw.Field(b, "message", false), msg, scope)
		if s.shape == ShapeNestedMeta && status == http.StatusForbidden {
			b = jsonw.String(jsonw.Field(b, "param", false), "scope")
		}
		if s.shape == ShapeNestedStatus {
			b = jsonw.Int(jsonw.Field(b, "status", false), status)
		}
		b = append(b, '}')
		if s.shape == ShapeNestedMeta && requestID != "" {
			b = jsonw.Field(b, "meta", false)
			b = jsonw.String(jsonw.Field(append(b, '{'), "request_id", true), requestID)
			b = append(b, '}')
		}
		b = append(b, '}')
	case ShapeAuthError:
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			status = http.StatusOK
		}
		b = jsonw.Bool(jsonw.Field(append(b, '{'), "success", true), false)
		b = jsonw.Bool(jsonw.Field(b, "authError", false), status == http.StatusOK)
		b = appendMessage(jsonw.Field(b, "error", false), msg, scope)
		b = append(b, '}')
	default: // ShapeProblem
		b = jsonw.String(jsonw.Field(append(b, '{'), "type", true), "about:blank")
		b = jsonw.String(jsonw.Field(b, "title", false), title)
		b = jsonw.Int(jsonw.Field(b, "status", false), status)
		b = appendMessage(jsonw.Field(b, "detail", false), msg, scope)
		if status == http.StatusForbidden && scope != "" {
			b = jsonw.String(jsonw.Field(b, "scope", false), string(scope))
		}
		if requestID != "" {
			b = jsonw.String(jsonw.Field(b, "request_id", false), requestID)
		}
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
