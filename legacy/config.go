package legacy

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/keygate/apikey"
)

// Adder is the store the keys move to: it finds keys by digest, and files
// an existing key under a digest (apikey.MemoryStore and pgstore.Store
// both are). Add refuses an ID or digest already taken with an error
// wrapping apikey.ErrInvalid.
type Adder interface {
	apikey.KeyStore
	Add(ctx context.Context, d apikey.Digest, k *apikey.Key) error
}

// Config configures a Verifier (New). Keys is required; a zero field means
// its default.
type Config struct {
	// Keys: the server's KeyConfig, the one the store and the middleware
	// are given. Migrated keys are filed under its Digest. Required.
	Keys apikey.KeyConfig
	// Records: the old system's keys (ReadRecords). They are kept in
	// memory; each replica loads the same ones, and the store tells every
	// replica which were migrated. Default none.
	Records []Record
	// MaxSlowPerSecond bounds the slow verifications (bcrypt, Argon2id,
	// PBKDF2) the process runs per second, with bursts of as many: beyond
	// it Fallback fails at once with ErrBusy (503 and Retry-After), never
	// waits. Fast hashes (SHA-512, SHA-256, plaintext) are not bounded.
	// Default 50.
	MaxSlowPerSecond int
	// MaxSlowAtOnce bounds the slow verifications running at the same
	// time, whatever the rate: an Argon2id verification holds its memory
	// cost (often around 100 MB) while it runs. Beyond it Fallback fails at
	// once with ErrBusy. Default: the number of CPUs.
	MaxSlowAtOnce int
	// Logger logs each migration (Info), refusals over the bound (Warn, at
	// most once a second) and store failures (Warn): key IDs and schemes,
	// never a credential or hash. Default nil: nothing is logged.
	Logger *slog.Logger
	// Clock tells the time for MaxSlowPerSecond. Default: Keys.Clock, else
	// time.Now.
	Clock func() time.Time
}

// defaultMaxSlowPerSecond is MaxSlowPerSecond's default.
const defaultMaxSlowPerSecond = 50

// defaultMaxSlowAtOnce is MaxSlowAtOnce's default.
var defaultMaxSlowAtOnce = runtime.NumCPU()

// check validates cfg; its errors name the field to change.
func (cfg *Config) check(store Adder) error {
	switch {
	case store == nil:
		return fmt.Errorf("legacy: New: %w: store is nil", apikey.ErrInvalid)
	case cfg.MaxSlowPerSecond < 0:
		return fmt.Errorf("legacy: New: %w: Config.MaxSlowPerSecond is negative", apikey.ErrInvalid)
	case cfg.MaxSlowAtOnce < 0:
		return fmt.Errorf("legacy: New: %w: Config.MaxSlowAtOnce is negative", apikey.ErrInvalid)
	}
	if err := cfg.Keys.Check(); err != nil {
		return fmt.Errorf("legacy: New: Config.Keys: %w", err)
	}
	return nil
}
