package replicas

// How a replica wires its invalidation feed into its cache, and the
// cache's configuration: what the package documentation of pgstore
// recommends.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/pgstore"
)

// listenAppName is the application_name of every listening connection,
// by which the terminate scenario finds them.
const listenAppName = "apikey_listen"

// cacheConfig is the cache configuration of every replica: the defaults,
// which are what the design's promises are about.
func cacheConfig() cache.Config { return cache.Config{} }

// feed is what a replica's invalidation feed reports to the replica.
type feed struct {
	// ready is called each time the feed is known to be up to date.
	ready func()
	// onError receives the errors the feed recovers from.
	onError func(error)
}

// listen runs the invalidation feed of a replica until ctx is done: store's
// invalidations, received through a connection to listenDSN (the listen
// proxy), keep c fresh. The ListenConfig is the defaults but for the
// connection.
func listen(ctx context.Context, store *pgstore.Store, listenDSN string, c *cache.Cache, f feed) error {
	cc, err := pgx.ParseConfig(listenDSN)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cc.RuntimeParams["application_name"] = listenAppName
	return store.Listen(ctx, pgstore.ListenConfig{
		ConnConfig: cc,
		OnInvalidate: func(inv pgstore.Invalidation) {
			c.Invalidate(inv.Digest)
			c.InvalidateKey(inv.KeyID)
		},
		OnSync: func(asOf time.Time) {
			c.Synced(asOf)
			f.ready()
		},
		OnGap:   c.Purge,
		OnError: f.onError,
	})
}
