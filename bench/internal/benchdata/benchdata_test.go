package benchdata

import (
	"math"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/keygate/apikey
cpu: AMD EPYC
BenchmarkRequest/path=valid/impl=floor-2         	 2368434	       400.0 ns/op	     416 B/op	       3 allocs/op
BenchmarkRequest/path=bad-checksum/impl=apikey-2 	 4278234	       292.6 ns/op	         0 lookups/op	      96 B/op	       1 allocs/op
BenchmarkRequest/path=valid/impl=floor-2         	 2368434	       500.0 ns/op	     416 B/op	       3 allocs/op
BenchmarkRequest/path=valid/impl=floor-2         	 2368434	       450.0 ns/op	     416 B/op	       3 allocs/op
BenchmarkMemoryStoreLookup/keys=1000             	10000000	        21.5 ns/op	       182.3 B/key	       0 B/op	       0 allocs/op
--- SKIP: BenchmarkMemoryStoreLookup/keys=1000000
    memstore_bench_test.go:68: 1M keys in -short mode
BenchmarkLogs
    some_test.go:1: a log line
PASS
ok  	github.com/keygate/apikey	27.297s
`

func TestRead(t *testing.T) {
	s := New()
	if err := s.Read(strings.NewReader(sample)); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(s.Names, ","), "BenchmarkRequest/path=valid/impl=floor,BenchmarkRequest/path=bad-checksum/impl=apikey,BenchmarkMemoryStoreLookup/keys=1000"; got != want {
		t.Errorf("names %s, want %s", got, want)
	}
	if s.Config["cpu"] != "AMD EPYC" || s.Config["pkg"] != "github.com/keygate/apikey" {
		t.Errorf("config %v", s.Config)
	}
	st, ok := s.Get("BenchmarkRequest/path=valid/impl=floor", "ns/op")
	if !ok || st.Median != 450 || st.N != 3 {
		t.Errorf("valid floor %+v %v, want median 450 of 3", st, ok)
	}
	// Quartiles of 400, 450, 500 are 425 and 475: half the IQR is 25.
	if math.Abs(st.Spread-25.0/450) > 1e-9 {
		t.Errorf("spread %v", st.Spread)
	}
	if got := s.Median("BenchmarkRequest/path=bad-checksum/impl=apikey", "lookups/op"); got != 0 {
		t.Errorf("lookups/op %v", got)
	}
	if got := s.Median("BenchmarkMemoryStoreLookup/keys=1000", "B/key"); got != 182.3 {
		t.Errorf("B/key %v", got)
	}
	if got := s.Median("BenchmarkMemoryStoreLookup/keys=1000000", "ns/op"); !math.IsNaN(got) {
		t.Errorf("skipped benchmark has median %v", got)
	}
}

func TestReadBadLine(t *testing.T) {
	err := New().Read(strings.NewReader("BenchmarkX-2 10 1.0 ns/op 3\n"))
	if err == nil {
		t.Fatal("odd fields accepted")
	}
}

func TestTrimProcs(t *testing.T) {
	for in, want := range map[string]string{
		"BenchmarkX-2":                           "BenchmarkX",
		"BenchmarkX/path=bad-checksum-16":        "BenchmarkX/path=bad-checksum",
		"BenchmarkX/path=bad-checksum":           "BenchmarkX/path=bad-checksum",
		"BenchmarkMemoryStoreLookup/keys=1000":   "BenchmarkMemoryStoreLookup/keys=1000",
		"BenchmarkX-":                            "BenchmarkX-",
		"BenchmarkPeer/path=valid/impl=apikey-8": "BenchmarkPeer/path=valid/impl=apikey",
	} {
		if got := TrimProcs(in); got != want {
			t.Errorf("TrimProcs(%q) = %q, want %q", in, got, want)
		}
	}
}
