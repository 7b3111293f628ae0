package manage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// Mount the API keys page and its JSON API in a host application. Caller
// reads the host's session; here a header stands in for it.
func ExampleNew() {
	scopes, _ := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "write": nil})
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: scopes}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})

	// readme:manage
	h, err := manage.New(store, manage.Config{
		Keys: keys,
		Path: "/settings/api-keys",
		Caller: func(r *http.Request) (manage.Caller, error) {
			account := r.Header.Get("X-Demo-Account") // your session lookup
			if account == "" {
				return manage.Caller{}, manage.ErrUnauthenticated
			}
			return manage.Caller{ID: "user_1", Owner: account}, nil
		},
		Audit: manage.NewMemoryAudit(0), // or pgstore's Store, or manage.NewSlogAudit
	})
	mux := http.NewServeMux()
	mux.Handle("/settings/api-keys/", h)
	mux.Handle("/settings/api-keys", h)
	// readme:end
	if err != nil {
		panic(err)
	}

	send := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("X-Demo-Account", "acme")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	w := send("POST", "/settings/api-keys/api/keys", `{"name":"Zapier","scopes":["read"]}`)
	var created struct {
		Key struct {
			ID    string `json:"id"`
			Owner string `json:"owner"`
		} `json:"key"`
		Secret string `json:"secret"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &created)
	fmt.Println(w.Code, w.Header().Get("Cache-Control"), created.Key.Owner, strings.HasPrefix(created.Secret, "kg_live_"))

	w = send("GET", "/settings/api-keys/", "")
	fmt.Println(w.Code, strings.Contains(w.Body.String(), `data-key-id="`+created.Key.ID+`"`))
	// Output:
	// 201 no-store acme true
	// 200 true
}

// An operator holding an admin API key manages every owner's keys through
// the JSON API: the middleware authenticates the key, Caller reads it.
func ExampleConfig_adminKey() {
	ctx := context.Background()
	scopes, _ := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "admin": {"read"}})
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: scopes}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, admin, _ := store.Create(ctx, apikey.KeySpec{Name: "ops", Scopes: []apikey.Scope{"admin"}})
	_, _, _ = store.Create(ctx, apikey.KeySpec{Name: "acme's", Owner: "acme", Scopes: []apikey.Scope{"read"}})

	h, _ := manage.New(store, manage.Config{
		Keys: keys,
		Path: "/admin/keys",
		Caller: func(r *http.Request) (manage.Caller, error) {
			k, ok := apikey.FromContext(r.Context())
			switch {
			case !ok:
				return manage.Caller{}, manage.ErrUnauthenticated
			case !scopes.Allows(k.Scopes, "admin"):
				return manage.Caller{}, manage.ErrForbidden
			}
			return manage.Caller{ID: k.ID, Operator: true}, nil
		},
	})
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store})
	handler := mw.Handler(h)

	r := httptest.NewRequest("GET", "/admin/keys/api/keys?owner=acme", nil)
	r.Header.Set("Authorization", "Bearer "+admin.Reveal())
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	var page struct {
		Keys []struct {
			Name string `json:"name"`
		} `json:"keys"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &page)
	fmt.Println(w.Code, len(page.Keys), page.Keys[0].Name)
	// Output: 200 1 acme's
}

// Record each management action as a log line.
func ExampleNewSlogAudit() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output
			}
			return a
		},
	}))
	sink := manage.NewSlogAudit(logger)
	_ = sink.Record(context.Background(), manage.Event{
		At: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Actor: "user_42", Action: "disable", KeyID: "key_1", Owner: "acme", Remote: "192.0.2.1",
	})
	// Output:
	// level=INFO msg="manage: api key disable" at=2026-05-01T12:00:00.000Z actor=user_42 action=disable key_id=key_1 owner=acme remote=192.0.2.1 detail=""
}
