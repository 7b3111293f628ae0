package leak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// Handler receives the reports of GitHub's secret scanning partner
// program and acts on the leaked keys they name. Make one with New; it is
// safe for concurrent use.
type Handler struct {
	mw      *apikey.Middleware
	store   apikey.Manager
	policy  [3]Action // by Environment
	grace   time.Duration
	source  KeySource
	raw     bool
	audit   manage.AuditSink
	onLeak  func(context.Context, Finding)
	logger  *slog.Logger
	clock   func() time.Time
	maxBody int64

	// locks serialize the actions on one key (by a hash of its ID), so
	// that two deliveries of one report act once.
	locks [numLocks]sync.Mutex
}

// New returns the handler for the keys of store, which was made with
// cfg.Keys. The store is also the KeyStore the handler finds reported
// tokens in (every store of this module is both). The error names the
// field to change and wraps apikey.ErrInvalid.
func New(store apikey.Manager, cfg Config) (*Handler, error) {
	if store == nil {
		return nil, fmt.Errorf("leak: New: %w: store is nil", apikey.ErrInvalid)
	}
	ks, ok := store.(apikey.KeyStore)
	if !ok {
		return nil, fmt.Errorf("leak: New: %w: store %T is not an apikey.KeyStore: reported tokens are found by digest", apikey.ErrInvalid, store)
	}
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	// Verify checks a token as a request's credential is checked: format
	// and checksum offline, then the store under each pepper.
	mw, err := apikey.New(apikey.Config{Keys: cfg.Keys, Store: ks})
	if err != nil {
		return nil, fmt.Errorf("leak: New: %w", err)
	}
	h := &Handler{
		mw:      mw,
		store:   store,
		grace:   cfg.Grace,
		source:  cfg.KeySource,
		raw:     cfg.AnswerRaw,
		audit:   cfg.Audit,
		onLeak:  cfg.OnLeak,
		logger:  cfg.Logger,
		clock:   cfg.Clock,
		maxBody: cfg.MaxBody,
	}
	for env, a := range cfg.Policy {
		h.policy[env] = a
	}
	return h, nil
}

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = "30"

// ServeHTTP answers one report: 200 and the label of every token, or
// 401 for a report whose signature is missing, unknown or wrong, 400 for
// a body that is not an array of matches, 405 for a method other than
// POST, 413 for a body over Config.MaxBody, 503 when the keys or the
// store fail. Only a 200 has acted on keys.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, http.StatusMethodNotAllowed, errors.New("leak: method not allowed"))
		return
	}
	id, sig, err := signatureHeaders(r.Header)
	if err != nil {
		h.refuse(w, r, http.StatusUnauthorized, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("leak: the report is over %d bytes", h.maxBody))
		} else {
			h.refuse(w, r, http.StatusBadRequest, fmt.Errorf("leak: reading the report: %w", err))
		}
		return
	}
	if err := verifySignature(r.Context(), h.source, id, sig, body); err != nil {
		status := http.StatusUnauthorized
		if !errors.Is(err, ErrUnknownKey) && !errors.Is(err, errBadSignature) {
			status = http.StatusServiceUnavailable // GitHub's keys could not be had
		}
		h.refuse(w, r, status, err)
		return
	}
	matches, err := parseReport(body)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, err)
		return
	}
	answers, err := h.process(r, matches)
	if err != nil {
		h.refuse(w, r, http.StatusServiceUnavailable, err)
		return
	}
	out, err := json.Marshal(answers)
	if err != nil { // strings only: cannot happen
		h.refuse(w, r, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// process labels every token of a report and acts on the keys found. A
// store failure stops it: the whole report is answered 503, so that
// GitHub sends it again, and the actions already taken are harmless to
// repeat.
func (h *Handler) process(r *http.Request, matches []match) ([]answer, error) {
	answers := make([]answer, 0, len(matches))
	found := 0
	for _, m := range matches {
		ours, err := h.check(r, m)
		if err != nil {
			return nil, err
		}
		if ours {
			found++
		}
		answers = append(answers, newAnswer(m, ours, h.raw))
	}
	if h.logger != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelInfo, "leak: secret scanning report answered",
			slog.Int("tokens", len(matches)), slog.Int("true_positives", found))
	}
	return answers, nil
}

// check finds m's token as the middleware would, without any store call
// for a token no format accepts, and acts on the key it names. A key in
// any state is ours: a true positive.
func (h *Handler) check(r *http.Request, m match) (bool, error) {
	key, err := h.mw.Verify(r.Context(), m.Token)
	if err == nil {
		return true, h.act(r, key.ID, m)
	}
	ae, ok := errors.AsType[apikey.AuthError](err)
	switch {
	case !ok:
		return false, fmt.Errorf("leak: verify: %w", err)
	case ae.Reason == apikey.ReasonStoreFailure:
		return false, fmt.Errorf("leak: store lookup: %w", err)
	case ae.KeyID == "":
		return false, nil // malformed, or no key has this digest
	}
	return true, h.act(r, ae.KeyID, m) // revoked, disabled, expired, rolled
}

// refuse answers a report that is not processed, and logs why.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	if h.logger != nil {
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		h.logger.LogAttrs(r.Context(), level, "leak: secret scanning report refused",
			slog.Int("status", status), slog.String("remote", remoteHost(r)), slog.String("error", err.Error()))
	}
	http.Error(w, http.StatusText(status), status)
}

// remoteHost is the client's address without its port.
func remoteHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
