package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
)

// TestMain starts one throwaway PostgreSQL server for the tests (or uses
// APIKEY_TEST_DATABASE_URL) and removes it at the end.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// result is what one run of the tool did.
type result struct {
	code           int
	stdout, stderr string
}

// tool runs commands in-process, with an environment of its own.
type tool struct {
	t           testing.TB
	env         map[string]string
	interactive bool // stdin is a terminal
	stderrs     []string
}

func newTool(t testing.TB, store string) *tool {
	return &tool{t: t, env: map[string]string{envStore: store, "USER": "ops"}}
}

// run runs the command line with stdin and returns what it did.
func (tl *tool) run(stdin string, args ...string) result {
	tl.t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{
		stdin:       strings.NewReader(stdin),
		stdout:      &stdout,
		stderr:      &stderr,
		getenv:      func(k string) string { return tl.env[k] },
		interactive: tl.interactive,
		now:         time.Now,
	}
	code := a.run(context.Background(), args)
	tl.stderrs = append(tl.stderrs, stderr.String())
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs the command line, requires exit code 0 and returns stdout.
func (tl *tool) ok(args ...string) string {
	tl.t.Helper()
	r := tl.run("", args...)
	require.Equal(tl.t, 0, r.code, "apikey %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r.stdout
}

// okJSON runs the command line and decodes its stdout into v, a pointer
// it zeroes first (json.Unmarshal would reuse the slices v holds).
func (tl *tool) okJSON(v any, args ...string) {
	tl.t.Helper()
	out := tl.ok(args...)
	reflect.ValueOf(v).Elem().SetZero()
	require.NoError(tl.t, json.Unmarshal([]byte(out), v), out)
}

// key returns the key show --json reports.
func (tl *tool) key(id string) apikey.Key {
	tl.t.Helper()
	var k apikey.Key
	tl.okJSON(&k, "show", id, "--json")
	return k
}

// secret runs a command that prints a secret (create, roll) and returns
// it, checking that stdout is the secret alone, one line, in our format,
// and that stderr does not hold it.
func (tl *tool) secret(args ...string) string {
	tl.t.Helper()
	r := tl.run("", args...)
	require.Equal(tl.t, 0, r.code, "stderr: %s", r.stderr)
	require.True(tl.t, strings.HasSuffix(r.stdout, "\n"), "one line")
	secret := strings.TrimSuffix(r.stdout, "\n")
	require.NotContains(tl.t, secret, "\n", "stdout holds the secret alone")
	_, err := apikey.FormatDefault.Parse(secret)
	require.NoError(tl.t, err, "stdout is a key of the default format")
	require.NotContains(tl.t, r.stderr, secret)
	return secret
}

// noSecretInStderr checks that none of the secrets ever went to stderr.
func (tl *tool) noSecretInStderr(secrets ...string) {
	tl.t.Helper()
	for _, e := range tl.stderrs {
		for _, s := range secrets {
			require.NotContains(tl.t, e, s, "a secret went to stderr")
		}
	}
}

// backend is a store the tests run the tool against.
type backend struct {
	name string
	// open returns the --store of a fresh, empty store.
	open func(t *testing.T) string
	// recordUsage records n requests of the key, last at at, as a server
	// would.
	recordUsage func(t *testing.T, store, id string, n uint64, at time.Time)
}

var testKeys = apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}

var backends = []backend{
	{
		name: "file",
		open: func(t *testing.T) string { return "file:" + filepath.Join(t.TempDir(), "keys.json") },
		recordUsage: func(t *testing.T, store, id string, n uint64, at time.Time) {
			s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: testKeys, Path: strings.TrimPrefix(store, "file:")})
			require.NoError(t, err)
			defer s.Close()
			require.NoError(t, s.RecordUsage(context.Background(), "", []apikey.Usage{{KeyID: id, Environment: apikey.EnvLive, Count: n, LastUsed: at}}))
		},
	},
	{
		name: "postgres",
		open: func(t *testing.T) string { return pgtest.Database(t) },
		recordUsage: func(t *testing.T, store, id string, n uint64, at time.Time) {
			s := openPG(t, store)
			require.NoError(t, s.RecordUsage(context.Background(), "", []apikey.Usage{{KeyID: id, Environment: apikey.EnvLive, Count: n, LastUsed: at}}))
		},
	},
}

// openPG opens a pgstore on dsn, as a server would, closed at the end of
// the test.
func openPG(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s, err := pgstore.New(pool, pgstore.Config{Keys: testKeys})
	require.NoError(t, err)
	return s
}
