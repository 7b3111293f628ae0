package pgstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey/pgstore/internal/pgtest"
	"github.com/keygate/apikey/pgstore/internal/replicas"
)

// TestReplicas runs the multi-process fault harness (package
// internal/replicas) in its short form: 8 replica processes, each with its
// own pool, cache, usage recorder and invalidation feed, over the shared
// server, under the faults that fit CI time; every figure with a target
// must meet it. Each scenario uses a database of its own; restart stops
// the shared server and starts it again.
func TestReplicas(t *testing.T) {
	srv := pgtest.Shared(t)
	names := []string{"steady", "terminate", "lockhold", "flood"}
	if !srv.External() {
		names = append([]string{"restart"}, names...)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := srv.Start(ctx); err != nil {
				t.Errorf("PostgreSQL not running again after the harness: %v", err)
			}
		})
	} else {
		t.Log("restart skipped: cannot stop " + pgtest.EnvDSN)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := replicas.Run(ctx, replicas.Options{Server: srv, Scenarios: names, Short: true})
	require.NoError(t, err)
	var out strings.Builder
	rep.Write(&out)
	t.Log("\n" + out.String())
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			seen := false
			for _, f := range rep.Figures {
				if f.Scenario != name {
					continue
				}
				seen = true
				if f.Verdict == replicas.Fail {
					t.Errorf("%s: measured %s, target %s", f.Name, f.Value, f.Target)
				}
			}
			require.True(t, seen, "no figures")
		})
	}
}
