// Command example serves an API protected by keygate/apikey, instrumented
// with package apikeyotel, and exposes the metrics to Prometheus through
// the OpenTelemetry Prometheus exporter.
//
//	go run ./example [-addr 127.0.0.1:8080]
//
// At start it creates one read key and prints it once, then the address:
//
//	read key: kg_test_…
//	metrics: http://127.0.0.1:8080/metrics
//	listening on http://127.0.0.1:8080
//
// Routes:
//
//	GET  /v1/reports   needs the read scope
//	POST /v1/reports   needs the write scope (the read key gets 403)
//	GET  /metrics      Prometheus text format, without a key
//
// Try:
//
//	curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/v1/reports
//	curl http://127.0.0.1:8080/metrics | grep ^apikey_
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	apikeyotel "github.com/keygate/apikey/otel"
	"github.com/keygate/apikey/usage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}

	// Metrics: an SDK MeterProvider whose reader is the Prometheus
	// exporter, on a registry of its own.
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		return err
	}
	_, secret, err := store.Create(ctx, apikey.KeySpec{Name: "reports", Environment: apikey.EnvTest, Scopes: []apikey.Scope{"read"}})
	if err != nil {
		return err
	}

	// DurationEvery 1 times every request, for a demo whose few requests
	// should all show; the default times one in 64.
	// readme:instrument
	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: mp, DurationEvery: 1}) // default provider: otel.GetMeterProvider()
	if err != nil {
		return err
	}
	defer inst.Close()

	// A cache in front of the store (as for pgstore), and a usage recorder.
	c, err := cache.New(store, cache.Config{OnBreaker: inst.OnBreaker(nil)}) // counts openings, then calls its argument
	if err != nil {
		return err
	}
	err = inst.ObserveCache(c) // the cache's Stats, read at each collection
	if err != nil {
		return err
	}
	rec, err := usage.New(store, usage.Config{})
	if err != nil {
		return err
	}
	defer rec.Close()
	err = inst.ObserveUsage(rec) // the recorder's Stats
	if err != nil {
		return err
	}
	// With pgstore's invalidation feed, chain the lag gauge before Synced:
	//	go pg.Listen(ctx, pgstore.ListenConfig{OnInvalidate: ..., OnGap: c.Purge, OnSync: inst.FeedLag(c.Synced)})

	cfg := apikey.Config{Keys: keys, Store: c, MethodPolicy: apikey.ReadWritePolicy(), Usage: rec}
	inst.Instrument(&cfg) // sets OnAuthenticated and OnRejected; hooks already set still run
	mw, err := apikey.New(cfg)
	if err != nil {
		return err
	}
	// readme:end
	api := http.NewServeMux()
	api.HandleFunc("GET /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		fmt.Fprintf(w, "reports for %s\n", k.Name)
	})
	api.HandleFunc("POST /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	// readme:serve
	root := http.NewServeMux()
	root.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	root.Handle("/", inst.Wrap(mw, api)) // mw.Handler(api), timed
	// readme:end

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "read key: %s\n", secret.Reveal())
	fmt.Fprintf(out, "metrics: %s/metrics\n", base)
	fmt.Fprintf(out, "listening on %s\n", base)

	srv := &http.Server{Handler: root, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
