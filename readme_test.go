package apikey_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every Go snippet of the README is the wiring of a compiled, tested file:
// the line above its fence names the file, and the snippet's lines (blank
// lines, comments and trailing comments aside) appear in that file in the
// same order. A snippet that drifts from the tested code fails here.
func TestReadmeSnippetsAreTestedCode(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile("<!-- checked against ([^ ]+) -->\n```go\n")
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatchIndex(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go snippet")
	}
	for _, b := range blocks {
		snippet := string(readme[b[2]:b[3]])
		first := strings.SplitN(snippet, "\n", 2)[0]
		// The marker is the line right before the fence.
		before := string(readme[:b[0]])
		start := strings.LastIndex(before, "<!--")
		m := marker.FindStringSubmatch(string(readme[max(start, 0) : b[0]+len("```go\n")]))
		if start < 0 || m == nil {
			t.Errorf("the README snippet starting %q has no <!-- checked against FILE --> line above it", first)
			continue
		}
		source, err := os.ReadFile(m[1])
		if err != nil {
			t.Errorf("snippet starting %q: %v", first, err)
			continue
		}
		have := codeLines(string(source))
		i := 0
		for _, want := range codeLines(snippet) {
			for i < len(have) && have[i] != want {
				i++
			}
			if i == len(have) {
				t.Errorf("README snippet starting %q: %s has no line %q (in order)", first, m[1], want)
				break
			}
			i++
		}
	}
}

// codeLines returns the lines of Go source without indentation, blank
// lines, comment lines and trailing comments.
func codeLines(src string) []string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, " // "); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		out = append(out, l)
	}
	return out
}
