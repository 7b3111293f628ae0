package manage

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/limit"
)

// Config configures a Handler (New). Keys and Caller are required; a zero
// field means its default.
type Config struct {
	// Keys: the KeyConfig of the store and the middleware. Required. Its
	// Scopes are the scopes the page offers and the API accepts (a nil
	// ScopeSet: any well-formed scope in the JSON API, none offered on
	// the page); its Clock is the handler's clock.
	Keys apikey.KeyConfig
	// Caller says who is asking: it reads the host's session, or the
	// admin key apikey.FromContext returns. An error wrapping
	// ErrUnauthenticated is a 401, one wrapping ErrForbidden a 403; any
	// other error is a 500, logged and not shown. Required.
	Caller func(r *http.Request) (Caller, error)
	// Path is where the handler is mounted, "/settings/api-keys" say: it
	// strips it from requests and builds every link from it. Mount the
	// handler at Path+"/" and at Path. Default "": at the root.
	Path string
	// Audit receives every management action, after it is done: an error
	// it returns is logged (Logger) and the action stands, the response
	// saying nothing of it. When it is an AuditLog, GET {Path}/api/audit
	// serves it. Default nil: nothing is recorded.
	Audit AuditSink
	// Limits says what remains of a key's limits, which its page and GET
	// {Path}/api/keys/{id}/limits show: give it the limiter the
	// middleware enforces them with (apikey.Config.Limiter), a
	// *limit.Limiter or redislimit's. Default nil: a key's own limits are
	// shown, not what remains of them.
	Limits LimitStatus
	// Style writes the JSON API's 401 and 403, as the protected API
	// writes its own. Default: apikey's default, RFC 9457 problem+json.
	Style apikey.ErrorStyle
	// Grace is how long a rolled key keeps working when the roll does not
	// say. Default 24 h.
	Grace time.Duration
	// Title of the page. Default "API keys".
	Title string
	// TrustedOrigins may send state-changing requests besides the page's
	// own origin ("https://admin.example.com"); see
	// http.CrossOriginProtection.AddTrustedOrigin. Default none.
	TrustedOrigins []string
	// Logger logs failures: the store's, Caller's, the audit sink's.
	// Default nil: not logged.
	Logger *slog.Logger
}

// Caller is who makes a request and which keys they manage.
type Caller struct {
	// ID names who acts, for the audit log: "user_42", a key's ID.
	// Required.
	ID string
	// Owner is whose keys the caller sees and manages (apikey.Key.Owner);
	// required unless Operator.
	Owner string
	// Operator sees and manages every owner's keys; Owner may be empty.
	Operator bool
}

// LimitStatus reports what remains of each of a key's effective limits:
// its environment's defaults with its own (apikey.Key.Limits) laid over
// them. *limit.Limiter satisfies it, and so does redislimit's Limiter.
type LimitStatus interface {
	Status(ctx context.Context, k *apikey.Key) ([]limit.Status, error)
}

// Errors for Config.Caller to wrap.
var (
	// ErrUnauthenticated: nobody is signed in (401).
	ErrUnauthenticated = errors.New("manage: not signed in")
	// ErrForbidden: the caller may not manage keys (403).
	ErrForbidden = errors.New("manage: not allowed")
)

// Limits of the API.
const (
	defaultGrace = 24 * time.Hour
	maxGrace     = 366 * 24 * time.Hour
	maxBody      = 64 << 10
	defaultLimit = 50
	maxLimit     = 200
)
