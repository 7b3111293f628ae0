package apikey

import "net/http"

// maxRequestIDLength is the longest request id taken from
// Config.RequestID.
const maxRequestIDLength = 128

// assignRequestID gives the request its id, as Config says, and sets the
// response header. It never echoes an unsafe value: an id from
// Config.RequestID is used only when it is 1 to 128 visible ASCII
// characters other than a quote or a backslash, since a space, a control
// character or a quote could forge log lines or break a JSON consumer.
// (chi's ids hold a "/", UUIDs "-".)
func (m *Middleware) assignRequestID(c *authContext, w http.ResponseWriter, r *http.Request) {
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
		id = c.newRequestID()
	}
	c.requestID = id
	c.header[0] = id
	w.Header()[m.requestIDHeader] = c.header[:]
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
