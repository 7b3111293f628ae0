package apikey

import (
	"net/http"
	"unsafe"
)

// maxRequestIDLength is the longest request id taken from
// Config.RequestID.
const maxRequestIDLength = 128

// requestIDs holds a request's id as the request-id header's value, with
// the bytes of a generated one, so that both cost one allocation with
// whatever holds them: the authContext of a request that goes on, a
// requestIDs alone for one refused.
type requestIDs struct {
	header [1]string // backing array of the request-id header value: the id
	idBuf  [requestIDLength]byte
}

// id returns the request's id, "" before assignRequestID or with ids off.
func (c *requestIDs) id() string { return c.header[0] }

// assignRequestID gives the request its id, as Config says, and sets the
// response header. It never echoes an unsafe value: an id from
// Config.RequestID is used only when it is 1 to 128 visible ASCII
// characters other than a quote or a backslash, since a space, a control
// character or a quote could forge log lines or break a JSON consumer.
// (chi's ids hold a "/", UUIDs "-".)
func (m *Middleware) assignRequestID(c *requestIDs, w http.ResponseWriter, r *http.Request) {
	if m.noRequestID {
		return
	}
	id := ""
	if m.requestID != nil {
		if id = m.requestID(w, r); !safeRequestID(id) {
			id = ""
		}
	}
	if id == "" {
		fillRequestID(&c.idBuf)
		id = unsafe.String(&c.idBuf[0], len(c.idBuf)) // shares the buffer, never written again
	}
	c.header[0] = id
	w.Header()[m.requestIDHeader] = c.header[:]
}

// loneRequestID gives a request that has no authContext its id: one
// refused before it had one, or one served by HandlerFunc.
func (m *Middleware) loneRequestID(w http.ResponseWriter, r *http.Request) string {
	if m.noRequestID {
		return ""
	}
	ids := new(requestIDs)
	m.assignRequestID(ids, w, r)
	return ids.id()
}

func safeRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
