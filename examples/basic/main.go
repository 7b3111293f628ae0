// Command basic is a small API protected by keygate/apikey: net/http's
// ServeMux, the in-memory store, and the API keys page of package manage.
//
//	go run ./examples/basic [-addr 127.0.0.1:8080] [-style problem]
//
// At start it creates one test key per scope for the demo account and
// prints each once, then the address of the API keys page:
//
//	read key: kg_test_…
//	write key: kg_test_…
//	admin key: kg_test_…
//	keys page: http://127.0.0.1:8080/settings/api-keys/
//
// Routes (admin implies read and write):
//
//	GET    /v1/stepsies             read
//	POST   /v1/stepsies             write
//	DELETE /v1/stepsies/{id}        write
//	       /settings/api-keys/      the demo account's API keys page, in a browser (no key: the
//	                                host's session would say who is signed in)
//	       /v1/manage/api/...       admin: the same JSON API for every account (manage's
//	                                routes: GET, POST /keys; GET, PATCH /keys/{id};
//	                                POST /keys/{id}/roll, /revoke, /disable, /enable; ...)
//
// -style picks the shape of error bodies: problem (RFC 9457, the default),
// flat, nested, nested-meta, nested-status or auth-error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
	"github.com/keygate/apikey/usage"
)

// demoAccount owns the demo keys; the page signs everyone in as it.
const demoAccount = "demo"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "basic:", err)
		os.Exit(1)
	}
}

// styles are the values of -style, in the order -help lists them.
var styles = []struct {
	name  string
	shape apikey.Shape
}{
	{"problem", apikey.ShapeProblem},
	{"flat", apikey.ShapeFlat},
	{"nested", apikey.ShapeNested},
	{"nested-meta", apikey.ShapeNestedMeta},
	{"nested-status", apikey.ShapeNestedStatus},
	{"auth-error", apikey.ShapeAuthError},
}

func styleNames() string {
	names := make([]string, len(styles))
	for i, s := range styles {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// errorStyle returns the style -style names, with the default messages.
func errorStyle(name string) (apikey.ErrorStyle, error) {
	for _, s := range styles {
		if s.name == name {
			return apikey.NewErrorStyle(s.shape, apikey.Messages{})
		}
	}
	return nil, fmt.Errorf("unknown -style %q; use one of %s", name, styleNames())
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("basic", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	styleName := fs.String("style", "problem", "error style: "+styleNames())
	if err := fs.Parse(args); err != nil {
		return err
	}
	style, err := errorStyle(*styleName)
	if err != nil {
		return err
	}

	// admin implies read and write, as in the Stepsies API.
	scopes, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{
		"read": nil, "write": nil, "admin": {"read", "write"},
	})
	if err != nil {
		return err
	}
	// One KeyConfig, given to the store and to the middleware alike.
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: scopes}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		return err
	}
	for _, sc := range []apikey.Scope{"read", "write", "admin"} {
		_, secret, err := store.Create(ctx, apikey.KeySpec{
			Name: "demo " + string(sc), Environment: apikey.EnvTest, Scopes: []apikey.Scope{sc}, Owner: demoAccount,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s key: %s\n", sc, secret.Reveal())
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	rec, err := usage.New(store, usage.Config{Interval: 5 * time.Second})
	if err != nil {
		return err
	}
	mw, err := apikey.New(apikey.Config{
		Keys:         keys,
		Store:        store,
		MethodPolicy: apikey.ReadWritePolicy(), // GET needs read; POST, DELETE need write
		Style:        style,
		Usage:        rec,
		Logger:       logger,
	})
	if err != nil {
		_ = rec.Close()
		return err
	}
	audit := manage.NewSlogAudit(logger) // each key change, as a log line
	// The API keys page, for the customers of the API. Caller says who is
	// signed in: replace demoCaller with your session lookup.
	page, err := manage.New(store, manage.Config{
		Keys: keys, Path: "/settings/api-keys", Caller: demoCaller, Audit: audit, Logger: logger,
	})
	if err != nil {
		_ = rec.Close()
		return err
	}
	// The same JSON API for an operator holding an admin key.
	admin, err := manage.New(store, manage.Config{
		Keys: keys, Path: "/v1/manage", Caller: adminCaller, Style: style, Audit: audit, Logger: logger,
	})
	if err != nil {
		_ = rec.Close()
		return err
	}

	a := &app{stepsies: map[string]stepsy{}}
	srv := &http.Server{Handler: a.routes(mw, page, admin), ReadHeaderTimeout: 10 * time.Second}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = rec.Close()
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "keys page: %s/settings/api-keys/\n", base)
	fmt.Fprintf(out, "listening on %s\n", base)
	fmt.Fprintf(out, "try:\n"+
		"  curl -i %[1]s/v1/stepsies -H \"Authorization: Bearer $READ_KEY\"\n"+
		"  curl -i -X POST %[1]s/v1/stepsies -H \"Authorization: Bearer $READ_KEY\" -d '{\"title\":\"x\"}'   # 403\n"+
		"  curl -i -X POST %[1]s/v1/stepsies -H \"Authorization: Bearer $WRITE_KEY\" -d '{\"title\":\"x\"}'\n"+
		"  curl -i %[1]s/v1/manage/api/keys -H \"Authorization: Bearer $ADMIN_KEY\"\n"+
		"  curl -i %[1]s/v1/stepsies   # 401\n"+
		"  open %[1]s/settings/api-keys/ in a browser\n", base)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return errors.Join(err, rec.Close())
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	// After the server stopped taking requests: deliver the last usage.
	return errors.Join(err, rec.Close())
}

// demoCaller signs everyone in as the demo account's user. A real host
// reads its session here (a cookie, its user's account) and answers
// manage.ErrUnauthenticated when nobody is signed in.
func demoCaller(*http.Request) (manage.Caller, error) {
	return manage.Caller{ID: "user_demo", Owner: demoAccount}, nil
}

// adminCaller lets an admin key manage every account's keys: the
// middleware has authenticated the key and Require("admin") checked it.
func adminCaller(r *http.Request) (manage.Caller, error) {
	k, ok := apikey.FromContext(r.Context())
	if !ok {
		return manage.Caller{}, manage.ErrUnauthenticated
	}
	return manage.Caller{ID: k.ID, Operator: true}, nil
}

// app is the demo API: stepsies in memory.
type app struct {
	mu       sync.Mutex
	next     int
	stepsies map[string]stepsy
}

type stepsy struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// routes serves the API behind the middleware, and the keys page beside
// it: the page's users have a session, not an API key.
func (a *app) routes(mw *apikey.Middleware, page, admin http.Handler) http.Handler {
	api := http.NewServeMux()
	// The method policy (GET → read; POST, DELETE → write) guards these.
	api.HandleFunc("GET /v1/stepsies", a.listStepsies)
	api.HandleFunc("POST /v1/stepsies", a.createStepsy)
	api.HandleFunc("DELETE /v1/stepsies/{id}", a.deleteStepsy)
	// Key management needs admin, whatever the method.
	api.Handle("/v1/manage/", mw.Require("admin")(admin))

	mux := http.NewServeMux()
	mux.Handle("/settings/api-keys/", page)
	mux.Handle("/settings/api-keys", page)
	mux.Handle("/", mw.Handler(api))
	return mux
}

func (a *app) listStepsies(w http.ResponseWriter, r *http.Request) {
	key, _ := apikey.FromContext(r.Context())
	a.mu.Lock()
	list := make([]stepsy, 0, len(a.stepsies))
	for _, s := range a.stepsies {
		list = append(list, s)
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"data":        list,
		"environment": key.Environment, // test keys could get sandbox data
		"key":         key.Name,
	})
}

func (a *app) createStepsy(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title string `json:"title"`
	}
	if err := decodeJSON(r, &in); err != nil || in.Title == "" {
		writeError(w, r, http.StatusBadRequest, "body must be JSON with a non-empty \"title\"")
		return
	}
	a.mu.Lock()
	a.next++
	s := stepsy{ID: fmt.Sprintf("stp_%d", a.next), Title: in.Title}
	a.stepsies[s.ID] = s
	a.mu.Unlock()
	writeJSON(w, http.StatusCreated, s)
}

func (a *app) deleteStepsy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.mu.Lock()
	_, ok := a.stepsies[id]
	delete(a.stepsies, id)
	a.mu.Unlock()
	if !ok {
		writeError(w, r, http.StatusNotFound, "no stepsy "+id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	writeJSON(w, status, map[string]any{
		"error":      http.StatusText(status),
		"message":    msg,
		"request_id": apikey.RequestID(r.Context()),
	})
}
