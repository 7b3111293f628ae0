package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
)

// Put a cache in front of a store that pays a round trip per lookup (the
// memory store stands in for one here): repeated requests with the same
// key are answered from memory for the TTL, and Invalidate forgets a key at
// once, for example when it is revoked.
func ExampleNew() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	key, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "dashboard"})

	c, err := cache.New(store, cache.Config{TTL: 30 * time.Second, LookupTimeout: 2 * time.Second})
	if err != nil {
		panic(err)
	}
	mw, _ := apikey.New(apikey.Config{Keys: keys, Store: c})
	handler := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	send := func() int {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w.Code
	}

	fmt.Println(send(), send(), send())
	s := c.Stats()
	fmt.Println("store calls:", s.StoreCalls, "hits:", s.Hits)

	_ = store.Revoke(ctx, key.ID)
	c.Invalidate(keys.Digest(secret.Reveal()))
	fmt.Println(send())
	// Output:
	// 200 200 200
	// store calls: 1 hits: 2
	// 401
}
