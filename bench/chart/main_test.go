package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/keygate/apikey/bench/internal/benchdata"
)

const sample = `cpu: Test CPU
BenchmarkRequest/path=valid/impl=floor-2 	1000	500 ns/op	416 B/op	3 allocs/op
BenchmarkRequest/path=valid/impl=apikey-2 	1000	600 ns/op	416 B/op	2 allocs/op
BenchmarkRequest/path=unknown/impl=floor-2 	1000	400 ns/op	96 B/op	4 allocs/op
BenchmarkRequest/path=malformed/impl=apikey-2 	1000	160 ns/op	0 lookups/op	96 B/op	1 allocs/op
BenchmarkRequest/path=wrong-scope/impl=apikey-2 	1000	700 ns/op	1 lookups/op	240 B/op	6 allocs/op
BenchmarkPeer/path=valid/impl=nethttp-bare-2 	1000	5 ns/op	0 B/op	0 allocs/op
BenchmarkPeer/path=valid/impl=apikey-2 	1000	305 ns/op	416 B/op	2 allocs/op
BenchmarkPeer/path=valid/impl=echo-bare-2 	1000	30 ns/op	0 B/op	0 allocs/op
BenchmarkPeer/path=valid/impl=echo-keyauth-2 	1000	280 ns/op	176 B/op	3 allocs/op
`

func renderString(t *testing.T, input, note string) string {
	t.Helper()
	set := benchdata.New()
	if err := set.Read(strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := render(&b, build(set, note)); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	// Well-formed XML from start to end.
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed: %v\n%s", err, svg)
		}
	}
	return svg
}

func TestChart(t *testing.T) {
	svg := renderString(t, sample, "Preliminary.")
	for _, want := range []string{
		">valid<", ">wrong-scope<", ">600 ns · 2 allocs<", ">500 ns · 3 allocs<",
		">160 ns · 1 alloc<", ">+300 ns (305 − 5.0) · 2 allocs<", ">+250 ns (280 − 30) · 3 allocs<",
		"≤ 1.05× floor = 525 ns", "≤ 0.5× floor reject = 200 ns", "HandlerFunc ≤ 0.8× echo v4&#39;s = 200 ns",
		"≤ 1.2× floor = 600 ns", "echo v4 keyauth", "echo v5 keyauth", "fiber v2 keyauth (fasthttp)", "cpu: Test CPU. Preliminary.",
		">missing<", "apikey Handler (ours): no data", // absent benchmarks say so
		"apikey HandlerFunc, key as argument: no data",
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(svg, "NaN") {
		t.Error("SVG contains NaN")
	}
}

func TestChartNoData(t *testing.T) {
	svg := renderString(t, "PASS\n", "")
	if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
		t.Error("empty input draws NaN or Inf")
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0.7: 1, 1: 1, 1.2: 2, 3: 5, 7: 10, 140: 200, 260: 500} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}
