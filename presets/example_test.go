package presets_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/presets"
)

// Reproduce the Straply API: its keys (stp_live_ / stp_test_), its scopes
// by method and its error bodies, word for word.
func Example() {
	ctx := context.Background()
	// readme:straply
	p := presets.Straply
	keys := p.Keys() // add Peppers or a Clock here
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		panic(err)
	}
	mw, err := apikey.New(p.Config(keys, store))
	if err != nil {
		panic(err)
	}
	// readme:end
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "sandbox", Environment: apikey.EnvTest, Scopes: []apikey.Scope{"read"}})
	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := apikey.FromContext(r.Context())
		fmt.Fprintln(w, "properties for", key.Environment, "key", key.Name)
	}))

	fmt.Println(strings.HasPrefix(secret.Reveal(), "stp_test_"), len(secret.Reveal()))
	for _, c := range []struct{ method, key string }{
		{"GET", secret.Reveal()}, {"POST", secret.Reveal()}, {"GET", ""},
	} {
		r := httptest.NewRequest(c.method, "/v1/properties", nil)
		if c.key != "" {
			r.Header.Set("Authorization", "Bearer "+c.key)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Print(c.method, " ", w.Code, " ", w.Body.String())
	}
	// Output:
	// true 40
	// GET 200 properties for test key sandbox
	// POST 403 {"error":{"code":"forbidden","message":"The key is valid but does not have permission for this resource.","status":403}}
	// GET 401 {"error":{"code":"unauthorized","message":"Invalid or missing API key.","status":401}}
}
