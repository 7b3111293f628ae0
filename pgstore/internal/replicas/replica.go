package replicas

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/usage"
)

// ReplicaConfig configures one replica process.
type ReplicaConfig struct {
	PoolDSN      string        // the database through the pool proxy
	ListenDSN    string        // the database through the listen proxy
	Interval     time.Duration // usage flush interval
	FlushTimeout time.Duration // usage flush timeout
	PlainPool    bool          // pgxpool's defaults instead of pgstore.PoolConfig
}

// ParseReplicaFlags parses the replica subcommand's arguments.
func ParseReplicaFlags(args []string) (ReplicaConfig, error) {
	var cfg ReplicaConfig
	fs := flag.NewFlagSet("replica", flag.ContinueOnError)
	fs.StringVar(&cfg.PoolDSN, "pool", "", "DSN of the database, for the pool")
	fs.StringVar(&cfg.ListenDSN, "listen", "", "DSN of the database, for the listening connection")
	fs.DurationVar(&cfg.Interval, "interval", time.Second, "usage flush interval")
	fs.DurationVar(&cfg.FlushTimeout, "flush-timeout", time.Second, "usage flush timeout")
	fs.BoolVar(&cfg.PlainPool, "plain-pool", false, "pgxpool's defaults instead of pgstore.PoolConfig")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.PoolDSN == "" || cfg.ListenDSN == "" {
		return cfg, errors.New("replica: -pool and -listen are required")
	}
	return cfg, nil
}

// Keys is the KeyConfig of the harness: the default format.
func Keys() apikey.KeyConfig {
	return apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
}

// Stats is what a replica's /stats endpoint returns, and what it prints
// on the line starting with FinalPrefix when it stops.
type Stats struct {
	// Cache is cache.Stats as JSON, by field name: the harness reads the
	// fields it knows (Hits, StoreCalls) and passes the others through.
	Cache        map[string]any   `json:"cache"`
	Usage        usage.Stats      `json:"usage"`
	HandlerCalls uint64           `json:"handler_calls"`
	Status       map[int]uint64   `json:"status"`
	Listening    bool             `json:"listening"`
	FeedErrors   uint64           `json:"feed_errors"`
	Extra        map[string]int64 `json:"extra,omitempty"`
}

// CacheCount returns the cache counter named name (0 when absent).
func (s Stats) CacheCount(name string) uint64 {
	if v, ok := s.Cache[name].(float64); ok && v > 0 {
		return uint64(v)
	}
	return 0
}

// The lines a replica prints on stdout.
const (
	PortPrefix  = "PORT "
	FinalPrefix = "FINAL "
)

// replica is one server process's state.
type replica struct {
	cache     *cache.Cache
	rec       *usage.Recorder
	calls     atomic.Uint64
	status    [600]atomic.Uint64
	listening atomic.Bool
	feedErrs  atomic.Uint64
}

// RunReplica runs one replica until ctx is done (SIGTERM), then stops
// gracefully: the HTTP server drains, the recorder flushes, and the final
// stats go to stdout.
func RunReplica(ctx context.Context, cfg ReplicaConfig, stdout io.Writer) error {
	parse := pgstore.PoolConfig
	if cfg.PlainPool {
		parse = pgxpool.ParseConfig
	}
	poolCfg, err := parse(cfg.PoolDSN)
	if err != nil {
		return fmt.Errorf("replica: pool: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg)
	if err != nil {
		return fmt.Errorf("replica: pool: %w", err)
	}
	defer pool.Close()
	keys := Keys()
	store, err := pgstore.New(pool, pgstore.Config{Keys: keys})
	if err != nil {
		return fmt.Errorf("replica: store: %w", err)
	}
	r := &replica{}
	if r.cache, err = cache.New(store, cacheConfig()); err != nil {
		return fmt.Errorf("replica: cache: %w", err)
	}
	if r.rec, err = usage.New(store, usage.Config{Interval: cfg.Interval, FlushTimeout: cfg.FlushTimeout}); err != nil {
		return fmt.Errorf("replica: usage: %w", err)
	}
	mw, err := apikey.New(apikey.Config{Keys: keys, Store: r.cache, Usage: r.rec})
	if err != nil {
		_ = r.rec.Close()
		return fmt.Errorf("replica: middleware: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = r.rec.Close()
		return fmt.Errorf("replica: %w", err)
	}
	listenCtx, stopListening := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = listen(listenCtx, store, cfg.ListenDSN, r.cache, feed{
			ready:   func() { r.listening.Store(true) },
			onError: func(error) { r.feedErrs.Add(1) },
		})
	})
	srv := &http.Server{Handler: r.routes(mw), ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "%s%d\n", PortPrefix, ln.Addr().(*net.TCPAddr).Port)

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("replica: shutdown: %w", serr)
	}
	if cerr := r.rec.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("replica: usage flush: %w", cerr)
	}
	stopListening()
	wg.Wait()
	b, jerr := json.Marshal(r.stats())
	if jerr == nil {
		fmt.Fprintf(stdout, "%s%s\n", FinalPrefix, b)
	}
	return err
}

// routes serves /stats openly and everything else through the middleware
// to a handler that counts its calls.
func (r *replica) routes(mw *apikey.Middleware) http.Handler {
	protected := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.calls.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.stats())
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		protected.ServeHTTP(sw, req)
		if sw.code > 0 && sw.code < len(r.status) {
			r.status[sw.code].Add(1)
		}
	}))
	return mux
}

// stats returns the replica's counters.
func (r *replica) stats() Stats {
	s := Stats{
		Usage:        r.rec.Stats(),
		HandlerCalls: r.calls.Load(),
		Status:       make(map[int]uint64),
		Listening:    r.listening.Load(),
		FeedErrors:   r.feedErrs.Load(),
		Cache:        make(map[string]any),
	}
	for code := range r.status {
		if n := r.status[code].Load(); n > 0 {
			s.Status[code] = n
		}
	}
	if b, err := json.Marshal(r.cache.Stats()); err == nil {
		_ = json.Unmarshal(b, &s.Cache)
	}
	return s
}

// statusWriter remembers the status of the response.
type statusWriter struct {
	http.ResponseWriter
	code    int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.code, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

// StatusName returns a status code as text, "err" for 0 (no answer).
func StatusName(code int) string {
	if code == 0 {
		return "err"
	}
	return strconv.Itoa(code)
}
