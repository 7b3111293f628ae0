package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Authenticator is a configured middleware. Middleware(store, opts...) is
// New(store, opts...).Handler; keep the Authenticator when you also want
// Require bound to its style and scopes. It is immutable and safe for
// concurrent use.
type Authenticator struct {
	store     KeyStore
	fast      bool // the store answers from memory: no lookup deadline
	rehasher  Rehasher
	formats   []*Format
	hasher    *Hasher
	scopes    *ScopeSet
	policy    *compiledPolicy
	style     ErrorStyle
	sources   []Source
	allowLive bool
	allowTest bool

	ownerHeader string
	optional    bool
	hide        bool
	logger      *slog.Logger
	onAuth      func(*http.Request, *Key)
	onReject    func(*http.Request, AuthError)
	usage       *UsageRecorder
	timeout     time.Duration
	clock       Clock
	realm       string
	retryAfter  time.Duration

	// Precomputed header values.
	challengeMissing []string
	challengeInvalid []string
	retryAfterValue  []string
}

// FastLookup is implemented by stores whose Lookup answers from memory
// without blocking, such as MemoryStore, or that apply their own deadline to
// the lookups that do block, such as Cache. The middleware does not wrap
// their lookups in a context deadline, which would cost a timer and three
// allocations per request.
type FastLookup interface {
	FastLookup() bool
}

// Middleware returns net/http middleware that authenticates every request
// with an API key from store. See New for the options and the behaviour.
func Middleware(store KeyStore, opts ...Option) func(http.Handler) http.Handler {
	return New(store, opts...).Handler
}

// New configures an Authenticator. For each request its Handler:
//
//  1. assigns a request id (a safe incoming X-Request-Id, else "req_…") and
//     echoes it in the X-Request-Id response header;
//  2. extracts exactly one credential from the configured sources;
//  3. parses it against the key formats — rejected here without a store
//     call: missing, duplicated, oversized, malformed, bad checksum, or an
//     environment that is not accepted;
//  4. digests it and looks it up in the store (ErrNotFound → 401, any other
//     failure, timeout or panic → 503);
//  5. checks the key: revoked, expired, past its roll grace → 401; owner
//     header mismatch → 403; missing scope for the method → 403;
//  6. attaches the key and request id to the context, records usage and
//     calls the next handler.
//
// Rejections go through the error style; the precise reason goes only to
// the logger and the OnRejected hook. New panics if store is nil.
func New(store KeyStore, opts ...Option) *Authenticator {
	if store == nil {
		panic("apikey: New: nil KeyStore")
	}
	a := &Authenticator{
		store:      store,
		policy:     compilePolicy(DefaultMethodPolicy()),
		style:      StyleProblem,
		sources:    []Source{FromBearer()},
		allowLive:  true,
		allowTest:  true,
		timeout:    2 * time.Second,
		clock:      SystemClock,
		realm:      "api",
		retryAfter: time.Second,
	}
	if c, ok := store.(Configured); ok {
		cfg := c.Config()
		a.formats = []*Format{cfg.Format}
		a.hasher = cfg.Hasher
		a.scopes = cfg.Scopes
		if cfg.Clock != nil {
			a.clock = cfg.Clock
		}
	}
	for _, o := range opts {
		o(a)
	}
	if len(a.formats) == 0 || a.formats[0] == nil {
		a.formats = []*Format{FormatDefault}
	}
	if a.hasher == nil {
		a.hasher = &Hasher{}
	}
	if len(a.sources) == 0 {
		a.sources = []Source{FromBearer()}
	}
	if a.style == nil {
		a.style = StyleProblem
	}
	if a.clock == nil {
		a.clock = SystemClock
	}
	if f, ok := store.(FastLookup); ok && f.FastLookup() {
		a.fast = true
	}
	a.rehasher, _ = store.(Rehasher)
	a.challengeMissing = []string{`Bearer realm=` + quote(a.realm)}
	a.challengeInvalid = []string{`Bearer realm=` + quote(a.realm) + `, error="invalid_token"`}
	secs := (a.retryAfter + time.Second - 1) / time.Second
	if secs < 1 {
		secs = 1
	}
	a.retryAfterValue = []string{strconv.FormatInt(int64(secs), 10)}
	return a
}

// Handler wraps next so that it only runs for authenticated requests (or
// anonymous ones in optional mode).
func (a *Authenticator) Handler(next http.Handler) http.Handler {
	if next == nil {
		panic("apikey: Handler: nil next handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serve(w, r, next)
	})
}

const headerRequestID = "X-Request-Id"

func (a *Authenticator) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	c := newAuthContext(w, r, a)
	rid := c.requestID

	cred, src, reason := a.extract(r)
	if reason == ReasonMissing && a.optional {
		next.ServeHTTP(w, r.WithContext(c))
		return
	}
	if reason != ReasonNone {
		a.reject(w, r, AuthError{Reason: reason, RequestID: rid})
		return
	}
	key, reason, err := a.verify(r.Context(), cred)
	if reason != ReasonNone {
		if isStoreFault(reason) && errors.Is(r.Context().Err(), context.Canceled) {
			// The client has gone (net/http cancels the request's
			// context); nobody is left to answer. A deadline set upstream
			// is not that: it gets its 503 like any other fault.
			return
		}
		a.reject(w, r, AuthError{Reason: reason, RequestID: rid, Err: err, KeyID: keyID(key)})
		return
	}
	if reason, scope := a.authorize(r, key); reason != ReasonNone {
		a.reject(w, r, AuthError{Reason: reason, RequestID: rid, KeyID: key.ID, Scope: scope})
		return
	}
	if a.onAuth != nil {
		a.onAuth(r, key)
	}
	if a.usage != nil {
		a.usage.Record(key, a.clock.Now())
	}
	if a.hide {
		r = hideCredential(r, a.sources[src])
	}
	c.key = key
	next.ServeHTTP(w, r.WithContext(c))
}

// lookup digests the credential and asks the store, under each pepper the
// hasher knows (current first). It turns every failure into a reason and
// never lets a store panic escape.
func (a *Authenticator) lookup(ctx context.Context, cred string) (*Key, Reason, error) {
	if !a.fast && a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	for i, n := 0, a.hasher.Candidates(); i < n; i++ {
		digest, _ := a.hasher.DigestAt(i, cred)
		key, err := safeLookup(ctx, a.store, digest)
		switch {
		case err == nil && key != nil:
			if i > 0 && a.rehasher != nil {
				a.rehash(ctx, key, cred)
			}
			return key, ReasonNone, nil
		case err == nil:
			return nil, ReasonStoreFailure, errors.New("apikey: store returned no key and no error")
		case err == ErrNotFound || errors.Is(err, ErrNotFound):
			continue
		case errors.Is(err, errStorePanic):
			return nil, ReasonStorePanic, err
		case errors.Is(err, context.DeadlineExceeded):
			return nil, ReasonStoreTimeout, err
		default:
			return nil, ReasonStoreFailure, err
		}
	}
	return nil, ReasonUnknown, ErrNotFound
}

var errStorePanic = errors.New("apikey: store panicked")

// safeLookup calls the store and turns a panic into an error.
func safeLookup(ctx context.Context, store KeyStore, d Digest) (k *Key, err error) {
	defer func() {
		if p := recover(); p != nil {
			k, err = nil, fmt.Errorf("%w: %v", errStorePanic, p)
		}
	}()
	return store.Lookup(ctx, d)
}

// rehash files a key found under a retiring pepper under the current one.
// It is best effort: a failure, even a panic, is logged and the request
// goes on.
func (a *Authenticator) rehash(ctx context.Context, k *Key, cred string) {
	d, pepperID := a.hasher.DigestAt(0, cred)
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: rehash: %v", errStorePanic, p)
			}
		}()
		return a.rehasher.Rehash(ctx, k.ID, d, pepperID)
	}()
	if err != nil && a.logger != nil {
		a.logger.LogAttrs(ctx, slog.LevelWarn, "apikey: rehash under current pepper failed",
			slog.String("key_id", k.ID), slog.Any("error", err))
	}
}

// Verify checks a credential the way the middleware does, without the
// HTTP parts (sources, owner header, method policy): format and
// environment, then the store, then the key's state. It returns the key, or
// an AuthError whose Reason says why not. Use it to authenticate outside
// net/http, such as a gRPC interceptor or a WebSocket upgrade.
func (a *Authenticator) Verify(ctx context.Context, credential string) (*Key, error) {
	if len(credential) > MaxKeyLength {
		return nil, AuthError{Reason: ReasonOversized, Realm: a.realm}
	}
	key, reason, err := a.verify(ctx, credential)
	if reason != ReasonNone {
		return nil, AuthError{Reason: reason, Err: err, KeyID: keyID(key), Realm: a.realm}
	}
	return key, nil
}

// verify runs steps 3 to 5 of a request: parse, environment, lookup,
// state (Key.State, with the clock read only for a key that can expire).
// On failure the key is returned when the store found one.
func (a *Authenticator) verify(ctx context.Context, cred string) (*Key, Reason, error) {
	_, env, err := ParseAny(a.formats, cred)
	if err != nil {
		if err == ErrKeyChecksum {
			return nil, ReasonChecksum, err
		}
		return nil, ReasonMalformed, err
	}
	if (env == EnvLive && !a.allowLive) || (env == EnvTest && !a.allowTest) {
		return nil, ReasonEnvironment, nil
	}
	key, reason, err := a.lookup(ctx, cred)
	if reason != ReasonNone {
		return nil, reason, err
	}
	switch {
	case !key.RevokedAt.IsZero():
		return key, ReasonRevoked, nil
	case !key.ExpiresAt.IsZero() && !a.clock.Now().Before(key.ExpiresAt):
		if key.RolledTo != "" {
			return key, ReasonRolled, nil
		}
		return key, ReasonExpired, nil
	case key.Environment != env:
		// The store disagrees with the prefix: trust neither.
		return key, ReasonEnvironment, nil
	}
	return key, ReasonNone, nil
}

func keyID(k *Key) string {
	if k == nil {
		return ""
	}
	return k.ID
}

func isStoreFault(r Reason) bool { return r.Status() == http.StatusServiceUnavailable }

// authorize applies the owner binding and the method policy to a valid key.
func (a *Authenticator) authorize(r *http.Request, k *Key) (Reason, Scope) {
	if a.ownerHeader != "" && !ownerMatches(r.Header[a.ownerHeader], k.Owner) {
		return ReasonOwner, ""
	}
	if a.policy != nil {
		need, ok := a.policy.required(r.Method)
		if !ok {
			return ReasonScope, ""
		}
		if need != "" && !a.scopes.Allows(k.Scopes, need) {
			return ReasonScope, need
		}
	}
	return ReasonNone, ""
}

// ownerMatches compares the one owner header with the key's owner: exactly,
// or case-insensitively for an e-mail address. Surrounding spaces and tabs
// (RFC 9110 OWS) are not part of the value.
func ownerMatches(vals []string, owner string) bool {
	if len(vals) != 1 || owner == "" {
		return false
	}
	v := strings.Trim(vals[0], " \t")
	if strings.Contains(owner, "@") {
		return strings.EqualFold(v, owner)
	}
	return v == owner
}

// Header values shared by every response. net/http and Header.Set replace
// a value slice rather than write into it; code that writes into
// h[key][0] of a rejection would change them for every later response.
var noStore = []string{"no-store"}

// reject sets the shared headers, reports the reason and writes the style's
// body.
func (a *Authenticator) reject(w http.ResponseWriter, r *http.Request, e AuthError) {
	e.Realm = a.realm
	h := w.Header()
	h["Cache-Control"] = noStore
	switch e.Status() {
	case http.StatusUnauthorized:
		if e.Reason == ReasonMissing || e.Reason == ReasonUnauthenticated {
			h["Www-Authenticate"] = a.challengeMissing
		} else {
			h["Www-Authenticate"] = a.challengeInvalid
		}
	case http.StatusForbidden:
		if e.Reason == ReasonScope {
			h["Www-Authenticate"] = []string{a.scopeChallenge(e.Scope)}
		} else {
			h["Www-Authenticate"] = a.challengeMissing // owner mismatch: not a scope problem
		}
	case http.StatusServiceUnavailable:
		h["Retry-After"] = a.retryAfterValue
	}
	if a.logger != nil {
		level := slog.LevelInfo
		if e.Status() == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("reason", e.Reason.String()),
			slog.String("request_id", e.RequestID),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
		}
		if e.KeyID != "" {
			attrs = append(attrs, slog.String("key_id", e.KeyID))
		}
		if e.Scope != "" {
			attrs = append(attrs, slog.String("scope", string(e.Scope)))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("error", e.Err.Error()))
		}
		a.logger.LogAttrs(r.Context(), level, "apikey: request rejected", attrs...)
	}
	if a.onReject != nil {
		a.onReject(r, e)
	}
	a.style.WriteError(w, r, e)
}

func (a *Authenticator) scopeChallenge(s Scope) string {
	c := `Bearer realm=` + quote(a.realm) + `, error="insufficient_scope"`
	if s != "" {
		c += `, scope=` + quote(string(s))
	}
	return c
}

// quote makes an RFC 9110 quoted-string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		if c < 0x20 || c == 0x7f {
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// Require returns middleware that lets a request through only when the
// Authenticator's middleware authenticated it with a key that has every one
// of scopes (through implication and wildcards). It answers 401 when no key
// is in the context — it never passes by default — and 403 when a scope is
// missing, in a's style.
func (a *Authenticator) Require(scopes ...Scope) func(http.Handler) http.Handler {
	return requireWith(a, scopes)
}

// Require guards a single handler: the request must carry a key
// authenticated by an upstream Middleware, with every one of scopes. The
// scope declarations and error style are those of that middleware. Without
// an authenticated key in the context — no middleware upstream, or an
// anonymous request in optional mode — it answers 401 (ezauth#184: a scope
// check must never pass when authentication did not run); it uses
// StyleProblem when no middleware ran.
func Require(scopes ...Scope) func(http.Handler) http.Handler {
	return requireWith(nil, scopes)
}

var defaultAuthenticator = New(KeyStoreFunc(func(context.Context, Digest) (*Key, error) {
	return nil, ErrNotFound
}))

func requireWith(a *Authenticator, scopes []Scope) func(http.Handler) http.Handler {
	scopes = append([]Scope(nil), scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := authFrom(r.Context())
			auth := a
			if auth == nil && c != nil {
				auth = c.auth
			}
			if auth == nil {
				auth = defaultAuthenticator
			}
			if c == nil || c.key == nil {
				rid := ""
				if c != nil {
					rid = c.requestID
				} else {
					rid = requestIDFrom(r)
					w.Header()[headerRequestID] = []string{rid}
				}
				auth.reject(w, r, AuthError{Reason: ReasonUnauthenticated, RequestID: rid})
				return
			}
			if missing, ok := auth.scopes.AllowsAll(c.key.Scopes, scopes); !ok {
				auth.reject(w, r, AuthError{Reason: ReasonScope, RequestID: c.requestID, KeyID: c.key.ID, Scope: missing})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
