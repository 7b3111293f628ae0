package replicas

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdicts of a figure.
const (
	Pass = "pass"
	Fail = "FAIL"
	Info = "-" // a figure without a target
)

// Figure is one measured figure of a scenario, with its target.
type Figure struct {
	Scenario string
	Name     string
	Value    string
	Target   string
	Verdict  string
}

// Report is the outcome of a run: its figures, in order, and notes.
type Report struct {
	Figures []Figure
	Notes   []string
}

// Passed reports whether no figure failed.
func (r *Report) Passed() bool {
	for _, f := range r.Figures {
		if f.Verdict == Fail {
			return false
		}
	}
	return true
}

// Failed returns the figures that failed.
func (r *Report) Failed() []Figure {
	var out []Figure
	for _, f := range r.Figures {
		if f.Verdict == Fail {
			out = append(out, f)
		}
	}
	return out
}

// Write prints the report as a plain table, then as a Markdown table.
func (r *Report) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tMEASURED\tTARGET\tRESULT")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Scenario, f.Name, f.Value, f.Target, f.Verdict)
	}
	_ = tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintln(w, "\n```markdown")
	fmt.Fprintln(w, "| Scenario | Figure | Measured | Target | Result |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, f := range r.Figures {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", f.Scenario, f.Name, mdEscape(f.Value), mdEscape(f.Target), f.Verdict)
	}
	fmt.Fprintln(w, "```")
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// figures collects one scenario's figures.
type figures struct {
	scenario string
	list     []Figure
}

// info adds a figure without a target.
func (fs *figures) info(name, format string, args ...any) {
	fs.list = append(fs.list, Figure{Scenario: fs.scenario, Name: name, Value: fmt.Sprintf(format, args...), Target: "", Verdict: Info})
}

// check adds a figure with its target and whether it was met.
func (fs *figures) check(name, value, target string, ok bool) {
	v := Fail
	if ok {
		v = Pass
	}
	fs.list = append(fs.list, Figure{Scenario: fs.scenario, Name: name, Value: value, Target: target, Verdict: v})
}

// atMost checks a duration against its bound.
func (fs *figures) atMost(name string, d, bound time.Duration) {
	fs.check(name, ms(d), "<= "+ms(bound), d <= bound)
}

// zero checks a count that must be zero.
func (fs *figures) zero(name string, n int64) {
	fs.check(name, fmt.Sprint(n), "0", n == 0)
}

// ms formats a duration in milliseconds, or seconds above 10 s.
func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
