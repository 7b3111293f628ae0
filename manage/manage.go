package manage

import (
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/keygate/apikey"
)

// Handler serves the API keys page and its JSON API for a store. It is
// safe for concurrent use.
type Handler struct {
	store   apikey.Manager
	keys    apikey.KeyConfig
	caller  func(r *http.Request) (Caller, error)
	path    string
	audit   AuditSink
	log     AuditLog // Audit, when it can be read back
	limits  LimitStatus
	style   apikey.ErrorStyle
	grace   time.Duration
	title   string
	logger  *slog.Logger
	clock   func() time.Time
	offered []apikey.Scope // the scopes the page offers

	cop   *http.CrossOriginProtection
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// The headers of every response.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the handler that manages the keys of store, which was made
// with cfg.Keys.
func New(store apikey.Manager, cfg Config) (*Handler, error) {
	if store == nil {
		return nil, fmt.Errorf("manage: New: %w: store is nil", apikey.ErrInvalid)
	}
	if err := cfg.Keys.Check(); err != nil {
		return nil, fmt.Errorf("manage: New: Config.Keys: %w", err)
	}
	if cfg.Caller == nil {
		return nil, fmt.Errorf("manage: New: %w: Config.Caller is nil: say who is asking, from the host's session or apikey.FromContext", apikey.ErrInvalid)
	}
	if p := cfg.Path; p != "" && (p[0] != '/' || p == "/" || path.Clean(p) != p || strings.ContainsAny(p, "{}?#%")) {
		return nil, fmt.Errorf("%w: manage: New: Config.Path %q must be \"\" or a clean path starting with \"/\" and not ending with one, such as \"/settings/api-keys\"", apikey.ErrInvalid, p)
	}
	if cfg.Grace < 0 || cfg.Grace > maxGrace {
		return nil, fmt.Errorf("%w: manage: New: Config.Grace %v is negative or over a year", apikey.ErrInvalid, cfg.Grace)
	}
	h := &Handler{
		store:   store,
		keys:    cfg.Keys,
		caller:  cfg.Caller,
		path:    cfg.Path,
		audit:   cfg.Audit,
		limits:  cfg.Limits,
		style:   cfg.Style,
		grace:   cmp.Or(cfg.Grace, defaultGrace),
		title:   cmp.Or(cfg.Title, "API keys"),
		logger:  cfg.Logger,
		clock:   cfg.Keys.Clock,
		offered: cfg.Keys.Scopes.Scopes(),
		cop:     http.NewCrossOriginProtection(),
	}
	if h.clock == nil {
		h.clock = time.Now
	}
	h.log, _ = cfg.Audit.(AuditLog)
	if h.style == nil {
		style, err := apikey.NewErrorStyle(apikey.ShapeProblem, apikey.Messages{})
		if err != nil {
			return nil, fmt.Errorf("manage: New: %w", err)
		}
		h.style = style
	}
	for i, o := range cfg.TrustedOrigins {
		if err := h.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("%w: manage: New: Config.TrustedOrigins[%d]: %w", apikey.ErrInvalid, i, err)
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("manage: New: templates: %w", err)
	}
	h.pages = pages
	h.mux = http.NewServeMux()
	for _, rt := range h.routes() {
		h.mux.HandleFunc(rt.method+" "+rt.pattern, rt.handler)
	}
	h.mux.HandleFunc("/api/", h.apiNotFound)
	h.mux.HandleFunc("/", h.pageNotFound)
	return h, nil
}

// route is one of the handler's routes, relative to Config.Path.
type route struct {
	method, pattern string
	handler         http.HandlerFunc
	api             bool // a JSON API route, which the OpenAPI document lists
}

// routes lists every route the handler serves.
func (h *Handler) routes() []route {
	return []route{
		{"GET", "/api/keys", h.apiList, true},
		{"POST", "/api/keys", h.apiCreate, true},
		{"GET", "/api/keys/{id}", h.apiGet, true},
		{"PATCH", "/api/keys/{id}", h.apiUpdate, true},
		{"POST", "/api/keys/{id}/roll", h.apiRoll, true},
		{"POST", "/api/keys/{id}/revoke", h.apiRevoke, true},
		{"POST", "/api/keys/{id}/disable", h.apiDisable, true},
		{"POST", "/api/keys/{id}/enable", h.apiEnable, true},
		{"GET", "/api/keys/{id}/usage", h.apiKeyUsage, true},
		{"GET", "/api/keys/{id}/limits", h.apiKeyLimits, true},
		{"GET", "/api/usage", h.apiUsage, true},
		{"GET", "/api/audit", h.apiAudit, true},
		{"GET", "/api/openapi.json", h.apiOpenAPI, true},

		{"GET", "/{$}", h.pageList, false},
		{"GET", "/new", h.pageNew, false},
		{"POST", "/keys", h.pageCreate, false},
		{"GET", "/keys/{id}", h.pageKey, false},
		{"POST", "/keys/{id}", h.pageSave, false},
		{"POST", "/keys/{id}/roll", h.pageRoll, false},
		{"POST", "/keys/{id}/revoke", h.pageRevoke, false},
		{"POST", "/keys/{id}/disable", h.pageDisable, false},
		{"POST", "/keys/{id}/enable", h.pageEnable, false},
		{"POST", "/keys/{id}/limits", h.pageLimits, false},
		{"GET", "/assets/{name}", h.asset, false},
	}
}

// ServeHTTP serves the page and the API under Config.Path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")

	rest, ok := strings.CutPrefix(r.URL.Path, h.path)
	switch {
	case !ok || (rest != "" && rest[0] != '/'):
		http.NotFound(w, r)
		return
	case rest == "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			hd.Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		http.Redirect(w, r, h.path+"/", http.StatusMovedPermanently)
		return
	}
	api := strings.HasPrefix(rest, "/api/")
	if path.Clean(rest) != rest {
		// ServeMux would redirect to the clean path, without Config.Path.
		h.notFound(w, r, api)
		return
	}
	if err := h.cop.Check(r); err != nil {
		if api {
			h.problem(w, r, http.StatusForbidden, "cross_origin", "A cross-origin request cannot change API keys.")
		} else {
			h.errorPage(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused.")
		}
		return
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = new(*r.URL)
	r2.URL.Path = rest
	if r.URL.RawPath != "" {
		r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, h.path)
	}
	h.mux.ServeHTTP(w, r2)
}

// allowed lists the methods another route of r's path answers, for a 405.
func (h *Handler) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{"GET", "POST", "PATCH"} {
		probe := *r
		probe.Method = m
		if _, pattern := h.mux.Handler(&probe); pattern != "" && pattern != "/" && pattern != "/api/" {
			out = append(out, m)
			if m == "GET" {
				out = append(out, "HEAD")
			}
		}
	}
	return out
}

// notFound answers a path no route serves: 405 when another method would
// do, else 404.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, api bool) {
	allow := h.allowed(r)
	switch {
	case len(allow) > 0 && api:
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.problem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Use "+strings.Join(allow, " or ")+".")
	case len(allow) > 0:
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.errorPage(w, r, http.StatusMethodNotAllowed, "This page cannot be used that way.")
	case api:
		h.problem(w, r, http.StatusNotFound, "not_found", "No such API route.")
	default:
		h.errorPage(w, r, http.StatusNotFound, "There is no such page.")
	}
}

func (h *Handler) apiNotFound(w http.ResponseWriter, r *http.Request)  { h.notFound(w, r, true) }
func (h *Handler) pageNotFound(w http.ResponseWriter, r *http.Request) { h.notFound(w, r, false) }

// who returns the request's caller, or answers the request and reports
// false: 401, 403 or 500.
func (h *Handler) who(w http.ResponseWriter, r *http.Request, api bool) (Caller, bool) {
	c, err := h.caller(r)
	if err == nil {
		switch {
		case c.ID == "":
			err = errors.New("Config.Caller returned a Caller without an ID")
		case c.Owner == "" && !c.Operator:
			err = errors.New("Config.Caller returned a Caller that is neither an operator nor has an Owner")
		default:
			return c, true
		}
	}
	var status int
	switch {
	case errors.Is(err, ErrUnauthenticated):
		status = http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
	default:
		h.logError(r, "manage: Config.Caller failed", err)
		if api {
			h.problem(w, r, http.StatusInternalServerError, "internal", "The request could not be completed.")
		} else {
			h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong; please try again.")
		}
		return Caller{}, false
	}
	if !api {
		msg := "Sign in to manage API keys."
		if status == http.StatusForbidden {
			msg = "You are not allowed to manage API keys."
		}
		h.errorPage(w, r, status, msg)
		return Caller{}, false
	}
	e := apikey.AuthError{Reason: apikey.ReasonUnauthenticated, RequestID: apikey.RequestID(r.Context()), Err: err}
	if status == http.StatusForbidden {
		e.Reason = apikey.ReasonOwner
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	}
	h.style.WriteError(w, r, e)
	return Caller{}, false
}

// logError logs a failure, when there is a Logger.
func (h *Handler) logError(r *http.Request, msg string, err error) {
	if h.logger == nil {
		return
	}
	attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err)}
	if id := apikey.RequestID(r.Context()); id != "" {
		attrs = append(attrs, slog.String("request_id", id))
	}
	h.logger.LogAttrs(r.Context(), slog.LevelError, msg, attrs...)
}

// offers reports whether the page offers scope s.
func (h *Handler) offers(s apikey.Scope) bool {
	_, found := slices.BinarySearch(h.offered, s)
	return found
}
