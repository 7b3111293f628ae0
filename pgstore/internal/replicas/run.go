package replicas

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keygate/apikey/pgstore/internal/pgtest"
)

// Options configures a run. A zero field means its default.
type Options struct {
	// Server is the PostgreSQL server; nil launches one with
	// pgtest.Launch (APIKEY_TEST_DATABASE_URL or a throwaway server) and
	// removes it at the end. Scenarios that stop the server restart it
	// before they return.
	Server *pgtest.Server
	// Scenarios to run, by name (ScenarioNames); default all.
	Scenarios []string
	// Replicas is the number of replica processes. Default 8.
	Replicas int
	// Short shortens outages, revocation counts and the flood, for CI.
	Short bool
	// Rate is the total background load, requests per second. Default
	// 1,000 (500 when Short).
	Rate int
	// Interval and FlushTimeout configure the replicas' usage recorders.
	// Default 1 s each.
	Interval, FlushTimeout time.Duration
	// PlainPool gives the replicas pgxpool's default settings instead of
	// pgstore.PoolConfig, to measure what PoolConfig changes.
	PlainPool bool
	// Log receives progress lines; nil: none.
	Log io.Writer
}

// scenario runs one scenario and returns its figures.
type scenario func(ctx context.Context, e *env) ([]Figure, error)

// scenarios lists the scenarios in the order a full run takes them.
var scenarios = []struct {
	name string
	run  scenario
}{
	{"steady", steady},
	{"restart", restart},
	{"terminate", terminate},
	{"flood", flood},
	{"usage", usageGraceful},
	{"lockhold", lockhold},
	{"halfopen", halfopen},
	{"sigkill", sigkill},
	{"dbstop", dbstop},
	{"hang", hang},
}

// ScenarioNames returns the names of every scenario, in run order.
func ScenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// Run runs the scenarios opts names and returns the report. A scenario
// that fails to run is a failed figure of the report, not an error; the
// error is for what prevents the whole run.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.Replicas = cmp.Or(opts.Replicas, 8)
	opts.Rate = cmp.Or(opts.Rate, 1000)
	if opts.Short && opts.Rate == 1000 {
		opts.Rate = 500
	}
	opts.Interval = cmp.Or(opts.Interval, time.Second)
	opts.FlushTimeout = cmp.Or(opts.FlushTimeout, time.Second)
	if len(opts.Scenarios) == 0 {
		opts.Scenarios = ScenarioNames()
	}
	for _, name := range opts.Scenarios {
		if !slices.Contains(ScenarioNames(), strings.TrimSpace(name)) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(ScenarioNames(), ", "))
		}
	}
	dir, err := os.MkdirTemp("", "apikey-replicas-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir, opts: opts, log: opts.Log}
	e.logf("building the replica binary")
	if e.bin, err = build(ctx, dir); err != nil {
		return nil, err
	}
	if e.server = opts.Server; e.server == nil {
		if e.server, err = pgtest.Launch(ctx); err != nil {
			return nil, err
		}
		defer e.server.Close()
	}
	rep := &Report{}
	rep.Notes = append(rep.Notes, fmt.Sprintf("%d replicas, load %d req/s, usage flush every %v (timeout %v), short=%v",
		opts.Replicas, opts.Rate, opts.Interval, opts.FlushTimeout, opts.Short))
	for _, name := range opts.Scenarios {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(scenarios, func(s struct {
			name string
			run  scenario
		}) bool {
			return s.name == name
		})
		e.logf("scenario %s", name)
		start := time.Now()
		figs, err := scenarios[i].run(ctx, e)
		if err != nil {
			figs = append(figs, Figure{Scenario: name, Name: "error", Value: err.Error(), Verdict: Fail})
		}
		rep.Figures = append(rep.Figures, figs...)
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s took %v", name, time.Since(start).Round(100*time.Millisecond)))
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	return rep, nil
}
