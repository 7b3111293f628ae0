// Command loadserver serves GET /v1/ping for load tests (wrk.sh), with or
// without the apikey middleware in front of it.
//
//	go run ./cmd/loadserver -auth=true  [-addr 127.0.0.1:8089] [-keys 100000]
//	go run ./cmd/loadserver -auth=false [-addr 127.0.0.1:8089]
//
// -cpuprofile FILE writes a CPU profile of the whole run (for go tool
// pprof) when the server stops. -resident with -auth=false fills the store
// all the same and keeps it alive, unused: the cost of holding the keys
// (the garbage collector scans them) without the middleware's.
//
// With -auth=true it fills a MemoryStore with -keys keys (default format,
// read scope) and wraps the mux in the apikey middleware with the usual
// method policy (apikey.ReadWritePolicy: GET needs read) and otherwise its
// defaults. One key is made with MemoryStore.Create, the rest are filed
// with MemoryStore.Add (package keyfill): a million keys take seconds.
//
// With a store it logs what the keys cost in memory, measured with
// runtime/metrics after runtime.GC() before and after filling the store,
// as (with keys − without keys) / keys, in one line that wrk.sh reads:
//
//	loadserver: keys=1000000 heap_bytes_per_key=434.1 scan_bytes_per_key=385.0
//
// heap is /gc/heap/live:bytes (live heap objects), scan is
// /gc/scan/heap:bytes (the part of the heap the garbage collector scans
// for pointers: the work each GC cycle does for the keys).
//
// Once it listens it prints one key on stdout: a valid one with -auth=true,
// one of the same format that nothing checks with -auth=false (so that
// both runs send the same request bytes). It logs to stderr and stops on
// SIGINT or SIGTERM.
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
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/bench/internal/keyfill"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	auth := fs.Bool("auth", true, "put the apikey middleware in front of the handler")
	addr := fs.String("addr", "127.0.0.1:8089", "listen address")
	keys := fs.Int("keys", 100_000, "keys in the memory store (with -auth)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file when the server stops")
	resident := fs.Bool("resident", false, "with -auth=false, fill the store anyway and keep it unused")
	if err := fs.Parse(args); err != nil {
		return err
	}
	before := readHeap()
	h, key, store, err := newHandler(ctx, *auth, *resident, *keys)
	if err != nil {
		return err
	}
	if store != nil {
		after := readHeap()
		runtime.KeepAlive(store)
		n := float64(*keys)
		fmt.Fprintf(stderr, "loadserver: keys=%d heap_bytes_per_key=%.1f scan_bytes_per_key=%.1f\n", *keys,
			(float64(after.live)-float64(before.live))/n, (float64(after.scan)-float64(before.scan))/n)
	}
	defer runtime.KeepAlive(store) // for -resident
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "loadserver: listening on %s (auth=%t)\n", ln.Addr(), *auth)
	fmt.Fprintln(stdout, key)

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

// heap is what readHeap measures.
type heap struct{ live, scan uint64 }

// readHeap runs a garbage collection and reads the live heap and the
// scannable heap from runtime/metrics.
func readHeap() heap {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	var h heap
	if s[0].Value.Kind() == metrics.KindUint64 {
		h.live = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		h.scan = s[1].Value.Uint64()
	}
	return h
}

var pong = []byte("pong\n")

// newHandler returns the server's handler, the key to send and the store
// (nil when neither auth nor resident).
func newHandler(ctx context.Context, auth, resident bool, n int) (http.Handler, string, *apikey.MemoryStore, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(pong)
	})
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	if !auth && !resident {
		issued, err := keys.NewKey(apikey.KeySpec{Name: "load test"})
		if err != nil {
			return nil, "", nil, err
		}
		return mux, issued.Secret.Reveal(), nil, nil
	}
	if n < 1 {
		return nil, "", nil, fmt.Errorf("-keys %d: need at least one key", n)
	}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		return nil, "", nil, err
	}
	spec := apikey.KeySpec{Name: "load test", Scopes: []apikey.Scope{"read"}}
	if _, err := keyfill.Fill(ctx, store, n-1, keyfill.Spec{Name: spec.Name, Scopes: spec.Scopes, Seed: 1}); err != nil {
		return nil, "", nil, err
	}
	// The key sent, made properly, last (keyfill's IDs sort before it).
	_, secret, err := store.Create(ctx, spec)
	if err != nil {
		return nil, "", nil, err
	}
	key := secret.Reveal()
	if !auth {
		return mux, key, store, nil
	}
	mw, err := apikey.New(apikey.Config{Keys: keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()})
	if err != nil {
		return nil, "", nil, err
	}
	return mw.Handler(mux), key, store, nil
}
