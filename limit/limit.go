// Package limit enforces per-key rate limits, quotas and credits in
// process, for one server: it is an apikey.Limiter (Config.Limiter of the
// middleware). Package redislimit does the same across servers.
//
// A key's limits are its environment's defaults (Config.Live,
// Config.Test) with the key's own (Key.Limits) laid over them by name.
// Test keys have no default limits unless Config.Test sets some: sandbox
// keys are outside quotas, as Straply promises.
//
//	lim, err := limit.New(limit.Config{Live: []apikey.Limit{
//		{Name: "requests", Count: 100, Per: time.Second, Burst: 200},
//		{Name: "monthly", Count: 1_000_000, Period: "month", Zone: "America/New_York", Owner: true},
//	}})
//	auth, err := apikey.New(apikey.Config{Keys: keys, Store: store, Limiter: lim})
//	mux.Handle("POST /v1/render", auth.Cost(10)(render)) // costs 10
//
// The kinds, and what is exact:
//
//   - A rate (Per) is GCRA: Count per Per refilled continuously, at most
//     Burst (default Count) at once. Over any span of time t from a
//     whole bucket it admits at most Burst + t·Count/Per, never more
//     (the interval Per/Count is rounded up to the nanosecond).
//   - A quota (Period "day" or "month", in Zone) admits at most Count in
//     each calendar period and starts again at the next.
//   - Credits admit exactly Count (each Period, when set) and never more.
//
// A request's cost (1, or the Middleware.Cost on its way) is charged to
// every limit of the key or to none: a request that one limit refuses
// consumes nothing, and neither does one the middleware refuses for any
// other reason. Limits with Owner are counted per owner and environment,
// over all of the owner's keys; the others per lineage (Key.Lineage), so
// a rolled key's successor goes on with its counters.
//
// Allowed requests carry the RateLimit-Policy and RateLimit header fields
// of draft-ietf-httpapi-ratelimit-headers (RateLimit for the limit
// closest to its end), unless Config.NoHeaders; a refused one carries
// them and Retry-After (none when credits without a Period are spent:
// waiting will not help).
//
// Memory: a rate's state is dropped once its bucket is whole again, a
// quota's when its period ends; credits without a Period are kept as
// long as the process. State lives in this process only: a restart
// starts every count afresh. Use redislimit when counts must survive
// restarts or be shared.
package limit

import (
	"time"

	"github.com/keygate/apikey"
)

// Status is what remains of one of a key's limits (Limiter.Status), for
// a management page.
type Status struct {
	Limit     apikey.Limit `json:"limit"`
	Remaining int64        `json:"remaining"`
	// Reset is when the limit is whole again: a rate's bucket full, a
	// quota's next period; zero for credits that never refill.
	Reset time.Time `json:"reset,omitzero"`
}
