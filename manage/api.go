package manage

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/keygate/apikey"
)

// keyJSON is what the API shows of a key: its record, which never holds
// the secret, with its own limits, and its state now.
type keyJSON struct {
	*apikey.Key
	Limits []limitJSON `json:"limits"`
	State  string      `json:"state"`
}

// view returns k as the API shows it: scopes and limits arrays, never
// null.
func (h *Handler) view(k *apikey.Key) keyJSON {
	if k == nil {
		return keyJSON{}
	}
	if meta := publicMetadata(k.Metadata); k.Scopes == nil || len(meta) != len(k.Metadata) {
		k = k.Clone()
		if k.Scopes == nil {
			k.Scopes = []apikey.Scope{}
		}
		k.Metadata = meta
	}
	return keyJSON{Key: k, Limits: limitViews(k.Limits), State: k.State(h.clock()).String()}
}

// issued is a create's or a roll's answer: the one time the secret is
// shown.
type issued struct {
	Key      keyJSON  `json:"key"`
	Secret   string   `json:"secret"`
	Previous *keyJSON `json:"previous,omitempty"`
}

// optional is a JSON field that may be absent, null or a value.
type optional[T any] struct {
	Set, Null bool
	V         T
}

// UnmarshalJSON is called when the field is present.
func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // as decode does for the whole body
	return dec.Decode(&o.V)
}

// query reads the query parameters of r, refusing any not in names and
// any given twice.
func query(r *http.Request, names ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badInput("the query string is malformed")
	}
	for name, vs := range q {
		known := false
		for _, n := range names {
			known = known || n == name
		}
		switch {
		case !known:
			return nil, badInput("unknown query parameter %q", name)
		case len(vs) > 1:
			return nil, badInput("query parameter %q is given more than once", name)
		}
	}
	return q, nil
}

// limitParam parses a limit query parameter: 1 to 200, default 50.
func limitParam(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, badInput("limit must be a whole number from 1 to %d", maxLimit)
	}
	return n, nil
}

// states are the values of the state query parameter.
var states = map[string]apikey.State{
	"active": apikey.StateActive, "revoked": apikey.StateRevoked, "expired": apikey.StateExpired,
	"rolled": apikey.StateRolled, "disabled": apikey.StateDisabled,
}

// listFilter reads a listing's query: environment, state, after, limit,
// owner.
func (h *Handler) listFilter(r *http.Request, c Caller) (apikey.Filter, error) {
	q, err := query(r, "environment", "state", "after", "limit", "owner")
	if err != nil {
		return apikey.Filter{}, err
	}
	var f apikey.Filter
	if err := f.Environment.UnmarshalText([]byte(q.Get("environment"))); err != nil {
		return f, badInput("environment must be live or test")
	}
	if s := q.Get("state"); s != "" {
		if f.State = states[s]; f.State == 0 {
			return f, badInput("state must be active, revoked, expired, rolled or disabled")
		}
	}
	if f.Limit, err = limitParam(q); err != nil {
		return f, err
	}
	if f.Owner, err = c.ownerFilter(q.Get("owner")); err != nil {
		return f, err
	}
	if f.After = q.Get("after"); f.After != "" {
		// The page starts after a key the caller can see, or nowhere.
		if _, err := h.get(r.Context(), c, f.After); errors.Is(err, apikey.ErrNotFound) {
			return f, badInput("after: there is no API key with this id")
		} else if err != nil {
			return f, err
		}
	}
	return f, nil
}

// page lists a page of keys and the id to start the next one after ("":
// the last page).
func (h *Handler) page(r *http.Request, f apikey.Filter) ([]*apikey.Key, string, error) {
	keys, err := h.store.List(r.Context(), f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if f.Limit > 0 && len(keys) == f.Limit {
		next = keys[len(keys)-1].ID
	}
	return keys, next, nil
}

// apiList: GET /api/keys.
func (h *Handler) apiList(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	f, err := h.listFilter(r, c)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	keys, next, err := h.page(r, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]keyJSON, len(keys))
	for i, k := range keys {
		out[i] = h.view(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out, "next": next})
}

// apiCreate: POST /api/keys.
func (h *Handler) apiCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	var in struct {
		Name        string             `json:"name"`
		Environment apikey.Environment `json:"environment"`
		Scopes      []apikey.Scope     `json:"scopes"`
		ExpiresAt   *time.Time         `json:"expires_at"`
		Metadata    map[string]string  `json:"metadata"`
		Owner       string             `json:"owner"`
		Limits      []limitJSON        `json:"limits"`
	}
	if err := decode(w, r, &in, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if in.Name == "" {
		h.fail(w, r, badInput("name is required"))
		return
	}
	if err := checkMetadata(in.Metadata); err != nil {
		h.fail(w, r, err)
		return
	}
	spec := apikey.KeySpec{Name: in.Name, Environment: in.Environment, Scopes: in.Scopes, Metadata: in.Metadata, Owner: in.Owner}
	if in.ExpiresAt != nil {
		spec.ExpiresAt = *in.ExpiresAt
	}
	var err error
	if spec.Limits, err = fromJSON(in.Limits); err != nil {
		h.fail(w, r, err)
		return
	}
	k, secret, err := h.create(r, c, spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, issued{Key: h.view(k), Secret: secret.Reveal()})
}

// apiGet: GET /api/keys/{id}.
func (h *Handler) apiGet(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	k, err := h.get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(k))
}

// apiUpdate: PATCH /api/keys/{id}. An absent field is kept; expires_at
// null clears the expiry; limits replaces the key's own, [] or null
// clears them, and only an operator may send it.
func (h *Handler) apiUpdate(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	var in struct {
		Name      optional[string]            `json:"name"`
		Scopes    optional[[]apikey.Scope]    `json:"scopes"`
		ExpiresAt optional[time.Time]         `json:"expires_at"`
		Metadata  optional[map[string]string] `json:"metadata"`
		Limits    optional[[]limitJSON]       `json:"limits"`
	}
	if err := decode(w, r, &in, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if in.Name.Set && in.Name.V == "" {
		h.fail(w, r, badInput("name cannot be empty or null"))
		return
	}
	if err := checkMetadata(in.Metadata.V); err != nil {
		h.fail(w, r, err)
		return
	}
	k, err := h.update(r, c, r.PathValue("id"), "update", func(k *apikey.Key) error {
		if in.Name.Set {
			k.Name = in.Name.V
		}
		if in.Scopes.Set {
			k.Scopes = in.Scopes.V
		}
		if in.ExpiresAt.Set {
			k.ExpiresAt = in.ExpiresAt.V // the zero time for null: no expiry
		}
		if in.Metadata.Set {
			k.Metadata = withReserved(in.Metadata.V, k.Metadata)
		}
		if in.Limits.Set {
			if !c.Operator {
				return errOperatorOnly
			}
			list, err := fromJSON(in.Limits.V)
			if err != nil {
				return err
			}
			k.Limits = list
		}
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(k))
}

// apiRoll: POST /api/keys/{id}/roll {"grace_seconds"?}.
func (h *Handler) apiRoll(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	var in struct {
		GraceSeconds *int64 `json:"grace_seconds"`
	}
	if err := decode(w, r, &in, true); err != nil {
		h.fail(w, r, err)
		return
	}
	grace := h.grace
	if in.GraceSeconds != nil {
		if *in.GraceSeconds < 0 || *in.GraceSeconds > int64(maxGrace/time.Second) {
			h.fail(w, r, badInput("grace_seconds must be from 0 to %d (a year)", int64(maxGrace/time.Second)))
			return
		}
		grace = time.Duration(*in.GraceSeconds) * time.Second
	}
	next, secret, prev, err := h.roll(r, c, r.PathValue("id"), grace)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := issued{Key: h.view(next), Secret: secret.Reveal()}
	if prev != nil {
		p := h.view(prev)
		out.Previous = &p
	}
	writeJSON(w, http.StatusCreated, out)
}

// apiRevoke: POST /api/keys/{id}/revoke.
func (h *Handler) apiRevoke(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	if err := decode(w, r, &struct{}{}, true); err != nil {
		h.fail(w, r, err)
		return
	}
	k, err := h.revoke(r, c, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(k))
}

// apiDisable: POST /api/keys/{id}/disable.
func (h *Handler) apiDisable(w http.ResponseWriter, r *http.Request) { h.apiSetDisabled(w, r, true) }

// apiEnable: POST /api/keys/{id}/enable.
func (h *Handler) apiEnable(w http.ResponseWriter, r *http.Request) { h.apiSetDisabled(w, r, false) }

func (h *Handler) apiSetDisabled(w http.ResponseWriter, r *http.Request, disabled bool) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	if err := decode(w, r, &struct{}{}, true); err != nil {
		h.fail(w, r, err)
		return
	}
	k, err := h.setDisabled(r, c, r.PathValue("id"), disabled)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(k))
}

// keyUsage is a key's recorded usage.
type keyUsage struct {
	KeyID       string             `json:"key_id"`
	Environment apikey.Environment `json:"environment"`
	Requests    uint64             `json:"requests"`
	LastUsedAt  *time.Time         `json:"last_used_at"`
}

// apiKeyUsage: GET /api/keys/{id}/usage.
func (h *Handler) apiKeyUsage(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	k, err := h.get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u := keyUsage{KeyID: k.ID, Environment: k.Environment, Requests: k.Requests}
	if !k.LastUsedAt.IsZero() {
		u.LastUsedAt = &k.LastUsedAt
	}
	writeJSON(w, http.StatusOK, u)
}

// apiKeyLimits: GET /api/keys/{id}/limits, the key's limits and what
// remains of them.
func (h *Handler) apiKeyLimits(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	k, err := h.get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := h.limitStates(r.Context(), k)
	if err != nil {
		h.logError(r, "manage: Config.Limits failed", err)
		h.problem(w, r, http.StatusServiceUnavailable, "unavailable", "What remains of the key's limits cannot be read now; please try again.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// totals is the usage of a caller's keys by environment.
type totals struct {
	Live uint64 `json:"live"`
	Test uint64 `json:"test"`
}

// usage adds up the requests of owner's keys ("" for all), a page of the
// store at a time.
func (h *Handler) usage(r *http.Request, owner string) (totals, error) {
	var t totals
	f := apikey.Filter{Owner: owner, Limit: 500}
	for {
		keys, err := h.store.List(r.Context(), f)
		if err != nil {
			return t, err
		}
		for _, k := range keys {
			if k.Environment == apikey.EnvTest {
				t.Test += k.Requests
			} else {
				t.Live += k.Requests
			}
		}
		if len(keys) < f.Limit {
			return t, nil
		}
		f.After = keys[len(keys)-1].ID
	}
}

// apiUsage: GET /api/usage[?owner=].
func (h *Handler) apiUsage(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	q, err := query(r, "owner")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	owner, err := c.ownerFilter(q.Get("owner"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	t, err := h.usage(r, owner)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// apiAudit: GET /api/audit[?key_id=&limit=&owner=], when Config.Audit is
// an AuditLog.
func (h *Handler) apiAudit(w http.ResponseWriter, r *http.Request) {
	if h.log == nil {
		h.problem(w, r, http.StatusNotFound, "not_found", "No audit log is kept here.")
		return
	}
	c, ok := h.who(w, r, true)
	if !ok {
		return
	}
	q, err := query(r, "key_id", "limit", "owner")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f := EventFilter{KeyID: q.Get("key_id")}
	if f.Owner, err = c.ownerFilter(q.Get("owner")); err != nil {
		h.fail(w, r, err)
		return
	}
	if f.Limit, err = limitParam(q); err != nil {
		h.fail(w, r, err)
		return
	}
	events, err := h.log.Events(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if events == nil {
		events = []Event{}
	}
	if !c.Operator {
		// A customer sees what was done to its keys, not who operates the
		// service or from where: another actor is "operator" (but GitHub's
		// secret scanning, which the customer must know of), and only the
		// customer's own addresses are shown.
		for i, e := range events {
			if e.Actor != c.ID {
				events[i].Remote = ""
				if e.Actor != ActorSecretScanning {
					events[i].Actor = "operator"
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
}
