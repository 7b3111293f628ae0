// Package bench measures what authentication costs per request: ours
// against the allocation-free hand-written floor (in the root package's
// BenchmarkRequest) and against the peers a user would pick instead, echo
// v4 and v5 KeyAuth and fiber v2 keyauth (BenchmarkPeer here). It is a
// separate module so that the root module keeps its few dependencies.
//
// One command runs everything and prints the targets as PASS or MISS:
//
//	bench/run.sh            # full run: COUNT=8 rounds, BENCHTIME=0.5s, wrk pairs
//	bench/run.sh --short    # every benchmark once, -benchtime=100x, a quick wrk (CI)
//
// The pieces it drives:
//
//   - The root package's BenchmarkRequest: every path (valid, peppered,
//     missing, malformed, bad checksum, unknown, revoked, wrong scope)
//     through Middleware.Handler, and through Middleware.HandlerFunc (the
//     key as the handler's argument), beside
//     the floor: the key copied to a stack array, sha256.Sum256, a map
//     lookup, context.WithValue and r.WithContext, and nothing else
//     allocated; its 401 for a key not in its map is the floor's reject.
//     BenchmarkFloorParts measures those unavoidable parts alone.
//   - BenchmarkPeer, BenchmarkPeerParallel (this package): each stack
//     with one reusable request; the cost of authentication is the
//     difference to the same stack without it (apikey − nethttp-bare,
//     echo-keyauth − echo-bare, echo5-keyauth − echo5-bare, fiber-keyauth
//     − fiber-bare). Every peer validates with SHA-256 and a map lookup.
//     Fiber runs on fasthttp and is driven through app.Handler() with a
//     reused *fasthttp.RequestCtx: a reference from another server
//     library.
//   - BenchmarkLookupLatency (this package): MemoryStore.Lookup timed one
//     call at a time at 1k, 10k, 100k and 1M keys; p50, p99 and p99.9, to
//     show whether the lookup's tail stays flat as the store grows.
//   - cmd/loadserver and wrk.sh: requests per second and p99 over real
//     TCP, bare and with the middleware, the server pinned to one core and
//     wrk to the other, in alternating pairs of short runs; per-pair ratios
//     and their spread. The load server also reports the heap and the
//     GC-scannable heap its resident keys cost, per key (runtime/metrics),
//     and fills a million keys in seconds (internal/keyfill).
//   - cmd/ratios: medians from `go test -bench` output, the ratios the
//     targets are stated in, a PASS/MISS table, the peers' overheads, the
//     lookup latencies and the wrk pairs.
//   - chart: an SVG bar chart of the same medians (bench/chart.svg).
//
// BENCHMARKS.md at the repository root has the figures and how they were
// taken.
package bench
