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
	// Fallback finds the key of a credential no format accepts (package
	// legacy): ErrNotFound is a 401, another error a 503.
	Fallback func(ctx context.Context, credential string) (*Key, error)
	// MethodPolicy: the scope each HTTP method needs (ReadWritePolicy).
	// Default nil: none; guard routes with Require.
	MethodPolicy MethodPolicy
	// Style writes rejections. Default: problem+json (ShapeProblem).
	Style ErrorStyle
	// Sources of the credential; two in one request are refused. Default
	// FromBearer().
	Sources []Source
	// HideCredentials removes the credential before the next handler.
	HideCredentials bool
	// Environment, when set, is the only one accepted. Default 0: both.
	Environment Environment
	// OwnerHeader binds keys to their owner: the request must carry one
	// such header equal to Key.Owner (ASCII case-insensitive), else 403.
	OwnerHeader string
	// Anonymous: methods open without a credential ("*": all), where
	// FromContext reports false. A bad credential is refused anyway.
	Anonymous []string
	// Realm of the WWW-Authenticate challenge ("api"); RetryAfter of a 503,
	// in whole seconds (1 s).
	Realm      string
	RetryAfter time.Duration
	// RequestIDHeader carries the request id. Default "X-Request-Id".
	RequestIDHeader string
	// RequestID returns the request's own id (chi: middleware.GetReqID),
	// used when safe, else a new "req_…" one. Default nil: always new.
	RequestID func(w http.ResponseWriter, r *http.Request) string
	// NoRequestID: no request-id header, no request_id in bodies.
	NoRequestID bool
	// Logger logs each rejection's Reason, never the credential.
	Logger *slog.Logger
	// Limiter charges each request to its key's limits (package limit):
	// 1, or Cost's; a request refused after gives it back.
	Limiter Limiter
	// Usage counts the requests served (package usage).
	Usage UsageRecorder
	// OnAuthenticated runs before the next handler of each authenticated
	// request.
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
