package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/pgstore"
)

// One replica of a server that keeps its keys in PostgreSQL: the store, its
// schema, a cache in front of it, and the invalidation feed that keeps
// every replica's cache in step. (It needs a database, so it only
// compiles here; examples/postgres runs two replicas for real.)
func ExampleNew() {
	ctx := context.Background()
	poolCfg, err := pgstore.PoolConfig(os.Getenv("APIKEY_DATABASE_URL")) // recovers within seconds
	if err != nil {
		log.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store, err := pgstore.New(pool, pgstore.Config{Keys: keys, LookupTimeout: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil { // explicit, idempotent, versioned
		log.Fatal(err)
	}
	c, err := cache.New(store, cache.Config{TTL: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		_ = store.Listen(ctx, pgstore.ListenConfig{
			OnInvalidate: func(inv pgstore.Invalidation) { c.Invalidate(inv.Digest); c.InvalidateKey(inv.KeyID) },
			OnSync:       c.Synced, // the cache trusts its entries while the feed keeps up
			OnGap:        c.Purge,  // what the log cannot tell is forgotten
		})
	}()
	mw, err := apikey.New(apikey.Config{Keys: keys, Store: c})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(":8080", mw.Handler(http.NotFoundHandler())))
}

// A notification's payload is the key's ID and the digest it was filed
// under, in lowercase hex.
func ExampleParseInvalidation() {
	inv, err := pgstore.ParseInvalidation("key_01jd5y4m2pf3qx8v9b7c6n0rtw:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b")
	fmt.Printf("%s %x %v\n", inv.KeyID, inv.Digest[:4], err)
	_, err = pgstore.ParseInvalidation("key_x:not-hex")
	fmt.Println(err != nil)
	// Output:
	// key_01jd5y4m2pf3qx8v9b7c6n0rtw 3a7bd3e2 <nil>
	// true
}
