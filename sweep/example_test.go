package sweep_test

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/storetest"
	"github.com/keygate/apikey/sweep"
)

// Warn owners of keys that expire within two weeks or that nobody has used
// for 90 days, once each; disable keys unused for a year, as GitHub does
// with personal access tokens.
func ExampleNew() {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) // time.Now in production
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Clock: clock.Now}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	store.Create(ctx, apikey.KeySpec{Name: "ci", Owner: "acct_1", ExpiresAt: clock.Now().Add(100 * 24 * time.Hour)})
	clock.Advance(time.Hour)
	store.Create(ctx, apikey.KeySpec{Name: "backup", Owner: "acct_2"})

	// readme:sweep
	s, err := sweep.New(store, sweep.Config{
		Keys:               keys,
		ExpiringWithin:     14 * 24 * time.Hour,
		UnusedFor:          90 * 24 * time.Hour,
		DisableUnusedAfter: 365 * 24 * time.Hour,
		OnFinding: func(ctx context.Context, f sweep.Finding) error {
			// Send the owner an e-mail here; an error retries next sweep.
			fmt.Printf("to %s: key %q is %s (%s)\n", f.Key.Owner, f.Key.Name, f.Kind, f.At.Format(time.DateOnly))
			return nil
		},
	})
	// readme:end
	if err != nil {
		panic(err)
	}
	clock.Advance(90 * 24 * time.Hour)
	s.Run(ctx)
	s.Run(ctx) // nothing new
	clock.Advance(275 * 24 * time.Hour)
	rep, _ := s.Run(ctx)
	fmt.Println("disabled:", rep.Disabled)
	// Output:
	// to acct_1: key "ci" is expiring (2026-04-11)
	// to acct_1: key "ci" is unused (2026-01-01)
	// to acct_2: key "backup" is unused (2026-01-01)
	// to acct_2: key "backup" is disabled-unused (2026-01-01)
	// disabled: 1
}

// Run the sweep every hour in the background, in every replica: each
// finding is still delivered once.
func ExampleSweeper_Start() {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	store.Create(ctx, apikey.KeySpec{Name: "deploy", ExpiresAt: time.Now().Add(24 * time.Hour)})

	found := make(chan sweep.Finding, 1)
	s, _ := sweep.New(store, sweep.Config{
		Keys:           keys,
		ExpiringWithin: 7 * 24 * time.Hour,
		Interval:       time.Hour,
		OnFinding: func(ctx context.Context, f sweep.Finding) error {
			found <- f
			return nil
		},
	})
	stop := s.Start(ctx) // sweeps now, then every Interval
	defer stop()         // waits for a sweep under way
	f := <-found
	fmt.Println(f.Kind, f.Key.Name)
	// Output: expiring deploy
}
