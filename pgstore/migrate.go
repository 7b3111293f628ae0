package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Migrations holds the schema as SQL files, one per version, named
// NNNN_title.up.sql, in the directory "migrations". Migrate applies them;
// they also run unchanged with psql (psql -f, in order), golang-migrate
// (file:// or iofs source) and goose (each file is annotated "-- +goose
// Up"), for teams whose migrations go through one of those. Use one tool
// per database: each keeps its own record of what it applied.
//
//go:embed migrations/*.up.sql
var Migrations embed.FS

// migration is one schema version.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded files in version order. It panics at start-up
// if a file is misnamed or a version is missing: that is a build error.
var migrations = func() []migration {
	files, err := fs.Glob(Migrations, "migrations/*.up.sql")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, f := range files {
		base := path.Base(f)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic("pgstore: migration file " + base + " is not named NNNN_title.up.sql")
		}
		b, err := Migrations.ReadFile(f)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("pgstore: migration %s: want version %d", m.name, i+1))
		}
	}
	return ms
}()

// SchemaVersion is the schema version this package's Migrate brings a
// database to.
func SchemaVersion() int { return len(migrations) }

// migrateLock is the advisory lock key that serialises Migrate across
// replicas: "apikey" in ASCII.
const migrateLock int64 = 0x6170696b6579

// Migrate creates or upgrades the store's tables to SchemaVersion by
// applying the files of Migrations that the database lacks. It runs in one
// transaction under an advisory lock, so replicas that start at once
// migrate one after the other and the later ones find nothing to do.
// Running it again is a no-op. A database already at a newer version (a
// newer release ran first) is left alone. Versions applied are recorded in
// the table apikey_schema_migrations.
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
		for _, m := range migrations[min(current, len(migrations)):] {
			// No arguments: the simple protocol, which runs a file of
			// several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx,
				`INSERT INTO apikey_schema_migrations (version) VALUES ($1)`, m.version); err != nil {
				return fmt.Errorf("%s: record: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}
