package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
)

// A destructive action is done only when confirmed: y on a terminal, or
// --yes; without a terminal it is refused.
func TestConfirmation(t *testing.T) {
	tests := []struct {
		name        string
		interactive bool
		stdin       string
		args        []string
		code        int
		revoked     bool
	}{
		{"no", true, "n\n", nil, 1, false},
		{"empty answer", true, "\n", nil, 1, false},
		{"end of input", true, "", nil, 1, false},
		{"yes", true, "y\n", nil, 0, true},
		{"YES", true, "YES\n", nil, 0, true},
		{"no terminal, y on stdin", false, "y\n", nil, 1, false},
		{"no terminal, --yes", false, "", []string{"--yes"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTool(t, "file:"+t.TempDir()+"/keys.json")
			tl.secret("create", "--name", "victim")
			var keys []apikey.Key
			tl.okJSON(&keys, "list", "--json")
			id := keys[0].ID

			tl.interactive = tt.interactive
			r := tl.run(tt.stdin, append([]string{"revoke", id}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			if tt.interactive && !strings.Contains(strings.Join(tt.args, " "), "--yes") {
				assert.Contains(t, r.stderr, "Revoke key "+id)
				assert.Contains(t, r.stderr, "[y/N]")
			}
			k := tl.key(id)
			assert.Equal(t, tt.revoked, !k.RevokedAt.IsZero())
		})
	}

	// roll, disable and an update that removes scopes ask too.
	tl := newTool(t, "file:"+t.TempDir()+"/keys.json")
	tl.interactive = true
	tl.secret("create", "--name", "k", "--scope", "read,write")
	var keys []apikey.Key
	tl.okJSON(&keys, "list", "--json")
	id := keys[0].ID
	for _, args := range [][]string{
		{"roll", id},
		{"disable", id},
		{"update", id, "--remove-scope", "write"},
		{"update", id, "--scopes", "read"},
	} {
		r := tl.run("n\n", args...)
		assert.Equal(t, 1, r.code, args)
		assert.Contains(t, r.stderr, "[y/N]", args)
	}
	k := tl.key(id)
	assert.Equal(t, apikey.StateActive, k.State(time.Now()))
	assert.Equal(t, []apikey.Scope{"read", "write"}, k.Scopes)
	r := tl.run("", "update", id, "--add-scope", "admin")
	assert.Equal(t, 0, r.code, "adding a scope asks nothing")
	assert.NotContains(t, r.stderr, "[y/N]")
}

// The exit codes: 1 for what the operator can fix, 2 for a bad command
// line, 3 for a store that is down, within a bounded time.
func TestExitCodes(t *testing.T) {
	file := "file:" + t.TempDir() + "/keys.json"
	newTool(t, file).secret("create", "--name", "k")

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	down := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/apikey?sslmode=disable", closedPort)

	// A server that accepts connections and never answers.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { hung.Close() })
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	hangs := fmt.Sprintf("postgres://postgres@%s/apikey?sslmode=disable", hung.Addr())

	tests := []struct {
		name  string
		store string
		env   map[string]string
		args  []string
		code  int
		want  string // in stderr
	}{
		{"show unknown id", file, nil, []string{"show", "key_nope"}, 1, "no key key_nope"},
		{"revoke unknown id", file, nil, []string{"revoke", "key_nope", "--yes"}, 1, "no key"},
		{"update unknown id", file, nil, []string{"update", "key_nope", "--name", "x"}, 1, "no key"},
		{"usage unknown id", file, nil, []string{"usage", "key_nope"}, 1, "no key"},
		{"missing key file", "file:" + t.TempDir() + "/nope.json", nil, []string{"list"}, 1, "does not exist"},
		{"bad --after", file, nil, []string{"list", "--after", "key_nope"}, 1, "not found"},
		{"a scope not declared", file, nil, []string{"create", "--name", "x", "--scope", "root", "--declared-scopes", "read,write"}, 1, "root"},
		{"no command", file, nil, nil, 2, "Usage"},
		{"unknown command", file, nil, []string{"frobnicate"}, 2, "unknown command"},
		{"bad flag", file, nil, []string{"list", "--bogus"}, 2, "-bogus"},
		{"bad flag value", file, nil, []string{"list", "--limit", "many"}, 2, "invalid value"},
		{"missing argument", file, nil, []string{"show"}, 2, "missing argument"},
		{"extra argument", file, nil, []string{"show", "a", "b"}, 2, "unexpected argument"},
		{"missing --name", file, nil, []string{"create"}, 2, "--name"},
		{"bad --env", file, nil, []string{"create", "--name", "x", "--env", "prod"}, 2, "live or test"},
		{"bad --expires", file, nil, []string{"create", "--name", "x", "--expires", "soon"}, 2, "expiry"},
		{"bad --state", file, nil, []string{"list", "--state", "zombie"}, 2, "--state"},
		{"bad --grace", file, nil, []string{"roll", "key_x", "--grace", "forever"}, 2, "--grace"},
		{"nothing to update", file, nil, []string{"update", "key_x"}, 2, "nothing to change"},
		{"no store", "", nil, []string{"list"}, 2, "APIKEY_STORE"},
		{"unknown store scheme", "mysql://x", nil, []string{"list"}, 2, "postgres://"},
		{"unknown format", file, map[string]string{envFormat: "nope"}, []string{"list"}, 2, "unknown key format"},
		{"database down", down, nil, []string{"list"}, 3, "connect"},
		{"database down, create", down, nil, []string{"create", "--name", "x"}, 3, ""},
		{"database down, migrate", down, nil, []string{"migrate"}, 3, ""},
		{"database hangs", hangs, nil, []string{"show", "key_x", "--timeout", "500ms"}, 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTool(t, tt.store)
			for k, v := range tt.env {
				tl.env[k] = v
			}
			start := time.Now()
			r := tl.run("", tt.args...)
			assert.Equal(t, tt.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			assert.Contains(t, r.stderr, tt.want)
			assert.Less(t, time.Since(start), 5*time.Second, "bounded")
			assert.Empty(t, r.stdout)
		})
	}
}

// A PostgreSQL database without the schema: the error says to migrate.
func TestMissingSchema(t *testing.T) {
	tl := newTool(t, pgtest.Database(t))
	r := tl.run("", "list")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "apikey migrate")
	tl.ok("migrate")
	tl.ok("migrate") // again: nothing to do
	tl.ok("list")
}

// Every command has --help, with the exit codes; help lists them all.
func TestHelp(t *testing.T) {
	tl := newTool(t, "")
	r := tl.run("", "help")
	assert.Equal(t, 0, r.code)
	for _, c := range commands {
		assert.Contains(t, r.stderr, "  "+c.name+" ")
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			r := tl.run("", args...)
			assert.Equal(t, 0, r.code, args)
			assert.Contains(t, r.stderr, "Usage: apikey "+c.name, args)
			assert.Contains(t, r.stderr, "Exit codes", args)
			assert.Empty(t, r.stdout)
		}
	}
	r = tl.run("", "help", "create")
	assert.Contains(t, r.stderr, "-scope")
	assert.Contains(t, r.stderr, "-store")
	assert.Equal(t, 2, tl.run("", "help", "nope").code)
}
