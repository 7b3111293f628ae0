package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keygate/apikey/internal/limits"
)

// Middleware authenticates requests with API keys. Make one with New; it is
// immutable and safe for concurrent use.
type Middleware struct {
	keys     KeyConfig
	hasher   hasher
	store    KeyStore
	memory   *MemoryStore // store, when it is one (lookup)
	fallback func(context.Context, string) (*Key, error)
	rehasher Rehasher
	policy   *compiledPolicy
	style    ErrorStyle
	sources  []Source
	env      Environment

	ownerHeader     string
	anonymous       []string // methods open to requests without a credential
	anonymousAll    bool     // Anonymous holds "*"
	hide            bool
	requestIDHeader string
	requestID       func(http.ResponseWriter, *http.Request) string
	noRequestID     bool
	logger          *slog.Logger
	usage           UsageRecorder
	limiter         Limiter
	onAuth          func(*http.Request, *Key)
	onReject        func(*http.Request, AuthError)

	// Precomputed header values. net/http and Header.Set replace a value
	// slice rather than write into it, so responses may share them.
	challenge        string
	challengeMissing []string
	challengeInvalid []string
	scopeChallenges  sync.Map // Scope -> []string, scopeChallenge's
	retryAfter       []string
}

// New checks cfg and returns the middleware; its error names the field to
// change. Handler gives each request its id, parses its credential (a bad
// one never reaches the store), looks it up (unknown: 401; a fault: 503),
// checks Key.State (401), the owner and MethodPolicy (403) and the limits
// (429), then calls the next handler with the key in the context.
func New(cfg Config) (*Middleware, error) {
	m := new(Middleware)
	if err := cfg.compile(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Handler wraps next: it runs for authenticated requests only (and
// anonymous ones of the methods in Config.Anonymous).
func (m *Middleware) Handler(next http.Handler) http.Handler {
	if next == nil {
		panic("apikey: Handler: nil next handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, next)
	})
}

// HandlerFunc is Handler for a handler that takes the key as an argument
// (nil: anonymous), and saves the request a new context; inside h,
// FromContext, RequestID, Require and Cost do not apply.
func (m *Middleware) HandlerFunc(h func(w http.ResponseWriter, r *http.Request, k *Key)) http.Handler {
	if h == nil {
		panic("apikey: HandlerFunc: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, src, ok := m.admit(w, r)
		if !ok {
			return
		}
		rid := m.loneRequestID(w, r) // no context to carry it
		if key != nil {
			if r, _, ok = m.pass(w, r, key, src, rid); !ok {
				return
			}
			if m.usage != nil {
				defer m.recordKey(key)
			}
		}
		h(w, r, key)
	})
}

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	key, src, ok := m.admit(w, r)
	if !ok {
		return
	}
	c := &authContext{Context: r.Context()}
	m.assignRequestID(&c.requestIDs, w, r)
	if key != nil {
		if r, c.charged, ok = m.pass(w, r, key, src, c.id()); !ok {
			return
		}
		c.key = key
		if m.usage != nil {
			defer m.record(c)
		}
	}
	next.ServeHTTP(w, r.WithContext(c))
}

// admit authenticates and authorizes a request: its key, nil for an
// anonymous request, and the source it came from; false when it has
// answered. A request refused here gets its id alone, a smaller
// allocation than the context of one that goes on.
func (m *Middleware) admit(w http.ResponseWriter, r *http.Request) (*Key, int, bool) {
	cred, src, reason, err := m.extract(r)
	if reason == ReasonMissing && (m.anonymousAll || slices.Contains(m.anonymous, r.Method)) {
		return nil, -1, true
	}
	if reason != 0 {
		m.reject(w, r, AuthError{Reason: reason, RequestID: m.loneRequestID(w, r), Err: err})
		return nil, 0, false
	}
	key, reason, err := m.verify(r.Context(), cred)
	if reason != 0 {
		m.reject(w, r, AuthError{Reason: reason, RequestID: m.loneRequestID(w, r), Err: err, KeyID: keyID(key)})
		return nil, 0, false
	}
	if reason, scope := m.authorize(r, key); reason != 0 {
		m.reject(w, r, AuthError{Reason: reason, RequestID: m.loneRequestID(w, r), KeyID: key.ID, Scope: scope})
		return nil, 0, false
	}
	return key, src, true
}

// pass lets an authorized request through: it charges the key's limits
// (charged: what was taken), runs OnAuthenticated and hides the
// credential; false when it has answered (429, or 503 for a limiter's
// fault).
func (m *Middleware) pass(w http.ResponseWriter, r *http.Request, key *Key, src int, rid string) (_ *http.Request, charged int64, ok bool) {
	if m.limiter != nil {
		if reason, err := m.take(r.Context(), w, key, 1); reason != 0 {
			m.reject(w, r, AuthError{Reason: reason, RequestID: rid, KeyID: key.ID, Err: err})
			return r, 0, false
		}
		charged = 1
	}
	if m.onAuth != nil {
		m.onAuth(r, key)
	}
	if m.hide {
		r = hideCredential(r, m.sources[src])
	}
	return r, charged, true
}

// record counts a request that reached the handler, unless a Require on
// its way refused it: what Config.Usage counts is what was served.
func (m *Middleware) record(c *authContext) {
	if !c.refused.Load() {
		m.recordKey(c.key)
	}
}

// recordKey counts a request of k that reached its handler.
func (m *Middleware) recordKey(k *Key) { m.usage.Record(k, m.keys.Clock()) }

// take charges cost to k's limits: 0, ReasonLimited, or ReasonStoreFailure
// for a limiter's error or panic.
func (m *Middleware) take(ctx context.Context, w http.ResponseWriter, k *Key, cost int64) (r Reason, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = ReasonStoreFailure, fmt.Errorf("apikey: limiter panicked: %v", p)
		}
	}()
	ok, err := m.limiter.Take(ctx, k, cost, w.Header())
	switch {
	case err != nil:
		return ReasonStoreFailure, fmt.Errorf("apikey: limiter: %w", err)
	case !ok:
		return ReasonLimited, nil
	}
	return 0, nil
}

// giveBack returns what the limiter took for a request refused after the
// middleware let it in. The RateLimit field the take wrote no longer
// holds, and goes (a Cost's new take writes its own).
func (m *Middleware) giveBack(w http.ResponseWriter, r *http.Request, c *authContext) {
	if c.charged == 0 {
		return
	}
	n := c.charged
	c.charged = 0
	delete(w.Header(), limits.HeaderRateLimit)
	func() {
		defer func() { _ = recover() }() // the refusal stands; nothing to undo
		m.limiter.Give(context.WithoutCancel(r.Context()), c.key, n)
	}()
}

// Verify checks a credential as the middleware does, without the HTTP
// parts (sources, owner, method policy, limits), for a gRPC interceptor or a
// WebSocket upgrade: the key, or an AuthError saying why not.
func (m *Middleware) Verify(ctx context.Context, credential string) (*Key, error) {
	key, reason, err := m.verify(ctx, credential)
	if reason != 0 {
		return nil, AuthError{Reason: reason, Err: err, KeyID: keyID(key)}
	}
	return key, nil
}

// verify parses, looks up and checks a credential. On failure it returns
// the key too when the store found one.
func (m *Middleware) verify(ctx context.Context, cred string) (*Key, Reason, error) {
	env, err := parseAny(m.keys.Formats, cred)
	if err != nil {
		if m.fallback == nil {
			return nil, ReasonMalformed, err
		}
		return m.verifyFallback(ctx, cred)
	}
	if m.env != 0 && env != m.env {
		return nil, ReasonEnvironment, nil
	}
	key, reason, err := m.lookup(ctx, cred)
	if reason != 0 {
		return nil, reason, err
	}
	return m.check(key, env)
}

// verifyFallback asks Config.Fallback about a credential none of the
// formats accepts, and checks the key it finds as any other.
func (m *Middleware) verifyFallback(ctx context.Context, cred string) (*Key, Reason, error) {
	key, err := safeFallback(ctx, m.fallback, cred)
	switch {
	case err == nil && key == nil:
		return nil, ReasonStoreFailure, errors.New("apikey: Config.Fallback returned no key and no error")
	case errors.Is(err, ErrNotFound):
		return nil, ReasonUnknown, err
	case err != nil:
		return nil, ReasonStoreFailure, err
	case m.env != 0 && key.Environment != m.env:
		return key, ReasonEnvironment, nil
	}
	return m.check(key, key.Environment)
}

// safeFallback calls Config.Fallback and turns a panic into an error.
func safeFallback(ctx context.Context, f func(context.Context, string) (*Key, error), cred string) (k *Key, err error) {
	defer func() {
		if p := recover(); p != nil {
			k, err = nil, fmt.Errorf("apikey: Config.Fallback panicked: %v", p)
		}
	}()
	return f(ctx, cred)
}

// check applies the key's state, and that its environment is the one the
// credential says.
func (m *Middleware) check(key *Key, env Environment) (*Key, Reason, error) {
	var now time.Time // read the clock only for a key that can expire
	if !key.ExpiresAt.IsZero() {
		now = m.keys.Clock()
	}
	switch key.State(now) {
	case StateRevoked, StateDisabled: // a disabled key answers as a revoked one
		return key, ReasonRevoked, nil
	case StateExpired:
		return key, ReasonExpired, nil
	case StateRolled:
		return key, ReasonRolled, nil
	}
	if key.Environment != env {
		return key, ReasonEnvironment, nil // the store disagrees with the prefix: trust neither
	}
	return key, 0, nil
}

// lookup digests the credential and asks the store, under each pepper
// (current first). It turns every failure into a reason and never lets a
// store panic escape.
func (m *Middleware) lookup(ctx context.Context, cred string) (*Key, Reason, error) {
	for i, n := 0, m.hasher.candidates(); i < n; i++ {
		digest, _ := m.hasher.digestAt(i, cred)
		var key *Key
		var err error
		if m.memory != nil {
			// Ours cannot panic: called directly, without safeLookup's
			// recover and the interface call, it saves 6-13 ns of a
			// 180-ns request, 3-7% (bench/compare.sh, 12 rounds of
			// BenchmarkRequest/path=valid/impl=apikey-keyarg-noid).
			key, err = m.memory.Lookup(ctx, digest)
		} else {
			key, err = safeLookup(ctx, m.store, digest)
		}
		switch {
		case err == nil && key != nil:
			if i > 0 && m.rehasher != nil {
				m.rehash(ctx, key, cred)
			}
			return key, 0, nil
		case err == nil:
			return nil, ReasonStoreFailure, errors.New("apikey: store returned no key and no error")
		case err == ErrNotFound || errors.Is(err, ErrNotFound):
			continue
		default:
			return nil, ReasonStoreFailure, err
		}
	}
	return nil, ReasonUnknown, ErrNotFound
}

// safeLookup calls the store and turns a panic into an error.
func safeLookup(ctx context.Context, store KeyStore, d Digest) (k *Key, err error) {
	defer func() {
		if p := recover(); p != nil {
			k, err = nil, fmt.Errorf("apikey: store panicked: %v", p)
		}
	}()
	return store.Lookup(ctx, d)
}

// rehashTimeout bounds a rehash, which runs on the request path of the
// first request of a key made under a retiring pepper: a store that hangs
// delays that request by this much at most.
const rehashTimeout = time.Second

// rehash files a key found under a retiring pepper under the current one.
// It is best effort: a failure, even a panic or a timeout, is logged and
// the request goes on.
func (m *Middleware) rehash(ctx context.Context, k *Key, cred string) {
	ctx, cancel := context.WithTimeout(ctx, rehashTimeout)
	defer cancel()
	d, pepperID := m.hasher.digestAt(0, cred)
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("apikey: rehash panicked: %v", p)
			}
		}()
		return m.rehasher.Rehash(ctx, k.ID, d, pepperID)
	}()
	if err != nil && m.logger != nil {
		m.logger.LogAttrs(ctx, slog.LevelWarn, "apikey: rehash under current pepper failed",
			slog.String("key_id", k.ID), slog.Any("error", err))
	}
}

func keyID(k *Key) string {
	if k == nil {
		return ""
	}
	return k.ID
}

// authorize applies the owner binding and the method policy to a valid key.
func (m *Middleware) authorize(r *http.Request, k *Key) (Reason, Scope) {
	if m.ownerHeader != "" && !ownerMatches(r.Header[m.ownerHeader], k.Owner) {
		return ReasonOwner, ""
	}
	if m.policy != nil {
		need, ok := m.policy.required(r.Method)
		if !ok {
			return ReasonScope, ""
		}
		if need != "" && !m.keys.Scopes.Allows(k.Scopes, need) {
			return ReasonScope, need
		}
	}
	return 0, ""
}

// ownerMatches compares the one owner header with the key's owner: for an
// e-mail address with ASCII case folding only (so that no Unicode look-alike,
// such as the Kelvin sign for "k", matches), otherwise exactly. Surrounding
// spaces and tabs (RFC 9110 OWS) are not part of the value.
func ownerMatches(vals []string, owner string) bool {
	if len(vals) != 1 || owner == "" {
		return false
	}
	v := strings.Trim(vals[0], " \t")
	if strings.Contains(owner, "@") {
		return equalFoldASCII(v, owner)
	}
	return v == owner
}

// equalFoldASCII reports whether a and b are equal, A-Z matching a-z.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

var noStore = []string{"no-store"}

// reject sets the shared headers, reports the reason and writes the style's
// body; for a fault after the client has gone, nothing.
func (m *Middleware) reject(w http.ResponseWriter, r *http.Request, e AuthError) {
	if e.Reason == ReasonStoreFailure && errors.Is(r.Context().Err(), context.Canceled) {
		// The client has gone (net/http cancels the request's context)
		// while the store or the limiter worked; nobody is left to
		// answer. A deadline set upstream is not that: it gets its 503
		// like any other fault.
		return
	}
	h := w.Header()
	h["Cache-Control"] = noStore
	switch e.Reason.Status() {
	case http.StatusUnauthorized:
		if e.Reason == ReasonMissing || e.Reason == ReasonUnauthenticated {
			h["Www-Authenticate"] = m.challengeMissing
		} else {
			h["Www-Authenticate"] = m.challengeInvalid
		}
	case http.StatusForbidden:
		if e.Reason == ReasonScope {
			h["Www-Authenticate"] = m.scopeChallenge(e.Scope)
		} else {
			h["Www-Authenticate"] = m.challengeMissing // owner mismatch: not a scope problem
		}
	case http.StatusServiceUnavailable:
		h["Retry-After"] = m.retryAfter
	}
	if m.logger != nil {
		m.log(r, e)
	}
	if m.onReject != nil {
		m.onReject(r, e)
	}
	m.style.WriteError(w, r, e)
}

func (m *Middleware) log(r *http.Request, e AuthError) {
	level := slog.LevelInfo
	if e.Reason == ReasonStoreFailure {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("reason", e.Reason.String()),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
	}
	if e.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", e.RequestID))
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
	m.logger.LogAttrs(r.Context(), level, "apikey: request rejected", attrs...)
}

// scopeChallenge is the WWW-Authenticate value of a 403 for a missing
// scope, made once per scope: the scopes come from the configuration
// (MethodPolicy, Require), never from a request, so they are few.
func (m *Middleware) scopeChallenge(scope Scope) []string {
	if v, ok := m.scopeChallenges.Load(scope); ok {
		return v.([]string)
	}
	c := m.challenge + `, error="insufficient_scope"`
	if scope != "" {
		c += `, scope=` + quote(string(scope))
	}
	v, _ := m.scopeChallenges.LoadOrStore(scope, []string{c})
	return v.([]string)
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

// Require guards a handler: the request's key must hold every one of
// scopes (or imply it), else 403; without a key, 401. Like http.ServeMux
// on a bad pattern, it panics at setup on an undeclared scope.
func (m *Middleware) Require(scopes ...Scope) func(http.Handler) http.Handler {
	return m.require(requirement{scopes})
}

// RequireAny is Require with alternatives: the key must hold every scope of
// one of them: RequireAny([]Scope{"admin"}, []Scope{"read", "billing"}).
func (m *Middleware) RequireAny(alternatives ...[]Scope) func(http.Handler) http.Handler {
	return m.require(requirement(alternatives))
}

func (m *Middleware) require(req requirement) func(http.Handler) http.Handler {
	if err := req.check(m.keys.Scopes); err != nil {
		panic(fmt.Sprintf("apikey: Require: %v", err))
	}
	req = cloneRequirement(req)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := m.authenticated(w, r)
			if c == nil {
				return
			}
			if missing, ok := req.met(m.keys.Scopes, c.key.Scopes); !ok {
				m.refuseAdmitted(w, r, c, AuthError{Reason: ReasonScope, Scope: missing})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Cost prices a handler's requests at n (1 to 2^40) of the key's limits
// instead of 1 (nested Costs: the largest); a request that cannot pay
// gets 429 and pays nothing.
func (m *Middleware) Cost(n int64) func(http.Handler) http.Handler {
	if n < 1 || n > limits.MaxCount {
		panic(fmt.Sprintf("apikey: Cost: %d is not between 1 and %d", n, int64(limits.MaxCount)))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := m.authenticated(w, r)
			if c == nil {
				return
			}
			if m.limiter != nil && n > c.charged {
				// The whole price at once: the limiter knows a price
				// that can never fit, and the headers say what remains.
				m.giveBack(w, r, c)
				if reason, err := m.take(r.Context(), w, c.key, n); reason != 0 {
					m.refuseAdmitted(w, r, c, AuthError{Reason: reason, Err: err})
					return
				}
				c.charged = n
			}
			next.ServeHTTP(w, r)
		})
	}
}

// refuseAdmitted answers a request that the middleware let in and a
// Require or Cost further in refuses: it is not counted as usage, and
// what the limiter took for it is given back.
func (m *Middleware) refuseAdmitted(w http.ResponseWriter, r *http.Request, c *authContext, e AuthError) {
	c.refused.Store(true)
	m.giveBack(w, r, c)
	e.RequestID, e.KeyID = c.id(), c.key.ID
	m.reject(w, r, e)
}

// authenticated returns the request's authContext with its key, or answers
// 401 (ReasonUnauthenticated) and returns nil.
func (m *Middleware) authenticated(w http.ResponseWriter, r *http.Request) *authContext {
	c := authFrom(r.Context())
	if c != nil && c.key != nil {
		return c
	}
	e := AuthError{Reason: ReasonUnauthenticated}
	if c != nil {
		e.RequestID = c.id()
	} else {
		e.RequestID = m.loneRequestID(w, r)
	}
	m.reject(w, r, e)
	return nil
}

func cloneRequirement(r requirement) requirement {
	out := make(requirement, len(r))
	for i, all := range r {
		out[i] = append([]Scope(nil), all...)
	}
	return out
}
