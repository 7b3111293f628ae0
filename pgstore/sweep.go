package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/sweep"
)

// sqlSweepRetry selects the keys package sweep disabled and has yet to
// tell their owner of; apikey_keys_sweep_retry_idx (schema version 5) has
// the same condition.
const sqlSweepRetry = `disabled AND revoked_at IS NULL AND (metadata ->> '` +
	sweep.MetadataPrefix + string(sweep.KindDisabledUnused) + `') LIKE '% % %'`

// Candidates returns the keys a sweep needs to look at (sweep.Finder), a
// page at a time in ID order: the active keys, not rolled, that expire at
// or before q.ExpiringBefore, were last used (or, never used, created) at
// or before q.UnusedSince, or were created at or before q.CreatedBefore,
// and with q.PendingDisabled the keys the sweep disabled and has yet to
// tell their owner of. It is one statement per page, a union of index
// range scans (schema version 5 adds the indexes): its cost grows with the
// keys that match after q.After, not with the keys in the table. A key
// whose latest use is not rolled up yet may be returned although it was
// used since: the sweep checks every key.
func (s *Store) Candidates(ctx context.Context, q sweep.Query) ([]*apikey.Key, error) {
	if q.Limit < 0 {
		return nil, fmt.Errorf("pgstore: candidates: %w: Query.Limit is negative", apikey.ErrInvalid)
	}
	sql, args := candidatesSQL(q, s.now())
	if sql == "" {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: candidates: %w", err)
	}
	defer rows.Close()
	var out []*apikey.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("pgstore: candidates: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: candidates: %w", err)
	}
	return out, nil
}

// candidatesSQL returns the statement of Candidates and its arguments, or
// "" when q asks for nothing. Each branch of the union is an index range
// scan limited to the page, so the union holds at most a page per branch.
func candidatesSQL(q sweep.Query, now time.Time) (string, []any) {
	active, args := where(apikey.Filter{State: apikey.StateActive}, pgTime(now))
	active += " AND COALESCE(rolled_to, '') = ''"
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	after := arg(q.After)
	page := " ORDER BY id"
	if q.Limit > 0 {
		page += " LIMIT " + arg(q.Limit)
	}
	var branches []string
	if !q.ExpiringBefore.IsZero() {
		branches = append(branches, `SELECT id FROM apikey_keys WHERE expires_at <= `+arg(pgTime(q.ExpiringBefore))+
			` AND `+active+` AND id > `+after+page)
	}
	if !q.UnusedSince.IsZero() {
		t := arg(pgTime(q.UnusedSince))
		// idle_since is the last use, or the creation of a key never used.
		// The idle keys are read by their index first (MATERIALIZED), or the
		// planner walks every key in ID order for the page's sake.
		// Each idle key is then checked by its primary key (LATERAL … LIMIT
		// 1): the planner, misjudging how many keys are active, would
		// otherwise hash every key.
		branches = append(branches,
			`WITH idle AS MATERIALIZED (SELECT key_id FROM apikey_usage WHERE idle_since <= `+t+` AND key_id > `+after+`)
			SELECT idle.key_id AS id FROM idle
			CROSS JOIN LATERAL (SELECT 1 FROM apikey_keys WHERE id = idle.key_id AND `+active+` LIMIT 1) a
			ORDER BY idle.key_id`+strings.TrimPrefix(page, " ORDER BY id"))
	}
	if !q.CreatedBefore.IsZero() {
		branches = append(branches, `SELECT id FROM apikey_keys WHERE created_at <= `+arg(pgTime(q.CreatedBefore))+
			` AND `+active+` AND id > `+after+page)
	}
	if q.PendingDisabled {
		branches = append(branches, `SELECT id FROM apikey_keys WHERE `+sqlSweepRetry+` AND id > `+after+page)
	}
	if len(branches) == 0 {
		return "", nil
	}
	return `WITH c AS ((` + strings.Join(branches, ")\n\tUNION (") + `))
	SELECT ` + keyColumns + keyFrom + ` WHERE k.id IN (SELECT id FROM c) ORDER BY k.id` +
		strings.TrimPrefix(page, " ORDER BY id"), args
}

var _ sweep.Finder = (*Store)(nil)
