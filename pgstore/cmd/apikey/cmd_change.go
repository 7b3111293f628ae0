package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/apikey"
)

var cmdRevoke = &command{
	name:    "revoke",
	args:    "ID [--yes]",
	summary: "revoke a key: at once, everywhere, for ever",
	help: `
Revokes the key: every server refuses it from now on (with PostgreSQL,
every replica within milliseconds, through the invalidation log). It asks
for confirmation unless --yes is given, and refuses without a terminal.`,
	common: true,
	run:    runRevoke,
}

func runRevoke(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	args, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return a.withStore(false, func(s store) error {
		k, err := a.get(ctx, s, args[0])
		if err != nil {
			return err
		}
		if !k.RevokedAt.IsZero() {
			fmt.Fprintf(a.stderr, "Key %s was already revoked at %s.\n", k.ID, fullTime(k.RevokedAt))
			return nil
		}
		if err := a.confirm(*yes, "Revoke key "+describeKey(k.ID, k.Name, k.Owner)+"? It stops working at once, for ever."); err != nil {
			return err
		}
		if err := a.call(ctx, func(ctx context.Context) error { return s.Revoke(ctx, k.ID) }); err != nil {
			return fmt.Errorf("revoke %s: %w", k.ID, err)
		}
		fmt.Fprintf(a.stderr, "Revoked key %s.\n", k.ID)
		a.record(ctx, s, "revoke", k, "")
		return nil
	})
}

var cmdRoll = &command{
	name:    "roll",
	args:    "ID [--grace 24h] [--yes]",
	summary: "replace a key by a new one; the successor's secret alone goes to stdout",
	help: `
Rolls the key: a successor with a new secret and the same name, owner,
scopes and expiry replaces it, and the old secret keeps working for the
grace period (0: it stops at once). The successor's secret is written
alone to stdout; everything else goes to stderr. It asks for confirmation
unless --yes is given, and refuses without a terminal.`,
	common: true,
	run:    runRoll,
}

func runRoll(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	graceFlag := fs.String("grace", "24h", "how long the old secret keeps working: 24h, 7d, 0")
	args, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	grace, err := parseDuration(*graceFlag)
	if err != nil || grace < 0 {
		return usagef("--grace %q: want a duration like 24h, 7d or 0", *graceFlag)
	}
	return a.withStore(false, func(s store) error {
		old, err := a.get(ctx, s, args[0])
		if err != nil {
			return err
		}
		until := "at once"
		if grace > 0 {
			until = "at " + fullTime(a.now().Add(grace))
		}
		if err := a.confirm(*yes, "Roll key "+describeKey(old.ID, old.Name, old.Owner)+"? The old secret stops working "+until+"."); err != nil {
			return err
		}
		var (
			k      *apikey.Key
			secret apikey.Secret
		)
		err = a.call(ctx, func(ctx context.Context) (err error) {
			k, secret, err = s.Roll(ctx, old.ID, grace)
			return err
		})
		if err != nil {
			return fmt.Errorf("roll %s: %w", old.ID, err)
		}
		if _, err := fmt.Fprintln(a.stdout, secret.Reveal()); err != nil {
			return fmt.Errorf("write the secret: %w (the key %s exists: revoke it)", err, k.ID)
		}
		fmt.Fprintf(a.stderr, "Rolled key %s to %s, hint %s; the old secret stops working %s.\n", old.ID, k.ID, k.Hint, until)
		fmt.Fprintln(a.stderr, "The new secret is on stdout, shown this once: the store keeps only its digest.")
		a.record(ctx, s, "roll", old, "successor "+k.ID)
		return nil
	})
}

var cmdDisable = &command{
	name:    "disable",
	args:    "ID [--yes]",
	summary: "switch a key off until enabled again",
	help: `
Switches the key off: servers refuse it as if revoked until apikey enable
switches it on again. It asks for confirmation unless --yes is given, and
refuses without a terminal.`,
	common: true,
	run: func(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
		return runSwitch(a, ctx, fs, args, true)
	},
}

var cmdEnable = &command{
	name:    "enable",
	args:    "ID",
	summary: "switch a disabled key on again",
	common:  true,
	run: func(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
		return runSwitch(a, ctx, fs, args, false)
	},
}

// runSwitch disables (off) or enables a key.
func runSwitch(a *app, ctx context.Context, fs *flag.FlagSet, args []string, off bool) error {
	var yes *bool
	if off {
		yes = fs.Bool("yes", false, "do not ask for confirmation")
	}
	args, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	action := map[bool]string{true: "disable", false: "enable"}[off]
	return a.withStore(false, func(s store) error {
		k, err := a.get(ctx, s, args[0])
		if err != nil {
			return err
		}
		if k.Disabled == off {
			fmt.Fprintf(a.stderr, "Key %s is already %sd.\n", k.ID, action)
			return nil
		}
		if off {
			if err := a.confirm(*yes, "Disable key "+describeKey(k.ID, k.Name, k.Owner)+"?"); err != nil {
				return err
			}
		}
		err = a.call(ctx, func(ctx context.Context) (err error) {
			k, err = s.Update(ctx, k.ID, func(k *apikey.Key) error {
				k.Disabled = off
				return nil
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s %s: %w", action, args[0], err)
		}
		fmt.Fprintf(a.stderr, "Key %s is %sd: it is %s.\n", k.ID, action, k.State(a.now()))
		a.record(ctx, s, action, k, "")
		return nil
	})
}

var cmdUpdate = &command{
	name:    "update",
	args:    "ID [--name N] [--scopes LIST] [--add-scope S]… [--remove-scope S]… [--expires T|never] [--yes] [--json]",
	summary: "change a key's name, scopes or expiry, in place",
	help: `
Changes the key in place: the same secret works with the new settings on
every server at once. --scopes sets the whole list ("" for none);
--add-scope and --remove-scope change it. --expires takes an RFC 3339
time, a date, a duration from now (90d), or never. An update that removes
scopes asks for confirmation unless --yes is given, and refuses without a
terminal. The updated key is written to stdout.`,
	common: true,
	run:    runUpdate,
}

// keyChange is what update changes.
type keyChange struct {
	name        *string
	scopes      []apikey.Scope // set, when setScopes
	setScopes   bool
	add, remove []apikey.Scope
	expires     time.Time
	setExpires  bool
}

// apply changes k.
func (c *keyChange) apply(k *apikey.Key) error {
	if c.name != nil {
		k.Name = *c.name
	}
	if c.setScopes {
		k.Scopes = slices.Clone(c.scopes)
	}
	for _, s := range c.add {
		if !slices.Contains(k.Scopes, s) {
			k.Scopes = append(k.Scopes, s)
		}
	}
	k.Scopes = slices.DeleteFunc(k.Scopes, func(s apikey.Scope) bool { return slices.Contains(c.remove, s) })
	if c.setExpires {
		k.ExpiresAt = c.expires
	}
	return nil
}

func runUpdate(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	var (
		c                    keyChange
		name, scopes, expire string
		add, remove          listFlag
	)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	asJSON := fs.Bool("json", false, "write the updated key as JSON")
	fs.StringVar(&name, "name", "", "the new name")
	fs.StringVar(&scopes, "scopes", "", "the key's scopes, comma-separated, replacing its own (\"\" for none)")
	fs.Var(&add, "add-scope", "add a scope; repeat it, or give a comma-separated list")
	fs.Var(&remove, "remove-scope", "remove a scope; repeat it, or give a comma-separated list")
	fs.StringVar(&expire, "expires", "", "the new expiry: RFC 3339, a date, a duration (90d), or never")
	args, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			c.name = &name
		case "scopes":
			c.setScopes, c.scopes = true, listFlag(splitList(scopes)).scopes()
		case "expires":
			c.setExpires = true
		}
	})
	c.add, c.remove = add.scopes(), remove.scopes()
	if c.setExpires && expire != "never" {
		if c.expires, err = parseExpiry(expire, a.now()); err != nil {
			return err
		}
	}
	if c.name == nil && !c.setScopes && !c.setExpires && len(c.add) == 0 && len(c.remove) == 0 {
		return usagef("nothing to change: give --name, --scopes, --add-scope, --remove-scope or --expires")
	}
	return a.withStore(false, func(s store) error {
		old, err := a.get(ctx, s, args[0])
		if err != nil {
			return err
		}
		preview := old.Clone()
		_ = c.apply(preview)
		if lost := removedScopes(old.Scopes, preview.Scopes); len(lost) > 0 {
			q := fmt.Sprintf("Remove scopes %s from key %s?", scopeList(lost), describeKey(old.ID, old.Name, old.Owner))
			if err := a.confirm(*yes, q); err != nil {
				return err
			}
		}
		var k *apikey.Key
		err = a.call(ctx, func(ctx context.Context) (err error) {
			k, err = s.Update(ctx, old.ID, c.apply)
			return err
		})
		if err != nil {
			return fmt.Errorf("update %s: %w", old.ID, err)
		}
		fmt.Fprintf(a.stderr, "Updated key %s.\n", k.ID)
		a.record(ctx, s, "update", k, changes(old, k))
		if *asJSON {
			return writeJSON(a.stdout, k)
		}
		return writeKeyDetail(a.stdout, k, a.now())
	})
}

// removedScopes returns the scopes of old that new lacks.
func removedScopes(old, new []apikey.Scope) []apikey.Scope {
	var out []apikey.Scope
	for _, s := range old {
		if !slices.Contains(new, s) {
			out = append(out, s)
		}
	}
	return out
}

// changes describes an update for the audit log, as the API Keys page
// does: "scopes: read → read write".
func changes(old, k *apikey.Key) string {
	var parts []string
	if old.Name != k.Name {
		parts = append(parts, fmt.Sprintf("name: %s → %s", old.Name, k.Name))
	}
	if !slices.Equal(old.Scopes, k.Scopes) {
		parts = append(parts, fmt.Sprintf("scopes: %s → %s", scopeWords(old.Scopes), scopeWords(k.Scopes)))
	}
	if !old.ExpiresAt.Equal(k.ExpiresAt) {
		parts = append(parts, fmt.Sprintf("expires: %s → %s", expiry(old.ExpiresAt), expiry(k.ExpiresAt)))
	}
	return strings.Join(parts, "; ")
}

func scopeWords(scopes []apikey.Scope) string {
	return strings.ReplaceAll(scopeList(scopes), ",", " ")
}
