package redislimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/apikey"
)

// Through the middleware: 200 with the RateLimit fields, 429 with
// Retry-After, a Cost that cannot be paid gives back what the request
// paid, and credits answer 503 when Redis is gone.
func TestMiddleware(t *testing.T) {
	s := ownServer(t)
	c := newClient(t, s.addr)
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	key, secret, err := store.Create(ctx, apikey.KeySpec{Name: "ci", Owner: "acct_42"})
	if err != nil {
		t.Fatal(err)
	}
	lim := newLimiter(t, c, Config{Live: []apikey.Limit{
		{Name: "requests", Count: 2, Per: time.Hour},
		{Name: "credits", Count: 10, Credits: true, Owner: true},
	}})
	fake(lim, t0)
	auth, err := apikey.New(apikey.Config{Keys: keys, Store: store, Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/reports", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	mux.Handle("POST /v1/render", auth.Cost(9)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})))
	handler := auth.Handler(mux)
	do := func(method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}
	w := do("GET", "/v1/reports")
	if w.Code != 200 || w.Header().Get("RateLimit") != `"requests";r=1;t=1800` {
		t.Fatalf("first request: %d %v", w.Code, w.Header())
	}
	// A render pays 1 on its way in, gives it back and asks its whole
	// price, 9: the credits could, the 2 requests an hour never can (no
	// Retry-After), and what remains is as after the first request.
	w = do("POST", "/v1/render")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("RateLimit") != `"requests";r=1;t=1800` || w.Header().Get("Retry-After") != "" {
		t.Fatalf("render: %d %v", w.Code, w.Header())
	}
	// The render gave back its first 1: both limits as after the first request.
	wantRemaining(t, lim, key, map[string]int64{"requests": 1, "credits": 9})
	w = do("GET", "/v1/reports")
	if w.Code != 200 {
		t.Fatalf("second request: %d", w.Code)
	}
	w = do("GET", "/v1/reports")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1800" {
		t.Fatalf("third request: %d %v", w.Code, w.Header())
	}

	s.kill()
	w = do("GET", "/v1/reports")
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("with Redis gone and credits: %d, want 503", w.Code)
	}
}
