package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"

	"github.com/keygate/apikey/manage"
	"github.com/keygate/apikey/pgstore"
)

var cmdAudit = &command{
	name:    "audit",
	args:    "[--key ID] [--owner OWNER] [--limit N] [--json]",
	summary: "show the audit log of management actions, newest first (PostgreSQL)",
	help: `
Shows the actions taken on keys, by the API Keys page (package manage) and
by this tool, newest first: who did what to which key, when. The audit log
lives in PostgreSQL (the table apikey_audit); a key file keeps none.`,
	common: true,
	run:    runAudit,
}

func runAudit(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	var f manage.EventFilter
	fs.StringVar(&f.KeyID, "key", "", "only the events of this key")
	fs.StringVar(&f.Owner, "owner", "", "only the events of this owner's keys")
	fs.IntVar(&f.Limit, "limit", 50, "at most N events (0: all)")
	asJSON := fs.Bool("json", false, "write JSON")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if f.Limit < 0 {
		return usagef("--limit cannot be negative")
	}
	return a.withStore(false, func(s store) error {
		log, ok := s.(auditLog)
		if !ok {
			return fmt.Errorf("audit needs the PostgreSQL store: %s is a key file, which keeps no audit log", a.storeName())
		}
		var events []manage.Event
		err := a.call(ctx, func(ctx context.Context) (err error) {
			events, err = log.Events(ctx, f)
			return err
		})
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if *asJSON {
			if events == nil {
				events = []manage.Event{}
			}
			return writeJSON(a.stdout, events)
		}
		t := newTable(a.stdout)
		fmt.Fprintln(t, "AT\tACTOR\tACTION\tKEY\tOWNER\tREMOTE\tDETAIL")
		for _, e := range events {
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fullTime(e.At), e.Actor, e.Action, e.KeyID,
				dash(e.Owner), dash(e.Remote), dash(e.Detail))
		}
		return t.Flush()
	})
}

var cmdMigrate = &command{
	name:    "migrate",
	args:    "[--print]",
	summary: "create or upgrade the PostgreSQL schema; --print writes its SQL",
	help: `
Applies pgstore's migrations that the database lacks, in one transaction
under an advisory lock (replicas may migrate at the same time; running it
again does nothing). --print writes the SQL of every migration to stdout
instead, in order, for a DBA or another migration tool; it needs no store.`,
	common: true,
	run:    runMigrate,
}

func runMigrate(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	print := fs.Bool("print", false, "write the migrations' SQL to stdout instead of applying them")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *print {
		return printMigrations(a)
	}
	return a.withStore(true, func(s store) error {
		m, ok := s.(migrator)
		if !ok {
			fmt.Fprintf(a.stderr, "%s is a key file, which has no schema: nothing to migrate.\n", a.storeName())
			return nil
		}
		if err := a.call(ctx, m.Migrate); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "The schema of %s is at version %d.\n", a.storeName(), pgstore.SchemaVersion())
		return nil
	})
}

// printMigrations writes the SQL of pgstore.Migrations, in version order
// (their names start with the zero-padded version, and fs.Glob sorts).
func printMigrations(a *app) error {
	files, err := fs.Glob(pgstore.Migrations, "migrations/*.up.sql")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	for _, name := range files {
		sql, err := fs.ReadFile(pgstore.Migrations, name)
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		if _, err := fmt.Fprintf(a.stdout, "-- pgstore %s\n%s\n", name, sql); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}
