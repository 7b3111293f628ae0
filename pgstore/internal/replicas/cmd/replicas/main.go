// Command replicas runs the multi-process fault harness of pgstore: N
// server replicas over one real PostgreSQL, under faults, and prints a
// report (a plain table, then a Markdown table for BENCHMARKS.md).
//
//	cd pgstore && go run ./internal/replicas/cmd/replicas [-scenarios steady,restart,...] [-replicas 8] [-short]
//
// With the subcommand "replica" it is one replica process, which the
// harness starts itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keygate/apikey/pgstore/internal/replicas"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "replica" {
		os.Exit(replica(os.Args[2:]))
	}
	os.Exit(harness())
}

// replica runs one replica process until SIGTERM.
func replica(args []string) int {
	cfg, err := replicas.ParseReplicaFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := replicas.RunReplica(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// harness runs the scenarios and prints the report.
func harness() int {
	names := flag.String("scenarios", strings.Join(replicas.ScenarioNames(), ","), "comma-separated scenarios to run")
	n := flag.Int("replicas", 8, "number of replica processes")
	short := flag.Bool("short", false, "short outages, fewer revocations, a smaller flood")
	rate := flag.Int("rate", 0, "total load, requests per second (0: 1000, or 500 with -short)")
	plainPool := flag.Bool("plain-pool", false, "replicas use pgxpool's defaults instead of pgstore.PoolConfig")
	verbose := flag.Bool("v", false, "log progress to stderr")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := replicas.Options{
		Scenarios: strings.Split(*names, ","),
		Replicas:  *n,
		Short:     *short,
		Rate:      *rate,
		PlainPool: *plainPool,
	}
	if *verbose {
		opts.Log = os.Stderr
	}
	start := time.Now()
	rep, err := replicas.Run(ctx, opts)
	if rep != nil {
		rep.Write(os.Stdout)
		fmt.Printf("\ntotal time %v\n", time.Since(start).Round(time.Second))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		return 1
	}
	if !rep.Passed() {
		return 3
	}
	return 0
}
