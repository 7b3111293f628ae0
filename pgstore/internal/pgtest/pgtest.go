// Package pgtest gives pgstore's tests a PostgreSQL server: the one named
// by APIKEY_TEST_DATABASE_URL, or else a throwaway server it starts itself
// from the PostgreSQL binaries on the machine (initdb and pg_ctl from
// /usr/lib/postgresql/*/bin, as Debian installs them, or from PATH).
//
// The throwaway server lives in a temporary directory, listens on a free
// port on 127.0.0.1 only, runs with fsync off, and is removed when the
// tests end. When the tests run as root it runs as the postgres user, as
// PostgreSQL refuses to run as root. Each test gets a database of its own,
// so tests are independent. Tests can stop and start the throwaway server
// to simulate an outage.
//
// Without PostgreSQL, tests skip with a loud message, except under CI=true,
// where they fail.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable that points the tests at an
// existing server. The role it names must be allowed to create databases.
const EnvDSN = "APIKEY_TEST_DATABASE_URL"

// ErrNotFound is wrapped by Launch's error when there is neither a DSN in
// EnvDSN nor PostgreSQL binaries on the machine.
var ErrNotFound = errors.New("PostgreSQL not found")

// Server is a PostgreSQL server for tests.
type Server struct {
	admin    string // DSN of the maintenance database
	external bool

	// The throwaway server only.
	bin  string // directory holding initdb and pg_ctl
	dir  string // temporary directory: data/, the socket, server.log
	port int
	cred *syscall.Credential // run the binaries as this user, when root

	mu      sync.Mutex // serialises Start and Stop
	running bool
	seq     atomic.Int64
}

// Launch returns the server named by EnvDSN, or starts a throwaway one.
// The error wraps ErrNotFound when neither is possible.
func Launch(ctx context.Context) (*Server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("pgtest: %s: %w", EnvDSN, err)
		}
		_ = conn.Close(ctx)
		return &Server{admin: dsn, external: true}, nil
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// findBinaries returns the directory of the newest installed initdb and
// pg_ctl.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no initdb and pg_ctl in /usr/lib/postgresql/*/bin or PATH, and %s is not set (install PostgreSQL, e.g. apt-get install postgresql)", ErrNotFound, EnvDSN)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// init makes the cluster in a temporary directory and starts it.
func (s *Server) init(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "apikey-pgtest-")
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.dir = dir
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("pgtest: running as root needs a postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	if err := s.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return err
	}
	if s.port, err = freePort(); err != nil {
		return err
	}
	conf := strings.Join([]string{
		"",
		"# pgtest: a throwaway server for tests",
		"port = " + strconv.Itoa(s.port),
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + dir + "'",
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"max_connections = 300",
		"",
	}, "\n")
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.admin = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	return s.Start(ctx)
}

// run runs one of the PostgreSQL binaries, as the server's user.
func (s *Server) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	// Output to a file, not a pipe: pg_ctl leaves the server running, and
	// a pipe the server inherited would keep Wait waiting.
	out, err := os.CreateTemp(s.dir, name+"-*.out")
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		return fmt.Errorf("pgtest: %s: %w\n%s%s", name, err, msg, s.logTail())
	}
	return nil
}

// logTail returns the end of the server log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "server log:\n" + string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// External reports whether the server is the one named by EnvDSN, which
// tests cannot stop.
func (s *Server) External() bool { return s.external }

// Start starts the throwaway server and waits until it accepts
// connections. Starting a running server is a no-op.
func (s *Server) Start(ctx context.Context) error {
	if s.external {
		return errors.New("pgtest: cannot start an external server")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	err := s.run(ctx, "pg_ctl", "start", "-D", filepath.Join(s.dir, "data"),
		"-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60")
	if err != nil {
		return err
	}
	s.running = true
	return nil
}

// Stop stops the throwaway server the way an administrator would (fast
// shutdown: clients are told and disconnected) and waits until it is down.
// Stopping a stopped server is a no-op.
func (s *Server) Stop(ctx context.Context) error {
	if s.external {
		return errors.New("pgtest: cannot stop an external server")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	err := s.run(ctx, "pg_ctl", "stop", "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "-t", "60")
	if err != nil {
		return err
	}
	s.running = false
	return nil
}

// Close stops the throwaway server and removes its directory. It does
// nothing to an external server.
func (s *Server) Close() {
	if s.external || s.dir == "" {
		return
	}
	s.mu.Lock()
	if s.running {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = s.run(ctx, "pg_ctl", "stop", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w")
		cancel()
		s.running = false
	}
	s.mu.Unlock()
	_ = os.RemoveAll(s.dir)
}

// CreateDatabase creates an empty database and returns its name and a DSN
// that connects to it.
func (s *Server) CreateDatabase(ctx context.Context) (name, dsn string, err error) {
	name = fmt.Sprintf("apikey_test_%d_%d", os.Getpid(), s.seq.Add(1))
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return "", "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return name, withDatabase(s.admin, name), nil
}

// DropDatabase drops a database made by CreateDatabase, disconnecting its
// clients.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database: %w", err)
	}
	return nil
}

// withDatabase returns dsn with its database replaced, in either DSN form.
func withDatabase(dsn, db string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + db
		u.RawPath = ""
		return u.String()
	}
	return dsn + " dbname=" + db // a later keyword wins
}

var (
	shared    *Server
	launchErr error
)

// Main launches the shared server, runs the tests and stops the server: call
// it from TestMain as os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	shared, launchErr = Launch(ctx)
	cancel()
	if launchErr != nil && errors.Is(launchErr, ErrNotFound) && os.Getenv("CI") != "true" {
		fmt.Fprintf(os.Stderr, "\n!!! %v\n!!! pgstore tests SKIPPED\n\n", launchErr)
	}
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	return code
}

// Shared returns the server Main launched. Without PostgreSQL the test
// skips, or fails under CI=true; any other launch failure fails it.
func Shared(t testing.TB) *Server {
	t.Helper()
	switch {
	case launchErr == nil && shared == nil:
		t.Fatal("pgtest: call pgtest.Main from TestMain")
	case errors.Is(launchErr, ErrNotFound) && os.Getenv("CI") == "true":
		t.Fatalf("%v — CI=true, so a missing PostgreSQL is a failure", launchErr)
	case errors.Is(launchErr, ErrNotFound):
		t.Skipf("%v — pgstore tests SKIPPED", launchErr)
	case launchErr != nil:
		t.Fatal(launchErr)
	}
	return shared
}

// Database creates a fresh database for the test on the shared server and
// returns a DSN for it. Databases on an external server are dropped when
// the test ends; the throwaway server is removed whole.
func Database(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, dsn, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.external {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.DropDatabase(ctx, name); err != nil {
				t.Error(err)
			}
		})
	}
	return dsn
}
