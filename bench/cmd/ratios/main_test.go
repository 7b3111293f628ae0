package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two runs of each benchmark the targets use. The figures are made up so
// that every verdict is known: valid 1.2× floor (PASS), 2 vs 3 allocs
// (PASS), malformed 0.4× (PASS), bad-checksum 0.6× (MISS), unknown 0.9×
// (PASS), overhead 300 vs 250 ns (MISS), wrk 95% (PASS).
const rootOut = `cpu: Test CPU
BenchmarkRequest/path=valid/impl=floor-2 	1000	500 ns/op	416 B/op	3 allocs/op
BenchmarkRequest/path=valid/impl=floor-2 	1000	500 ns/op	416 B/op	3 allocs/op
BenchmarkRequest/path=valid/impl=apikey-2 	1000	600 ns/op	416 B/op	2 allocs/op
BenchmarkRequest/path=valid/impl=apikey-2 	1000	600 ns/op	416 B/op	2 allocs/op
BenchmarkRequest/path=unknown/impl=floor-2 	1000	400 ns/op	96 B/op	4 allocs/op
BenchmarkRequest/path=malformed/impl=apikey-2 	1000	160 ns/op	0 lookups/op	96 B/op	1 allocs/op
BenchmarkRequest/path=bad-checksum/impl=apikey-2 	1000	240 ns/op	0 lookups/op	96 B/op	1 allocs/op
BenchmarkRequest/path=unknown/impl=apikey-2 	1000	360 ns/op	1.000 lookups/op	96 B/op	1 allocs/op
BenchmarkMemoryStoreLookup/keys=1000000-2 	1000	80 ns/op	392.5 B/key	0 B/op	0 allocs/op
`

const peerOut = `BenchmarkPeer/path=valid/impl=nethttp-bare-2 	1000	5 ns/op	0 B/op	0 allocs/op
BenchmarkPeer/path=valid/impl=apikey-2 	1000	305 ns/op	416 B/op	2 allocs/op
BenchmarkPeer/path=valid/impl=echo-bare-2 	1000	30 ns/op	0 B/op	0 allocs/op
BenchmarkPeer/path=valid/impl=echo-keyauth-2 	1000	280 ns/op	176 B/op	3 allocs/op
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
	wrk := write(t, dir, "wrk.txt", "placement=x\nwithout_auth_rps=1000\nwith_auth_rps=950\nwithout_auth_server_cpu=1.00\nwith_auth_server_cpu=0.95\n")

	var out strings.Builder
	code, err := run([]string{"-wrk", wrk, root, peer}, &out)
	if err != nil || code != 0 {
		t.Fatalf("run: %d, %v", code, err)
	}
	got := out.String()
	for _, want := range []string{
		"| valid key: ns/op ≤ 1.25× floor | 600 ns ±0% / floor 500 ns ±0% = 1.20× | 1.25× | PASS (4.0% under) |",
		"| valid key: allocs/op ≤ floor + 2 | 2.00 allocs / floor 3.00 | 5.00 | PASS (60% under) |",
		"| malformed: ns/op ≤ 0.5× floor | 160 ns ±0% / floor reject 400 ns ±0% = 0.40× | 0.50× | PASS (20% under) |",
		"| malformed: store calls = 0 | 0.00 lookups/op | 0 | PASS |",
		"| bad-checksum: ns/op ≤ 0.5× floor | 240 ns ±0% / floor reject 400 ns ±0% = 0.60× | 0.50× | **MISS** (20% over) |",
		"| unknown key: ns/op ≤ 1× floor | 360 ns ±0% / floor reject 400 ns ±0% = 0.90× | 1.00× | PASS (10.0% under) |",
		"| overhead ≤ echo keyauth's (valid key) | apikey +300 ns / echo keyauth +250 ns = 1.20× | 1.00× | **MISS** (20% over) |",
		"| wrk: req/s with auth ≥ 90% of without | 950 / 1000 req/s = 95.0% (per server CPU-second: 1000 / 1000 = 100.0%) | 90% | PASS (5.6% over) |",
		"| MemoryStore lookup, 1000000 keys | 80.0 ns ±0% | 0.00 | 0.00 | 392 B/key |",
		"cpu: Test CPU",
		"targets: 2 missed, 0 without data",
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
	if !strings.Contains(out.String(), "| valid key: ns/op ≤ 1.25× floor | n/a / floor n/a = n/a | 1.25× | n/a |") {
		t.Errorf("missing data not shown as n/a:\n%s", out.String())
	}
	if _, err := run(nil, &out); err == nil {
		t.Error("no input accepted")
	}
}

func TestReadWrk(t *testing.T) {
	dir := t.TempDir()
	if _, err := readWrk(write(t, dir, "bad.txt", "with_auth_rps=1\n")); err == nil {
		t.Error("summary without without_auth_rps accepted")
	}
	w, err := readWrk(write(t, dir, "ok.txt", "ratio=0.5\nwith_auth_rps=1.5\nwithout_auth_rps=3\n"))
	if err != nil || w.with != 1.5 || w.without != 3 {
		t.Errorf("readWrk: %+v, %v", w, err)
	}
}
