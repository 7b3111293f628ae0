package usage_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/usage"
)

// Count requests per key off the request path: the middleware records each
// authenticated request, and the recorder hands the counts to the store
// every Interval, on Flush and on Close.
func ExampleNew() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	key, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "etl"})

	rec, err := usage.New(store, usage.Config{Interval: 10 * time.Second})
	if err != nil {
		panic(err)
	}
	defer rec.Close() // flushes what remains; after the server has stopped
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: store, Usage: rec})
	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	for range 3 {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}
	if err := rec.Flush(ctx); err != nil {
		panic(err)
	}
	k, _ := store.Get(ctx, key.ID)
	fmt.Println(k.Requests, !k.LastUsedAt.IsZero(), rec.Stats().Flushed)
	// Output: 3 true 3
}
