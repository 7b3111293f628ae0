package apikey

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/apikey/internal/limits"
)

// Limit is one named allowance of a key (Config.Limiter enforces it):
//
//	rate     Count per Per, Burst (default Count) at once (GCRA)
//	quota    Count per calendar Period, "day" or "month" in Zone (IANA)
//	credits  Credits: Count in all, or each Period
//
// Names: 1 to 64 of a-z 0-9 _ - . Count < 0 lifts the default of that
// Name. Owner shares it among all of Key.Owner's keys.
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

// Limiter enforces keys' limits (package limit, redislimit). Take charges
// cost to every limit of k or to none (false: 429) and sets the RateLimit
// fields on h; its error is a 503. Give returns a charge.
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
