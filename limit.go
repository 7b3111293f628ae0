package apikey

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/apikey/internal/limits"
)

// Limit is one named allowance of a key, enforced by Config.Limiter
// (package limit in process, redislimit across servers). Its fields say
// which kind:
//
//	rate     Count per Per, refilled continuously, Burst (default Count) at once (GCRA); a long Per is a rolling quota
//	quota    Count per calendar Period, "day" or "month" in Zone (IANA, default UTC)
//	credits  Credits: a balance of Count, refilled each Period when one is set
//
// Names are 1 to 64 of a-z, 0-9, '_', '-', '.'. Count < 0 lifts the
// default limit of that Name. Owner counts it over all of Key.Owner's keys.
type Limit struct {
	Name    string        `json:"name"`
	Count   int64         `json:"count"`
	Per     time.Duration `json:"per,omitzero"`
	Burst   int64         `json:"burst,omitzero"`
	Period  string        `json:"period,omitempty"`
	Zone    string        `json:"zone,omitempty"`
	Credits bool          `json:"credits,omitzero"`
	Owner   bool          `json:"owner,omitzero"`
}

// Limiter enforces keys' limits (Config.Limiter). Take charges cost to
// every limit of k, or to none: false when one cannot pay (429); it sets
// the RateLimit fields (and Retry-After) on h. An error is the limiter's
// fault (503). Give returns a charge the request did not use.
type Limiter interface {
	Take(ctx context.Context, k *Key, cost int64, h http.Header) (bool, error)
	Give(ctx context.Context, k *Key, cost int64)
}

// checkLimits checks a key's limits: each one's fields, no name twice.
func checkLimits(list []Limit) error {
	specs := make([]limits.Spec, len(list))
	for i, l := range list {
		specs[i] = limits.Spec(l)
	}
	if err := limits.CheckAll(specs); err != nil {
		return fmt.Errorf("%w: KeySpec.Limits: %w", ErrInvalid, err)
	}
	return nil
}
