// Package benchdata reads `go test -bench` output and summarises each
// benchmark by the median of its runs, as benchstat does. It knows the
// text format only (standard library, no golang.org/x/perf).
package benchdata

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Set holds every sample read, by benchmark and unit.
type Set struct {
	// Names lists the benchmarks in the order they first appeared.
	Names []string
	// Config holds the "key: value" lines (goos, goarch, pkg, cpu); a
	// later file's value replaces an earlier one's.
	Config  map[string]string
	samples map[string]map[string][]float64
}

// New returns an empty Set.
func New() *Set {
	return &Set{Config: map[string]string{}, samples: map[string]map[string][]float64{}}
}

// ReadFiles reads every file into one Set.
func ReadFiles(paths ...string) (*Set, error) {
	s := New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		err = s.Read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return s, nil
}

// Read adds the results in r. Lines that are not results or configuration
// (PASS, ok, test logs) are skipped; a result line that does not parse is
// an error.
func (s *Set) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "Benchmark") {
			if err := s.addResult(line); err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
			continue
		}
		if k, v, ok := strings.Cut(line, ": "); ok && isConfigKey(k) {
			s.Config[k] = strings.TrimSpace(v)
		}
	}
	return sc.Err()
}

// isConfigKey matches the lowercase keys `go test` prints before results.
func isConfigKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

// addResult parses "BenchmarkX/a=b-2  N  v unit  v unit ...". A name with
// no iteration count after it (a benchmark's log header) is skipped.
func (s *Set) addResult(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 {
		return nil
	}
	if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
		return nil
	}
	if len(f)%2 != 0 {
		return fmt.Errorf("odd number of value/unit fields in %q", line)
	}
	name := TrimProcs(f[0])
	units := s.samples[name]
	if units == nil {
		units = map[string][]float64{}
		s.samples[name] = units
		s.Names = append(s.Names, name)
	}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return fmt.Errorf("value %q: %w", f[i], err)
		}
		units[f[i+1]] = append(units[f[i+1]], v)
	}
	return nil
}

// TrimProcs removes the "-N" GOMAXPROCS suffix that `go test` appends to a
// benchmark name when N > 1. Benchmark names here never end in "-digits"
// of their own.
func TrimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return name
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return name
		}
	}
	return name[:i]
}

// Samples returns the values of one benchmark in one unit ("ns/op",
// "allocs/op", "lookups/op", ...), in the order read.
func (s *Set) Samples(name, unit string) []float64 { return s.samples[name][unit] }

// Stat summarises the samples of one benchmark in one unit.
type Stat struct {
	Median float64
	// Spread is half the interquartile range relative to the median (0.03
	// for ±3%): a robust measure of the noise of the runs.
	Spread float64
	N      int
}

// Get returns the median of the samples of name in unit; ok is false when
// there are none.
func (s *Set) Get(name, unit string) (st Stat, ok bool) {
	v := s.Samples(name, unit)
	if len(v) == 0 {
		return Stat{}, false
	}
	v = slices.Clone(v)
	slices.Sort(v)
	st = Stat{Median: quantile(v, 0.5), N: len(v)}
	if st.Median != 0 {
		st.Spread = (quantile(v, 0.75) - quantile(v, 0.25)) / 2 / math.Abs(st.Median)
	}
	return st, true
}

// Median is Get's median, or NaN when there are no samples.
func (s *Set) Median(name, unit string) float64 {
	st, ok := s.Get(name, unit)
	if !ok {
		return math.NaN()
	}
	return st.Median
}

// quantile interpolates linearly between the order statistics of sorted.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[hi]*frac
}
