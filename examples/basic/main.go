// Command basic is a small API protected by keygate/apikey: net/http's
// ServeMux and the in-memory store, nothing else.
//
//	go run ./examples/basic [-addr 127.0.0.1:8080] [-style problem]
//
// At start it creates one test key per scope and prints each once:
//
//	read key: kg_test_…
//	write key: kg_test_…
//	admin key: kg_test_…
//
// Routes (admin implies read and write):
//
//	GET    /v1/stepsies           read
//	POST   /v1/stepsies           write
//	DELETE /v1/stepsies/{id}      write
//	GET    /v1/keys               admin: list keys, never secrets
//	POST   /v1/keys               admin: create a key, its secret shown once
//	POST   /v1/keys/{id}/roll     admin: roll a key (the old one works 24 h more)
//	DELETE /v1/keys/{id}          admin: revoke a key
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
	"github.com/keygate/apikey/usage"
)

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
			Name: "demo " + string(sc), Environment: apikey.EnvTest, Scopes: []apikey.Scope{sc},
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s key: %s\n", sc, secret.Reveal())
	}

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
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		_ = rec.Close()
		return err
	}
	a := &app{keys: store, stepsies: map[string]stepsy{}}
	srv := &http.Server{Handler: mw.Handler(a.routes(mw)), ReadHeaderTimeout: 10 * time.Second}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = rec.Close()
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

// app is the demo API: stepsies in memory, and key management.
type app struct {
	keys apikey.Manager

	mu       sync.Mutex
	next     int
	stepsies map[string]stepsy
}

type stepsy struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

func (a *app) routes(mw *apikey.Middleware) http.Handler {
	mux := http.NewServeMux()
	// The method policy (GET → read; POST, DELETE → write) guards these.
	mux.HandleFunc("GET /v1/stepsies", a.listStepsies)
	mux.HandleFunc("POST /v1/stepsies", a.createStepsy)
	mux.HandleFunc("DELETE /v1/stepsies/{id}", a.deleteStepsy)
	// Key management needs admin, whatever the method.
	admin := mw.Require("admin")
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

// keyView is what the API shows of a key: its record, which never holds
// the secret, and its state now.
type keyView struct {
	*apikey.Key
	State string `json:"state"`
}

func view(k *apikey.Key) keyView { return keyView{k, k.State(time.Now()).String()} }

func (a *app) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := a.keys.List(r.Context(), apikey.Filter{})
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
		Name        string             `json:"name"`
		Scopes      []apikey.Scope     `json:"scopes"`
		Environment apikey.Environment `json:"environment"` // "live" (default) or "test"
		ExpiresIn   string             `json:"expires_in"`  // a Go duration, e.g. "720h"
	}
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, http.StatusBadRequest, "body must be JSON: "+err.Error())
		return
	}
	spec := apikey.KeySpec{Name: in.Name, Scopes: in.Scopes, Environment: in.Environment}
	if in.ExpiresIn != "" {
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "expires_in: "+err.Error())
			return
		}
		spec.ExpiresAt = time.Now().Add(d)
	}
	k, secret, err := a.keys.Create(r.Context(), spec)
	writeIssued(w, r, k, secret, err)
}

func (a *app) rollKey(w http.ResponseWriter, r *http.Request) {
	k, secret, err := a.keys.Roll(r.Context(), r.PathValue("id"), 24*time.Hour)
	writeIssued(w, r, k, secret, err)
}

func (a *app) revokeKey(w http.ResponseWriter, r *http.Request) {
	if err := a.keys.Revoke(r.Context(), r.PathValue("id")); err != nil {
		writeManagementError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeIssued answers a create or a roll: the only time the secret leaves
// the server.
func writeIssued(w http.ResponseWriter, r *http.Request, k *apikey.Key, secret apikey.Secret, err error) {
	if err != nil {
		writeManagementError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key": view(k), "secret": secret.Reveal()})
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
