// Command ratios checks the benchmark targets: it reads `go test -bench`
// output, takes the median of each benchmark's runs, computes the ratios
// the targets are stated in and prints them as Markdown tables, each target
// marked PASS or MISS with its margin.
//
//	go run ./cmd/ratios [-wrk results/wrk.txt] [-strict] results/root.txt results/store.txt results/peer.txt
//
// The files are the output of the root package's benchmarks
// (BenchmarkRequest, BenchmarkMemoryStoreLookup, ...) and of this module's
// (BenchmarkPeer), in any number of files; -wrk is the summary wrk.sh
// writes. A benchmark that is absent leaves its rows at n/a. With -strict
// the exit status is 1 when a target is missed or cannot be computed.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/keygate/apikey/bench/internal/benchdata"
)

func main() {
	code, err := run(os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("ratios", flag.ContinueOnError)
	wrkFile := fs.String("wrk", "", "summary written by wrk.sh (optional)")
	strict := fs.Bool("strict", false, "exit 1 when a target is missed or has no data")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if fs.NArg() == 0 {
		return 0, errors.New("usage: ratios [-wrk wrk.txt] [-strict] bench-output.txt...")
	}
	set, err := benchdata.ReadFiles(fs.Args()...)
	if err != nil {
		return 0, err
	}
	var w *wrkResult
	if *wrkFile != "" {
		if w, err = readWrk(*wrkFile); err != nil {
			return 0, err
		}
	}
	r := report{set: set, wrk: w}
	r.print(out)
	if *strict && (r.missed > 0 || r.unknown > 0) {
		return 1, nil
	}
	return 0, nil
}

// Benchmark names.
func request(path, impl string) string {
	return "BenchmarkRequest/path=" + path + "/impl=" + impl
}

func peerName(bench, path, impl string) string {
	return bench + "/path=" + path + "/impl=" + impl
}

const (
	nsOp     = "ns/op"
	allocsOp = "allocs/op"
	lookups  = "lookups/op"
)

type report struct {
	set             *benchdata.Set
	wrk             *wrkResult
	missed, unknown int
}

// row is one line of the targets table.
type row struct {
	target, measured, limit, result string
}

// verdict formats a ratio check: PASS when got is on the right side of
// limit, with the margin relative to the limit.
func (r *report) verdict(got, limit float64, atMost bool) string {
	if math.IsNaN(got) {
		r.unknown++
		return "n/a"
	}
	pass := got <= limit
	if !atMost {
		pass = got >= limit
	}
	margin := pct((got/limit - 1) * 100)
	var s string
	switch {
	case pass && atMost:
		s = "PASS (" + pct(-(got/limit-1)*100) + " under)"
	case pass:
		s = "PASS (" + margin + " over)"
	case atMost:
		s = "**MISS** (" + margin + " over)"
	default:
		s = "**MISS** (" + pct(-(got/limit-1)*100) + " under)"
	}
	if !pass {
		r.missed++
	}
	return s
}

// pct prints a percentage, with a decimal when it is small.
func pct(v float64) string {
	if math.Abs(v) < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "%"
}

// exact checks got == want (counts such as lookups/op).
func (r *report) exact(got, want float64) string {
	switch {
	case math.IsNaN(got):
		r.unknown++
		return "n/a"
	case got == want:
		return "PASS"
	default:
		r.missed++
		return "**MISS**"
	}
}

// ns formats a median with its spread.
func (r *report) ns(name string) string {
	st, ok := r.set.Get(name, nsOp)
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%s ns ±%.0f%%", num(st.Median), st.Spread*100)
}

func (r *report) med(name, unit string) float64 { return r.set.Median(name, unit) }

// num prints a figure with as many decimals as its size deserves.
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

func ratio(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}

func (r *report) targets() []row {
	floorValid := request("valid", "floor")
	floorReject := request("unknown", "floor")
	var rows []row

	// Valid key: time and allocations against the floor's valid request.
	ours := request("valid", "apikey")
	rt := r.med(ours, nsOp) / r.med(floorValid, nsOp)
	rows = append(rows, row{
		"valid key: ns/op ≤ 1.25× floor",
		fmt.Sprintf("%s / floor %s = %s", r.ns(ours), r.ns(floorValid), ratio(rt)),
		"1.25×", r.verdict(rt, 1.25, true),
	})
	oa, fa := r.med(ours, allocsOp), r.med(floorValid, allocsOp)
	rows = append(rows, row{
		"valid key: allocs/op ≤ floor + 2",
		fmt.Sprintf("%s allocs / floor %s", num(oa), num(fa)),
		num(fa + 2), r.verdict(oa, fa+2, true),
	})

	// Rejections before the store: half the floor's rejection of the same
	// key (the floor cannot tell a malformed key from an unknown one: it
	// hashes it, misses in its map and answers 401), and no store call.
	for _, path := range []string{"malformed", "bad-checksum"} {
		name := request(path, "apikey")
		rt := r.med(name, nsOp) / r.med(floorReject, nsOp)
		rows = append(rows, row{
			path + ": ns/op ≤ 0.5× floor",
			fmt.Sprintf("%s / floor reject %s = %s", r.ns(name), r.ns(floorReject), ratio(rt)),
			"0.50×", r.verdict(rt, 0.5, true),
		})
		lk := r.med(name, lookups)
		rows = append(rows, row{
			path + ": store calls = 0",
			num(lk) + " lookups/op", "0", r.exact(lk, 0),
		})
	}

	// Unknown key: one lookup, no more than the floor's miss.
	name := request("unknown", "apikey")
	rt = r.med(name, nsOp) / r.med(floorReject, nsOp)
	rows = append(rows, row{
		"unknown key: ns/op ≤ 1× floor",
		fmt.Sprintf("%s / floor reject %s = %s", r.ns(name), r.ns(floorReject), ratio(rt)),
		"1.00×", r.verdict(rt, 1, true),
	})

	// Against the peer: the cost each adds over its own bare stack.
	ourOver, echoOver := r.overheads("BenchmarkPeer")
	rt = ourOver / echoOver
	rows = append(rows, row{
		"overhead ≤ echo keyauth's (valid key)",
		fmt.Sprintf("apikey +%s ns / echo keyauth +%s ns = %s", num(ourOver), num(echoOver), ratio(rt)),
		"1.00×", r.verdict(rt, 1, true),
	})

	// Over TCP.
	if r.wrk != nil {
		rt := r.wrk.with / r.wrk.without
		measured := fmt.Sprintf("%s / %s req/s = %.1f%%", num(r.wrk.with), num(r.wrk.without), rt*100)
		if r.wrk.withCPU > 0 && r.wrk.withoutCPU > 0 {
			measured += fmt.Sprintf(" (per server CPU-second: %s / %s = %.1f%%)",
				num(r.wrk.with/r.wrk.withCPU), num(r.wrk.without/r.wrk.withoutCPU),
				rt*r.wrk.withoutCPU/r.wrk.withCPU*100)
		}
		rows = append(rows, row{
			"wrk: req/s with auth ≥ 90% of without",
			measured, "90%", r.verdict(rt, 0.9, false),
		})
	} else {
		r.unknown++
		rows = append(rows, row{"wrk: req/s with auth ≥ 90% of without", "not run", "90%", "n/a"})
	}
	return rows
}

// overheads returns apikey − nethttp-bare and echo-keyauth − echo-bare for
// the valid key in one of the peer benchmarks.
func (r *report) overheads(bench string) (ours, echo float64) {
	m := func(impl string) float64 { return r.med(peerName(bench, "valid", impl), nsOp) }
	return m("apikey") - m("nethttp-bare"), m("echo-keyauth") - m("echo-bare")
}

// figure is one line of the other-figures table.
type figure struct{ what, name, note string }

func (r *report) figures() []figure {
	floorReject := request("unknown", "floor")
	var fs []figure
	for _, p := range []string{"missing", "revoked", "wrong-scope"} {
		name := request(p, "apikey")
		fs = append(fs, figure{p + " key", name,
			fmt.Sprintf("%s floor reject; %s lookups/op", ratio(r.med(name, nsOp)/r.med(floorReject, nsOp)), num(r.med(name, lookups)))})
	}
	fs = append(fs, figure{"Require(read, write) after the middleware", "BenchmarkRequire", ""})
	pf, pa := "BenchmarkRequestParallel/path=valid/impl=floor", "BenchmarkRequestParallel/path=valid/impl=apikey"
	fs = append(fs,
		figure{"valid key, parallel: floor", pf, ""},
		figure{"valid key, parallel: apikey", pa, ratio(r.med(pa, nsOp)/r.med(pf, nsOp)) + " floor"},
	)
	for _, bench := range []string{"BenchmarkPeer", "BenchmarkPeerParallel"} {
		label := "peer, valid key: "
		if bench == "BenchmarkPeerParallel" {
			label = "peer, valid key, parallel: "
		}
		ours, echo := r.overheads(bench)
		bare := r.med(peerName(bench, "valid", "nethttp-bare"), nsOp)
		plumbing := r.med(peerName(bench, "valid", "nethttp-withvalue"), nsOp) - bare
		for _, impl := range []string{"nethttp-bare", "nethttp-withvalue", "apikey", "echo-bare", "echo-keyauth"} {
			note := ""
			switch impl {
			case "nethttp-withvalue":
				note = "overhead +" + num(plumbing) + " ns: r.WithContext alone"
			case "apikey":
				note = fmt.Sprintf("overhead +%s ns, of which +%s beyond r.WithContext", num(ours), num(ours-plumbing))
			case "echo-keyauth":
				note = "overhead +" + num(echo) + " ns; ours/echo " + ratio(ours/echo)
			}
			fs = append(fs, figure{label + impl, peerName(bench, "valid", impl), note})
		}
	}
	ou, eu := peerName("BenchmarkPeer", "unknown", "apikey"), peerName("BenchmarkPeer", "unknown", "echo-keyauth")
	fs = append(fs,
		figure{"peer, unknown key: apikey", ou, ""},
		figure{"peer, unknown key: echo-keyauth", eu, "ours/echo " + ratio(r.med(ou, nsOp)/r.med(eu, nsOp))},
	)
	for _, n := range []string{"1000", "1000000"} {
		name := "BenchmarkMemoryStoreLookup/keys=" + n
		fs = append(fs, figure{"MemoryStore lookup, " + n + " keys", name, num(r.med(name, "B/key")) + " B/key"})
	}
	fs = append(fs,
		figure{"MemoryStore lookup, 100k keys, parallel", "BenchmarkMemoryStoreLookupParallel", ""},
		figure{"Verify, MemoryStore", "BenchmarkVerifyCachedVsMemory/store=memory", ""},
		figure{"Verify, Cache over MemoryStore", "BenchmarkVerifyCachedVsMemory/store=cache-over-memory", ""},
		figure{"Parse, valid key", "BenchmarkParse/key=valid", ""},
		figure{"Digest, SHA-256", "BenchmarkDigest/hash=sha256", ""},
		figure{"Digest, HMAC-SHA-256", "BenchmarkDigest/hash=hmac-sha256", ""},
	)
	return fs
}

func (r *report) print(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	runs := 0
	if st, ok := r.set.Get(request("valid", "apikey"), nsOp); ok {
		runs = st.N
	}
	fmt.Fprintf(bw, "Medians of %d runs; ± is half the interquartile range. cpu: %s\n\n", runs, r.set.Config["cpu"])
	fmt.Fprintln(bw, "| target | measured | limit | result |")
	fmt.Fprintln(bw, "| --- | --- | --- | --- |")
	for _, t := range r.targets() {
		fmt.Fprintf(bw, "| %s | %s | %s | %s |\n", t.target, t.measured, t.limit, t.result)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| other figure | ns/op | allocs/op | B/op | note |")
	fmt.Fprintln(bw, "| --- | --- | --- | --- | --- |")
	for _, f := range r.figures() {
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s |\n", f.what, r.ns(f.name),
			num(r.med(f.name, allocsOp)), num(r.med(f.name, "B/op")), f.note)
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "targets: %d missed, %d without data\n", r.missed, r.unknown)
}

// wrkResult is what wrk.sh measured: requests per second and the server's
// CPU use in cores (0 when not reported).
type wrkResult struct{ with, without, withCPU, withoutCPU float64 }

// readWrk reads wrk.sh's summary: key=value lines, of which
// with_auth_rps and without_auth_rps are needed and *_server_cpu used
// when present.
func readWrk(path string) (*wrkResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res wrkResult
	var haveWith, haveWithout bool
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch k {
		case "with_auth_rps":
			res.with, haveWith = f, true
		case "without_auth_rps":
			res.without, haveWithout = f, true
		case "with_auth_server_cpu":
			res.withCPU = f
		case "without_auth_server_cpu":
			res.withoutCPU = f
		}
	}
	if !haveWith || !haveWithout {
		return nil, fmt.Errorf("%s: no with_auth_rps and without_auth_rps", path)
	}
	return &res, nil
}
