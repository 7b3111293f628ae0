package manage_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// FuzzAPIBody: no body, query or path makes the handler panic or fail
// with a 500.
func FuzzAPIBody(f *testing.F) {
	for _, s := range []string{`{"name":"x"}`, `{"name":"x","scopes":["read"],"expires_at":null}`, `{"grace_seconds":5}`, `[`, `{"metadata":{"a":1}}`, `{"limits":[{"name":"x","count":1,"per_seconds":1e300}]}`, ``} {
		f.Add("POST", "/api/keys", s)
		f.Add("PATCH", "/api/keys/ID", s)
		f.Add("POST", "/api/keys/ID/roll", s)
	}
	f.Add("GET", "/api/keys?limit=3&after=ID", "")
	f.Add("POST", "/keys/ID", "name=x&scope=read&expires=2999-01-01")
	f.Add("POST", "/keys/ID/limits", "limits=x%3A+1+per+minute")
	f.Add("GET", "/api/keys/ID/limits", "")
	f.Fuzz(func(t *testing.T, method, target, body string) {
		e := newEnv(t)
		k, _ := e.key("acme", "ci", "read")
		if len(target) == 0 || target[0] != '/' || len(method) == 0 {
			return
		}
		for i := 0; i+2 <= len(target); i++ {
			if target[i:i+2] == "ID" {
				target = target[:i] + k.ID + target[i+2:]
				break
			}
		}
		// Skip what no client could send: httptest.NewRequest panics on it.
		line := method + " " + base + target + " HTTP/1.0\r\n\r\n"
		if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(line))); err != nil {
			return
		}
		w := e.do(method, base+target, "acme", body)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, w.Code, w.Body.String())
		}
	})
}
