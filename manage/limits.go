package manage

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/limits"
	"github.com/keygate/apikey/limit"
)

// A key's limits, as the API and the page show and take them, and what
// remains of them (Config.Limits). Limits are what a customer's plan pays
// for: only an operator sets them; a tenant reads them.

var _ LimitStatus = (*limit.Limiter)(nil)

// errOperatorOnly: a tenant tried to set a key's limits (403).
var errOperatorOnly = errors.New("manage: only an operator can set a key's limits")

// limitJSON is an apikey.Limit in the API: its Per in seconds, as
// grace_seconds, and its kind spelled out. Kind is optional in a request;
// when given, it must be what the other fields make.
type limitJSON struct {
	Name       string  `json:"name"`
	Kind       string  `json:"kind,omitempty"`
	Count      int64   `json:"count"`
	PerSeconds float64 `json:"per_seconds,omitempty"`
	Burst      int64   `json:"burst,omitempty"`
	Period     string  `json:"period,omitempty"`
	Zone       string  `json:"zone,omitempty"`
	Credits    bool    `json:"credits,omitempty"`
	Owner      bool    `json:"owner,omitempty"`
}

// maxPerSeconds bounds per_seconds before it becomes a time.Duration,
// far above what the limit's own check allows.
const maxPerSeconds = 1e9

var kindNames = [...]string{limits.Unlimited: "unlimited", limits.Rate: "rate", limits.Quota: "quota", limits.Credits: "credits"}

// kind is "rate", "quota", "credits" or "unlimited" (a lifted default).
func kind(l apikey.Limit) string {
	s := limits.Spec(l)
	return kindNames[s.Kind()]
}

// limitView is l as the API shows it.
func limitView(l apikey.Limit) limitJSON {
	return limitJSON{
		Name: l.Name, Kind: kind(l), Count: l.Count, PerSeconds: l.Per.Seconds(), Burst: l.Burst,
		Period: l.Period, Zone: l.Zone, Credits: l.Credits, Owner: l.Owner,
	}
}

// limitViews is list as the API shows it: an array, never null.
func limitViews(list []apikey.Limit) []limitJSON {
	out := make([]limitJSON, len(list))
	for i, l := range list {
		out[i] = limitView(l)
	}
	return out
}

// fromJSON reads the limits of a request; the store checks the rest.
func fromJSON(in []limitJSON) ([]apikey.Limit, error) {
	var out []apikey.Limit
	for _, j := range in {
		if !(j.PerSeconds >= 0 && j.PerSeconds <= maxPerSeconds) {
			return nil, badInput("limits: limit %q: per_seconds %g is out of range", j.Name, j.PerSeconds)
		}
		l := apikey.Limit{
			Name: j.Name, Count: j.Count, Per: time.Duration(math.Round(j.PerSeconds * 1e9)), Burst: j.Burst,
			Period: j.Period, Zone: j.Zone, Credits: j.Credits, Owner: j.Owner,
		}
		if j.Kind != "" && j.Kind != kind(l) {
			return nil, badInput("limits: limit %q: kind %q does not match its fields, which make it a %s", j.Name, j.Kind, kind(l))
		}
		out = append(out, l)
	}
	return out, nil
}

// limitState is one of a key's limits and what remains of it: null when
// unknown (no Config.Limits), reset_at null when it never resets.
type limitState struct {
	limitJSON
	Default   bool       `json:"default,omitempty"` // the environment's, not the key's own
	Remaining *int64     `json:"remaining"`
	ResetAt   *time.Time `json:"reset_at"`
	limit     apikey.Limit
}

// keyLimits is the answer of GET /api/keys/{id}/limits. Effective: the
// limits are those the limiter enforces, the environment's defaults with
// the key's own laid over them, with what remains; otherwise (no
// Config.Limits) they are the key's own, remaining unknown.
type keyLimits struct {
	KeyID     string       `json:"key_id"`
	Effective bool         `json:"effective"`
	Limits    []limitState `json:"limits"`
}

// ownLimits is k's own limits, what remains of them unknown.
func ownLimits(k *apikey.Key) keyLimits {
	out := keyLimits{KeyID: k.ID, Limits: []limitState{}}
	for _, l := range k.Limits {
		out.Limits = append(out.Limits, limitState{limitJSON: limitView(l), limit: l})
	}
	return out
}

// limitStates returns k's limits and what remains of them, from
// Config.Limits when there is one.
func (h *Handler) limitStates(ctx context.Context, k *apikey.Key) (keyLimits, error) {
	if h.limits == nil {
		return ownLimits(k), nil
	}
	status, err := h.limits.Status(ctx, k)
	if err != nil {
		return keyLimits{}, err
	}
	out := keyLimits{KeyID: k.ID, Effective: true, Limits: []limitState{}}
	for _, st := range status {
		s := limitState{limitJSON: limitView(st.Limit), Remaining: &st.Remaining, limit: st.Limit}
		s.Default = !slices.ContainsFunc(k.Limits, func(l apikey.Limit) bool { return l.Name == st.Limit.Name })
		if !st.Reset.IsZero() {
			s.ResetAt = &st.Reset
		}
		out.Limits = append(out.Limits, s)
	}
	return out, nil
}

// The page writes a limit in one line, and reads it back:
//
//	requests: 100 per minute, burst 200
//	daily: 5000 per day in Europe/Paris, shared by owner
//	render: 500 credits per month
//	search: unlimited
//
// "per" a duration (second, minute, hour, or as time.ParseDuration reads
// it: 10s, 1h30m) is a rate; per day or month a calendar quota, in UTC
// unless "in" a time zone; credits without "per" are never refilled;
// unlimited lifts the environment's default of that name.

// durationWords name the rates' common durations.
var durationWords = map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour}

// limitText is l in the page's syntax, without its name.
func limitText(l apikey.Limit) string {
	if l.Count < 0 {
		return "unlimited"
	}
	b := strconv.AppendInt(nil, l.Count, 10)
	if l.Credits {
		b = append(b, " credits"...)
	}
	switch {
	case l.Per > 0:
		b = append(b, " per "+durationText(l.Per)...)
		if l.Burst > 0 {
			b = append(b, ", burst "...)
			b = strconv.AppendInt(b, l.Burst, 10)
		}
	case l.Period != "":
		b = append(b, " per "+l.Period...)
		if l.Zone != "" {
			b = append(b, " in "+l.Zone...)
		}
	}
	if l.Owner {
		b = append(b, ", shared by owner"...)
	}
	return string(b)
}

// durationText is d as a word or as short as time.Duration writes it:
// "minute", "90s", "2h".
func durationText(d time.Duration) string {
	for w, u := range durationWords {
		if d == u {
			return w
		}
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// limitLines is list in the page's syntax, a line each.
func limitLines(list []apikey.Limit) string {
	lines := make([]string, len(list))
	for i, l := range list {
		lines[i] = l.Name + ": " + limitText(l)
	}
	return strings.Join(lines, "\n")
}

// limitList describes list for the audit log: "requests (100 per minute)".
func limitList(list []apikey.Limit) string {
	if len(list) == 0 {
		return "none"
	}
	parts := make([]string, len(list))
	for i, l := range list {
		parts[i] = l.Name + " (" + limitText(l) + ")"
	}
	return strings.Join(parts, ", ")
}

// parseLimits reads the page's limits, a line each; blank lines are
// skipped. The store checks the limits themselves.
func parseLimits(text string) ([]apikey.Limit, error) {
	var out []apikey.Limit
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		l, ok := parseLimit(line)
		if !ok {
			return nil, badInput("Limits, line %d: write a limit as \"name: 100 per minute\", \"name: 10000 per month\", \"name: 500 credits\" or \"name: unlimited\".", i+1)
		}
		out = append(out, l)
	}
	return out, nil
}

// parseLimit reads one line of the page's syntax.
func parseLimit(line string) (apikey.Limit, bool) {
	name, spec, ok := strings.Cut(line, ":")
	l := apikey.Limit{Name: strings.TrimSpace(name)}
	f := strings.Fields(strings.ReplaceAll(spec, ",", " "))
	if !ok || len(f) == 0 {
		return l, false
	}
	if len(f) == 1 && f[0] == "unlimited" {
		l.Count = -1
		return l, true
	}
	if f[len(f)-1] == "owner" {
		l.Owner, f = true, f[:len(f)-1]
		if n := len(f); n >= 2 && f[n-2] == "shared" && f[n-1] == "by" {
			f = f[:n-2]
		}
	}
	if len(f) == 0 {
		return l, false
	}
	var err error
	if l.Count, err = strconv.ParseInt(f[0], 10, 64); err != nil || l.Count < 0 {
		return l, false
	}
	f = f[1:]
	// next reports whether the next word is w, and takes it.
	next := func(w string) bool {
		if len(f) > 0 && f[0] == w {
			f = f[1:]
			return true
		}
		return false
	}
	l.Credits = next("credits")
	if next("per") {
		switch {
		case len(f) == 0:
			return l, false
		case f[0] == "day" || f[0] == "month":
			l.Period = f[0]
		case durationWords[f[0]] > 0:
			l.Per = durationWords[f[0]]
		default:
			if l.Per, err = time.ParseDuration(f[0]); err != nil {
				return l, false
			}
		}
		f = f[1:]
	}
	if !l.Credits && l.Per == 0 && l.Period == "" {
		return l, false
	}
	if next("in") {
		if len(f) == 0 {
			return l, false
		}
		l.Zone, f = f[0], f[1:]
	}
	if next("burst") {
		if len(f) == 0 {
			return l, false
		}
		if l.Burst, err = strconv.ParseInt(f[0], 10, 64); err != nil {
			return l, false
		}
		f = f[1:]
	}
	return l, len(f) == 0
}
