package limit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/limit"
)

// A server whose live keys may make 2 requests a second (burst 2), and
// 10,000 a month per customer account; a render costs 5 of them. Test
// keys are outside these limits.
func Example() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	_, secret, _ := store.Create(ctx, apikey.KeySpec{Name: "ci", Owner: "acct_42"})

	// readme:limit
	lim, err := limit.New(limit.Config{Live: []apikey.Limit{
		{Name: "requests", Count: 2, Per: time.Second},
		{Name: "monthly", Count: 10_000, Period: "month", Zone: "America/New_York", Owner: true},
	}})
	if err != nil {
		panic(err)
	}
	auth, err := apikey.New(apikey.Config{Keys: keys, Store: store, Limiter: lim})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/reports", http.HandlerFunc(reports))
	mux.Handle("POST /v1/render", auth.Cost(5)(http.HandlerFunc(render)))
	handler := auth.Handler(mux)
	// readme:end

	for range 3 {
		r := httptest.NewRequest("GET", "/v1/reports", nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("RateLimit"), w.Header().Values("Retry-After"))
	}
	// Output:
	// 200 "requests";r=1;t=1 []
	// 200 "requests";r=0;t=1 []
	// 429 "requests";r=0;t=1 [1]
}

func reports(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprintln(w, "[]") }

func render(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }
