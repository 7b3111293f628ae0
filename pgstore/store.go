package pgstore

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/apikey"
)

// Store is an apikey store backed by PostgreSQL. It implements
// apikey.KeyStore, apikey.Manager, apikey.UsageStore and apikey.Rehasher.
// It is safe for concurrent use; every method takes a connection from the
// pool for the duration of one call.
type Store struct {
	pool    *pgxpool.Pool
	keys    apikey.KeyConfig
	now     func() time.Time
	timeout time.Duration
}

// Config configures a Store (New).
type Config struct {
	// Keys says how keys are made and checked: formats, peppers, scopes,
	// clock. Give the middleware the same KeyConfig. Required.
	Keys apikey.KeyConfig
	// LookupTimeout bounds each Lookup, so that a slow or unreachable
	// database costs a request at most this long (the middleware then
	// answers 503). A store that blocks sets its own deadline: the
	// middleware sets none. Default 2 s.
	LookupTimeout time.Duration
}

// defaultLookupTimeout is the LookupTimeout of a Config that sets none.
const defaultLookupTimeout = 2 * time.Second

// New returns a Store that keeps its keys in pool's database and makes
// them as cfg.Keys says. It neither connects nor creates the schema: call
// Migrate once at start-up. The pool stays the caller's to close. Its
// error wraps apikey.ErrInvalid and names the field to change.
func New(pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgstore: New: %w: pool is nil", apikey.ErrInvalid)
	}
	if err := cfg.Keys.Check(); err != nil {
		return nil, fmt.Errorf("pgstore: New: Config.Keys: %w", err)
	}
	if cfg.LookupTimeout < 0 {
		return nil, fmt.Errorf("pgstore: New: %w: Config.LookupTimeout is negative", apikey.ErrInvalid)
	}
	s := &Store{pool: pool, keys: cfg.Keys, now: cfg.Keys.Clock, timeout: cfg.LookupTimeout}
	// The caller's slices are theirs to change later.
	s.keys.Formats = slices.Clone(cfg.Keys.Formats)
	s.keys.Peppers = slices.Clone(cfg.Keys.Peppers)
	if s.now == nil {
		s.now = time.Now
	}
	s.timeout = cmp.Or(s.timeout, defaultLookupTimeout)
	return s, nil
}

// keyColumns are the columns scanKey reads, in its order, from keyFrom: a
// key's usage is what was rolled up into apikey_usage plus the deltas of
// flushes not rolled up yet.
const keyColumns = `k.id, k.pepper_id, k.name, k.environment, k.disabled, k.scopes, k.owner, k.metadata, k.hint,
	k.created_at, k.expires_at, k.revoked_at, GREATEST(u.last_used_at, p.last_used_at),
	COALESCE(u.requests, 0) + COALESCE(p.requests, 0), k.rolled_from, k.rolled_to, k.rolled_at, k.limits, k.lineage`

const keyFrom = ` FROM apikey_keys k
	LEFT JOIN apikey_usage u ON u.key_id = k.id
	LEFT JOIN LATERAL (SELECT sum(d.requests)::bigint AS requests, max(d.last_used_at) AS last_used_at
		FROM apikey_usage_deltas d WHERE d.key_id = k.id) p ON true`

// Every statement that changes apikey_keys fires the triggers of schema
// version 3, which log the change in apikey_invalidations and notify
// Channel in the same transaction: the Go code publishes nothing itself.
const (
	sqlLookup = `SELECT ` + keyColumns + keyFrom + ` WHERE k.digest = $1`
	sqlGet    = `SELECT ` + keyColumns + keyFrom + ` WHERE k.id = $1`
	sqlInsert = `INSERT INTO apikey_keys (id, digest, pepper_id, name, environment, scopes, owner,
	metadata, hint, created_at, expires_at, revoked_at, rolled_from, rolled_to, rolled_at, disabled, limits, lineage)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`
	// sqlInsertUsage sets an added key's usage; the row the insert trigger
	// made is replaced.
	sqlInsertUsage = `INSERT INTO apikey_usage (key_id, requests, last_used_at, idle_since)
	VALUES ($1, $2, $3, COALESCE($3, (SELECT created_at FROM apikey_keys WHERE id = $1)))
	ON CONFLICT (key_id) DO UPDATE SET requests = excluded.requests, last_used_at = excluded.last_used_at,
		idle_since = excluded.idle_since`
	// sqlRevoke keeps the first revocation time; it updates the row even
	// then, so that a second revocation publishes again.
	sqlRevoke     = `UPDATE apikey_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`
	sqlLockKey    = `SELECT ` + keyColumns + keyFrom + ` WHERE k.id = $1 FOR UPDATE OF k`
	sqlRollRetire = `UPDATE apikey_keys SET rolled_to = $2, expires_at = $3, rolled_at = $4 WHERE id = $1`
	sqlUpdate     = `UPDATE apikey_keys SET name = $2, scopes = $3, expires_at = $4, metadata = $5, disabled = $6, limits = $7 WHERE id = $1`
	sqlListAfter  = `SELECT created_at FROM apikey_keys WHERE id = $1`
	sqlRehashLock = `SELECT digest FROM apikey_keys WHERE id = $1 FOR UPDATE`
	sqlRehash     = `UPDATE apikey_keys SET digest = $2, pepper_id = $3 WHERE id = $1`
	// sqlUsage files a flush's deltas under its id, once: a flush whose id
	// is already recorded (a retry of a flush that committed although its
	// caller gave up) inserts nothing. It takes no lock on apikey_keys.
	sqlUsage = `WITH f AS (
		INSERT INTO apikey_usage_flushes (flush_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING flush_id)
	INSERT INTO apikey_usage_deltas (flush_id, key_id, requests, last_used_at)
	SELECT f.flush_id, u.id, u.n, u.t FROM f, unnest($2::text[], $3::bigint[], $4::timestamptz[]) AS u(id, n, t)`
	// sqlRollup moves the deltas into apikey_usage, one key at a time in
	// key order; deltas of keys that do not exist are dropped.
	sqlRollup = `WITH d AS (DELETE FROM apikey_usage_deltas RETURNING key_id, requests, last_used_at),
	s AS (SELECT d.key_id, sum(d.requests)::bigint AS n, max(d.last_used_at) AS t
		FROM d JOIN apikey_keys k ON k.id = d.key_id GROUP BY d.key_id)
	INSERT INTO apikey_usage (key_id, requests, last_used_at, idle_since)
		SELECT key_id, n, t, COALESCE(t, now()) FROM s ORDER BY key_id
	ON CONFLICT (key_id) DO UPDATE SET requests = apikey_usage.requests + excluded.requests,
		last_used_at = GREATEST(apikey_usage.last_used_at, excluded.last_used_at),
		idle_since = GREATEST(apikey_usage.idle_since, excluded.last_used_at)`
	sqlPruneFlushes = `DELETE FROM apikey_usage_flushes WHERE at < now() - make_interval(secs => $1)`
)

// rollupLock is the advisory lock key of the usage roll-up: one replica
// rolls up at a time, the others skip. "apikeyru" in ASCII.
const rollupLock int64 = 0x6170696b65797275

// flushRetention is how long a flush id is remembered: a retry of the
// same flush within it adds nothing.
const flushRetention = 24 * time.Hour

// pgTime converts a time to what the database keeps: microsecond
// precision, UTC, no monotonic reading.
func pgTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// normalize rounds the key's times as the database will, so the key a
// method returns equals the one a later Get returns.
func normalize(k *apikey.Key) {
	k.CreatedAt = pgTime(k.CreatedAt)
	k.ExpiresAt = pgTime(k.ExpiresAt)
	k.RevokedAt = pgTime(k.RevokedAt)
	k.LastUsedAt = pgTime(k.LastUsedAt)
	k.RolledAt = pgTime(k.RolledAt)
}

func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func nullText(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

// insertArgs returns the arguments of sqlInsert for k filed under d.
func insertArgs(d apikey.Digest, k *apikey.Key) ([]any, error) {
	meta, err := metadataJSON(k.Metadata)
	if err != nil {
		return nil, err
	}
	lim, err := limitsJSON(k.Limits)
	if err != nil {
		return nil, err
	}
	return []any{
		k.ID, d[:], k.PepperID, k.Name, k.Environment.String(), scopeNames(k.Scopes), k.Owner,
		meta, k.Hint, k.CreatedAt, nullTime(k.ExpiresAt), nullTime(k.RevokedAt),
		nullText(k.RolledFrom), nullText(k.RolledTo), nullTime(k.RolledAt), k.Disabled,
		lim, nullText(k.Lineage),
	}, nil
}

// scopeNames is the text[] column of a key's scopes.
func scopeNames(scopes []apikey.Scope) []string {
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	return names
}

// metadataJSON is the jsonb column of a key's metadata: NULL when empty.
func metadataJSON(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return b, nil
}

// limitsJSON is the jsonb column of a key's limits (schema version 6): a
// JSON array of apikey.Limit, NULL when there are none.
func limitsJSON(l []apikey.Limit) ([]byte, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	return b, nil
}

func clampInt64(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

// scanKey reads the keyColumns of one row, after any leading destinations.
func scanKey(row pgx.Row, lead ...any) (*apikey.Key, error) {
	var (
		k                          apikey.Key
		env                        string
		scopes                     []string
		meta, lim                  []byte
		created                    time.Time
		expires, revoked, lastUsed pgtype.Timestamptz
		rolledAt                   pgtype.Timestamptz
		requests                   int64
		from, to, lineage          pgtype.Text
	)
	dest := append(lead, &k.ID, &k.PepperID, &k.Name, &env, &k.Disabled, &scopes, &k.Owner, &meta, &k.Hint,
		&created, &expires, &revoked, &lastUsed, &requests, &from, &to, &rolledAt, &lim, &lineage)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	var err error
	if err = k.Environment.UnmarshalText([]byte(env)); err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	if len(scopes) > 0 {
		k.Scopes = make([]apikey.Scope, len(scopes))
		for i, sc := range scopes {
			k.Scopes[i] = apikey.Scope(sc)
		}
	}
	if len(meta) > 0 {
		if err := json.Unmarshal(meta, &k.Metadata); err != nil {
			return nil, fmt.Errorf("key %s: metadata: %w", k.ID, err)
		}
	}
	if len(lim) > 0 {
		if err := json.Unmarshal(lim, &k.Limits); err != nil {
			return nil, fmt.Errorf("key %s: limits: %w", k.ID, err)
		}
		if len(k.Limits) == 0 { // '[]' written by hand: none, as NULL
			k.Limits = nil
		}
	}
	k.CreatedAt = created.UTC()
	if expires.Valid {
		k.ExpiresAt = expires.Time.UTC()
	}
	if revoked.Valid {
		k.RevokedAt = revoked.Time.UTC()
	}
	if lastUsed.Valid {
		k.LastUsedAt = lastUsed.Time.UTC()
	}
	if requests > 0 {
		k.Requests = uint64(requests)
	}
	k.RolledFrom, k.RolledTo, k.Lineage = from.String, to.String, lineage.String
	if rolledAt.Valid {
		k.RolledAt = rolledAt.Time.UTC()
	}
	return &k, nil
}

// Lookup returns the key whose secret has digest d: one indexed query,
// bounded by Config.LookupTimeout. An unknown digest yields
// apikey.ErrNotFound; any other failure (a timeout wraps
// context.DeadlineExceeded) is returned wrapped, and the middleware treats
// it as a store failure (503).
func (s *Store) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	k, err := scanKey(s.pool.QueryRow(ctx, sqlLookup, d[:]))
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, pgx.ErrNoRows):
		return nil, apikey.ErrNotFound
	default:
		return nil, fmt.Errorf("pgstore: lookup: %w", err)
	}
}

// Create makes a new key from spec with apikey.KeyConfig.NewKey, stores its
// record and digest, and returns the key and its secret, which is never
// available again.
func (s *Store) Create(ctx context.Context, spec apikey.KeySpec) (*apikey.Key, apikey.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, apikey.Secret{}, err
	}
	is, err := s.keys.NewKey(spec)
	if err != nil {
		return nil, apikey.Secret{}, fmt.Errorf("pgstore: create key: %w", err)
	}
	normalize(is.Key)
	args, err := insertArgs(is.Digest, is.Key)
	if err != nil {
		return nil, apikey.Secret{}, fmt.Errorf("pgstore: create key: %w", err)
	}
	if _, err := s.pool.Exec(ctx, sqlInsert, args...); err != nil {
		return nil, apikey.Secret{}, fmt.Errorf("pgstore: create key: %w", insertError(err))
	}
	return is.Key, is.Secret, nil
}

// insertError marks a unique violation (a duplicate ID or digest) as
// invalid input.
func insertError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: a key with this ID or digest already exists (%s)", apikey.ErrInvalid, pgErr.ConstraintName)
	}
	return err
}

// Add files an existing key under a digest, for imports and tests; the
// secret stays with the caller. As in every store, the key needs an ID of 1
// to 128 visible ASCII characters (a ':' or '/' is fine), a digest, an
// environment and well-formed scopes; its ID and digest must be free.
// Errors wrap apikey.ErrInvalid.
func (s *Store) Add(ctx context.Context, d apikey.Digest, k *apikey.Key) error {
	if err := checkRecord(d, k); err != nil {
		return fmt.Errorf("pgstore: add: %w", err)
	}
	k = k.Clone()
	normalize(k)
	args, err := insertArgs(d, k)
	if err != nil {
		return fmt.Errorf("pgstore: add %s: %w", k.ID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlInsert, args...); err != nil {
			return insertError(err)
		}
		if k.Requests == 0 && k.LastUsedAt.IsZero() {
			return nil
		}
		_, err := tx.Exec(ctx, sqlInsertUsage, k.ID, clampInt64(k.Requests), nullTime(k.LastUsedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: add %s: %w", k.ID, err)
	}
	return nil
}

// Get returns the key with this ID, or an error wrapping apikey.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*apikey.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, sqlGet, id))
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("pgstore: get %q: %w", id, apikey.ErrNotFound)
	default:
		return nil, fmt.Errorf("pgstore: get %q: %w", id, err)
	}
}

// where returns the SQL condition and arguments that select the keys
// matching f at now: apikey.Filter.Match in SQL, its state condition
// apikey.Key.State's rule. now is at microsecond precision, as the stored
// times are, so "expires_at <= now" is exactly "!now.Before(ExpiresAt)".
func where(f apikey.Filter, now time.Time) (string, []any) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Environment != 0 {
		conds = append(conds, "environment = "+arg(f.Environment.String()))
	}
	if f.Owner != "" {
		conds = append(conds, "owner = "+arg(f.Owner))
	}
	// Key.State: revoked wins, then disabled; a rolled key is rolled when
	// its grace was zero (expires_at not after rolled_at) or now is before
	// rolled_at, whatever the clock did; past its expiry a key that was
	// rolled is rolled, any other expired; otherwise it is active.
	const rolled = "COALESCE(rolled_to, '') <> ''"
	retired := func(t string) string {
		return "(" + rolled + " AND rolled_at IS NOT NULL AND (expires_at IS NULL OR expires_at <= rolled_at OR " + t + " < rolled_at))"
	}
	switch f.State {
	case 0: // any
	case apikey.StateActive:
		t := arg(now)
		conds = append(conds, "revoked_at IS NULL AND NOT disabled AND NOT "+retired(t)+" AND (expires_at IS NULL OR expires_at > "+t+")")
	case apikey.StateRevoked:
		conds = append(conds, "revoked_at IS NOT NULL")
	case apikey.StateExpired:
		conds = append(conds, "revoked_at IS NULL AND NOT disabled AND expires_at <= "+arg(now)+" AND NOT "+rolled)
	case apikey.StateRolled:
		t := arg(now)
		conds = append(conds, "revoked_at IS NULL AND NOT disabled AND "+rolled+" AND (expires_at <= "+t+" OR "+retired(t)+")")
	case apikey.StateDisabled:
		conds = append(conds, "revoked_at IS NULL AND disabled")
	default: // no key is in a state Key.State never returns
		conds = append(conds, "FALSE")
	}
	if len(conds) == 0 {
		return "TRUE", nil
	}
	return strings.Join(conds, " AND "), args
}

// List returns the keys matching the filter, oldest first (ties by ID), a
// page at a time: a page is one index range scan (created_at, id; owner,
// created_at, id with an owner), whatever the table holds.
func (s *Store) List(ctx context.Context, f apikey.Filter) ([]*apikey.Key, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("pgstore: list: %w: Filter.Limit is negative", apikey.ErrInvalid)
	}
	cond, args := where(f, pgTime(s.now()))
	if f.After != "" {
		var at time.Time
		err := s.pool.QueryRow(ctx, sqlListAfter, f.After).Scan(&at)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("pgstore: list after %q: %w", f.After, apikey.ErrNotFound)
		case err != nil:
			return nil, fmt.Errorf("pgstore: list: %w", err)
		}
		args = append(args, at, f.After)
		cond += fmt.Sprintf(" AND (k.created_at, k.id) > ($%d, $%d)", len(args)-1, len(args))
	}
	limit := ""
	if f.Limit > 0 {
		args = append(args, f.Limit)
		limit = fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+keyFrom+` WHERE `+cond+
		` ORDER BY k.created_at, k.id`+limit, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	defer rows.Close()
	var out []*apikey.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("pgstore: list: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	return out, nil
}

// Revoke revokes the key at once and for ever; the change is logged and
// published to every replica in the same transaction. Revoking a revoked
// key is not an error, keeps the first revocation time and publishes
// again.
func (s *Store) Revoke(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, sqlRevoke, id, pgTime(s.now()))
	if err != nil {
		return fmt.Errorf("pgstore: revoke %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: revoke %q: %w", id, apikey.ErrNotFound)
	}
	return nil
}

// Roll replaces the key with a successor made by
// apikey.KeyConfig.Successor, which says which keys can be rolled: the
// successor has a new secret and inherits the name, scopes, owner, metadata,
// limits and expiry, and its Lineage names the first key of the chain; the
// old key keeps working until now + grace (never past its own expiry;
// 24*time.Hour is 24 h, 0 retires it at once). It is one
// transaction that locks the old key's row, so of two concurrent rolls of
// one key exactly one succeeds and the other fails with
// apikey.ErrAlreadyRolled. The change of the old key is published to every
// replica in the same transaction.
func (s *Store) Roll(ctx context.Context, id string, grace time.Duration) (*apikey.Key, apikey.Secret, error) {
	var (
		is      apikey.Issued
		refusal error // the key cannot be rolled: revoked, expired, rolled, bad grace
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		old, err := scanKey(tx.QueryRow(ctx, sqlLockKey, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return apikey.ErrNotFound
		}
		if err != nil {
			return err
		}
		var retired *apikey.Key
		is, retired, refusal = s.keys.Successor(old, grace)
		if refusal != nil {
			return refusal
		}
		normalize(is.Key)
		normalize(retired)
		args, err := insertArgs(is.Digest, is.Key)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(sqlInsert, args...)
		b.Queue(sqlRollRetire, id, nullText(retired.RolledTo), nullTime(retired.ExpiresAt), nullTime(retired.RolledAt))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return insertError(err)
		}
		return nil
	})
	switch {
	case refusal != nil:
		return nil, apikey.Secret{}, fmt.Errorf("pgstore: %w", refusal)
	case err != nil:
		return nil, apikey.Secret{}, fmt.Errorf("pgstore: roll %q: %w", id, err)
	}
	return is.Key, is.Secret, nil
}

// Update changes the key in place by apikey.KeyConfig.Update (its name,
// scopes, expiry, metadata, limits, disabled), in one transaction that
// locks the key's row, so change sees the current key and concurrent
// updates apply one after the other. The change is published to
// every replica in the same transaction: the same secret works as changed
// on every replica at once.
func (s *Store) Update(ctx context.Context, id string, change func(*apikey.Key) error) (*apikey.Key, error) {
	var updated *apikey.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		old, err := scanKey(tx.QueryRow(ctx, sqlLockKey, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("update %q: %w", id, apikey.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update %q: %w", id, err)
		}
		if updated, err = s.keys.Update(old, change); err != nil {
			return err
		}
		normalize(updated)
		meta, err := metadataJSON(updated.Metadata)
		if err != nil {
			return err
		}
		lim, err := limitsJSON(updated.Limits)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlUpdate, id, updated.Name, scopeNames(updated.Scopes),
			nullTime(updated.ExpiresAt), meta, updated.Disabled, lim); err != nil {
			return fmt.Errorf("update %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	return updated, nil
}

// Rehash files the key under a new digest made with another pepper. The
// change is published for the old digest and the new one (a replica may
// hold a cached "not found" for the new one).
func (s *Store) Rehash(ctx context.Context, id string, d apikey.Digest, pepperID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var old []byte
		err := tx.QueryRow(ctx, sqlRehashLock, id).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return apikey.ErrNotFound
		}
		if err != nil {
			return err
		}
		if string(old) == string(d[:]) {
			return nil
		}
		if _, err := tx.Exec(ctx, sqlRehash, id, d[:], pepperID); err != nil {
			return insertError(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: rehash %q: %w", id, err)
	}
	return nil
}

// RecordUsage files a batch of usage records under the flush id, in one
// statement that takes no lock on any key: each record adds its count to
// the key's requests and moves last_used_at forward, never back. A flush
// id already filed within the last 24 hours adds nothing, so a flush that
// committed although its caller gave up (a timeout, a lost connection) is
// not counted twice when it is retried; an empty flush id is always
// applied. The deltas are then rolled up into the table apikey_usage by
// one replica at a time; Get and List count the ones not rolled up yet.
// Records of unknown keys are dropped; records of the same key are merged
// first.
func (s *Store) RecordUsage(ctx context.Context, flush string, batch []apikey.Usage) error {
	if len(batch) == 0 {
		return ctx.Err()
	}
	if flush == "" {
		flush = uuid.NewString()
	}
	batch = coalesce(batch)
	ids := make([]string, len(batch))
	counts := make([]int64, len(batch))
	times := make([]pgtype.Timestamptz, len(batch))
	for i, u := range batch {
		ids[i] = u.KeyID
		counts[i] = clampInt64(u.Count)
		times[i] = nullTime(pgTime(u.LastUsed))
	}
	if _, err := s.pool.Exec(ctx, sqlUsage, flush, ids, counts, times); err != nil {
		return fmt.Errorf("pgstore: record usage of %d keys: %w", len(batch), err)
	}
	// The batch is recorded; a roll-up that fails is done by the next one.
	_ = s.rollup(ctx)
	return nil
}

// rollup moves the usage deltas into apikey_usage, unless another replica
// is doing so, and forgets flush ids older than flushRetention.
func (s *Store) rollup(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, rollupLock).Scan(&mine); err != nil || !mine {
			return err
		}
		if _, err := tx.Exec(ctx, sqlRollup); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlPruneFlushes, flushRetention.Seconds())
		return err
	})
}

// coalesce merges records of the same key; it returns batch itself when
// every key appears once (the UsageRecorder's batches).
func coalesce(batch []apikey.Usage) []apikey.Usage {
	seen := make(map[string]int, len(batch))
	var out []apikey.Usage
	for i, u := range batch {
		j, dup := seen[u.KeyID]
		if !dup {
			seen[u.KeyID] = len(seen)
			if out != nil {
				out = append(out, u)
			}
			continue
		}
		if out == nil {
			out = slices.Clone(batch[:i])
		}
		out[j].Count += u.Count
		if u.LastUsed.After(out[j].LastUsed) {
			out[j].LastUsed = u.LastUsed
		}
	}
	if out == nil {
		return batch
	}
	return out
}

// checkRecord refuses a key the store must not file: no key, an ID that is
// empty, over 128 bytes or not visible ASCII, a zero digest, an unknown
// environment, a malformed scope (the memory store's rule; the contract
// suite pins both).
func checkRecord(d apikey.Digest, k *apikey.Key) error {
	switch {
	case k == nil:
		return fmt.Errorf("%w: no key", apikey.ErrInvalid)
	case !validKeyID(k.ID):
		return fmt.Errorf("%w: key id %q must be 1 to 128 visible ASCII characters", apikey.ErrInvalid, k.ID)
	case d == apikey.Digest{}:
		return fmt.Errorf("%w: key %s has a zero digest", apikey.ErrInvalid, k.ID)
	case k.Environment != apikey.EnvLive && k.Environment != apikey.EnvTest:
		return fmt.Errorf("%w: key %s has no environment (EnvLive or EnvTest)", apikey.ErrInvalid, k.ID)
	}
	for _, sc := range k.Scopes {
		// A set of one scope checks its name by apikey's own grammar.
		if _, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{sc: nil}); err != nil {
			return fmt.Errorf("key %s: %w", k.ID, err)
		}
	}
	return nil
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return false
		}
	}
	return true
}

// payload is the notification text for a key filed under digest.
func payload(id string, digest []byte) string {
	return id + ":" + hex.EncodeToString(digest)
}

// compile-time checks
var (
	_ apikey.KeyStore   = (*Store)(nil)
	_ apikey.Manager    = (*Store)(nil)
	_ apikey.UsageStore = (*Store)(nil)
	_ apikey.Rehasher   = (*Store)(nil)
)
