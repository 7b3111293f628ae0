package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// wrkPair is one pair of wrk runs: A without auth, B with it.
type wrkPair struct {
	order              string // "AB" or "BA"
	bareRPS, authRPS   float64
	bareP99, authP99   float64 // µs
	bareCPU, authCPU   float64 // server cores used
	rpsRatio, p99Ratio float64 // B / A
}

// wrkResult is what wrk.sh measured: its pairs and summary values.
type wrkResult struct {
	file  string
	base  string // what A is: "bare", or "resident" (bare, holding the same keys unused)
	pairs []wrkPair
	// Summary values; NaN when absent.
	keys, duration, with, without, withCPU, withoutCPU, heapPerKey, scanPerKey float64
}

// readWrk reads wrk.sh's summary: key=value lines and one line per pair,
// "pair N ORDER bare_rps=… auth_rps=… bare_p99_us=… auth_p99_us=…
// bare_cpu=… auth_cpu=…". A summary of the earlier format, with
// with_auth_rps and without_auth_rps and no pairs, is read as one pair.
func readWrk(path string) (*wrkResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	nan := math.NaN()
	res := wrkResult{file: filepath.Base(path), base: "bare", keys: nan, duration: nan, with: nan, without: nan,
		withCPU: nan, withoutCPU: nan, heapPerKey: nan, scanPerKey: nan}
	fields := map[string]*float64{
		"keys": &res.keys, "duration_s": &res.duration,
		"with_auth_rps": &res.with, "without_auth_rps": &res.without,
		"with_auth_server_cpu": &res.withCPU, "without_auth_server_cpu": &res.withoutCPU,
		"heap_bytes_per_key": &res.heapPerKey, "scan_bytes_per_key": &res.scanPerKey,
	}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "pair "); ok {
			p, err := parsePair(rest)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n+1, err)
			}
			res.pairs = append(res.pairs, p)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if k == "base" {
			res.base = v
			continue
		}
		if dst, ok := fields[k]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				*dst = f
			}
		}
	}
	if len(res.pairs) == 0 {
		if math.IsNaN(res.with) || math.IsNaN(res.without) {
			return nil, fmt.Errorf("%s: no pairs, and no with_auth_rps and without_auth_rps", path)
		}
		res.pairs = []wrkPair{{order: "AB", bareRPS: res.without, authRPS: res.with, bareP99: nan, authP99: nan,
			bareCPU: res.withoutCPU, authCPU: res.withCPU, rpsRatio: res.with / res.without, p99Ratio: nan}}
	}
	return &res, nil
}

// parsePair reads "N ORDER key=value ...".
func parsePair(s string) (wrkPair, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return wrkPair{}, fmt.Errorf("pair line %q: want a number, an order and values", s)
	}
	nan := math.NaN()
	p := wrkPair{order: f[1], bareRPS: nan, authRPS: nan, bareP99: nan, authP99: nan, bareCPU: nan, authCPU: nan}
	fields := map[string]*float64{
		"bare_rps": &p.bareRPS, "auth_rps": &p.authRPS,
		"bare_p99_us": &p.bareP99, "auth_p99_us": &p.authP99,
		"bare_cpu": &p.bareCPU, "auth_cpu": &p.authCPU,
	}
	for _, kv := range f[2:] {
		k, v, _ := strings.Cut(kv, "=")
		dst, ok := fields[k]
		if !ok {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return wrkPair{}, fmt.Errorf("pair line %q: %s: %w", s, k, err)
		}
		*dst = x
	}
	if math.IsNaN(p.bareRPS) || math.IsNaN(p.authRPS) {
		return wrkPair{}, fmt.Errorf("pair line %q: no bare_rps and auth_rps", s)
	}
	p.rpsRatio = p.authRPS / p.bareRPS
	p.p99Ratio = p.authP99 / p.bareP99
	return p, nil
}

// spread is the min, median and max of v, NaNs left out.
type spread struct{ min, median, max float64 }

func spreadOf(v []float64) spread {
	v = slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	if len(v) == 0 {
		return spread{math.NaN(), math.NaN(), math.NaN()}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spread{v[0], m, v[len(v)-1]}
}

func (s spread) String() string {
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	return f(s.min) + " / " + f(s.median) + " / " + f(s.max)
}

func (w *wrkResult) ratios() (rps, p99 spread) {
	var a, b []float64
	for _, p := range w.pairs {
		a = append(a, p.rpsRatio)
		b = append(b, p.p99Ratio)
	}
	return spreadOf(a), spreadOf(b)
}

func (w *wrkResult) keysLabel() string {
	if math.IsNaN(w.keys) {
		return "?"
	}
	return strconv.FormatFloat(w.keys, 'f', 0, 64)
}

// summary returns the median per-pair throughput ratio and a line that
// describes it for the targets table.
func (w *wrkResult) summary() (float64, string) {
	rps, p99 := w.ratios()
	return rps.median, fmt.Sprintf("%d pairs; req/s B/A min/median/max %s; p99 B/A %s", len(w.pairs), rps, p99)
}

// print writes the pairs and their spread as a Markdown table.
func (w *wrkResult) print(bw *bufio.Writer) {
	rps, p99 := w.ratios()
	fmt.Fprintf(bw, "wrk (%s): %s keys, %d pairs of %s s runs; A = %s net/http, B = apikey. Memory of B's keys: %s heap bytes per key, %s GC-scannable bytes per key.\n\n",
		w.file, w.keysLabel(), len(w.pairs), strconv.FormatFloat(w.duration, 'g', -1, 64), w.base, num(w.heapPerKey), num(w.scanPerKey))
	fmt.Fprintln(bw, "| pair | order | A req/s | B req/s | req/s B/A | A p99 | B p99 | p99 B/A | server CPU A / B |")
	fmt.Fprintln(bw, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for i, p := range w.pairs {
		fmt.Fprintf(bw, "| %d | %s | %s | %s | %s | %s µs | %s µs | %s | %s / %s |\n", i+1, p.order,
			num(p.bareRPS), num(p.authRPS), strconv.FormatFloat(p.rpsRatio, 'f', 3, 64),
			num(p.bareP99), num(p.authP99), strconv.FormatFloat(p.p99Ratio, 'f', 3, 64), num(p.bareCPU), num(p.authCPU))
	}
	fmt.Fprintf(bw, "| min / median / max | | | | %s | | | %s | |\n", rps, p99)
}
