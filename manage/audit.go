package manage

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"
)

// Event is one management action, for the audit log. It never holds a
// secret.
type Event struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // Caller.ID
	Action string    `json:"action"` // "create", "update", "roll", "revoke", "disable", "enable"
	KeyID  string    `json:"key_id"`
	Owner  string    `json:"owner,omitempty"`  // the key's owner
	Remote string    `json:"remote,omitempty"` // the client's address: the host of http.Request.RemoteAddr
	Detail string    `json:"detail,omitempty"` // what changed: "scopes: read → read write"; a roll: "successor key_…"
}

// ActorSecretScanning is the Event.Actor of the actions package leak takes
// on reports of GitHub's secret scanning. A customer's audit log names it,
// as it names no other actor but the customer: the customer must know a
// key leaked.
const ActorSecretScanning = "github-secret-scanning"

// AuditSink receives every management action (Config.Audit), after it is
// done. An error is logged to Config.Logger; the action stands and the
// response does not mention it. Record may be called concurrently.
type AuditSink interface {
	Record(ctx context.Context, e Event) error
}

// AuditLog is an AuditSink that can be read back; the JSON API serves it
// (GET {Path}/api/audit) when Config.Audit is one.
type AuditLog interface {
	AuditSink
	Events(ctx context.Context, f EventFilter) ([]Event, error)
}

// EventFilter selects events in AuditLog.Events, newest first. Zero fields
// match all; Limit 0 returns every match.
type EventFilter struct {
	Owner string
	KeyID string
	Limit int
}

// Match reports whether e passes the filter's Owner and KeyID.
func (f EventFilter) Match(e Event) bool {
	return (f.Owner == "" || e.Owner == f.Owner) && (f.KeyID == "" || e.KeyID == f.KeyID)
}

// MemoryAudit is an AuditLog in memory that keeps the newest events. It
// is safe for concurrent use.
type MemoryAudit struct {
	mu     sync.Mutex
	events []Event // a ring of at most max events
	next   int     // where the next event goes once the ring is full
	max    int
}

// NewMemoryAudit returns an audit log that keeps the newest max events
// (default 10,000 when max is 0 or less), forgetting the oldest.
func NewMemoryAudit(max int) *MemoryAudit {
	if max <= 0 {
		max = 10_000
	}
	return &MemoryAudit{max: max}
}

// Record keeps e. It never fails.
func (m *MemoryAudit) Record(_ context.Context, e Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.events) < m.max {
		m.events = append(m.events, e)
		return nil
	}
	m.events[m.next] = e
	m.next = (m.next + 1) % m.max
	return nil
}

// Events returns the events f selects, newest first.
func (m *MemoryAudit) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Event{}
	n := len(m.events)
	for i := range n {
		// Newest first: the one before next, backwards round the ring.
		e := m.events[(m.next-1-i+2*n)%n]
		if !f.Match(e) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// slogAudit is the sink NewSlogAudit returns.
type slogAudit struct{ l *slog.Logger }

// NewSlogAudit returns a sink that writes one Info line per event to l
// (slog.Default() when nil), with the attributes at, actor, action,
// key_id, owner, remote and detail.
func NewSlogAudit(l *slog.Logger) AuditSink {
	return slogAudit{l: cmp.Or(l, slog.Default())}
}

// Record writes e.
func (s slogAudit) Record(ctx context.Context, e Event) error {
	s.l.LogAttrs(ctx, slog.LevelInfo, "manage: api key "+e.Action,
		slog.Time("at", e.At),
		slog.String("actor", e.Actor),
		slog.String("action", e.Action),
		slog.String("key_id", e.KeyID),
		slog.String("owner", e.Owner),
		slog.String("remote", e.Remote),
		slog.String("detail", e.Detail),
	)
	return nil
}

// compile-time checks
var (
	_ AuditLog  = (*MemoryAudit)(nil)
	_ AuditSink = slogAudit{}
)
