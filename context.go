package apikey

import (
	"context"
	"net/http"
	"unsafe"
)

// authContext carries the middleware's result. It is itself the request's
// context (wrapping the parent), and it also holds the request id's bytes
// and the X-Request-Id header's value slice, so that a request costs one
// allocation here instead of four (context.WithValue, a value, the id
// string and the header slice).
type authContext struct {
	context.Context
	key       *Key
	requestID string
	auth      *Authenticator
	header    [1]string // backing array of the X-Request-Id header value
	idBuf     [requestIDLength]byte
}

// newAuthContext starts the middleware's work on a request: it assigns the
// request id and sets the X-Request-Id response header.
func newAuthContext(w http.ResponseWriter, r *http.Request, a *Authenticator) *authContext {
	c := &authContext{Context: r.Context(), auth: a}
	if id, ok := incomingRequestID(r); ok {
		c.requestID = id
	} else {
		fillRequestID(&c.idBuf)
		// idBuf is never written again, so the string may share it.
		c.requestID = unsafe.String(&c.idBuf[0], len(c.idBuf))
	}
	c.header[0] = c.requestID
	w.Header()[headerRequestID] = c.header[:]
	return c
}

type authContextKey struct{}

// Value returns the authContext itself for authContextKey.
func (c *authContext) Value(k any) any {
	if _, ok := k.(authContextKey); ok {
		return c
	}
	return c.Context.Value(k)
}

func authFrom(ctx context.Context) *authContext {
	c, _ := ctx.Value(authContextKey{}).(*authContext)
	return c
}

// FromContext returns the key that authenticated the request, as attached by
// the middleware. It reports false when no middleware ran or the request
// passed anonymously (optional mode). The Key holds metadata and scopes,
// never the secret; it is shared, so do not modify it.
func FromContext(ctx context.Context) (*Key, bool) {
	if c := authFrom(ctx); c != nil && c.key != nil {
		return c.key, true
	}
	return nil, false
}

// RequestID returns the request id the middleware assigned ("req_…", or a
// safe incoming X-Request-Id), or "" when no middleware ran.
func RequestID(ctx context.Context) string {
	if c := authFrom(ctx); c != nil {
		return c.requestID
	}
	return ""
}
