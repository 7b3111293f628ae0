// Command stax reproduces the Stax.ai developer API's authentication with
// presets.Stax: 40-character keys of [a-z0-9] without a prefix, for team
// administrators only, sent with an Email header that must match the key's
// owner; every authentication failure answers HTTP 200 with
//
//	{"success":false,"authError":true,"error":"Invalid authorization request"}
//
// Run it with
//
//	go run ./examples/stax [-addr 127.0.0.1:8080] [-owner admin@example.com]
//
// It prints an administrator key, a member key (no scope: a valid key
// that is refused) and the owner to send in the Email header.
package main

import (
	"context"
	"encoding/json"
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

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/presets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stax:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("stax", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	owner := fs.String("owner", "admin@example.com", "e-mail address that owns the printed keys")
	if err := fs.Parse(args); err != nil {
		return err
	}

	keys := presets.Stax.Keys()
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		return err
	}
	// The preset declares one scope, admin; a team member's key has none.
	for _, k := range []struct {
		role   string
		scopes []apikey.Scope
	}{{"admin", []apikey.Scope{"admin"}}, {"member", nil}} {
		_, secret, err := store.Create(ctx, apikey.KeySpec{Name: k.role, Owner: *owner, Scopes: k.scopes})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s key: %s\n", k.role, secret.Reveal())
	}
	fmt.Fprintf(out, "owner: %s\n", *owner)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /stacks", func(w http.ResponseWriter, r *http.Request) {
		key, _ := apikey.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "team": key.Owner, "stacks": []string{"invoices", "contracts"}})
	})
	mw, err := apikey.New(presets.Stax.Config(keys, store))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "listening on %s\n", base)
	fmt.Fprintf(out, "try:\n  curl -i -H \"Email: %[2]s\" -H \"Authorization: Bearer $ADMIN_KEY\" %[1]s/stacks\n"+
		"  curl -i -H \"Email: someone@else.com\" -H \"Authorization: Bearer $ADMIN_KEY\" %[1]s/stacks   # 200, authError\n", base, *owner)
	srv := &http.Server{Handler: mw.Handler(mux), ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
