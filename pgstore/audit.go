package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/keygate/apikey/manage"
)

// The audit log of management actions (package manage), in the table
// apikey_audit of schema version 4: Store is a manage.AuditLog, so the
// API Keys page records into the database every replica shares.

const sqlAuditInsert = `INSERT INTO apikey_audit (at, actor, action, key_id, owner, remote, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

// Record appends e to the audit log (manage.AuditSink).
func (s *Store) Record(ctx context.Context, e manage.Event) error {
	if e.Actor == "" || e.Action == "" {
		return fmt.Errorf("pgstore: audit: event without actor or action")
	}
	if _, err := s.pool.Exec(ctx, sqlAuditInsert, pgTime(e.At), e.Actor, e.Action, e.KeyID, e.Owner, e.Remote, e.Detail); err != nil {
		return fmt.Errorf("pgstore: audit: %w", err)
	}
	return nil
}

// Events returns the audit events matching f, newest first
// (manage.AuditLog). A key's or an owner's events are one index range scan.
func (s *Store) Events(ctx context.Context, f manage.EventFilter) ([]manage.Event, error) {
	var (
		conds []string
		args  []any
	)
	if f.Owner != "" {
		args = append(args, f.Owner)
		conds = append(conds, "owner = $"+strconv.Itoa(len(args)))
	}
	if f.KeyID != "" {
		args = append(args, f.KeyID)
		conds = append(conds, "key_id = $"+strconv.Itoa(len(args)))
	}
	sql := `SELECT at, actor, action, key_id, owner, remote, detail FROM apikey_audit`
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY seq DESC"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		sql += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: audit events: %w", err)
	}
	defer rows.Close()
	var out []manage.Event
	for rows.Next() {
		var e manage.Event
		if err := rows.Scan(&e.At, &e.Actor, &e.Action, &e.KeyID, &e.Owner, &e.Remote, &e.Detail); err != nil {
			return nil, fmt.Errorf("pgstore: audit events: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: audit events: %w", err)
	}
	return out, nil
}

var _ manage.AuditLog = (*Store)(nil)
