package apikey

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config configures the middleware (New). Keys and Store are required;
// a zero field means its default.
type Config struct {
	// Keys: the same KeyConfig the store was made with. Required.
	Keys KeyConfig
	// Store finds keys by digest. Required.
	Store KeyStore
	// Fallback is asked for a credential none of Keys.Formats accepts (a
	// key from another system, package legacy): the key; an error wrapping
	// ErrNotFound (401); another error (503). It bounds its own cost.
	Fallback func(ctx context.Context, credential string) (*Key, error)

	// MethodPolicy names the scope each HTTP method needs on every request
	// (ReadWritePolicy is the usual REST one). Default nil: no scope is
	// checked here; guard routes with Require or RequireAny.
	MethodPolicy MethodPolicy
	// Style writes rejections. Default: problem+json (ShapeProblem).
	Style ErrorStyle
	// Sources: where the credential may be read; a request with one in
	// more than one of them is refused. Default: FromBearer().
	Sources []Source
	// HideCredentials removes the credential before the next handler.
	HideCredentials bool
	// Environment, when set, is the one accepted: EnvLive refuses test
	// keys before the store is asked. Default 0: both.
	Environment Environment
	// OwnerHeader binds keys to their owner: the request must carry one
	// such header equal to Key.Owner (ASCII case-insensitive), else 403.
	OwnerHeader string
	// Anonymous: methods a request without a credential may use ("*":
	// all). It holds no scopes: FromContext reports false, Require answers
	// 401. A bad credential is refused whatever the method. Default none.
	Anonymous []string
	// Realm of the WWW-Authenticate challenge ("api"); RetryAfter of a 503,
	// in whole seconds (1 s).
	Realm      string
	RetryAfter time.Duration

	// RequestIDHeader carries the request id, the one error bodies call
	// request_id. Default "X-Request-Id".
	RequestIDHeader string
	// RequestID returns the request's own id, used when safe (1 to 128
	// visible ASCII characters but " and \), else the middleware makes one
	// ("req_" and 26 characters). chi: middleware.GetReqID(r.Context()).
	// Default nil: always a new id.
	RequestID func(w http.ResponseWriter, r *http.Request) string
	// NoRequestID: no request-id header, no request_id in bodies.
	NoRequestID bool

	// Logger logs each rejection and its Reason (Info; Warn for a store
	// fault), never the credential. Default nil.
	Logger *slog.Logger
	// Limiter charges each request to its key's limits (package limit)
	// after MethodPolicy, before the next handler: 1, or Cost's. A request
	// refused after (Require, Cost) gives its charge back. Default nil.
	Limiter Limiter
	// Usage counts the requests served: authenticated, and authorized by
	// MethodPolicy and every Require on the way (package usage).
	Usage UsageRecorder
	// OnAuthenticated runs for each authenticated request before the next
	// handler, on the request path. Default nil.
	OnAuthenticated func(r *http.Request, k *Key)
	// OnRejected runs for each rejection (metrics, audit). Default nil.
	OnRejected func(r *http.Request, e AuthError)
}

// UsageRecorder counts the requests served (Config.Usage), without
// blocking the request.
type UsageRecorder interface {
	Record(k *Key, at time.Time)
}

var defaultStyle, _ = NewErrorStyle(ShapeProblem, Messages{})

// compile checks c and fills m with what the request path needs.
func (c Config) compile(m *Middleware) error {
	var err error
	if m.keys, err = c.Keys.check(); err != nil {
		return fmt.Errorf("apikey: New: Config.Keys: %w", err)
	}
	if c.Store == nil {
		return fmt.Errorf("apikey: New: %w: Config.Store is nil", ErrInvalid)
	}
	if m.policy, err = compilePolicy(c.MethodPolicy, m.keys.Scopes); err != nil {
		return fmt.Errorf("apikey: New: %w", err)
	}
	if c.Environment > EnvTest {
		return fmt.Errorf("apikey: New: %w: Config.Environment %d is neither EnvLive nor EnvTest", ErrInvalid, c.Environment)
	}
	if c.RetryAfter < 0 {
		return fmt.Errorf("apikey: New: %w: Config.RetryAfter is negative", ErrInvalid)
	}
	for i, s := range c.Sources {
		if s.kind == 0 || s.name == "" {
			return fmt.Errorf("apikey: New: %w: Config.Sources[%d] is empty; use FromBearer, FromHeader or FromQuery", ErrInvalid, i)
		}
		for _, t := range c.Sources[:i] {
			if s.name == t.name && (s.kind == sourceQuery) == (t.kind == sourceQuery) {
				return fmt.Errorf("apikey: New: %w: Config.Sources[%d] reads %s again; every request would carry two credentials", ErrInvalid, i, s.name)
			}
		}
	}
	m.store, m.hasher, m.fallback = c.Store, m.keys.hasher(), c.Fallback
	m.memory, _ = c.Store.(*MemoryStore)
	m.rehasher, _ = c.Store.(Rehasher)
	m.style = cmp.Or(c.Style, defaultStyle)
	m.sources = append([]Source(nil), c.Sources...)
	if len(m.sources) == 0 {
		m.sources = []Source{FromBearer()}
	}
	m.env, m.hide = c.Environment, c.HideCredentials
	for i, method := range c.Anonymous {
		switch {
		case method == "*":
			m.anonymousAll = true
		case method == "" || strings.ContainsAny(method, " \t\r\n"):
			return fmt.Errorf("apikey: New: %w: Config.Anonymous[%d] %q is not a method", ErrInvalid, i, method)
		}
	}
	m.anonymous = slices.Clone(c.Anonymous)
	if c.OwnerHeader != "" {
		m.ownerHeader = textproto.CanonicalMIMEHeaderKey(c.OwnerHeader)
	}
	m.requestIDHeader = textproto.CanonicalMIMEHeaderKey(cmp.Or(c.RequestIDHeader, "X-Request-Id"))
	m.requestID, m.noRequestID = c.RequestID, c.NoRequestID
	m.logger, m.usage, m.onAuth, m.onReject = c.Logger, c.Usage, c.OnAuthenticated, c.OnRejected
	m.limiter = c.Limiter

	m.challenge = `Bearer realm=` + quote(cmp.Or(c.Realm, "api"))
	m.challengeMissing = []string{m.challenge}
	m.challengeInvalid = []string{m.challenge + `, error="invalid_token"`}
	secs := (c.RetryAfter + time.Second - 1) / time.Second
	m.retryAfter = []string{strconv.FormatInt(max(int64(secs), 1), 10)}

	if len(m.keys.Peppers) > 1 && m.rehasher == nil && m.logger != nil {
		m.logger.Warn("apikey: Config.Store cannot rehash (it is not an apikey.Rehasher): keys made under a retiring pepper stay filed under it")
	}
	return nil
}
