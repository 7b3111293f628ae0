package redislimit_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/redislimit"
)

// Live keys may make 100 requests a second (200 at once) on every server
// together, and their owner's account 1,000,000 a month; a render costs
// 10. Sandbox keys are outside these limits. (It needs a Redis server, so
// it is not run as a test.)
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	lim, err := redislimit.New(rdb, redislimit.Config{
		Live: []apikey.Limit{
			{Name: "requests", Count: 100, Per: time.Second, Burst: 200},
			{Name: "monthly", Count: 1_000_000, Period: "month", Zone: "America/New_York", Owner: true},
		},
		Timeout: 50 * time.Millisecond, // a decision's deadline; past it, rates and quotas fail open
	})
	if err != nil {
		panic(err)
	}
	defer lim.Close()

	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		panic(err)
	}
	auth, err := apikey.New(apikey.Config{Keys: keys, Store: store, Limiter: lim})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/reports", http.HandlerFunc(reports))
	mux.Handle("POST /v1/render", auth.Cost(10)(http.HandlerFunc(render)))
	srv := &http.Server{Addr: ":8080", Handler: auth.Handler(mux)}
	_ = srv // srv.ListenAndServe()
}

func reports(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "[]") }

func render(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }
