// Package testkit holds what the tests of several packages of this module
// share: a handler that reports what the middleware attached, and a buffer
// safe for concurrent writers (loggers, http.Server's error log).
package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/keygate/apikey"
)

// OKHandler answers 200 with a JSON object: "authenticated", the request
// id, and the key's ID and environment when a key was attached.
func OKHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := apikey.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		out := map[string]any{"request_id": apikey.RequestID(r.Context()), "authenticated": ok}
		if ok {
			out["key_id"] = k.ID
			out["environment"] = k.Environment.String()
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

// Buffer is a bytes.Buffer safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StoreFunc adapts a function to apikey.KeyStore, for tests that decorate
// or fake a store.
type StoreFunc func(ctx context.Context, d apikey.Digest) (*apikey.Key, error)

// Lookup calls f.
func (f StoreFunc) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	return f(ctx, d)
}
