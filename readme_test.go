package apikey_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every Go snippet of every README is tested code. The line above its fence
// names the compiled file it comes from and one or more regions of it,
// marked there by "// readme:NAME" and "// readme:end" lines:
//
//	<!-- checked against example_test.go: quickstart later -->
//
// The snippet must be those regions, line for line, leaving out only
// indentation, blank lines, comments and the error checks
// (if err != nil { … }). A snippet that drifts from the tested code fails.
func TestReadmeSnippetsAreTestedCode(t *testing.T) {
	var readmes []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "results") {
			return filepath.SkipDir
		}
		if d.Name() == "README.md" {
			readmes = append(readmes, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(readmes) < 2 {
		t.Fatalf("found %v; want the README and the examples' READMEs", readmes)
	}
	fence := regexp.MustCompile("(?m)^```go\n")
	marker := regexp.MustCompile(`<!-- checked against ([^ :]+): ([a-z0-9 -]+) -->\n$`)
	snippets := 0
	for _, readme := range readmes {
		text, err := os.ReadFile(readme)
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range fence.FindAllIndex(text, -1) {
			body := string(text[at[1]:])
			body = body[:strings.Index(body, "```")]
			snippets++
			name := readme + ": snippet " + strings.SplitN(body, "\n", 2)[0]
			m := marker.FindStringSubmatch(string(text[:at[0]]))
			if m == nil {
				t.Errorf("%s: the line right above the fence must be <!-- checked against FILE: REGION… -->", name)
				continue
			}
			source, err := os.ReadFile(filepath.Join(filepath.Dir(readme), m[1]))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			var want []string
			for _, region := range strings.Fields(m[2]) {
				lines, ok := readmeRegion(string(source), region)
				if !ok {
					t.Errorf("%s: %s has no region %q", name, m[1], region)
				}
				want = append(want, lines...)
			}
			if got := codeLines(body); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s differs from %s (%s):\nREADME:\n\t%s\ncode:\n\t%s", name, m[1], m[2],
					strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
			}
		}
	}
	if snippets == 0 {
		t.Fatal("no Go snippet found")
	}
}

// readmeRegion returns the code lines between "// readme:NAME" and the
// next "// readme:end".
func readmeRegion(src, name string) ([]string, bool) {
	_, rest, ok := strings.Cut(src, "// readme:"+name+"\n")
	if !ok {
		return nil, false
	}
	region, _, ok := strings.Cut(rest, "// readme:end")
	return codeLines(region), ok
}

// codeLines returns the lines of Go source without indentation, blank
// lines, comments, trailing comments and "if err != nil { … }" blocks.
func codeLines(src string) []string {
	var out []string
	skip := 0 // depth inside an error check
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, " // "); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		switch {
		case skip > 0:
			skip += strings.Count(l, "{") - strings.Count(l, "}")
			continue
		case l == "if err != nil {":
			skip = 1
			continue
		}
		out = append(out, l)
	}
	return out
}
