package apikey

import (
	"context"
)

// authContext carries the middleware's result. It is itself the request's
// context (wrapping the parent), so attaching it costs one allocation
// instead of two.
type authContext struct {
	context.Context
	key       *Key
	requestID string
	auth      *Authenticator
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
