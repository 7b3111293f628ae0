package apikey_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// The root package holds the core only. These are its size limits: the
// exported names (types, functions, methods of exported types, variables,
// constants, in non-test files) and the length of `go doc -all .`.
// `go test -run TestAPISurface -v .` prints both.
const (
	maxExportedNames = 120
	maxDocLines      = 700
)

func TestAPISurface(t *testing.T) {
	names := exportedNames(t, ".")
	t.Logf("%d exported names (limit %d)", len(names), maxExportedNames)
	if len(names) > maxExportedNames {
		t.Errorf("the root package exports %d names, more than %d:\n%s", len(names), maxExportedNames, strings.Join(names, "\n"))
	}
	if testing.Short() {
		return
	}
	out, err := exec.Command("go", "doc", "-all", ".").Output()
	if err != nil {
		t.Fatalf("go doc -all .: %v", err)
	}
	lines := strings.Count(string(out), "\n")
	t.Logf("go doc -all . prints %d lines (limit %d)", lines, maxDocLines)
	if lines > maxDocLines {
		t.Errorf("go doc -all . prints %d lines, more than %d", lines, maxDocLines)
	}
}

// exportedNames lists the exported names of the package in dir.
func exportedNames(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() {
						continue
					}
					if d.Recv == nil {
						names = append(names, d.Name.Name)
						continue
					}
					recv := d.Recv.List[0].Type
					if s, ok := recv.(*ast.StarExpr); ok {
						recv = s.X
					}
					if id, ok := recv.(*ast.Ident); ok && id.IsExported() {
						names = append(names, id.Name+"."+d.Name.Name)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							if s.Name.IsExported() {
								names = append(names, s.Name.Name)
							}
						case *ast.ValueSpec:
							for _, n := range s.Names {
								if n.IsExported() {
									names = append(names, n.Name)
								}
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(names)
	return names
}
