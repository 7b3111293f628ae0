package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/keygate/apikey"
)

var cmdCreate = &command{
	name:    "create",
	args:    "--name NAME [--owner OWNER] [--scope SCOPE]… [--env live|test] [--expires T]",
	summary: "create a key; its secret alone goes to stdout",
	help: `
The new key's secret is written alone, on one line, to stdout, and nowhere
else: it is shown once, and the store keeps only its digest. Its ID, hint
and the rest go to stderr. Capture it with apikey create … > secret.txt, or
pipe it to your secret manager.

--expires takes an RFC 3339 time, a date or a duration from now (90d, 36h).
Creating a key in a key file that does not exist yet creates the file.`,
	common: true,
	run:    runCreate,
}

func runCreate(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	var (
		name, owner, env, expires string
		scopes                    listFlag
	)
	fs.StringVar(&name, "name", "", "the key's name, shown in lists (required)")
	fs.StringVar(&owner, "owner", "", "the account the key belongs to")
	fs.Var(&scopes, "scope", "a scope the key holds; repeat it, or give a comma-separated list")
	fs.StringVar(&env, "env", "live", "the key's environment: live or test")
	fs.StringVar(&expires, "expires", "", "when the key stops working: RFC 3339, a date, or a duration (90d); default never")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	spec := apikey.KeySpec{Name: name, Owner: owner, Scopes: scopes.scopes()}
	if name == "" {
		return usagef("--name is required")
	}
	var err error
	if spec.Environment, err = parseEnvironment(env); err != nil {
		return err
	}
	if expires != "" {
		if spec.ExpiresAt, err = parseExpiry(expires, a.now()); err != nil {
			return err
		}
	}
	return a.withStore(true, func(s store) error {
		var (
			k      *apikey.Key
			secret apikey.Secret
		)
		err := a.call(ctx, func(ctx context.Context) (err error) {
			k, secret, err = s.Create(ctx, spec)
			return err
		})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintln(a.stdout, secret.Reveal()); err != nil {
			return fmt.Errorf("write the secret: %w (the key %s exists: revoke it)", err, k.ID)
		}
		fmt.Fprintf(a.stderr, "Created key %s: %s, scopes %s, expires %s, hint %s.\n",
			describeKey(k.ID, k.Name, k.Owner), k.Environment, scopeList(k.Scopes), expiry(k.ExpiresAt), k.Hint)
		fmt.Fprintln(a.stderr, "The secret is on stdout, shown this once: the store keeps only its digest.")
		a.record(ctx, s, "create", k, "scopes: "+scopeList(k.Scopes))
		return nil
	})
}

// expiry says when a key expires: a time, or "never".
func expiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fullTime(t)
}
