package pgstore_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey/pgstore/internal/pgtest"
)

// TestExamplePostgresSmoke builds examples/postgres, runs its two replicas
// against a fresh database, checks a 200, a 401 and a 403 over real HTTP,
// revokes a key through replica 1 and sees replica 2 reject it, and stops
// the program with SIGINT.
func TestExamplePostgresSmoke(t *testing.T) {
	dsn := pgtest.Database(t)
	bin := filepath.Join(t.TempDir(), "postgres-example")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "examples", "postgres")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)

	addr1, addr2 := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "-addr1", addr1, "-addr2", addr2)
	cmd.Env = append(os.Environ(), "APIKEY_DATABASE_URL="+dsn)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			assert.NoError(t, err, "exits cleanly on SIGINT")
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("did not stop on SIGINT")
		}
	}()

	keys := map[string][2]string{} // "admin" → secret, id
	sc := bufio.NewScanner(stdout)
	kill := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	for len(keys) < 2 && sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), " key:")
		if f := strings.Fields(rest); ok && len(f) == 2 {
			keys[name] = [2]string{f[0], strings.Trim(f[1], "()")}
		}
	}
	kill.Stop()
	require.Len(t, keys, 2, "the example printed an admin and a read key")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	admin, read := keys["admin"], keys["read"]
	r1, r2 := "http://"+addr1, "http://"+addr2

	assert.Equal(t, 200, status(t, "GET", r2+"/v1/stepsies", read[0]))
	assert.Equal(t, 401, status(t, "GET", r2+"/v1/stepsies", ""))
	assert.Equal(t, 403, status(t, "POST", r1+"/v1/keys", read[0]))
	assert.Equal(t, 204, status(t, "DELETE", r1+"/v1/keys/"+read[1], admin[0]))
	assert.Eventually(t, func() bool { return status(t, "GET", r2+"/v1/stepsies", read[0]) == 401 },
		time.Second, 10*time.Millisecond, "revoked on replica 1, rejected by replica 2 within 1 s")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func status(t *testing.T, method, url, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(`{"name":"smoke","scopes":["read"]}`))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}
