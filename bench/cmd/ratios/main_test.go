package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/apikey/bench/internal/benchdata"
)

// Runs of each benchmark the targets use. The figures are made up so that
// every verdict is known: valid 1.04× floor (PASS), key as argument 0.90×
// (MISS), its overhead 0.70× echo's (PASS), unknown 0.95× floor reject
// (PASS), revoked 1.05× (MISS), malformed 0.45× (PASS), bad checksum 0.60×
// (MISS), wrong scope 1.16× floor (PASS) with 3 allocs (MISS), peppered
// 1.10× (PASS), wrk median pair 0.92 (PASS).
const rootOut = `cpu: Test CPU
BenchmarkRequest/path=valid/impl=floor-2 	1000	500 ns/op	368 B/op	2 allocs/op
BenchmarkRequest/path=valid/impl=apikey-2 	1000	520 ns/op	432 B/op	2 allocs/op
BenchmarkRequest/path=valid/impl=floor-2 	1000	500 ns/op	368 B/op	2 allocs/op
BenchmarkRequest/path=valid/impl=apikey-2 	1000	540 ns/op	432 B/op	2 allocs/op
BenchmarkRequest/path=valid/impl=apikey-2 	1000	500 ns/op	432 B/op	2 allocs/op
BenchmarkRequest/path=valid/impl=floor-2 	1000	500 ns/op	368 B/op	2 allocs/op
BenchmarkRequest/path=valid/impl=apikey-keyarg-2 	1000	450 ns/op	368 B/op	2 allocs/op
BenchmarkRequest/path=peppered/impl=apikey-2 	1000	572 ns/op	432 B/op	2 allocs/op
BenchmarkRequest/path=unknown/impl=floor-2 	1000	200 ns/op	0 B/op	0 allocs/op
BenchmarkRequest/path=malformed/impl=apikey-2 	1000	90 ns/op	0 lookups/op	112 B/op	1 allocs/op
BenchmarkRequest/path=bad-checksum/impl=apikey-2 	1000	120 ns/op	0 lookups/op	112 B/op	1 allocs/op
BenchmarkRequest/path=unknown/impl=apikey-2 	1000	190 ns/op	1.000 lookups/op	112 B/op	1 allocs/op
BenchmarkRequest/path=revoked/impl=apikey-2 	1000	210 ns/op	1.000 lookups/op	112 B/op	1 allocs/op
BenchmarkRequest/path=wrong-scope/impl=apikey-2 	1000	580 ns/op	1.000 lookups/op	248 B/op	3 allocs/op
BenchmarkFloorParts/part=sha256-2 	1000	100 ns/op	0 B/op	0 allocs/op
BenchmarkFloorParts/part=map-lookup-2 	1000	20 ns/op	0 B/op	0 allocs/op
BenchmarkFloorParts/part=with-context-2 	1000	280 ns/op	368 B/op	2 allocs/op
BenchmarkMemoryStoreLookup/keys=1000000-2 	1000	80 ns/op	392.5 B/key	0 B/op	0 allocs/op
BenchmarkMemoryStoreLookupLatency/keys=1000-2 	1000	300 ns/op	50 p50-ns	200 p99-ns	500 p999-ns
BenchmarkMemoryStoreResident-2 	1000	100 ns/op	420.5 heapB/key	60.25 scanB/key	0 B/op	0 allocs/op
`

const peerOut = `BenchmarkPeer/path=valid/impl=nethttp-bare-2 	1000	5 ns/op	0 B/op	0 allocs/op
BenchmarkPeer/path=valid/impl=apikey-2 	1000	305 ns/op	432 B/op	2 allocs/op
BenchmarkPeer/path=valid/impl=apikey-keyarg-2 	1000	215 ns/op	368 B/op	2 allocs/op
BenchmarkPeer/path=valid/impl=echo-bare-2 	1000	30 ns/op	0 B/op	0 allocs/op
BenchmarkPeer/path=valid/impl=echo-keyauth-2 	1000	330 ns/op	128 B/op	2 allocs/op
BenchmarkPeer/path=valid/impl=echo5-bare-2 	1000	60 ns/op	0 B/op	0 allocs/op
BenchmarkPeer/path=valid/impl=echo5-keyauth-2 	1000	400 ns/op	16 B/op	1 allocs/op
BenchmarkPeer/path=valid/impl=fiber-bare-2 	1000	100 ns/op	0 B/op	0 allocs/op
BenchmarkPeer/path=valid/impl=fiber-keyauth-2 	1000	350 ns/op	16 B/op	1 allocs/op
BenchmarkLookupLatency/keys=1000-2 	1000	150 ns/op	20 clock-ns	40 p50-ns	100 p99-ns	300 p999-ns
BenchmarkLookupLatency/keys=1000000-2 	1000	900 ns/op	20 clock-ns	400 p50-ns	1200 p99-ns	2000 p999-ns
`

const wrkOut = `keys=1000000
duration_s=5
heap_bytes_per_key=449.7
scan_bytes_per_key=384.9
pair 1 AB bare_rps=1000 auth_rps=950 bare_p99_us=1000 auth_p99_us=1500 bare_cpu=1.00 auth_cpu=1.00
pair 2 BA bare_rps=1000 auth_rps=920 bare_p99_us=1000 auth_p99_us=2000 bare_cpu=1.00 auth_cpu=0.99
pair 3 AB bare_rps=1000 auth_rps=850 bare_p99_us=1000 auth_p99_us=1000 bare_cpu=1.00 auth_cpu=1.00
`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	root := write(t, dir, "root.txt", rootOut)
	peer := write(t, dir, "peer.txt", peerOut)
	wrk := write(t, dir, "wrk.txt", wrkOut)

	var out strings.Builder
	code, err := run([]string{"-wrk", wrk, root, peer}, &out)
	if err != nil || code != 0 {
		t.Fatalf("run: %d, %v", code, err)
	}
	got := out.String()
	for _, want := range []string{
		"| valid key, Handler: ns/op ≤ 1.05× floor | 520 ns ±2% / floor 500 ns ±0% = 1.04× (rounds 1.00–1.08) | 1.05× | PASS (1.0% under) |",
		"| valid key, HandlerFunc (key as argument): ns/op ≤ 0.85× floor | 450 ns ±0% / floor 500 ns ±0% = 0.90× | 0.85× | **MISS** (5.9% over) |",
		"| HandlerFunc overhead over bare net/http ≤ 0.8× echo v4 KeyAuth's over bare echo | +210 ns / +300 ns = 0.70× | 0.80× | PASS (13% under) |",
		"| unknown key: ns/op ≤ 1.0× floor reject | 190 ns ±0% / floor reject 200 ns ±0% = 0.95× | 1.00× | PASS (5.0% under) |",
		"| revoked key: ns/op ≤ 1.0× floor reject | 210 ns ±0% / floor reject 200 ns ±0% = 1.05× | 1.00× | **MISS** (5.0% over) |",
		"| malformed: ns/op ≤ 0.5× floor reject | 90.0 ns ±0% / floor reject 200 ns ±0% = 0.45× | 0.50× | PASS (10.0% under) |",
		"| malformed: store calls = 0 | 0.00 lookups/op | 0 | PASS |",
		"| bad-checksum: ns/op ≤ 0.5× floor reject | 120 ns ±0% / floor reject 200 ns ±0% = 0.60× | 0.50× | **MISS** (20% over) |",
		"| wrong scope (403): ns/op ≤ 1.2× floor | 580 ns ±0% / floor 500 ns ±0% = 1.16× | 1.20× | PASS (3.3% under) |",
		"| wrong scope (403): allocs/op ≤ 2 | 3.00 allocs/op | 2 | **MISS** (50% over) |",
		"| peppered keys: ns/op ≤ 1.15× unpeppered valid key | 572 ns ±0% / unpeppered 520 ns ±2% = 1.10× | 1.15× | PASS (4.3% under) |",
		"| wrk, 1000000 keys (wrk.txt): req/s with auth ≥ 95% of without (median per-pair ratio) | 3 pairs; req/s B/A min/median/max 0.850 / 0.920 / 0.950; p99 B/A 1.000 / 1.500 / 2.000 | 0.95 | **MISS** (3.2% under) |",
		"| wrk, 1000000 keys (wrk.txt): p99 with auth ≤ 1.3× without (median per-pair ratio) | p99 B/A min/median/max 1.000 / 1.500 / 2.000 | 1.30× | **MISS** (15% over) |",
		"| echo v4 KeyAuth | 30.0 ns ±0% | 330 ns ±0% | +300 ns | 2.00 (128) | 1.00× | n/a | — |",
		"| r.WithContext alone (net/http) | 5.00 ns ±0% | n/a | n/a | n/a | n/a | n/a | — |",
		"3 pairs of 5 s runs",
		"| apikey, HandlerFunc (net/http) | 5.00 ns ±0% | 215 ns ±0% | +210 ns | 2.00 (368) | 0.70× |",
		"| fiber v2 keyauth (fasthttp) | 100 ns ±0% | 350 ns ±0% | +250 ns |",
		"| BenchmarkLookupLatency | 1000000 | 400 ns | 1200 ns | 2000 ns | 20.0 ns | 12.00× |",
		"| BenchmarkMemoryStoreLookupLatency | 1000 | 50.0 ns | 200 ns | 500 ns | — | 1.00× |",
		"Resident keys (BenchmarkMemoryStoreResident): 420 heap bytes per key, 60.2 GC-scannable bytes per key.",
		"| floor parts, sum | | | | 400 ns = 0.80× of the floor; the rest (100 ns) is header, handler, writer |",
		"Memory of B's keys: 450 heap bytes per key, 385 GC-scannable bytes per key.",
		"| 2 | BA | 1000 | 920 | 0.920 | 1000 µs | 2000 µs | 2.000 | 1.00 / 0.99 |",
		"| min / median / max | | | | 0.850 / 0.920 / 0.950 | | | 1.000 / 1.500 / 2.000 | |",
		"| MemoryStore lookup, 1000000 keys | 80.0 ns ±0% | 0.00 | 0.00 | 392 B/key |",
		"cpu: Test CPU",
		"targets: 6 missed, 0 without data",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n%s", want, got)
		}
	}

	code, err = run([]string{"-strict", "-wrk", wrk, root, peer}, &out)
	if err != nil || code != 1 {
		t.Errorf("-strict with misses: %d, %v; want 1", code, err)
	}
}

func TestRunMissingData(t *testing.T) {
	dir := t.TempDir()
	peer := write(t, dir, "peer.txt", peerOut)
	var out strings.Builder
	code, err := run([]string{"-strict", peer}, &out)
	if err != nil || code != 1 {
		t.Errorf("-strict without root data: %d, %v; want 1", code, err)
	}
	for _, want := range []string{
		"| valid key, Handler: ns/op ≤ 1.05× floor | n/a / floor n/a = n/a | 1.05× | n/a |",
		"| wrk: req/s with auth ≥ 95% of without (median per-pair ratio) | not run | 0.95 | n/a |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing data not shown as n/a: no %q\n%s", want, out.String())
		}
	}
	if _, err := run(nil, &out); err == nil {
		t.Error("no input accepted")
	}
}

func TestReadWrk(t *testing.T) {
	dir := t.TempDir()
	if _, err := readWrk(write(t, dir, "bad.txt", "with_auth_rps=1\n")); err == nil {
		t.Error("summary without pairs or without_auth_rps accepted")
	}
	if _, err := readWrk(write(t, dir, "badpair.txt", "pair 1 AB bare_rps=x auth_rps=1\n")); err == nil {
		t.Error("pair with a bad number accepted")
	}
	// The earlier format: one summary, read as one pair.
	w, err := readWrk(write(t, dir, "old.txt", "ratio=0.5\nwith_auth_rps=1.5\nwithout_auth_rps=3\n"))
	if err != nil || len(w.pairs) != 1 || w.pairs[0].rpsRatio != 0.5 || !math.IsNaN(w.pairs[0].p99Ratio) {
		t.Errorf("readWrk, earlier format: %+v, %v", w, err)
	}
	w, err = readWrk(write(t, dir, "new.txt", wrkOut))
	if err != nil || len(w.pairs) != 3 || w.keys != 1e6 || w.scanPerKey != 384.9 {
		t.Fatalf("readWrk: %+v, %v", w, err)
	}
	rps, p99 := w.ratios()
	if rps != (spread{0.85, 0.92, 0.95}) || p99 != (spread{1, 1.5, 2}) {
		t.Errorf("ratios: %v, %v", rps, p99)
	}
	if w.base != "bare" {
		t.Errorf("base %q, want bare when the file does not say", w.base)
	}
	// wrk.sh BASE=resident: A holds the keys; no target is judged on it.
	w, err = readWrk(write(t, dir, "resident.txt", "base=resident\n"+wrkOut))
	if err != nil || w.base != "resident" {
		t.Fatalf("readWrk, BASE=resident: %+v, %v", w, err)
	}
	r := &report{set: benchdata.New(), wrk: []*wrkResult{w}}
	for _, row := range r.targets() {
		if strings.HasPrefix(row.target, "wrk") && row.result != "n/a" {
			t.Errorf("a target judged against a resident A: %+v", row)
		}
	}
}
