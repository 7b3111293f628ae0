package redislimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tests run against real redis-server processes they start
// themselves, each in a temporary directory, on a free port of
// 127.0.0.1, without persistence: never a system service. Without
// redis-server they skip with a loud message, except under CI=true, where
// they fail.

var errNoRedis = errors.New("redis-server not found on PATH or at /usr/bin/redis-server (install it: apt-get install redis-server)")

var (
	shared    *server // the package's server; tests that stop it start their own
	sharedErr error
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	// go-redis logs each failed dial; the fault tests make many on purpose.
	redis.SetLogger(quiet{})
	shared, sharedErr = launch()
	if errors.Is(sharedErr, errNoRedis) && os.Getenv("CI") != "true" {
		fmt.Fprintf(os.Stderr, "\n!!! %v\n!!! redislimit tests that need Redis are SKIPPED\n\n", sharedErr)
	}
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	os.Exit(code)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// server is a throwaway redis-server.
type server struct {
	bin, dir string
	port     int
	addr     string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func findRedis() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat("/usr/bin/redis-server"); err == nil && fi.Mode()&0o111 != 0 {
		return "/usr/bin/redis-server", nil
	}
	return "", errNoRedis
}

// launch starts a server on a free port.
func launch() (*server, error) {
	bin, err := findRedis()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "redislimit-test-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &server{bin: bin, dir: dir, port: port, addr: "127.0.0.1:" + strconv.Itoa(port)}
	if err := s.start(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// start starts (or restarts) the server and waits until it answers.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"), "--daemonize", "no")
	cmd.Dir = s.dir
	// Dies with the tests, even when they panic or are killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			if err == nil {
				_, err = c.Read(buf)
			}
			c.Close()
			if err == nil && string(buf) == "+PONG\r\n" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server did not answer on %s within 10 s: %v\n%s", s.addr, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops the server at once (SIGKILL), as a crash would.
func (s *server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// freeze stops the server's process (SIGSTOP): connections open, no answers.
func (s *server) freeze() { s.signal(syscall.SIGSTOP) }

// thaw continues a frozen server (SIGCONT).
func (s *server) thaw() { s.signal(syscall.SIGCONT) }

func (s *server) signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

func (s *server) close() {
	s.kill()
	os.RemoveAll(s.dir)
}

// needRedis skips the test without redis-server (fails under CI=true).
func needRedis(t testing.TB) {
	t.Helper()
	switch {
	case sharedErr == nil && shared == nil:
		t.Fatal("TestMain did not run")
	case errors.Is(sharedErr, errNoRedis) && os.Getenv("CI") == "true":
		t.Fatalf("%v — CI=true, so a missing redis-server is a failure", sharedErr)
	case errors.Is(sharedErr, errNoRedis):
		t.Skipf("!!! %v — SKIPPED", sharedErr)
	case sharedErr != nil:
		t.Fatal(sharedErr)
	}
}

// sharedClient returns a client of the shared server, closed at the end
// of the test.
func sharedClient(t testing.TB) *redis.Client {
	t.Helper()
	needRedis(t)
	return newClient(t, shared.addr)
}

// ownServer starts a server for one test (one that stops it).
func ownServer(t testing.TB) *server {
	t.Helper()
	needRedis(t)
	s, err := launch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return c
}
