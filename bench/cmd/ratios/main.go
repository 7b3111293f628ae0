// Command ratios checks the benchmark targets: it reads `go test -bench`
// output, takes the median of each benchmark's runs, computes the ratios
// the targets are stated in and prints them as Markdown tables, each target
// marked PASS or MISS with its margin.
//
//	go run ./cmd/ratios [-wrk results/wrk.txt]... [-strict] results/root.txt results/store.txt results/peer.txt results/latency.txt
//
// The files are the output of the root package's benchmarks
// (BenchmarkRequest, BenchmarkFloorParts, BenchmarkMemoryStoreLookup, ...)
// and of this module's (BenchmarkPeer, BenchmarkLookupLatency), in any
// number of files; each -wrk is a summary wrk.sh writes (one per key
// count). A benchmark that is absent leaves its rows at n/a. With -strict
// the exit status is 1 when a target is missed or cannot be computed.
//
// Every ratio is taken between benchmarks of the same files. "The floor"
// is BenchmarkRequest/path=valid/impl=floor, the allocation-free
// hand-written check; "the floor's reject" is path=unknown/impl=floor, the
// same floor answering 401 for a key not in its map. Beside a ratio of
// medians the tables give the spread of the per-round ratios (round i of
// one benchmark against round i of the other; bench/run.sh interleaves
// the rounds) when both have the same number of runs.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"

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
	var wrkFiles []string
	fs.Func("wrk", "summary written by wrk.sh (optional, repeatable)", func(s string) error {
		wrkFiles = append(wrkFiles, s)
		return nil
	})
	strict := fs.Bool("strict", false, "exit 1 when a target is missed or has no data")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if fs.NArg() == 0 {
		return 0, errors.New("usage: ratios [-wrk wrk.txt]... [-strict] bench-output.txt...")
	}
	set, err := benchdata.ReadFiles(fs.Args()...)
	if err != nil {
		return 0, err
	}
	r := report{set: set}
	for _, f := range wrkFiles {
		w, err := readWrk(f)
		if err != nil {
			return 0, err
		}
		r.wrk = append(r.wrk, w)
	}
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

func part(name string) string { return "BenchmarkFloorParts/part=" + name }

const (
	nsOp     = "ns/op"
	allocsOp = "allocs/op"
	lookups  = "lookups/op"
)

var (
	floorValid  = request("valid", "floor")
	floorReject = request("unknown", "floor")
	oursValid   = request("valid", "apikey")
)

type report struct {
	set             *benchdata.Set
	wrk             []*wrkResult
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

// plus formats an overhead in ns: "+300 ns".
func plus(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if v >= 0 {
		return "+" + num(v) + " ns"
	}
	return num(v) + " ns"
}

func ratio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}

// rounds describes the per-round ratios a/b (ns/op) as "rounds min–max",
// or "" when the two do not have the same number of runs.
func (r *report) rounds(a, b string) string {
	x, y := r.set.Samples(a, nsOp), r.set.Samples(b, nsOp)
	if len(x) < 2 || len(x) != len(y) {
		return ""
	}
	v := make([]float64, len(x))
	for i := range x {
		v[i] = x[i] / y[i]
	}
	lo, hi := slices.Min(v), slices.Max(v)
	return fmt.Sprintf(" (rounds %s–%s)", strconv.FormatFloat(lo, 'f', 2, 64), strconv.FormatFloat(hi, 'f', 2, 64))
}

// against is a "time ≤ limit × reference" target.
func (r *report) against(target, name, ref, refLabel string, limit float64) row {
	rt := r.med(name, nsOp) / r.med(ref, nsOp)
	return row{
		target,
		fmt.Sprintf("%s / %s %s = %s%s", r.ns(name), refLabel, r.ns(ref), ratio(rt), r.rounds(name, ref)),
		strconv.FormatFloat(limit, 'f', 2, 64) + "×", r.verdict(rt, limit, true),
	}
}

// overhead returns with − bare (ns/op) for the valid key in one of the
// peer benchmarks.
func (r *report) overhead(bench, with, bare string) float64 {
	return r.med(peerName(bench, "valid", with), nsOp) - r.med(peerName(bench, "valid", bare), nsOp)
}

func (r *report) targets() []row {
	var rows []row

	rows = append(rows, r.against("valid key, Handler: ns/op ≤ 1.05× floor", oursValid, floorValid, "floor", 1.05))
	keyArg := request("valid", "apikey-keyarg")
	rows = append(rows, r.against("valid key, HandlerFunc (key as argument): ns/op ≤ 0.85× floor", keyArg, floorValid, "floor", 0.85))

	ka, e4 := r.overhead("BenchmarkPeer", "apikey-keyarg", "nethttp-bare"), r.overhead("BenchmarkPeer", "echo-keyauth", "echo-bare")
	rt := ka / e4
	rows = append(rows, row{
		"HandlerFunc overhead over bare net/http ≤ 0.8× echo v4 KeyAuth's over bare echo",
		fmt.Sprintf("%s / %s = %s", plus(ka), plus(e4), ratio(rt)),
		"0.80×", r.verdict(rt, 0.8, true),
	})

	// Rejections after the store: no more than the floor's own 401 for a
	// key not in its map.
	for _, path := range []string{"unknown", "revoked"} {
		rows = append(rows, r.against(path+" key: ns/op ≤ 1.0× floor reject", request(path, "apikey"), floorReject, "floor reject", 1))
	}
	// Rejections before the store: half the floor's rejection (the floor
	// cannot tell a malformed key from an unknown one: it hashes it,
	// misses in its map and answers 401), and no store call.
	for _, path := range []string{"malformed", "bad-checksum"} {
		name := request(path, "apikey")
		rows = append(rows, r.against(path+": ns/op ≤ 0.5× floor reject", name, floorReject, "floor reject", 0.5))
		lk := r.med(name, lookups)
		rows = append(rows, row{path + ": store calls = 0", num(lk) + " lookups/op", "0", r.exact(lk, 0)})
	}

	ws := request("wrong-scope", "apikey")
	rows = append(rows, r.against("wrong scope (403): ns/op ≤ 1.2× floor", ws, floorValid, "floor", 1.2))
	wa := r.med(ws, allocsOp)
	rows = append(rows, row{"wrong scope (403): allocs/op ≤ 2", num(wa) + " allocs/op", "2", r.verdict(wa, 2, true)})

	rows = append(rows, r.against("peppered keys: ns/op ≤ 1.15× unpeppered valid key", request("peppered", "apikey"), oursValid, "unpeppered", 1.15))

	// Over TCP, per key count: at a million keys or more, throughput
	// within 5% of bare and a p99 at most 1.3× bare's; with fewer keys,
	// the earlier target of 90% of bare throughput.
	if len(r.wrk) == 0 {
		r.unknown++
		rows = append(rows, row{"wrk: req/s with auth ≥ 95% of without (median per-pair ratio)", "not run", "0.95", "n/a"})
	}
	for _, w := range r.wrk {
		rps, p99 := w.ratios()
		_, measured := w.summary()
		if w.base != "bare" { // the targets are against a bare server
			rows = append(rows, row{
				fmt.Sprintf("wrk, %s keys (%s), A = %s: no target, a breakdown", w.keysLabel(), w.file, w.base),
				measured, "—", "n/a",
			})
			continue
		}
		if !(w.keys >= 1e6) {
			rows = append(rows, row{
				fmt.Sprintf("wrk, %s keys (%s): req/s with auth ≥ 90%% of without (median per-pair ratio)", w.keysLabel(), w.file),
				measured, "0.90", r.verdict(rps.median, 0.9, false),
			})
			continue
		}
		rows = append(rows, row{
			fmt.Sprintf("wrk, %s keys (%s): req/s with auth ≥ 95%% of without (median per-pair ratio)", w.keysLabel(), w.file),
			measured, "0.95", r.verdict(rps.median, 0.95, false),
		}, row{
			fmt.Sprintf("wrk, %s keys (%s): p99 with auth ≤ 1.3× without (median per-pair ratio)", w.keysLabel(), w.file),
			"p99 B/A min/median/max " + p99.String(), "1.30×", r.verdict(p99.median, 1.3, true),
		})
	}
	return rows
}

// figure is one line of the other-figures table.
type figure struct{ what, name, note string }

func (r *report) figures() []figure {
	fv := r.med(floorValid, nsOp)
	fr := r.med(floorReject, nsOp)
	var fs []figure
	parts := 0.0
	for _, p := range []string{"sha256", "map-lookup", "with-context"} {
		parts += r.med(part(p), nsOp)
	}
	fs = append(fs,
		figure{"floor, valid key (the reference)", floorValid, ""},
		figure{"floor part: copy to a stack array + sha256.Sum256", part("sha256"), ""},
		figure{"floor part: map lookup, 100k keys", part("map-lookup"), ""},
		figure{"floor part: context.WithValue + r.WithContext", part("with-context"), ""},
		figure{"floor parts, sum", "", fmt.Sprintf("%s ns = %s of the floor; the rest (%s ns) is header, handler, writer",
			num(parts), ratio(parts/fv), num(fv-parts))},
		figure{"one response header written (not a floor part)", part("header-write"), "ours: 1 per answer (X-Request-Id), 4 per refusal"},
		figure{"floor reject (401, key not in the map)", floorReject, ""},
		figure{"earlier floor (sha256 of []byte(tok), http.Error), valid", request("valid", "floor-alloc"), ratio(r.med(request("valid", "floor-alloc"), nsOp)/fv) + " floor"},
		figure{"earlier floor, reject", request("unknown", "floor-alloc"), ratio(r.med(request("unknown", "floor-alloc"), nsOp)/fr) + " floor reject"},
		figure{"valid key, Handler", oursValid, ratio(r.med(oursValid, nsOp)/fv) + " floor"},
		figure{"valid key, HandlerFunc (key as argument)", request("valid", "apikey-keyarg"), ratio(r.med(request("valid", "apikey-keyarg"), nsOp)/fv) + " floor"},
		figure{"valid key, HandlerFunc with NoRequestID", request("valid", "apikey-keyarg-noid"), ratio(r.med(request("valid", "apikey-keyarg-noid"), nsOp)/fv) + " floor"},
		figure{"valid key, peppered (HMAC-SHA-256)", request("peppered", "apikey"), ratio(r.med(request("peppered", "apikey"), nsOp)/r.med(oursValid, nsOp)) + " unpeppered"},
	)
	for _, p := range []string{"missing", "malformed", "bad-checksum", "unknown", "revoked", "wrong-scope"} {
		name := request(p, "apikey")
		fs = append(fs, figure{p + " key", name,
			fmt.Sprintf("%s floor reject, %s floor; %s lookups/op", ratio(r.med(name, nsOp)/fr), ratio(r.med(name, nsOp)/fv), num(r.med(name, lookups)))})
	}
	fs = append(fs, figure{"Require(read, write) after the middleware", "BenchmarkRequire", ""})
	pf, pa := "BenchmarkRequestParallel/path=valid/impl=floor", "BenchmarkRequestParallel/path=valid/impl=apikey"
	fs = append(fs,
		figure{"valid key, parallel: floor", pf, ""},
		figure{"valid key, parallel: apikey", pa, ratio(r.med(pa, nsOp)/r.med(pf, nsOp)) + " floor"},
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

// peer is one authenticated stack of the peer benchmarks over its bare
// stack.
type peer struct{ label, with, bare string }

var peers = []peer{
	{"apikey, Handler (net/http)", "apikey", "nethttp-bare"},
	{"apikey, HandlerFunc (net/http)", "apikey-keyarg", "nethttp-bare"},
	{"apikey, HandlerFunc, NoRequestID (net/http)", "apikey-keyarg-noid", "nethttp-bare"},
	{"r.WithContext alone (net/http)", "nethttp-withvalue", "nethttp-bare"},
	{"echo v4 KeyAuth", "echo-keyauth", "echo-bare"},
	{"echo v5 KeyAuth", "echo5-keyauth", "echo5-bare"},
	{"fiber v2 keyauth (fasthttp)", "fiber-keyauth", "fiber-bare"},
}

func (r *report) printPeers(bw *bufio.Writer) {
	fmt.Fprintln(bw, "Cost of authentication over each stack without it (BenchmarkPeer; same validator for the peers: SHA-256, map lookup). Overhead = with auth − bare.")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| stack | bare | with auth | overhead | allocs/op (B/op) | overhead ÷ echo v4's | parallel overhead | unknown key, whole request |")
	fmt.Fprintln(bw, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	e4 := r.overhead("BenchmarkPeer", "echo-keyauth", "echo-bare")
	for _, p := range peers {
		with := peerName("BenchmarkPeer", "valid", p.with)
		o := r.overhead("BenchmarkPeer", p.with, p.bare)
		po := r.overhead("BenchmarkPeerParallel", p.with, p.bare)
		unknown := "—"
		if u := peerName("BenchmarkPeer", "unknown", p.with); p.with != "nethttp-withvalue" && r.ns(u) != "n/a" {
			unknown = fmt.Sprintf("%s, %s allocs", r.ns(u), num(r.med(u, allocsOp)))
		}
		allocs := "n/a"
		if a := r.med(with, allocsOp); !math.IsNaN(a) {
			allocs = fmt.Sprintf("%s (%s)", num(a), num(r.med(with, "B/op")))
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p.label,
			r.ns(peerName("BenchmarkPeer", "valid", p.bare)), r.ns(with), plus(o),
			allocs, ratio(o/e4), plus(po), unknown)
	}
}

// printLatency prints BenchmarkLookupLatency (this module: lookups alone)
// and, when present, the root package's BenchmarkMemoryStoreLookupLatency
// (lookups among request-like garbage, so that the GC runs): the lookup's
// quantiles by store size.
func (r *report) printLatency(bw *bufio.Writer) {
	fmt.Fprintln(bw, "MemoryStore.Lookup timed one call at a time, random keys (medians over runs, timer included).")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| benchmark | keys | p50 | p99 | p99.9 | timer alone | p99 ÷ p99 at 1k |")
	fmt.Fprintln(bw, "| --- | --- | --- | --- | --- | --- | --- |")
	for i, bench := range []string{"BenchmarkLookupLatency", "BenchmarkMemoryStoreLookupLatency"} {
		name := func(n string) string { return bench + "/keys=" + n }
		if i > 0 && math.IsNaN(r.med(name("1000"), "p99-ns")) {
			continue // the root package's is optional
		}
		base := r.med(name("1000"), "p99-ns")
		for _, n := range []string{"1000", "10000", "100000", "1000000"} {
			p99 := r.med(name(n), "p99-ns")
			fmt.Fprintf(bw, "| %s | %s | %s ns | %s ns | %s ns | %s | %s |\n", bench, n,
				num(r.med(name(n), "p50-ns")), num(p99), num(r.med(name(n), "p999-ns")), r.clock(name(n)), ratio(p99/base))
		}
	}
	const resident = "BenchmarkMemoryStoreResident"
	if h := r.med(resident, "heapB/key"); !math.IsNaN(h) {
		fmt.Fprintf(bw, "\nResident keys (%s): %s heap bytes per key, %s GC-scannable bytes per key.\n",
			resident, num(h), num(r.med(resident, "scanB/key")))
	}
}

// clock is the timer's own cost a latency benchmark reports, if it does.
func (r *report) clock(name string) string {
	if c := r.med(name, "clock-ns"); !math.IsNaN(c) {
		return num(c) + " ns"
	}
	return "—"
}

func (r *report) print(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	runs := 0
	if st, ok := r.set.Get(oursValid, nsOp); ok {
		runs = st.N
	}
	fmt.Fprintf(bw, "Medians of %d runs; ± is half the interquartile range; \"rounds\" is the range of the per-round ratios. cpu: %s\n\n", runs, r.set.Config["cpu"])
	fmt.Fprintln(bw, "| target | measured | limit | result |")
	fmt.Fprintln(bw, "| --- | --- | --- | --- |")
	for _, t := range r.targets() {
		fmt.Fprintf(bw, "| %s | %s | %s | %s |\n", t.target, t.measured, t.limit, t.result)
	}
	fmt.Fprintln(bw)
	r.printPeers(bw)
	fmt.Fprintln(bw)
	r.printLatency(bw)
	for _, wr := range r.wrk {
		fmt.Fprintln(bw)
		wr.print(bw)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| other figure | ns/op | allocs/op | B/op | note |")
	fmt.Fprintln(bw, "| --- | --- | --- | --- | --- |")
	for _, f := range r.figures() {
		if f.name == "" {
			fmt.Fprintf(bw, "| %s | | | | %s |\n", f.what, f.note)
			continue
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s |\n", f.what, r.ns(f.name),
			num(r.med(f.name, allocsOp)), num(r.med(f.name, "B/op")), f.note)
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "targets: %d missed, %d without data\n", r.missed, r.unknown)
}
