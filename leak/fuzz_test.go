package leak_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/leak"
)

// FuzzReport sends hostile bodies, validly signed, so that they get past
// the signature to the parser and the store. The handler must not panic,
// must answer 200 with one verdict per distinct token or 400/413, and
// must never echo a token.
func FuzzReport(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"token":"kg_live_abc","type":"t","url":"u","source":"content"}]`))
	f.Add([]byte(`[{"token":"kg_live_0000000000000000000000000000000000Ab"},{"token":"kg_live_0000000000000000000000000000000000Ab"}]`))
	f.Add([]byte(`[{"token":null},null,{"TOKEN":"x","extra":[1,2,{}]}]`))
	f.Add([]byte(`{"token":"x"}`))
	f.Add([]byte(`[{"token":"\u0000\ud800"}]`))
	f.Add([]byte(`[` + strings.Repeat(`{"token":"a"},`, 50) + `{}]`))
	f.Add([]byte("\xff\xfe["))

	fx := newFixture(f, defaultKeys(), func(c *leak.Config) { c.MaxBody = 64 << 10 })
	_, secret := fx.create(apikey.EnvTest, "acme")
	f.Add([]byte(`[{"token":"` + secret + `","url":"` + secret + `"}]`))

	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		r.Header.Set(leak.HeaderKeyID, fx.github.id)
		r.Header.Set(leak.HeaderSignature, fx.github.sign(t, body))
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			var v []map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("200 with a body that is not an array of verdicts: %v", err)
			}
			for _, e := range v {
				if _, raw := e["token_raw"]; raw || len(e["token_hash"]) != 64 {
					t.Fatalf("bad verdict %v", e)
				}
				if e["label"] != "true_positive" && e["label"] != "false_positive" {
					t.Fatalf("bad label %q", e["label"])
				}
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if strings.Contains(w.Body.String(), secret) {
			t.Fatal("the answer holds a token")
		}
	})
}
