// Command chi shows keygate/apikey with the go-chi router. It lives in its
// own module so that the apikey module itself does not depend on chi.
//
//	cd examples/chi && go run . [-addr 127.0.0.1:8080]
//
// It prints a read, a write and an admin key. Every route needs a key
// (r.Use); the method policy asks read for GET and write for POST; the
// /admin group adds mw.Require("admin").
//
// chi's RequestID middleware runs first and the apikey middleware answers
// with its id (Config.RequestID): the same id is in chi's request context,
// the X-Request-Id response header and the request_id of error bodies.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/keygate/apikey"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chi:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("chi", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}

	scopes, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{
		"read": nil, "write": nil, "admin": {"read", "write"},
	})
	if err != nil {
		return err
	}
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: scopes}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		return err
	}
	for _, sc := range []apikey.Scope{"read", "write", "admin"} {
		_, secret, err := store.Create(ctx, apikey.KeySpec{Name: "chi " + string(sc), Scopes: []apikey.Scope{sc}})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s key: %s\n", sc, secret.Reveal())
	}
	mw, err := apikey.New(apikey.Config{
		Keys:         keys,
		Store:        store,
		MethodPolicy: apikey.ReadWritePolicy(),
		// The id chi's RequestID middleware gave the request.
		RequestID: func(_ http.ResponseWriter, r *http.Request) string {
			return middleware.GetReqID(r.Context())
		},
	})
	if err != nil {
		return err
	}

	r := chi.NewRouter()
	r.Use(middleware.RequestID, mw.Handler)
	r.Get("/v1/stepsies", func(w http.ResponseWriter, r *http.Request) {
		key, _ := apikey.FromContext(r.Context())
		writeJSON(w, map[string]any{
			"data": []string{}, "key": key.Name,
			"request_id": middleware.GetReqID(r.Context()),
		})
	})
	r.Post("/v1/stepsies", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	r.Route("/admin", func(r chi.Router) {
		r.Use(mw.Require("admin"))
		r.Get("/keys", func(w http.ResponseWriter, r *http.Request) {
			keys, err := store.List(r.Context(), apikey.Filter{})
			if err != nil {
				http.Error(w, "listing failed", http.StatusInternalServerError)
				return
			}
			names := make([]string, len(keys))
			for i, k := range keys {
				names[i] = k.Name + " " + k.Hint
			}
			writeJSON(w, map[string]any{"data": names})
		})
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
