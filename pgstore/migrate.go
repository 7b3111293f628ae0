package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema's versions, in order: migrations[v-1] holds
// the statements that take the schema from version v-1 to version v.
// Applied versions are recorded in apikey_schema_migrations. Never edit an
// applied migration; append a new one.
var migrations = [][]string{
	// Version 1: the keys table.
	{
		`CREATE TABLE apikey_keys (
			id           text        PRIMARY KEY,
			digest       bytea       NOT NULL,
			pepper_id    text        NOT NULL DEFAULT '',
			name         text        NOT NULL,
			environment  text        NOT NULL CHECK (environment IN ('live', 'test')),
			scopes       text[]      NOT NULL DEFAULT '{}',
			owner        text        NOT NULL DEFAULT '',
			metadata     jsonb,
			hint         text        NOT NULL DEFAULT '',
			created_at   timestamptz NOT NULL,
			expires_at   timestamptz,
			revoked_at   timestamptz,
			last_used_at timestamptz,
			requests     bigint      NOT NULL DEFAULT 0,
			rolled_from  text,
			rolled_to    text
		)`,
		`CREATE UNIQUE INDEX apikey_keys_digest_key ON apikey_keys (digest)`,
		`CREATE INDEX apikey_keys_created_idx ON apikey_keys (created_at, id)`,
		`CREATE INDEX apikey_keys_owner_idx ON apikey_keys (owner, created_at, id) WHERE owner <> ''`,
	},
	// Version 2: when a key was rolled, so that a retired key stays
	// retired whatever the clock does. A key rolled before this version was
	// rolled when its successor was created.
	{
		`ALTER TABLE apikey_keys ADD COLUMN rolled_at timestamptz`,
		`UPDATE apikey_keys o SET rolled_at = n.created_at
			FROM apikey_keys n WHERE o.rolled_to = n.id AND o.rolled_at IS NULL`,
	},
}

// SchemaVersion is the schema version this package's Migrate brings a
// database to.
func SchemaVersion() int { return len(migrations) }

// migrateLock is the advisory lock key that serialises Migrate across
// replicas: "apikey" in ASCII.
const migrateLock int64 = 0x6170696b6579

// Migrate creates or upgrades the store's tables to SchemaVersion. It runs
// in one transaction under an advisory lock, so replicas that start at
// once migrate one after the other and the later ones find nothing to do.
// Running it again is a no-op. A database already at a newer version (a
// newer release ran first) is left alone.
func (s *Store) Migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS apikey_schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create apikey_schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx,
			`SELECT COALESCE(max(version), 0) FROM apikey_schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read version: %w", err)
		}
		for v := current + 1; v <= len(migrations); v++ {
			for _, stmt := range migrations[v-1] {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("version %d: %w", v, err)
				}
			}
			if _, err := tx.Exec(ctx,
				`INSERT INTO apikey_schema_migrations (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("version %d: record: %w", v, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}
