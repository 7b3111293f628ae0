// Command basic is a small API protected by keygate/apikey: net/http's
// ServeMux and the in-memory store, nothing else.
//
//	go run ./examples/basic [-addr 127.0.0.1:8080] [-style problem]
//
// At start it creates one key per scope and prints each once:
//
//	read key: sk_test_…
//	write key: sk_test_…
//	admin key: sk_test_…
//
// Routes (admin implies read and write):
//
//	GET    /v1/stepsies           read
//	POST   /v1/stepsies           write
//	DELETE /v1/stepsies/{id}      write
//	GET    /v1/keys               admin: list keys, never secrets
//	POST   /v1/keys               admin: create a key, its secret shown once
//	POST   /v1/keys/{id}/roll     admin: roll a key (old one works 24 h)
//	DELETE /v1/keys/{id}          admin: revoke a key
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "basic:", err)
		os.Exit(1)
	}
}

// scopes: admin implies read and write, as in the Stepsies API (seed 002).
var scopes = apikey.MustDeclareScopes(map[apikey.Scope][]apikey.Scope{
	"read": nil, "write": nil, "admin": {"read", "write"},
})

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("basic", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	styleName := fs.String("style", "problem", "error style: "+strings.Join(apikey.StyleNames(), ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	style, ok := apikey.StyleByName(*styleName)
	if !ok {
		return fmt.Errorf("unknown -style %q; use one of %s", *styleName, strings.Join(apikey.StyleNames(), ", "))
	}

	store := apikey.NewMemoryStore(apikey.StoreConfig{Format: apikey.FormatStairoids, Scopes: scopes})
	usage := apikey.NewUsageRecorder(store, apikey.FlushEvery(5*time.Second))
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	for _, sc := range []apikey.Scope{"read", "write", "admin"} {
		_, secret, err := store.Create(ctx, apikey.KeySpec{
			Name: "demo " + string(sc), Environment: apikey.EnvTest, Scopes: []apikey.Scope{sc},
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s key: %s\n", sc, secret.Reveal())
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "listening on %s\n", base)
	fmt.Fprintf(out, "try:\n"+
		"  curl -i %[1]s/v1/stepsies -H \"Authorization: Bearer $READ_KEY\"\n"+
		"  curl -i -X POST %[1]s/v1/stepsies -H \"Authorization: Bearer $READ_KEY\" -d '{\"title\":\"x\"}'   # 403\n"+
		"  curl -i -X POST %[1]s/v1/stepsies -H \"Authorization: Bearer $WRITE_KEY\" -d '{\"title\":\"x\"}'\n"+
		"  curl -i %[1]s/v1/keys -H \"Authorization: Bearer $ADMIN_KEY\"\n"+
		"  curl -i %[1]s/v1/stepsies   # 401\n", base)

	auth := apikey.New(store,
		apikey.WithStyle(style),
		apikey.WithUsage(usage),
		apikey.WithLogger(logger),
	)
	app := &app{store: store, stepsies: map[string]stepsy{}}
	srv := &http.Server{Handler: auth.Handler(app.routes()), ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		_ = usage.Close()
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	// After the server stopped taking requests: deliver the last usage.
	return errors.Join(err, usage.Close())
}

// app is the demo API: stepsies in memory, and key management.
type app struct {
	store *apikey.MemoryStore

	mu       sync.Mutex
	next     int
	stepsies map[string]stepsy
}

type stepsy struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	// The method policy (GET → read; POST, DELETE → write) guards these.
	mux.HandleFunc("GET /v1/stepsies", a.listStepsies)
	mux.HandleFunc("POST /v1/stepsies", a.createStepsy)
	mux.HandleFunc("DELETE /v1/stepsies/{id}", a.deleteStepsy)
	// Key management needs admin, whatever the method.
	admin := apikey.Require("admin")
	mux.Handle("GET /v1/keys", admin(http.HandlerFunc(a.listKeys)))
	mux.Handle("POST /v1/keys", admin(http.HandlerFunc(a.createKey)))
	mux.Handle("POST /v1/keys/{id}/roll", admin(http.HandlerFunc(a.rollKey)))
	mux.Handle("DELETE /v1/keys/{id}", admin(http.HandlerFunc(a.revokeKey)))
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
		"environment": key.Environment.String(), // test keys could get sandbox data
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

// keyView is what the API shows of a key: never a secret.
type keyView struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Environment string         `json:"environment"`
	Scopes      []apikey.Scope `json:"scopes"`
	Hint        string         `json:"hint"`
	State       string         `json:"state"`
	CreatedAt   time.Time      `json:"created_at"`
	ExpiresAt   *time.Time     `json:"expires_at,omitempty"`
	LastUsedAt  *time.Time     `json:"last_used_at,omitempty"`
	Requests    uint64         `json:"requests"`
}

func view(k *apikey.Key) keyView {
	v := keyView{
		ID: k.ID, Name: k.Name, Environment: k.Environment.String(), Scopes: k.Scopes,
		Hint: k.Hint, State: k.State(time.Now()).String(), CreatedAt: k.CreatedAt, Requests: k.Requests,
	}
	if !k.ExpiresAt.IsZero() {
		v.ExpiresAt = &k.ExpiresAt
	}
	if !k.LastUsedAt.IsZero() {
		v.LastUsedAt = &k.LastUsedAt
	}
	return v
}

func (a *app) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := a.store.List(r.Context(), apikey.Filter{})
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "listing keys failed")
		return
	}
	out := make([]keyView, len(keys))
	for i, k := range keys {
		out[i] = view(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (a *app) createKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name        string         `json:"name"`
		Scopes      []apikey.Scope `json:"scopes"`
		Environment string         `json:"environment"`
		ExpiresIn   string         `json:"expires_in"` // a Go duration, e.g. "720h"
	}
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, http.StatusBadRequest, "body must be JSON: "+err.Error())
		return
	}
	env, err := apikey.ParseEnvironment(in.Environment)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	spec := apikey.KeySpec{Name: in.Name, Scopes: in.Scopes, Environment: env}
	if in.ExpiresIn != "" {
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "expires_in: "+err.Error())
			return
		}
		spec.ExpiresAt = time.Now().Add(d)
	}
	k, secret, err := a.store.Create(r.Context(), spec)
	if err != nil {
		writeManagementError(w, r, err)
		return
	}
	// The only time the secret leaves the server.
	writeJSON(w, http.StatusCreated, map[string]any{"key": view(k), "secret": secret.Reveal()})
}

func (a *app) rollKey(w http.ResponseWriter, r *http.Request) {
	k, secret, err := a.store.Roll(r.Context(), r.PathValue("id"))
	if err != nil {
		writeManagementError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key": view(k), "secret": secret.Reveal()})
}

func (a *app) revokeKey(w http.ResponseWriter, r *http.Request) {
	if err := a.store.Revoke(r.Context(), r.PathValue("id")); err != nil {
		writeManagementError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeManagementError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		writeError(w, r, http.StatusNotFound, "no such key")
	case errors.Is(err, apikey.ErrInvalid):
		writeError(w, r, http.StatusBadRequest, err.Error())
	case errors.Is(err, apikey.ErrRevoked), errors.Is(err, apikey.ErrExpired), errors.Is(err, apikey.ErrAlreadyRolled):
		writeError(w, r, http.StatusConflict, err.Error())
	default:
		writeError(w, r, http.StatusInternalServerError, "key management failed")
	}
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
