package manage

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keygate/apikey"
)

// The operations the page and the API share: each one checks that the
// caller may see the key, does the action through the store and records
// it in the audit log.

// errNotYours is how another owner's key looks to a tenant: unknown.
var errNotYours = fmt.Errorf("manage: %w", apikey.ErrNotFound)

// sees reports whether c may see and manage k.
func (c Caller) sees(k *apikey.Key) bool { return c.Operator || k.Owner == c.Owner }

// ownerFilter returns the owner a listing by c is limited to: the
// tenant's own, or the one an operator asks for ("" for all). A tenant
// asking for another owner's keys is an error.
func (c Caller) ownerFilter(asked string) (string, error) {
	switch {
	case c.Operator:
		return asked, nil
	case asked == "" || asked == c.Owner:
		return c.Owner, nil
	}
	return "", fmt.Errorf("%w: owner: only an operator may choose the owner", apikey.ErrInvalid)
}

// get returns the key if c may see it, else an error wrapping
// apikey.ErrNotFound.
func (h *Handler) get(ctx context.Context, c Caller, id string) (*apikey.Key, error) {
	k, err := h.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.sees(k) {
		return nil, errNotYours
	}
	return k, nil
}

// create makes a key for c; a tenant's key is always its own, and has no
// limits of its own.
func (h *Handler) create(r *http.Request, c Caller, spec apikey.KeySpec) (*apikey.Key, apikey.Secret, error) {
	if len(spec.Limits) > 0 && !c.Operator {
		return nil, apikey.Secret{}, errOperatorOnly
	}
	owner, err := c.ownerFilter(spec.Owner)
	if err != nil {
		return nil, apikey.Secret{}, err
	}
	spec.Owner = owner
	k, secret, err := h.store.Create(r.Context(), spec)
	if err != nil {
		return nil, apikey.Secret{}, err
	}
	expires := "never"
	if !k.ExpiresAt.IsZero() {
		expires = k.ExpiresAt.UTC().Format(time.RFC3339)
	}
	detail := fmt.Sprintf("name %q, %s, scopes: %s, expires: %s", k.Name, k.Environment, scopeList(k.Scopes), expires)
	if len(k.Limits) > 0 {
		detail += ", limits: " + limitList(k.Limits)
	}
	h.record(r, c, "create", k, detail)
	return k, secret, nil
}

// update changes the key by change, read, modified and written under the
// store's lock, and records what changed under action ("update",
// "disable", "enable").
func (h *Handler) update(r *http.Request, c Caller, id, action string, change func(*apikey.Key) error) (*apikey.Key, error) {
	// Another owner's key is unknown, whatever its state: checked before
	// the store's own refusals (revoked, rolled) could tell of it, and
	// again under the key's lock.
	if _, err := h.get(r.Context(), c, id); err != nil {
		return nil, err
	}
	var before *apikey.Key
	k, err := h.store.Update(r.Context(), id, func(k *apikey.Key) error {
		if !c.sees(k) {
			return errNotYours
		}
		before = k.Clone()
		return change(k)
	})
	if err != nil {
		return nil, err
	}
	detail := diff(before, k)
	if detail == "" {
		detail = "no change"
		if action != "update" {
			detail = "already " + action + "d"
		}
	}
	h.record(r, c, action, k, detail)
	return k, nil
}

// setDisabled disables or enables the key.
func (h *Handler) setDisabled(r *http.Request, c Caller, id string, disabled bool) (*apikey.Key, error) {
	action := "enable"
	if disabled {
		action = "disable"
	}
	return h.update(r, c, id, action, func(k *apikey.Key) error {
		k.Disabled = disabled
		return nil
	})
}

// roll replaces the key by a successor; the old key works for grace. It
// returns the successor, its secret, and the old key as it is now.
func (h *Handler) roll(r *http.Request, c Caller, id string, grace time.Duration) (*apikey.Key, apikey.Secret, *apikey.Key, error) {
	if _, err := h.get(r.Context(), c, id); err != nil {
		return nil, apikey.Secret{}, nil, err
	}
	next, secret, err := h.store.Roll(r.Context(), id, grace)
	if err != nil {
		return nil, apikey.Secret{}, nil, err
	}
	prev, err := h.store.Get(r.Context(), id)
	if err != nil {
		h.logError(r, "manage: reading a rolled key", err)
		prev = nil
	}
	h.record(r, c, "roll", &apikey.Key{ID: id, Owner: next.Owner}, fmt.Sprintf("successor %s, grace %s", next.ID, grace))
	return next, secret, prev, nil
}

// revoke revokes the key, at once and for ever; revoking it again is not
// an error.
func (h *Handler) revoke(r *http.Request, c Caller, id string) (*apikey.Key, error) {
	k, err := h.get(r.Context(), c, id)
	if err != nil {
		return nil, err
	}
	if err := h.store.Revoke(r.Context(), id); err != nil {
		return nil, err
	}
	detail := ""
	if !k.RevokedAt.IsZero() {
		detail = "already revoked"
	}
	if now, err := h.store.Get(r.Context(), id); err == nil {
		k = now
	} else {
		h.logError(r, "manage: reading a revoked key", err)
	}
	h.record(r, c, "revoke", k, detail)
	return k, nil
}

// record hands the action to the audit sink, after it is done: a sink's
// failure is logged and changes nothing else.
func (h *Handler) record(r *http.Request, c Caller, action string, k *apikey.Key, detail string) {
	if h.audit == nil {
		return
	}
	remote, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remote = r.RemoteAddr
	}
	e := Event{At: h.clock(), Actor: c.ID, Action: action, KeyID: k.ID, Owner: k.Owner, Remote: remote, Detail: detail}
	// The action is done: record it even if the client has gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := h.audit.Record(ctx, e); err != nil {
		h.logError(r, "manage: the audit sink failed; the "+action+" of "+k.ID+" stands", err)
	}
}

// diff describes what an update changed, without metadata values and
// without the reserved entries (which the update kept, and which nobody
// sees).
func diff(before, after *apikey.Key) string {
	var parts []string
	if before.Name != after.Name {
		parts = append(parts, fmt.Sprintf("name: %q → %q", before.Name, after.Name))
	}
	if !slices.Equal(before.Scopes, after.Scopes) {
		parts = append(parts, "scopes: "+scopeList(before.Scopes)+" → "+scopeList(after.Scopes))
	}
	if !before.ExpiresAt.Equal(after.ExpiresAt) {
		parts = append(parts, "expires: "+expiry(before.ExpiresAt)+" → "+expiry(after.ExpiresAt))
	}
	if b, a := publicMetadata(before.Metadata), publicMetadata(after.Metadata); !maps.Equal(b, a) {
		parts = append(parts, "metadata: "+strings.Join(slices.Sorted(maps.Keys(b)), " ")+" → "+strings.Join(slices.Sorted(maps.Keys(a)), " "))
	}
	if !slices.Equal(before.Limits, after.Limits) {
		parts = append(parts, "limits: "+limitList(before.Limits)+" → "+limitList(after.Limits))
	}
	switch {
	case before.Disabled != after.Disabled && after.Disabled:
		parts = append(parts, "disabled")
	case before.Disabled != after.Disabled:
		parts = append(parts, "enabled")
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ")
}

// scopeList joins scopes with spaces; "none" for none.
func scopeList(s []apikey.Scope) string {
	if len(s) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, sc := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(sc))
	}
	return b.String()
}

// expiry formats an expiry for the audit log.
func expiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
