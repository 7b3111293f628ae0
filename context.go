package apikey

import (
	"context"
	"sync/atomic"
)

// authContext carries the middleware's result. It is itself the request's
// context (wrapping the parent), and it also holds the request id's bytes
// and the request-id header's value slice, so that a request costs one
// allocation here instead of four (context.WithValue, a value, the id
// string and the header slice).
type authContext struct {
	context.Context
	key     *Key
	refused atomic.Bool // a Require refused the request after the middleware let it in
	charged int64       // what Config.Limiter took for the request
	requestIDs
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

// FromContext returns the key that authenticated the request: metadata,
// never the secret, shared (do not modify it). It reports false when no
// middleware ran or the request was anonymous (Config.Anonymous).
func FromContext(ctx context.Context) (*Key, bool) {
	if c := authFrom(ctx); c != nil && c.key != nil {
		return c.key, true
	}
	return nil, false
}

// RequestID returns the request's id, as in the response header and error
// bodies; "" when no middleware ran or ids are off.
func RequestID(ctx context.Context) string {
	if c := authFrom(ctx); c != nil {
		return c.id()
	}
	return ""
}
