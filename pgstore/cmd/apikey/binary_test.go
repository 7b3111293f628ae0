package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The real binary: built, run with a key file, its streams and exit codes
// as a shell sees them. Its stdin is a pipe, not a terminal, so a
// destructive action without --yes is refused.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "apikey")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	env := append(os.Environ(), envStore+"=file:"+filepath.Join(dir, "keys.json"), envPeppers+"=")
	run := func(stdin string, args ...string) (code int, stdout, stderr string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), o.String(), e.String()
		}
		require.NoError(t, err)
		return 0, o.String(), e.String()
	}

	code, secret, stderr := run("", "create", "--name", "binary", "--owner", "acme", "--scope", "read")
	require.Equal(t, 0, code, stderr)
	secret = strings.TrimSuffix(secret, "\n")
	assert.NotContains(t, secret, "\n")
	assert.NotContains(t, stderr, secret)
	assert.Contains(t, stderr, "key_")

	code, _, _ = run(secret+"\n", "check", "-")
	assert.Equal(t, 0, code)
	code, _, _ = run("", "check", "not-a-key")
	assert.Equal(t, 1, code)

	code, list, _ := run("", "list", "--owner", "acme")
	assert.Equal(t, 0, code)
	fields := strings.Fields(strings.Split(list, "\n")[1])
	require.NotEmpty(t, fields, list)
	id := fields[0]

	code, _, stderr = run("y\n", "revoke", id)
	assert.Equal(t, 1, code, "stdin is a pipe: refused without --yes")
	assert.Contains(t, stderr, "--yes")
	code, _, _ = run("", "revoke", id, "--yes")
	assert.Equal(t, 0, code)
	code, show, _ := run("", "show", id)
	assert.Equal(t, 0, code)
	assert.Contains(t, show, "revoked")

	code, _, _ = run("", "list", "--bogus")
	assert.Equal(t, 2, code)
	code, _, _ = run("", "show", "key_nope")
	assert.Equal(t, 1, code)
}
