// Package redislimit enforces per-key rate limits, quotas and credits
// across many servers, with counters in Redis: it is an apikey.Limiter
// (Config.Limiter of the middleware) with the semantics of package limit,
// shared by every replica that uses the same Redis and Prefix. It is its
// own module, so a program that does not use it never downloads a Redis
// client.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	lim, err := redislimit.New(rdb, redislimit.Config{Live: []apikey.Limit{
//		{Name: "requests", Count: 100, Per: time.Second, Burst: 200},
//		{Name: "monthly", Count: 1_000_000, Period: "month", Zone: "America/New_York", Owner: true},
//	}})
//	defer lim.Close()
//	auth, err := apikey.New(apikey.Config{Keys: keys, Store: store, Limiter: lim})
//
// It uses go-redis (github.com/redis/go-redis/v9), the most used Go
// client: New takes a redis.Scripter, which *redis.Client, the Sentinel
// failover client, any redis.UniversalClient and a client's AutoPipeline
// all are, so a server passes the client it already has. Under many
// concurrent decisions an auto-pipelining client (rdb.AutoPipeline(),
// experimental in go-redis) shares round trips between them.
//
// # Semantics
//
// As in package limit: a key's limits are its environment's defaults
// (Config.Live, Config.Test; test keys have none unless Config.Test sets
// some) with the key's own laid over them by name. A rate is GCRA (Count
// per Per, Burst at once, the interval Per/Count rounded up to the ns); a
// quota counts per calendar day or month in its Zone; credits are a
// balance of Count, refilled each Period if one is set. Limits with Owner
// count per owner and environment over all of the owner's keys (per key
// when Key.Owner is empty), the others per lineage (Key.Lineage, or the
// key's ID), so a rolled key's successor goes on with its counters. The
// RateLimit-Policy, RateLimit and Retry-After fields are those package
// limit sets, computed the same way.
//
// Each decision is one Lua script run (EVALSHA, EVAL when Redis does not
// know the script): it reads every counter of the key, charges the cost
// to all of them or to none, and answers with their state, atomically,
// at the server's clock (TIME), so that the replicas' clocks do not
// matter. Quotas' calendar periods are computed here from the server's
// time as last seen; when that is off (a clock apart, a period that just
// ended), the script says so and the decision is made again at the
// server's time. Give returns a charge the same way: a rate's bucket gets
// it back (never past whole), a quota or credits to the current period
// (a charge of a period that has ended is not given back). Status reads
// without charging.
//
// A counter is one string at Prefix + "{" + scope + "}:" + name, where
// scope is "k:" and the lineage, or "o:", the environment and the owner;
// a scope that is not 1 to 128 visible ASCII characters without '{', '}',
// ':' or '#' is replaced by '#' and its SHA-256 in hex, so that no key ID
// or owner can name another's counter. Nothing secret is stored. A rate's
// counter expires once its bucket is whole, a quota's a minute after its
// period; credits without a Period are kept for ever.
//
// # What exact means
//
// Across all replicas, as Redis's clock tells time: a rate admits, over
// any span t, at most Burst + t·Count/Per (counting a request given back
// with Give as not admitted); a quota at most Count in each calendar
// period; credits exactly Count, never more, however many replicas and
// requests race for the last one. Exact within Redis's guarantees: Redis
// TIME counts µs; a decision that timed out, or that go-redis retried
// after a lost answer, may have been charged all the same (a frozen Redis
// runs it when it wakes up), which admits less, never more; but Redis
// replication is asynchronous, so a failover to a replica can lose the
// last writes, and a restart without persistence forgets every count:
// both admit more, for one window.
//
// # Leases
//
// With Config.Lease, a replica takes up to Lease tokens of a rate in one
// script run, serves requests from them without asking Redis until they
// are spent or Config.LeaseTTL has passed, and gives the unused rest back.
// Only keys whose limits are all rates are leased; a key with a quota or
// credits is decided in Redis each time, rates included. Credits are
// never leased: a request reserves them before it runs and gives back
// what it did not use (Give), so they never admit more than the balance.
// RateLimit fields of a leased decision are this replica's estimate.
//
// The bound: in any window of length t, Redis lets the tokens charged in
// it, less those given back in it, be at most Burst + t·Count/Per (a
// charge moves the counter's TAT forward by cost intervals, a give back
// moves it back by no more, and after a charge it is at most Burst
// intervals ahead of now). Requests admitted in the window use tokens
// charged in it, or tokens that a replica held when it began. A replica
// holds at most Lease-1 tokens of a counter: for a request of cost c it
// takes max(Lease, c), uses c at once, and gives the rest back before it
// takes another lease (in the same script run). So with R replicas, in
// any window of length t,
//
//	admitted - given back <= Burst + t·Count/Per + R·(Lease-1)
//
// and in any window of Per, Burst + Count + R·(Lease-1). Counted from a
// whole bucket and no leases (a start), the bound without leasing holds.
// A lease's rest that cannot be given back (Redis failing) is lost: that
// admits less. Close gives back every rest.
//
// # Faults and deadlines
//
// Every call (Take, Give, Status, giving back a lease) runs under
// Config.Timeout (default 100 ms): a decision waiting for another one on
// the same lease counts against the same deadline, and go-redis's retries
// happen within it. Take returns by the deadline whatever the client
// does: a client without Options.ContextTimeoutEnabled stops waiting for
// an answer only at its ReadTimeout (3 s by default), and the limiter
// leaves such a call to finish in the background (bounded by the client's
// pool and timeouts) rather than hang. When Redis fails or does not
// answer in time:
//
//	key with credits         Take: false and an error (the middleware answers 503)
//	rates and quotas         Take: true (fail open, the default), or false and
//	                         an error with Config.FailClosed
//	Give                     the charge stays (admits less)
//	Status                   an error
//
// Each failure is logged (Config.Logger, Warn), at most one line a second
// per Limiter, with the number of failures it stands for and the key's
// ID; the limiter never sees a key's secret. Once Redis answers again,
// decisions are made there again; a restarted Redis gets the script again
// by EVAL.
//
// # Redis deployment
//
// The limiter expects a single primary (with replicas and Sentinel for
// failover, or a managed Redis). The counters of a key's lineage and of
// its owner carry different hash tags and so may live in different slots
// of a Redis Cluster, where a script over both fails (CROSSSLOT): keys
// with an Owner limit would then always fail (open or closed, as
// configured). Point the client at the primary: a read replica refuses
// the script's writes.
package redislimit
