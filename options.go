package apikey

import (
	"log/slog"
	"net/http"
	"net/textproto"
	"time"
)

// Option configures the middleware. Each option's doc gives its default.
type Option func(*Authenticator)

// WithStyle sets how rejections are written. Default StyleProblem (RFC 9457
// application/problem+json). The seed presets use StyleFlat, StyleNestedMeta,
// StyleNested, StyleStax and StyleNestedStatus.
func WithStyle(s ErrorStyle) Option { return func(a *Authenticator) { a.style = s } }

// WithFormats sets the key formats accepted, tried in order. Default: the
// store's format when it implements Configured, else FormatDefault. A
// credential that matches none is rejected before the store is asked.
func WithFormats(f ...*Format) Option {
	return func(a *Authenticator) { a.formats = append([]*Format(nil), f...) }
}

// WithHasher sets how credentials are digested; it must match the store's.
// Default: the store's hasher when it implements Configured, else plain
// SHA-256.
func WithHasher(h *Hasher) Option { return func(a *Authenticator) { a.hasher = h } }

// WithScopes declares the scopes and their implications (admin ⇒ read +
// write). Default: the store's ScopeSet when it implements Configured, else
// none (scopes only cover themselves and wildcards their resource).
func WithScopes(s *ScopeSet) Option { return func(a *Authenticator) { a.scopes = s } }

// WithMethodPolicy sets the scope each HTTP method needs on every request
// through the middleware. Default DefaultMethodPolicy(): GET, HEAD, OPTIONS
// need "read"; other methods need "write". Pass nil to check no scope at the
// middleware and guard handlers with Require instead.
func WithMethodPolicy(p MethodPolicy) Option {
	return func(a *Authenticator) { a.policy = compilePolicy(p) }
}

// WithEnvironments limits the environments accepted: WithEnvironments(EnvLive)
// refuses test keys (401) before the store is asked. Default: both.
func WithEnvironments(envs ...Environment) Option {
	return func(a *Authenticator) {
		a.allowLive, a.allowTest = false, false
		for _, e := range envs {
			switch e {
			case EnvLive:
				a.allowLive = true
			case EnvTest:
				a.allowTest = true
			}
		}
	}
}

// WithOwnerHeader binds keys to their owner (seed 003's Email header): the
// request must carry exactly one such header whose value equals the key's
// Owner, case-insensitively when the owner is an e-mail address; otherwise
// 403. Default: no binding.
func WithOwnerHeader(name string) Option {
	return func(a *Authenticator) { a.ownerHeader = textproto.CanonicalMIMEHeaderKey(name) }
}

// WithSources sets where the credential is read from. Default
// FromBearer() alone. With several sources, a request that carries a
// credential in more than one of them is rejected (401).
func WithSources(s ...Source) Option {
	return func(a *Authenticator) { a.sources = append([]Source(nil), s...) }
}

// WithHideCredentials removes the credential (header or query parameter)
// from the request before the next handler sees it, as Kong's
// hide_credentials does. Default off. It costs a copy of the header map.
func WithHideCredentials() Option { return func(a *Authenticator) { a.hide = true } }

// WithOptional lets requests without any credential through anonymously:
// FromContext reports false for them. A credential that is present but bad
// is still rejected. Default off (a missing credential is 401).
func WithOptional() Option { return func(a *Authenticator) { a.optional = true } }

// WithLogger logs each rejection with its precise reason (never the
// credential): Info for credential problems, Warn for store faults. Default:
// no logging.
func WithLogger(l *slog.Logger) Option { return func(a *Authenticator) { a.logger = l } }

// OnAuthenticated registers a hook called for each authenticated request,
// before the next handler. Default none. It runs on the request path:
// keep it fast.
func OnAuthenticated(fn func(r *http.Request, k *Key)) Option {
	return func(a *Authenticator) { a.onAuth = fn }
}

// OnRejected registers a hook called for each rejection with the precise
// reason, for metrics and audit. Default none.
func OnRejected(fn func(r *http.Request, e AuthError)) Option {
	return func(a *Authenticator) { a.onReject = fn }
}

// WithUsage records each authenticated request in the recorder (last-used
// time and count), off the request path. Default: no recording.
func WithUsage(u *UsageRecorder) Option { return func(a *Authenticator) { a.usage = u } }

// WithLookupTimeout bounds each store lookup; a lookup that takes longer is
// a store failure (503). Default 2 s. Stores that answer from memory
// (implementing FastLookup) are not wrapped in a deadline.
func WithLookupTimeout(d time.Duration) Option { return func(a *Authenticator) { a.timeout = d } }

// WithClock sets the clock for expiry checks. Default SystemClock.
func WithClock(c Clock) Option { return func(a *Authenticator) { a.clock = c } }

// WithRealm sets the realm of the WWW-Authenticate challenge. Default "api".
func WithRealm(realm string) Option { return func(a *Authenticator) { a.realm = realm } }

// WithRetryAfter sets the Retry-After of a 503, rounded up to whole
// seconds. Default 1 s.
func WithRetryAfter(d time.Duration) Option { return func(a *Authenticator) { a.retryAfter = d } }
