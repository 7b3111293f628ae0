package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/keygate/apikey"
)

// parseExpiry reads an expiry time: RFC 3339, a date (midnight UTC), or a
// duration from now: days ("90d") or anything time.ParseDuration reads
// ("36h").
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := parseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usagef("expiry %q is not in the future", s)
		}
		return now.Add(d), nil
	}
	return time.Time{}, usagef("expiry %q is neither an RFC 3339 time (2026-01-31T00:00:00Z), a date (2026-01-31) nor a duration (90d, 36h)", s)
}

// parseDuration reads a duration, with days: "90d", "1d12h" is not
// accepted, "36h" is.
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, usagef("duration %q: want a whole number of days (90d) or a Go duration (36h)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, usagef("duration %q: want a whole number of days (90d) or a Go duration (36h)", s)
	}
	return d, nil
}

// parseEnvironment reads "live" or "test" ("" for any).
func parseEnvironment(s string) (apikey.Environment, error) {
	var env apikey.Environment
	if err := env.UnmarshalText([]byte(s)); err != nil {
		return 0, usagef("--env %q: use live or test", s)
	}
	return env, nil
}

// states are the states --state names.
var states = []apikey.State{apikey.StateActive, apikey.StateRevoked, apikey.StateExpired, apikey.StateRolled, apikey.StateDisabled}

// parseState reads a state name ("" for any).
func parseState(s string) (apikey.State, error) {
	if s == "" || s == "any" {
		return 0, nil
	}
	names := make([]string, len(states))
	for i, st := range states {
		if st.String() == s {
			return st, nil
		}
		names[i] = st.String()
	}
	return 0, usagef("--state %q: use one of %s", s, strings.Join(names, ", "))
}
