// Package apikeyotel reports what the apikey middleware, its cache, its
// usage recorder and the pgstore invalidation feed do, as OpenTelemetry
// metrics, and annotates the request's span with the key that
// authenticated it.
//
//	inst, err := apikeyotel.New(apikeyotel.Config{MeterProvider: mp})
//	cfg := apikey.Config{Keys: keys, Store: c}
//	inst.Instrument(&cfg) // counts verdicts; chains the hooks already set
//	mw, err := apikey.New(cfg)
//	http.ListenAndServe(addr, inst.Wrap(mw, mux)) // times verification
//
//	err = inst.ObserveCache(c)     // package cache's Stats
//	err = inst.ObserveUsage(rec)   // package usage's Stats
//	cacheCfg.OnBreaker = inst.OnBreaker(nil)
//	listenCfg.OnSync = inst.FeedLag(c.Synced)
//
// It is a module of its own (github.com/keygate/apikey/otel), so that the
// apikey module itself depends on no OpenTelemetry package.
//
// # Instruments
//
// Every name starts with "apikey."; the attributes are bounded: outcome
// and reason take a handful of values each (apikey.Reason.String). The key
// id is never a metric attribute unless Config.KeyIDAttribute asks for it
// (one series per key: unbounded). README.md lists the instruments.
//
// # Cost
//
// On the request path the verdict is an atomic increment into a counter
// preallocated per outcome and reason, reported when the reader collects,
// and span attributes are set only when the span records: about 3% on a
// valid request of the bare middleware. Wrap times a request with two
// readings of the monotonic clock and one histogram record, with attribute
// sets built once in New and its per-request state pooled: no allocation,
// but the SDK's record dominates (about 1.9× the bare middleware's valid
// request on a 2-core VM when every request is timed). So Wrap times one
// request in 64 by default (Config.DurationEvery): 1.11–1.12× in all.
// README.md has the figures.
//
// # Secrets
//
// No attribute, of a metric or of a span, ever holds the credential or any part of
// it: only the key's id (metadata, like the id in a log line), and its
// owner on the span when Config.OwnerAttribute asks for it.
package apikeyotel
