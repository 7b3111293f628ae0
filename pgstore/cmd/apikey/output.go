package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keygate/apikey"
)

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// newTable returns a tabwriter for aligned columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// shortTime formats a time for a table, in UTC to the minute; "-" for none.
func shortTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// fullTime formats a time in RFC 3339, UTC; "-" for none.
func fullTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// lastUsed says when a key was last used: its time and how long ago, or
// "never".
func lastUsed(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fullTime(t) + " (" + ago(now.Sub(t)) + ")"
}

// ago says how long a duration is, roughly: "3d ago", "5h ago", "just now".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// scopeList shows a key's scopes, "-" for none.
func scopeList(scopes []apikey.Scope) string {
	if len(scopes) == 0 {
		return "-"
	}
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ",")
}

// dash returns s, or "-" when it is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeKeyTable writes keys as a table, one line each.
func writeKeyTable(w io.Writer, keys []*apikey.Key, now time.Time) error {
	t := newTable(w)
	fmt.Fprintln(t, "ID\tNAME\tOWNER\tENV\tSTATE\tSCOPES\tHINT\tCREATED\tLAST USED\tREQUESTS")
	for _, k := range keys {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
			k.ID, k.Name, dash(k.Owner), k.Environment, k.State(now), scopeList(k.Scopes),
			k.Hint, shortTime(k.CreatedAt), shortTime(k.LastUsedAt), k.Requests)
	}
	return t.Flush()
}

// writeKeyDetail writes one key, a field a line.
func writeKeyDetail(w io.Writer, k *apikey.Key, now time.Time) error {
	t := newTable(w)
	row := func(name, value string) { fmt.Fprintf(t, "%s:\t%s\n", name, value) }
	row("id", k.ID)
	row("name", k.Name)
	row("owner", dash(k.Owner))
	row("environment", k.Environment.String())
	row("state", k.State(now).String())
	row("scopes", scopeList(k.Scopes))
	row("hint", k.Hint)
	row("created", fullTime(k.CreatedAt))
	row("expires", expiry(k.ExpiresAt))
	if !k.RevokedAt.IsZero() {
		row("revoked", fullTime(k.RevokedAt))
	}
	if k.RolledTo != "" {
		row("rolled to", k.RolledTo+" at "+fullTime(k.RolledAt))
	}
	if k.RolledFrom != "" {
		row("rolled from", k.RolledFrom)
	}
	if k.PepperID != "" {
		row("pepper", k.PepperID)
	}
	for _, name := range slices.Sorted(maps.Keys(k.Metadata)) {
		row("metadata "+name, k.Metadata[name])
	}
	row("last used", lastUsed(k.LastUsedAt, now))
	row("requests", fmt.Sprint(k.Requests))
	return t.Flush()
}
