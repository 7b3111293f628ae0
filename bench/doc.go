// Package bench measures what authentication costs per request: ours
// against the hand-written floor (in the root package's BenchmarkRequest)
// and against a peer a user would pick instead, echo's keyauth middleware
// (BenchmarkPeer here). It is a separate module so that the root module
// keeps its few dependencies.
//
// One command runs everything and prints the targets as PASS or MISS:
//
//	bench/run.sh            # full run: COUNT=10 BENCHTIME=1s by default
//	bench/run.sh --short    # every benchmark once, -benchtime=100x (CI)
//
// The pieces it drives:
//
//   - BenchmarkPeer, BenchmarkPeerParallel (this package): each
//     implementation through its ServeHTTP with a reusable request; the
//     cost of authentication is the difference to the same stack without
//     it (apikey − nethttp-bare against echo-keyauth − echo-bare).
//   - cmd/loadserver and wrk.sh: requests per second over real TCP, with
//     and without the middleware.
//   - cmd/ratios: medians from `go test -bench` output, the ratios the
//     targets are stated in, and a PASS/MISS table.
//   - chart: an SVG bar chart of the same medians (bench/chart.svg).
//
// BENCHMARKS.md at the repository root has the figures and how they were
// taken.
package bench
