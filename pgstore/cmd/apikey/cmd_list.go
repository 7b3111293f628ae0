package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/keygate/apikey"
)

var cmdList = &command{
	name:    "list",
	args:    "[--owner OWNER] [--state STATE] [--env live|test] [--unused-days N] [--limit N] [--after ID] [--json]",
	summary: "list keys, oldest first",
	help: `
Lists the keys that match every filter given, oldest first, as a table or,
with --json, as a JSON array of keys. --state is active, revoked, expired,
rolled or disabled. --unused-days N keeps the keys not used for N days or
never used. --limit N stops after N keys; the next page is --after the last
ID shown.`,
	common: true,
	run:    runList,
}

// unusedPage is how many keys list reads at a time to find unused ones.
const unusedPage = 500

func runList(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	var (
		f                 apikey.Filter
		owner, state, env string
		unusedDays, limit int
		asJSON            bool
		after             string
		err               error
	)
	fs.StringVar(&owner, "owner", "", "only the keys of this owner")
	fs.StringVar(&state, "state", "", "only keys in this state: active, revoked, expired, rolled, disabled")
	fs.StringVar(&env, "env", "", "only keys of this environment: live or test")
	fs.IntVar(&unusedDays, "unused-days", 0, "only keys not used for N days, or never")
	fs.IntVar(&limit, "limit", 0, "at most N keys (0: all)")
	fs.StringVar(&after, "after", "", "start after the key with this ID (the next page)")
	fs.BoolVar(&asJSON, "json", false, "write JSON")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if limit < 0 || unusedDays < 0 {
		return usagef("--limit and --unused-days cannot be negative")
	}
	f.Owner, f.After, f.Limit = owner, after, limit
	if f.State, err = parseState(state); err != nil {
		return err
	}
	if f.Environment, err = parseEnvironment(env); err != nil {
		return err
	}
	return a.withStore(false, func(s store) error {
		now := a.now()
		keys, err := a.list(ctx, s, f, unusedDays, now)
		if err != nil {
			return err
		}
		if asJSON {
			if keys == nil {
				keys = []*apikey.Key{}
			}
			return writeJSON(a.stdout, keys)
		}
		return writeKeyTable(a.stdout, keys, now)
	})
}

// list returns the keys f selects; with unusedDays, only those not used
// for that many days, reading pages until it has f.Limit of them.
func (a *app) list(ctx context.Context, s store, f apikey.Filter, unusedDays int, now time.Time) ([]*apikey.Key, error) {
	page := f
	if unusedDays > 0 {
		page.Limit = unusedPage
	}
	cutoff := now.Add(-time.Duration(unusedDays) * 24 * time.Hour)
	var out []*apikey.Key
	for {
		var keys []*apikey.Key
		err := a.call(ctx, func(ctx context.Context) (err error) {
			keys, err = s.List(ctx, page)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		if unusedDays == 0 {
			return keys, nil
		}
		for _, k := range keys {
			if k.LastUsedAt.IsZero() || k.LastUsedAt.Before(cutoff) {
				out = append(out, k)
				if f.Limit > 0 && len(out) == f.Limit {
					return out, nil
				}
			}
		}
		if len(keys) < page.Limit {
			return out, nil
		}
		page.After = keys[len(keys)-1].ID
	}
}

var cmdShow = &command{
	name:    "show",
	args:    "ID [--json]",
	summary: "show a key",
	common:  true,
	run:     runShow,
}

func runShow(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "write the key as JSON")
	args, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return a.withStore(false, func(s store) error {
		k, err := a.get(ctx, s, args[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, k)
		}
		return writeKeyDetail(a.stdout, k, a.now())
	})
}

var cmdUsage = &command{
	name:    "usage",
	args:    "ID [--json]",
	summary: "show a key's recorded usage: requests and last use",
	help: `
The usage the servers recorded (apikey.Config.Usage): how many requests the
key made and when it was last used. Servers flush usage every few seconds,
so the latest requests may not show yet.`,
	common: true,
	run:    runUsage,
}

// keyUsage is the JSON form of a key's usage: the fields of apikey.Key's.
type keyUsage struct {
	ID         string    `json:"id"`
	Requests   uint64    `json:"requests"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

func runUsage(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "write JSON")
	args, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return a.withStore(false, func(s store) error {
		k, err := a.get(ctx, s, args[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, keyUsage{ID: k.ID, Requests: k.Requests, LastUsedAt: k.LastUsedAt})
		}
		t := newTable(a.stdout)
		fmt.Fprintln(t, "ID\tSTATE\tREQUESTS\tLAST USED")
		fmt.Fprintf(t, "%s\t%s\t%d\t%s\n", k.ID, k.State(a.now()), k.Requests, lastUsed(k.LastUsedAt, a.now()))
		return t.Flush()
	})
}
