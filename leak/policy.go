package leak

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// Finding is a leaked key the handler acted on, for Config.OnLeak: to tell
// its owner where it was found and what was done. It never holds the
// leaked token.
type Finding struct {
	KeyID       string
	Owner       string
	Environment apikey.Environment
	Action      Action
	URL         string // where GitHub found the token ("" when it did not say)
	Source      string // "content", "commit", "npm", …
	At          time.Time
	// SuccessorID and SuccessorSecret are the key that replaced the
	// leaked one, after Roll: this is the one chance to hand the
	// successor's secret to its owner (put it where the owner signs in
	// to read it, not in an e-mail). Secret prints as [REDACTED].
	SuccessorID     string
	SuccessorSecret apikey.Secret
}

// Actor is the Event.Actor of the audit events the handler records:
// manage.ActorSecretScanning, which the API Keys page shows customers.
const Actor = manage.ActorSecretScanning

// acted is what act did to a key.
type acted struct {
	action    Action
	successor *apikey.Key
	secret    apikey.Secret
}

// act applies the policy to the key id, whose secret m reports, and
// records what it did. Under the key's lock it reads the key afresh, so
// that a report delivered twice, even at once, acts once: a key that
// cannot work any more (revoked, expired, rolled past its grace) and a key
// this policy rolled are left alone. A key its owner rolled with a grace
// longer than Config.Grace is revoked (its successor is not touched). A
// disabled key under Disable, and any key under Notify, is reported again
// each time: nothing changes, and its owner must know.
func (h *Handler) act(r *http.Request, id string, m match) error {
	ctx := r.Context()
	mu := &h.locks[stripe(id)]
	mu.Lock()
	defer mu.Unlock()
	k, err := h.store.Get(ctx, id)
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return nil // deleted since the lookup: nothing left to act on
	case err != nil:
		return fmt.Errorf("leak: get key %s: %w", id, err)
	}
	now := h.clock()
	if st := k.State(now); st != apikey.StateActive && st != apikey.StateDisabled {
		return nil
	}
	a, err := h.apply(ctx, k, h.policyFor(k.Environment))
	if err != nil || a == nil {
		return err
	}
	h.record(r, k, m, *a, now)
	return nil
}

func (h *Handler) policyFor(env apikey.Environment) Action {
	if int(env) < len(h.policy) {
		return h.policy[env]
	}
	return Revoke
}

// apply does action to k: what was done, or nil for nothing.
func (h *Handler) apply(ctx context.Context, k *apikey.Key, action Action) (*acted, error) {
	switch action {
	case Roll:
		if k.RolledTo != "" {
			// Rolled already. By this policy (a report delivered again):
			// the grace it gave stands. By its owner, with a longer grace:
			// the leaked secret must not work that long, so it is revoked;
			// its successor is not touched.
			if !k.ExpiresAt.IsZero() && !k.ExpiresAt.After(h.clock().Add(h.grace)) {
				return nil, nil
			}
			return h.revoke(ctx, k)
		}
		succ, secret, err := h.store.Roll(ctx, k.ID, h.grace)
		switch {
		case errors.Is(err, apikey.ErrAlreadyRolled), errors.Is(err, apikey.ErrRevoked),
			errors.Is(err, apikey.ErrExpired), errors.Is(err, apikey.ErrNotFound):
			return nil, nil // changed by someone else meanwhile
		case err != nil:
			return nil, fmt.Errorf("leak: roll key %s: %w", k.ID, err)
		}
		return &acted{action: Roll, successor: succ, secret: secret}, nil
	case Disable:
		if k.Disabled {
			// Off already, but its owner could switch it on again: say the
			// secret leaked (again, if the report is delivered again).
			return &acted{action: Disable}, nil
		}
		if k.RolledTo == "" {
			_, err := h.store.Update(ctx, k.ID, func(k *apikey.Key) error {
				k.Disabled = true
				return nil
			})
			switch {
			case err == nil:
				return &acted{action: Disable}, nil
			case errors.Is(err, apikey.ErrRevoked), errors.Is(err, apikey.ErrNotFound):
				return nil, nil
			case !errors.Is(err, apikey.ErrAlreadyRolled):
				return nil, fmt.Errorf("leak: disable key %s: %w", k.ID, err)
			}
		}
		// In its roll grace period: a store updates no rolled key, so the
		// leaked one is revoked; its successor is not touched.
		return h.revoke(ctx, k)
	case Notify:
		return &acted{action: Notify}, nil
	}
	return h.revoke(ctx, k)
}

func (h *Handler) revoke(ctx context.Context, k *apikey.Key) (*acted, error) {
	err := h.store.Revoke(ctx, k.ID)
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("leak: revoke key %s: %w", k.ID, err)
	}
	return &acted{action: Revoke}, nil
}

// record logs what was done to k, sends the audit event and calls OnLeak.
func (h *Handler) record(r *http.Request, k *apikey.Key, m match, a acted, now time.Time) {
	ctx := r.Context()
	url, source := scrub(m.URL, m.Token), scrub(m.Source, m.Token)
	f := Finding{
		KeyID: k.ID, Owner: k.Owner, Environment: k.Environment, Action: a.action,
		URL: url, Source: source, At: now,
	}
	detail := "found by GitHub secret scanning at " + cmp.Or(url, "an unknown URL") + " (source " + cmp.Or(source, "unknown") + ")"
	if a.successor != nil {
		f.SuccessorID, f.SuccessorSecret = a.successor.ID, a.secret
		detail += "; successor " + a.successor.ID
	}
	if h.logger != nil {
		attrs := []slog.Attr{
			slog.String("action", a.action.String()),
			slog.String("key_id", k.ID),
			slog.String("owner", k.Owner),
			slog.String("environment", k.Environment.String()),
			slog.String("url", url),
			slog.String("source", source),
		}
		if f.SuccessorID != "" {
			attrs = append(attrs, slog.String("successor", f.SuccessorID))
		}
		h.logger.LogAttrs(ctx, slog.LevelWarn, "leak: leaked API key", attrs...)
	}
	if h.audit != nil {
		err := h.audit.Record(ctx, manage.Event{
			At: now, Actor: Actor, Action: "leak-" + a.action.String(),
			KeyID: k.ID, Owner: k.Owner, Remote: remoteHost(r), Detail: detail,
		})
		if err != nil && h.logger != nil {
			h.logger.LogAttrs(ctx, slog.LevelError, "leak: audit event not recorded",
				slog.String("key_id", k.ID), slog.String("error", err.Error()))
		}
	}
	if h.onLeak != nil {
		h.notify(ctx, f)
	}
}

// notify calls OnLeak; a panic is logged, and the action stands.
func (h *Handler) notify(ctx context.Context, f Finding) {
	defer func() {
		if p := recover(); p != nil && h.logger != nil {
			h.logger.LogAttrs(ctx, slog.LevelError, "leak: Config.OnLeak panicked",
				slog.String("key_id", f.KeyID), slog.String("panic", fmt.Sprint(p)))
		}
	}()
	h.onLeak(ctx, f)
}

// maxDetail bounds the URL and the source kept from a report.
const maxDetail = 512

// scrub makes s safe for logs and audit: without the token, should it
// contain it, without control characters, at most 512 bytes.
func scrub(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "[REDACTED]")
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	if len(s) > maxDetail {
		s = strings.ToValidUTF8(s[:maxDetail], "") + "…"
	}
	return s
}

// stripe picks the lock of a key ID.
func stripe(id string) int {
	f := fnv.New32a()
	_, _ = f.Write([]byte(id))
	return int(f.Sum32() % numLocks)
}

// numLocks is the number of key locks.
const numLocks = 64
