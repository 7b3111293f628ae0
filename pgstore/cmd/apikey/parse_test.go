package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"90d", now.Add(90 * 24 * time.Hour), false},
		{"36h", now.Add(36 * time.Hour), false},
		{"2026-03-01T00:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{"0d", time.Time{}, true},
		{"-1h", time.Time{}, true},
		{"soon", time.Time{}, true},
		{"1.5d", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseExpiry(tt.in, now)
		if tt.wantErr {
			require.Error(t, err, tt.in)
			assert.Equal(t, exitUsage, exitCode(err))
			continue
		}
		require.NoError(t, err, tt.in)
		assert.True(t, tt.want.Equal(got), "%s: %v", tt.in, got)
	}
}

// Common flags may come before the command.
func TestSplitCommand(t *testing.T) {
	tests := []struct {
		args []string
		lead []string
		name string
		rest []string
	}{
		{[]string{"list", "--json"}, nil, "list", []string{"--json"}},
		{[]string{"--store", "x", "list", "--json"}, []string{"--store", "x"}, "list", []string{"--json"}},
		{[]string{"--store=x", "--timeout", "1s", "show", "id"}, []string{"--store=x", "--timeout", "1s"}, "show", []string{"id"}},
		{[]string{"--store", "x"}, []string{"--store", "x"}, "", nil},
		{[]string{"-h"}, nil, "-h", []string{}},
		{nil, nil, "", nil},
	}
	for _, tt := range tests {
		lead, name, rest := splitCommand(tt.args)
		assert.Equal(t, tt.name, name, tt.args)
		assert.Equal(t, len(tt.lead), len(lead), tt.args)
		assert.Equal(t, len(tt.rest), len(rest), tt.args)
	}
	tl := newTool(t, "")
	tl.ok("--store", "file:"+t.TempDir()+"/k.json", "create", "--name", "x")
}

func TestRedactDSN(t *testing.T) {
	assert.Equal(t, "postgres://u:xxxxx@db/x", redactDSN("postgres://u:hunter2@db/x"))
	assert.Equal(t, "postgres://u@db/x", redactDSN("postgres://u@db/x"))
	assert.Equal(t, "/tmp/keys.json", redactDSN("/tmp/keys.json"))
}
