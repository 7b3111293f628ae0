// Command chart draws the benchmark medians as an SVG bar chart: ours
// beside the allocation-free hand-written floor on each request path (the
// root package's BenchmarkRequest) and the cost of authentication beside
// the peers' (echo v4 and v5 KeyAuth, fiber v2 keyauth; this module's
// BenchmarkPeer), each with its target marked.
//
//	go run ./chart -o chart.svg [-note text] results/root.txt results/peer.txt
//
// It reads `go test -bench` output (any number of files, any -count) and
// takes the median ns/op of each benchmark. Standard library only.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/keygate/apikey/bench/internal/benchdata"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("chart", flag.ContinueOnError)
	out := fs.String("o", "chart.svg", "SVG file to write")
	note := fs.String("note", "", "extra text for the footer (machine, status)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: chart [-o chart.svg] [-note text] bench-output.txt...")
	}
	set, err := benchdata.ReadFiles(fs.Args()...)
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := render(f, build(set, *note)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// The series, one colour each.
type series int

const (
	ours series = iota
	oursArg
	floor
	peer
	peer5
	fiber
	plumbing
)

var seriesInfo = []struct{ label, color string }{
	ours:     {"apikey Handler (ours)", "#2b6cb0"},
	oursArg:  {"apikey HandlerFunc, key as argument", "#553c9a"},
	floor:    {"floor: hand-written, allocation-free", "#a0aec0"},
	peer:     {"echo v4 keyauth", "#dd6b20"},
	peer5:    {"echo v5 keyauth", "#d69e2e"},
	fiber:    {"fiber v2 keyauth (fasthttp)", "#38a169"},
	plumbing: {"net/http r.WithContext alone", "#90cdf4"},
}

const targetColor = "#c53030"

// halo keeps a label legible where it crosses a target line.
const halo = `stroke="#ffffff" stroke-width="3" paint-order="stroke"`

// bar is one measured value.
type bar struct {
	series series
	ns     float64
	label  string // shown after the bar
}

// group is one row label with its bars and, optionally, a target.
type group struct {
	label  string
	sub    string // second line of the label
	bars   []bar
	target float64 // NaN: none
	tlabel string
}

type panel struct {
	title  string
	note   string
	groups []group
}

type chart struct {
	title  string
	panels []panel
	footer string
}

func reqName(path, impl string) string { return "BenchmarkRequest/path=" + path + "/impl=" + impl }

func peerName(b, path, impl string) string { return b + "/path=" + path + "/impl=" + impl }

// build lays out what to draw from the medians; absent benchmarks leave
// their bars out.
func build(set *benchdata.Set, note string) chart {
	ns := func(name string) float64 { return set.Median(name, "ns/op") }
	var allocs func(name string) string
	label := func(name string, v float64) string {
		return fmtNum(v) + " ns" + allocs(name)
	}
	allocs = func(name string) string {
		if a := set.Median(name, "allocs/op"); !math.IsNaN(a) {
			unit := " allocs"
			if a == 1 {
				unit = " alloc"
			}
			return " · " + strconv.FormatFloat(a, 'f', -1, 64) + unit
		}
		return ""
	}
	measured := func(s series, name string) bar {
		v := ns(name)
		return bar{series: s, ns: v, label: label(name, v)}
	}

	floorValid, floorReject := ns(reqName("valid", "floor")), ns(reqName("unknown", "floor"))
	p1 := panel{
		title: "Request through the middleware, by path (BenchmarkRequest, ns/op)",
		note:  "Same store of 100,000 keys; the floor rejects any bad key by hashing it and missing in its map (floor reject).",
	}
	paths := []struct {
		label, sub string
		bars       []bar
		target     float64
		tlabel     string
	}{
		{"valid", "200, Handler", []bar{measured(ours, reqName("valid", "apikey")), measured(floor, reqName("valid", "floor"))},
			1.05 * floorValid, "≤ 1.05× floor"},
		{"valid", "200, HandlerFunc", []bar{measured(oursArg, reqName("valid", "apikey-keyarg")), measured(floor, reqName("valid", "floor"))},
			0.85 * floorValid, "≤ 0.85× floor"},
		{"peppered", "200, HMAC-SHA-256", []bar{measured(ours, reqName("peppered", "apikey"))},
			1.15 * ns(reqName("valid", "apikey")), "≤ 1.15× unpeppered"},
		{"missing", "401, no header", []bar{measured(ours, reqName("missing", "apikey"))}, math.NaN(), ""},
		{"malformed", "401, 0 lookups", []bar{measured(ours, reqName("malformed", "apikey"))}, 0.5 * floorReject, "≤ 0.5× floor reject"},
		{"bad-checksum", "401, 0 lookups", []bar{measured(ours, reqName("bad-checksum", "apikey"))}, 0.5 * floorReject, "≤ 0.5× floor reject"},
		{"unknown", "401, 1 lookup", []bar{measured(ours, reqName("unknown", "apikey")), measured(floor, reqName("unknown", "floor"))},
			floorReject, "≤ 1× floor reject"},
		{"revoked", "401, 1 lookup", []bar{measured(ours, reqName("revoked", "apikey"))}, floorReject, "≤ 1× floor reject"},
		{"wrong-scope", "403, 1 lookup", []bar{measured(ours, reqName("wrong-scope", "apikey"))}, 1.2 * floorValid, "≤ 1.2× floor"},
	}
	for _, p := range paths {
		p1.groups = append(p1.groups, group{label: p.label, sub: p.sub, bars: p.bars, target: p.target, tlabel: p.tlabel})
	}

	over := func(b, impl, bare string) (float64, string) {
		v := ns(peerName(b, "valid", impl)) - ns(peerName(b, "valid", bare))
		return v, fmt.Sprintf("+%s ns (%s − %s)%s", fmtNum(v),
			fmtNum(ns(peerName(b, "valid", impl))), fmtNum(ns(peerName(b, "valid", bare))), allocs(peerName(b, "valid", impl)))
	}
	p2 := panel{
		title: "Against peers: cost of authentication over the same stack without it (BenchmarkPeer)",
		note:  "ours: apikey − bare net/http handler; peers: keyauth − bare route, each validating with SHA-256 and a map lookup. Unknown key: whole request.",
	}
	for _, c := range []struct{ bench, label, sub string }{
		{"BenchmarkPeer", "valid key", "one at a time"},
		{"BenchmarkPeerParallel", "valid key", "parallel"},
	} {
		var bars []bar
		for _, s := range []struct {
			series     series
			impl, bare string
		}{
			{ours, "apikey", "nethttp-bare"},
			{oursArg, "apikey-keyarg", "nethttp-bare"},
			{peer, "echo-keyauth", "echo-bare"},
			{peer5, "echo5-keyauth", "echo5-bare"},
			{fiber, "fiber-keyauth", "fiber-bare"},
			{plumbing, "nethttp-withvalue", "nethttp-bare"},
		} {
			v, l := over(c.bench, s.impl, s.bare)
			bars = append(bars, bar{s.series, v, l})
		}
		e, _ := over(c.bench, "echo-keyauth", "echo-bare")
		p2.groups = append(p2.groups, group{
			label: c.label, sub: c.sub, target: 0.8 * e, tlabel: "HandlerFunc ≤ 0.8× echo v4's",
			bars: bars,
		})
	}
	p2.groups = append(p2.groups, group{
		label: "unknown key", sub: "401, whole request", target: math.NaN(),
		bars: []bar{
			measured(ours, peerName("BenchmarkPeer", "unknown", "apikey")),
			measured(peer, peerName("BenchmarkPeer", "unknown", "echo-keyauth")),
			measured(peer5, peerName("BenchmarkPeer", "unknown", "echo5-keyauth")),
			measured(fiber, peerName("BenchmarkPeer", "unknown", "fiber-keyauth")),
		},
	})

	runs := 0
	if st, ok := set.Get(reqName("valid", "apikey"), "ns/op"); ok {
		runs = st.N
	} else if st, ok := set.Get(peerName("BenchmarkPeer", "valid", "apikey"), "ns/op"); ok {
		runs = st.N
	}
	footer := fmt.Sprintf("Median of %d runs per benchmark. cpu: %s.", runs, set.Config["cpu"])
	if note != "" {
		footer += " " + note
	}
	return chart{
		title:  "keygate/apikey: time per request (ns/op, lower is better)",
		panels: []panel{p1, p2},
		footer: footer,
	}
}

// Layout, in pixels.
const (
	width     = 1000
	margin    = 20
	labelW    = 150 // row labels
	valueW    = 230 // room after the longest bar for its value
	barH      = 18
	barGap    = 4
	groupGap  = 22
	plotLeft  = margin + labelW
	plotWidth = width - plotLeft - margin - valueW
)

// render writes c as SVG.
func render(w io.Writer, c chart) error {
	var b strings.Builder
	y := 0.0
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }

	y = 34
	line(`<text x="%d" y="%.0f" font-size="20" font-weight="bold">%s</text>`, margin, y, esc(c.title))
	y += 24
	// Legend.
	x := float64(margin)
	for _, s := range seriesInfo {
		if w := 20 + textWidth(s.label); x+w > width-margin { // wrap
			x, y = margin, y+20
		}
		line(`<rect x="%.0f" y="%.0f" width="14" height="14" fill="%s"/>`, x, y-11, s.color)
		line(`<text x="%.0f" y="%.0f">%s</text>`, x+20, y, esc(s.label))
		x += 20 + textWidth(s.label) + 24
	}
	if x+60 > width-margin {
		x, y = margin, y+20
	}
	line(`<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2" stroke-dasharray="4 3"/>`, x, y-12, x, y+3, targetColor)
	line(`<text x="%.0f" y="%.0f">target</text>`, x+8, y)
	y += 16

	for _, p := range c.panels {
		y += 26
		line(`<text x="%d" y="%.0f" font-size="15" font-weight="bold">%s</text>`, margin, y, esc(p.title))
		y += 18
		line(`<text x="%d" y="%.0f" fill="#4a5568">%s</text>`, margin, y, esc(p.note))
		y += 26
		y = renderPanel(&b, p, y)
	}
	y += 22
	line(`<text x="%d" y="%.0f" fill="#4a5568">%s</text>`, margin, y, esc(c.footer))
	y += margin

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, y, width, y)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	bw.WriteString(b.String())
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

// renderPanel draws the groups of p from y down, with an axis under them,
// and returns the y below it.
func renderPanel(b *strings.Builder, p panel, y float64) float64 {
	line := func(format string, a ...any) { fmt.Fprintf(b, format+"\n", a...) }
	max := 0.0
	for _, g := range p.groups {
		for _, br := range g.bars {
			if !math.IsNaN(br.ns) {
				max = math.Max(max, br.ns)
			}
		}
		if !math.IsNaN(g.target) {
			max = math.Max(max, g.target)
		}
	}
	step := niceStep(max / 5)
	top := math.Ceil(max/step) * step
	if top <= 0 {
		top, step = 1, 1
	}
	scale := func(v float64) float64 { return plotLeft + v/top*plotWidth }

	start := y
	var body strings.Builder
	for _, g := range p.groups {
		n := len(g.bars)
		h := float64(n)*barH + float64(n-1)*barGap
		mid := y + h/2
		fmt.Fprintf(&body, `<text x="%d" y="%.1f" text-anchor="end" font-weight="bold">%s</text>`+"\n", plotLeft-8, mid-2, esc(g.label))
		fmt.Fprintf(&body, `<text x="%d" y="%.1f" text-anchor="end" fill="#4a5568" font-size="11">%s</text>`+"\n", plotLeft-8, mid+11, esc(g.sub))
		if !math.IsNaN(g.target) {
			tx := scale(g.target)
			fmt.Fprintf(&body, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="4 3"><title>target %s: %s ns</title></line>`+"\n",
				tx, y-4, tx, y+h+4, targetColor, esc(g.tlabel), fmtNum(g.target))
			fmt.Fprintf(&body, `<text x="%.1f" y="%.1f" fill="%s" font-size="10">%s</text>`+"\n",
				tx+4, y-6, targetColor, esc(g.tlabel+" = "+fmtNum(g.target)+" ns"))
		}
		for i, br := range g.bars {
			by := y + float64(i)*(barH+barGap)
			if math.IsNaN(br.ns) {
				fmt.Fprintf(&body, `<text x="%d" y="%.1f" fill="#718096">%s: no data</text>`+"\n", plotLeft+4, by+13, esc(seriesInfo[br.series].label))
				continue
			}
			wpx := math.Max(scale(math.Max(br.ns, 0))-plotLeft, 1)
			fmt.Fprintf(&body, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>`+"\n",
				plotLeft, by, wpx, barH, seriesInfo[br.series].color, esc(seriesInfo[br.series].label), esc(br.label))
			fmt.Fprintf(&body, `<text x="%.1f" y="%.1f" %s>%s</text>`+"\n", plotLeft+wpx+6, by+13, halo, esc(br.label))
		}
		y += h + groupGap
	}
	// Grid and axis under the bars.
	bottom := y - groupGap + 6
	for v := 0.0; v <= top+step/2; v += step {
		x := scale(v)
		line(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e2e8f0"/>`, x, start-6, x, bottom)
		line(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#4a5568" font-size="11">%s</text>`, x, bottom+14, strconv.FormatFloat(v, 'f', -1, 64))
	}
	line(`<text x="%.1f" y="%.1f" fill="#4a5568" font-size="11">ns/op</text>`, scale(top)+24, bottom+14)
	b.WriteString(body.String())
	return bottom + 20
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// textWidth estimates the width of s at 12 px.
func textWidth(s string) float64 { return float64(len([]rune(s))) * 6.3 }

func esc(s string) string { return html.EscapeString(s) }
