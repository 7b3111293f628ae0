// Command postgres runs two replicas of a small Stepsies-style API in one
// process, on two ports, sharing one PostgreSQL database through pgstore.
// Each replica has its own connection pool, its own key cache and its own
// LISTEN connection, as separate servers would: a key revoked through one
// replica is rejected by the other within milliseconds.
//
//	APIKEY_DATABASE_URL=postgres://user:pass@localhost:5432/db go run . [-addr1 127.0.0.1:8081] [-addr2 127.0.0.1:8082]
//
// Routes: GET /v1/stepsies (read), POST /v1/keys (admin: create a key; its
// secret is in the response, once) and DELETE /v1/keys/{id} (admin:
// revoke). At start it creates an admin key and a read key and prints them
// with curl commands to try.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/presets"
	"github.com/keygate/apikey/usage"
)

func main() {
	addr1 := flag.String("addr1", "127.0.0.1:8081", "listen address of replica 1")
	addr2 := flag.String("addr2", "127.0.0.1:8082", "listen address of replica 2")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, logger, os.Getenv("APIKEY_DATABASE_URL"), *addr1, *addr2)
	stop()
	if err != nil {
		logger.Error("exiting", "error", err)
		os.Exit(1)
	}
}

// preset is the API this example reproduces, Stepsies: sk_ + 48 hex keys;
// read, write and admin scopes (admin implies both); GET needs read, the
// other methods write.
var preset = presets.Stepsies

func run(ctx context.Context, logger *slog.Logger, dsn string, addrs ...string) error {
	if dsn == "" {
		return errors.New("set APIKEY_DATABASE_URL to a PostgreSQL connection string")
	}
	// The invalidation feeds stop only after the HTTP servers have
	// drained, not at the signal.
	listenCtx, stopListening := context.WithCancel(context.Background())
	var replicas []*replica
	defer func() {
		stopListening()
		for _, r := range replicas {
			r.close()
		}
	}()
	for i, addr := range addrs {
		r, err := newReplica(ctx, listenCtx, logger.With("replica", i+1), dsn, addr)
		if err != nil {
			return err
		}
		replicas = append(replicas, r)
	}
	for _, r := range replicas {
		if err := r.waitListening(ctx); err != nil {
			return err
		}
	}
	if err := bootstrap(ctx, replicas[0].store, addrs); err != nil {
		return err
	}

	errc := make(chan error, len(replicas))
	for _, r := range replicas {
		go func() { errc <- r.serve() }()
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-errc:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() { r.shutdown(shutdownCtx) })
	}
	wg.Wait()
	return nil
}

// replica is one API server: what would be one process in production.
type replica struct {
	logger    *slog.Logger
	pool      *pgxpool.Pool
	store     *pgstore.Store
	cache     *cache.Cache
	usage     *usage.Recorder
	server    *http.Server
	ln        net.Listener  // bound before the keys are printed
	listening chan struct{} // closed when its invalidation feed is up
	listened  chan struct{} // closed when Listen has returned
}

func newReplica(ctx, listenCtx context.Context, logger *slog.Logger, dsn, addr string) (*replica, error) {
	// PoolConfig: pgxpool's settings, tuned to recover within seconds
	// from a network fault.
	poolCfg, err := pgstore.PoolConfig(dsn)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	r, err := setUp(ctx, listenCtx, logger, pool, addr)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return r, nil
}

// setUp builds a replica on pool; the caller closes the pool on error.
func setUp(ctx, listenCtx context.Context, logger *slog.Logger, pool *pgxpool.Pool, addr string) (*replica, error) {
	// readme:wiring
	keys := preset.Keys() // one KeyConfig for the store and the middleware
	store, err := pgstore.New(pool, pgstore.Config{Keys: keys})
	if err != nil {
		return nil, err
	}
	// Every replica migrates at start; an advisory lock serialises them
	// and all but the first find nothing to do.
	err = store.Migrate(ctx) // explicit, idempotent, versioned
	if err != nil {
		return nil, err
	}
	c, err := cache.New(store, cache.Config{TTL: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	rec, err := usage.New(store, usage.Config{Interval: 5 * time.Second, Logger: logger})
	if err != nil {
		return nil, err
	}
	cfg := preset.Config(keys, c) // apikey.Config{Keys: keys, Store: c, ...}
	cfg.Logger, cfg.Usage = logger, rec
	mw, err := apikey.New(cfg)
	if err != nil {
		_ = rec.Close()
		return nil, err
	}
	// readme:end
	r := &replica{
		logger:    logger,
		pool:      pool,
		store:     store,
		cache:     c,
		usage:     rec,
		listening: make(chan struct{}),
		listened:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stepsies", r.listStepsies)
	mux.Handle("POST /v1/keys", mw.Require("admin")(http.HandlerFunc(r.createKey)))
	mux.Handle("DELETE /v1/keys/{id}", mw.Require("admin")(http.HandlerFunc(r.revokeKey)))
	r.server = &http.Server{Addr: addr, Handler: mw.Handler(mux), ReadHeaderTimeout: 5 * time.Second}
	// Bind now, so that the curl lines printed at start work at once.
	if r.ln, err = net.Listen("tcp", addr); err != nil {
		_ = rec.Close()
		return nil, err
	}

	var once sync.Once
	// readme:listen
	go func() {
		defer close(r.listened)
		_ = store.Listen(listenCtx, pgstore.ListenConfig{
			OnInvalidate: func(inv pgstore.Invalidation) {
				logger.Info("invalidation", "key_id", inv.KeyID)
				c.Invalidate(inv.Digest)
				c.InvalidateKey(inv.KeyID)
			},
			// While the feed keeps up, cached keys live for their TTL; when
			// it falls behind, they are checked with the database again.
			OnSync: func(asOf time.Time) {
				c.Synced(asOf)
				once.Do(func() { close(r.listening) })
			},
			// Only what the log cannot tell is forgotten.
			OnGap:   c.Purge,
			OnError: func(err error) { logger.Warn("invalidation feed", "error", err) },
		})
	}()
	// readme:end
	return r, nil
}

func (r *replica) waitListening(ctx context.Context) error {
	select {
	case <-r.listening:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *replica) serve() error {
	r.logger.Info("listening", "addr", r.server.Addr)
	if err := r.server.Serve(r.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", r.server.Addr, err)
	}
	return nil
}

// shutdown drains the HTTP server.
func (r *replica) shutdown(ctx context.Context) {
	if err := r.server.Shutdown(ctx); err != nil {
		r.logger.Warn("shutdown", "error", err)
	}
}

// close flushes the usage counts and releases what newReplica acquired.
// The caller has cancelled the listeners' context.
func (r *replica) close() {
	if err := r.usage.Close(); err != nil {
		r.logger.Warn("usage flush", "error", err)
	}
	<-r.listened
	r.pool.Close()
}

func (r *replica) listStepsies(w http.ResponseWriter, req *http.Request) {
	key, _ := apikey.FromContext(req.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"data":   []map[string]any{{"id": "step_1", "steps": 10234}, {"id": "step_2", "steps": 8765}},
		"key":    key.Name,
		"server": r.server.Addr,
	})
}

type createRequest struct {
	Name      string         `json:"name"`
	Scopes    []apikey.Scope `json:"scopes"`
	ExpiresAt time.Time      `json:"expires_at,omitzero"`
}

func (r *replica) createKey(w http.ResponseWriter, req *http.Request) {
	var in createRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "Body must be JSON: {\"name\", \"scopes\"}"))
		return
	}
	key, secret, err := r.store.Create(req.Context(), apikey.KeySpec{Name: in.Name, Scopes: in.Scopes, ExpiresAt: in.ExpiresAt})
	switch {
	case errors.Is(err, apikey.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", err.Error()))
		return
	case err != nil:
		r.logger.Error("create key", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody("unavailable", "Try again later"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	// The only time the secret leaves the server.
	writeJSON(w, http.StatusCreated, map[string]any{"key": key, "secret": secret.Reveal()})
}

func (r *replica) revokeKey(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	err := r.store.Revoke(req.Context(), id)
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody("not_found", "No such key"))
		return
	case err != nil:
		r.logger.Error("revoke key", "key_id", id, "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody("unavailable", "Try again later"))
		return
	}
	// This replica forgets the key at once; the others when the
	// notification reaches them.
	r.cache.InvalidateKey(id)
	w.WriteHeader(http.StatusNoContent)
}

func errorBody(code, message string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": message}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// bootstrap creates an admin key and a read key and prints them with curl
// commands that show a revocation on one replica reaching the other.
func bootstrap(ctx context.Context, store *pgstore.Store, addrs []string) error {
	admin, adminSecret, err := store.Create(ctx, apikey.KeySpec{Name: "example admin", Scopes: []apikey.Scope{"admin"}})
	if err != nil {
		return err
	}
	read, readSecret, err := store.Create(ctx, apikey.KeySpec{Name: "example reader", Scopes: []apikey.Scope{"read"}})
	if err != nil {
		return err
	}
	a, b := "http://"+addrs[0], "http://"+addrs[len(addrs)-1]
	fmt.Printf(`admin key: %s   (%s)
read key:  %s   (%s)

# read through replica 2 (200):
curl -si %s/v1/stepsies -H "Authorization: Bearer %s"
# create a key through replica 1 (admin):
curl -si -X POST %s/v1/keys -H "Authorization: Bearer %s" -d '{"name":"ci","scopes":["read"]}'
# revoke the read key through replica 1 (204):
curl -si -X DELETE %s/v1/keys/%s -H "Authorization: Bearer %s"
# the read key is now rejected by replica 2 (401):
curl -si %s/v1/stepsies -H "Authorization: Bearer %s"

`, adminSecret.Reveal(), admin.ID, readSecret.Reveal(), read.ID,
		b, readSecret.Reveal(),
		a, adminSecret.Reveal(),
		a, read.ID, adminSecret.Reveal(),
		b, readSecret.Reveal())
	return nil
}
