package legacy

import (
	"errors"
	"fmt"

	"github.com/keygate/apikey"
)

// ErrBusy is Fallback's error when verifying a credential would exceed
// Config.MaxSlowPerSecond or Config.MaxSlowAtOnce. It does not wrap
// apikey.ErrNotFound: the
// middleware answers 503 with Retry-After, and the client retries.
var ErrBusy = errors.New("legacy: too many slow verifications: over Config.MaxSlowPerSecond or Config.MaxSlowAtOnce")

// Fallback's refusals, values made once so that a flood of them does not
// allocate; both wrap apikey.ErrNotFound (401).
var (
	errNoRecord = fmt.Errorf("legacy: no record matches the credential: %w", apikey.ErrNotFound)
	errMismatch = fmt.Errorf("legacy: the credential does not match its record's hash: %w", apikey.ErrNotFound)
)
