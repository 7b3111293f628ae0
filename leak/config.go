package leak

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// Action is what the handler does to a leaked key that works, or could
// work again: an active key (a rolled key in its grace period included)
// or a disabled one. A key already revoked, expired or rolled past its
// grace is left as it is.
type Action int

// The actions. The zero Action is Revoke, the safest.
const (
	// Revoke revokes the key at once and for ever (Manager.Revoke).
	Revoke Action = iota
	// Roll replaces the key by a successor (Manager.Roll): the leaked
	// secret keeps working for Config.Grace, so that its owner can swap
	// it, and the successor has the same name, scopes and owner. A key
	// already rolled keeps the grace its roll gave it.
	Roll
	// Disable switches the key off until its owner switches it on again
	// (Manager.Update, Key.Disabled). A key in its roll grace period,
	// which a store will not update, is revoked instead; its successor is
	// not touched.
	Disable
	// Notify changes nothing: the audit event and Config.OnLeak only.
	Notify
)

// String returns "revoke", "roll", "disable" or "notify".
func (a Action) String() string {
	switch a {
	case Revoke:
		return "revoke"
	case Roll:
		return "roll"
	case Disable:
		return "disable"
	case Notify:
		return "notify"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Config configures a Handler (New). Keys is required; a zero field means
// its default.
type Config struct {
	// Keys: the KeyConfig of the store and the middleware. Required. Its
	// Formats decide which reported tokens may be ours: a token none of
	// them accepts (prefix, length, alphabet, checksum) is a false
	// positive at no store cost; its Peppers are tried as the middleware
	// tries them.
	Keys apikey.KeyConfig
	// Policy is the Action for the leaked keys of each environment.
	// Default Revoke for an environment the map leaves out (a nil map:
	// Revoke for both).
	Policy map[apikey.Environment]Action
	// Grace is how long a leaked secret keeps working after Roll: at most
	// 7 days. Default 1 h.
	Grace time.Duration
	// KeySource gives the public keys GitHub signs reports with. Default
	// GitHubKeys(nil): fetched from GitHub's API, cached.
	KeySource KeySource
	// AnswerRaw puts each reported token back in the answer ("token_raw")
	// instead of its SHA-256 ("token_hash"), which GitHub accepts alike.
	// Default false: the answer never echoes a secret.
	AnswerRaw bool
	// Audit receives one event per key acted on (Actor
	// "github-secret-scanning", Action "leak-revoke", "leak-roll",
	// "leak-disable" or "leak-notify", Detail the URL and source of the
	// leak, never the token), after the action. An error it returns is
	// logged; the action stands. Default nil: nothing recorded.
	Audit manage.AuditSink
	// OnLeak runs once per key acted on, after the action and the audit
	// event, on the request path: to tell the key's owner. A panic is
	// recovered and logged. Default nil.
	OnLeak func(ctx context.Context, f Finding)
	// Logger logs refused reports (Info), keys acted on (Warn), store,
	// key source, audit and hook failures (Warn, Error), never a token.
	// Default nil: not logged.
	Logger *slog.Logger
	// Clock says when a key is found, for its state, Finding.At and
	// Event.At. Default Keys.Clock, else time.Now.
	Clock func() time.Time
	// MaxBody bounds a report's body, in bytes: at most 64 MiB; a larger
	// body is refused (413). Default 1 MiB.
	MaxBody int64
}

// Defaults and limits of Config.
const (
	defaultGrace   = time.Hour
	maxGrace       = 7 * 24 * time.Hour
	defaultMaxBody = 1 << 20
	maxMaxBody     = 64 << 20
)

// check validates c and fills in its defaults.
func (c Config) check() (Config, error) {
	if err := c.Keys.Check(); err != nil {
		return c, fmt.Errorf("leak: New: Config.Keys: %w", err)
	}
	for env, a := range c.Policy {
		if env != apikey.EnvLive && env != apikey.EnvTest {
			return c, fmt.Errorf("leak: New: %w: Config.Policy names environment %d; use apikey.EnvLive or apikey.EnvTest", apikey.ErrInvalid, env)
		}
		if a < Revoke || a > Notify {
			return c, fmt.Errorf("leak: New: %w: Config.Policy[%s] is %s; use Revoke, Roll, Disable or Notify", apikey.ErrInvalid, env, a)
		}
	}
	if c.Grace < 0 || c.Grace > maxGrace {
		return c, fmt.Errorf("leak: New: %w: Config.Grace %v is negative or over 7 days", apikey.ErrInvalid, c.Grace)
	}
	if c.MaxBody < 0 || c.MaxBody > maxMaxBody {
		return c, fmt.Errorf("leak: New: %w: Config.MaxBody %d is negative or over 64 MiB", apikey.ErrInvalid, c.MaxBody)
	}
	c.Grace = cmp.Or(c.Grace, defaultGrace)
	c.MaxBody = cmp.Or(c.MaxBody, defaultMaxBody)
	if c.KeySource == nil {
		c.KeySource = GitHubKeys(nil)
	}
	if c.Clock == nil {
		c.Clock = c.Keys.Clock
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c, nil
}
