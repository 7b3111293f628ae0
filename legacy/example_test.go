package legacy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/legacy"
)

// Keys of djangorestframework-api-key keep working: the first request
// verifies the old hash and files the key under this library's digest; the
// next ones cost what any key costs.
func Example() {
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})

	// One JSON line per key, exported from the old system's database (a
	// test key, made by testdata/make_vectors.py).
	export := `{"key":{"id":"key_reports","name":"reports","scopes":["read"]},"prefix":"CD2Brhsy","scheme":"drf-api-key",` +
		`"hash":"sha512$$71f3679c05332aa9d48bc8925429d60491ba71ce9a898707af8bc67dc71fea6f6be0f81ba995d00703e08d0043af65bdc18d8363291ca29a6afbb75b24ebfa9a"}`
	// readme:legacy
	records, err := legacy.ReadRecords(strings.NewReader(export))
	if err != nil {
		panic(err)
	}
	v, err := legacy.New(store, legacy.Config{Keys: keys, Records: records})
	if err != nil {
		panic(err)
	}
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store, Fallback: v.Fallback, NoRequestID: true})
	// readme:end
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		fmt.Fprint(w, k.ID)
	}))

	for _, cred := range []string{"CD2Brhsy.pZj10hKIDFy3viZLWaBysIIeYNai6scZ", "CD2Brhsy.pZj10hKIDFy3viZLWaBysIIeYNai6scZ", "CD2Brhsy.wrong"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+cred)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		fmt.Println(rr.Code, strings.TrimSpace(rr.Body.String()))
	}
	st := v.Stats()
	fmt.Println("migrated:", st.Migrated, "found in the store:", st.Found, "remaining:", v.Remaining())
	// Output:
	// 200 key_reports
	// 200 key_reports
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"A valid API key is required."}
	// migrated: 1 found in the store: 1 remaining: map[drf-api-key:0]
}

// Fallback can be called directly: a credential no record matches is
// refused without any hash.
func ExampleVerifier_Fallback() {
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	v, _ := legacy.New(store, legacy.Config{Keys: keys, Records: []legacy.Record{{
		Key:    apikey.Key{ID: "key_unkey", Name: "from Unkey"},
		Scheme: legacy.SchemeUnkey,
		Hash:   "CptSN3vQ0shZLIsdT5c/tlpeFK/qqxY0R/aQNCfKhWs=", // Unkey's own test vector
	}}})

	k, err := v.Fallback(context.Background(), "MVgWNsyPmv6VthC9moCNAPwS")
	fmt.Println(k.ID, err)
	_, err = v.Fallback(context.Background(), "random-credential")
	fmt.Println(err)
	// Output:
	// key_unkey <nil>
	// legacy: no record matches the credential: apikey: key not found
}
