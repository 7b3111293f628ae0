package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
	"github.com/keygate/apikey/pgstore"
)

// store is what the commands need of a store: the Manager, and Close.
// A PostgreSQL store is also an auditLog and a migrator.
type store interface {
	apikey.Manager
	Close() error
}

// auditLog is the audit log of a store that keeps one (pgstore).
type auditLog interface {
	manage.AuditLog
}

// migrator is a store with a schema (pgstore).
type migrator interface {
	Migrate(ctx context.Context) error
}

// pgStore is a pgstore.Store with the pool it owns.
type pgStore struct {
	*pgstore.Store
	pool *pgxpool.Pool
}

// Close closes the pool.
func (s pgStore) Close() error {
	s.pool.Close()
	return nil
}

// storeLocation is where --store points: a PostgreSQL DSN or a key file.
type storeLocation struct {
	dsn  string // postgres://…
	path string // a key file
}

// String names the store without the DSN's password.
func (l storeLocation) String() string {
	if l.path != "" {
		return l.path
	}
	return redactDSN(l.dsn)
}

// location returns the store --store or $APIKEY_STORE names.
func (a *app) location() (storeLocation, error) {
	s := cmp.Or(a.opts.store, a.getenv(envStore))
	switch {
	case s == "":
		return storeLocation{}, usagef("no store: give --store postgres://… or --store file:/path/keys.json, or set $%s", envStore)
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return storeLocation{dsn: s}, nil
	case strings.HasPrefix(s, "file://"):
		return storeLocation{path: strings.TrimPrefix(s, "file://")}, nil
	case strings.HasPrefix(s, "file:"):
		return storeLocation{path: strings.TrimPrefix(s, "file:")}, nil
	case strings.Contains(s, "://"):
		return storeLocation{}, usagef("store %q: use postgres://… or file:/path/keys.json", redactDSN(s))
	}
	return storeLocation{path: s}, nil
}

// redactDSN hides the password of a URL DSN.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return dsn
}

// openStore opens the store. A key file must exist unless create is true:
// a mistyped path must not look like a store without keys.
func (a *app) openStore(create bool) (store, error) {
	loc, err := a.location()
	if err != nil {
		return nil, err
	}
	keys, err := a.keyConfig()
	if err != nil {
		return nil, err
	}
	if loc.path != "" {
		return openFileStore(loc.path, keys, create)
	}
	cfg, err := pgstore.PoolConfig(loc.dsn)
	if err != nil {
		return nil, usagef("--store: %w", errors.Unwrap(err))
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.ConnectTimeout = min(cmp.Or(cfg.ConnConfig.ConnectTimeout, a.opts.timeout), a.opts.timeout)
	cfg.ConnConfig.RuntimeParams["application_name"] = cmp.Or(cfg.ConnConfig.RuntimeParams["application_name"], "apikey-cli")
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects on first use
	if err != nil {
		return nil, &storeError{err: err}
	}
	s, err := pgstore.New(pool, pgstore.Config{Keys: keys, LookupTimeout: a.opts.timeout})
	if err != nil {
		pool.Close()
		return nil, usagef("%w", err)
	}
	return pgStore{Store: s, pool: pool}, nil
}

func openFileStore(path string, keys apikey.KeyConfig, create bool) (store, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !create {
		return nil, fmt.Errorf("key file %s does not exist (apikey create makes it)", path)
	}
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: path})
	if err != nil {
		return nil, &storeError{err: err}
	}
	return s, nil
}

// withStore opens the store, runs fn and closes the store.
func (a *app) withStore(create bool, fn func(s store) error) error {
	s, err := a.openStore(create)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	return fn(s)
}

// call runs one store call bounded by --timeout, and classifies its error.
func (a *app) call(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, a.opts.timeout)
	defer cancel()
	return classify(fn(ctx))
}

// get returns the key with this ID.
func (a *app) get(ctx context.Context, s store, id string) (*apikey.Key, error) {
	var k *apikey.Key
	err := a.call(ctx, func(ctx context.Context) (err error) {
		k, err = s.Get(ctx, id)
		return err
	})
	if errors.Is(err, apikey.ErrNotFound) {
		return nil, fmt.Errorf("no key %s in %s", id, a.storeName())
	}
	return k, err
}

// storeName names the store in messages, or "the store".
func (a *app) storeName() string {
	if loc, err := a.location(); err == nil {
		return loc.String()
	}
	return "the store"
}
