#!/usr/bin/env bash
# The one command for the benchmarks (BENCHMARKS.md explains the figures).
#
#   bench/run.sh            full run: root, peer and latency benchmarks,
#                           benchstat, wrk pairs, the targets as PASS/MISS,
#                           the chart
#   bench/run.sh --short    every benchmark once with -benchtime=100x, wrk
#                           for two pairs of 1 s runs (skipped if wrk is not
#                           installed), and the ratios and chart programs on
#                           that output, to prove they all run (CI, under a
#                           minute); asserts no target
#   bench/run.sh --report   no measuring: benchstat, targets and chart again
#                           from the files already in bench/results/
#
# Environment (full run):
#   COUNT=8 BENCHTIME=0.5s  rounds (samples per benchmark) and -benchtime;
#                           the defaults take about 11 minutes on 2 cores
#   WRK=1                   0 skips the wrk load test
#   WRK_KEYS="100000 1000000"   one wrk.sh run per key count, each of
#                           PAIRS=8 pairs of DURATION=3 s runs (see wrk.sh)
#   STRICT=0                1 makes a missed target fail the script
#
# What is measured, and against what (cmd/ratios prints the targets):
#
#   - BenchmarkRequest (root): each path through Middleware.Handler, and
#     through Middleware.HandlerFunc (the key as the handler's argument),
#     beside "the floor": a hand-written check that
#     copies the key to a stack array, hashes it with sha256.Sum256, looks
#     the digest up in a map of 100,000 keys and calls the handler through
#     context.WithValue and r.WithContext, allocating nothing else; its 401
#     for a key not in the map ("floor reject") allocates nothing. Also the
#     earlier floor (impl=floor-alloc), peppered keys (path=peppered) and
#     every rejection (missing, malformed, bad checksum, unknown, revoked,
#     wrong scope).
#   - BenchmarkFloorParts (root): the parts no implementation can avoid,
#     alone: SHA-256 of a key, the map lookup at 100,000 keys, WithValue +
#     WithContext; cmd/ratios prints their sum beside the floor.
#   - BenchmarkPeer, BenchmarkPeerParallel (bench module): the cost of
#     authentication over each stack without it, ours (net/http) against
#     echo v4 and v5 KeyAuth and fiber v2 keyauth (on fasthttp, through
#     app.Handler()), every peer validating with SHA-256 and a map lookup.
#   - BenchmarkLookupLatency (bench module): MemoryStore.Lookup timed one
#     call at a time at 1k, 10k, 100k and 1M keys: p50, p99, p99.9.
#   - The store benchmarks (root, BenchmarkMemoryStore*): lookup and memory
#     per key at 1k and 1M keys, listing.
#   - wrk.sh, once per WRK_KEYS: the bare server and the server with the
#     middleware, pinned to one core and wrk to the other, driven in
#     alternating pairs of short runs (A B, B A, ...); per-pair ratios of
#     throughput and p99 and their spread; heap and GC-scannable heap
#     bytes per resident key (runtime/metrics, in cmd/loadserver).
#
# Writes bench/results/ (git-ignored): machine.txt, root.txt, store.txt,
# peer.txt, latency.txt, wrk-KEYS.txt (and .log), benchstat.txt,
# ratios.md, chart.svg; and copies the chart to bench/chart.svg, the one
# BENCHMARKS.md shows.
#
# The runs are interleaved: the root request benchmarks and the peer
# benchmarks are each compiled once and run COUNT rounds of -count 1, one
# after the other, so that ours and the floor (and the peers) are measured
# seconds apart in every round and a burst of load from elsewhere hits
# both sides alike; cmd/ratios gives the spread of the per-round ratios.
# The store and lookup-latency benchmarks run in processes of their own,
# with -count COUNT: their stores of 1M keys (about 450 MB) would slow and
# blur every request benchmark that ran after them in the same process.
# Together they are the same benchmarks as
#
#   go test -run '^$' -bench 'Request|FloorParts|Require|ErrorStyle|Parse|Digest|MemoryStore' -count $COUNT .
#   go test -run '^$' -bench VerifyCached -count $COUNT ./cache
#   (cd bench && go test -run '^$' -bench 'Peer|LookupLatency' -count $COUNT .)
#
# The cache benchmark (package cache) runs beside the root request
# benchmarks in every round and its output goes to root.txt with theirs.
set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
results=$bench/results
benchstat=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

request_bench='Request|FloorParts|Require|ErrorStyle|Parse|Digest'
cache_bench='VerifyCached'
store_bench='MemoryStore'
peer_bench='Peer'
latency_bench='LookupLatency'

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

tmp=$(mktemp -d)
bg_pids=() # benchmarks running in the background: stopped if the script stops
trap 'for p in ${bg_pids[@]+"${bg_pids[@]}"}; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

start=$SECONDS
stage() { printf '\n== %s (%ds)\n' "$*" "$((SECONDS - start))"; }

# compile: the test binaries of the root package, package cache and the
# bench module, in $tmp.
compile() {
	stage "compiling the test binaries"
	(cd "$root" && go test -c -o "$tmp/root.test" .)
	(cd "$root" && go test -c -o "$tmp/cache.test" ./cache)
	(cd "$bench" && go test -c -o "$tmp/peer.test" .)
}

# bin NAME DIR ARGS...: runs a test binary in DIR with -test.run '^$'.
bin() {
	local name=$1 dir=$2
	shift 2
	if [ -x "$tmp/$name.test" ]; then # cache.test is absent while package cache has no tests
		(cd "$dir" && "$tmp/$name.test" -test.run '^$' "$@")
	fi
}

# short: every benchmark once, a quick wrk, then the report programs on
# that output. The store and latency benchmarks run in the background
# beside the others: nothing here is a measurement.
short() {
	local out=$tmp flags=(-test.benchtime 100x -test.count 1)
	compile
	stage "store and latency benchmarks, once each (in the background)"
	bin root "$root" "${flags[@]}" -test.bench "$store_bench" >"$out/store.txt" 2>&1 &
	local store_pid=$!
	bg_pids+=("$store_pid")
	bin peer "$bench" "${flags[@]}" -test.bench "$latency_bench" >"$out/latency.txt" 2>&1 &
	local latency_pid=$!
	bg_pids+=("$latency_pid")
	stage "root benchmarks, once each"
	{
		bin root "$root" "${flags[@]}" -test.bench "$request_bench"
		bin cache "$root/cache" "${flags[@]}" -test.bench "$cache_bench"
	} | tee "$out/root.txt"
	stage "peer benchmarks, once each"
	bin peer "$bench" "${flags[@]}" -test.bench "$peer_bench" | tee "$out/peer.txt"
	# One wait each: a wait for both returns the last one's status only.
	wait "$store_pid" || { cat "$out/store.txt"; exit 1; }
	wait "$latency_pid" || { cat "$out/latency.txt"; exit 1; }
	bg_pids=()
	cat "$out/store.txt" "$out/latency.txt"
	local wrkargs=()
	if command -v wrk >/dev/null; then
		stage "wrk: two pairs of 1 s runs, 100,000 keys"
		DURATION=1 PAIRS=2 WARMUP=1 KEYS=100000 ADDR=127.0.0.1:8091 OUT="$out/wrk-100000.txt" "$bench/wrk.sh"
		wrkargs=(-wrk "$out/wrk-100000.txt")
	else
		stage "wrk is not installed: skipping the load test (sudo apt-get install -y wrk)"
	fi
	stage "build, ratios and chart on that output (no target asserted)"
	(cd "$bench" && go build ./... &&
		go run ./cmd/ratios "${wrkargs[@]}" "$out/root.txt" "$out/store.txt" "$out/peer.txt" "$out/latency.txt" >"$out/ratios.md" &&
		go run ./chart -o "$out/chart.svg" "$out/root.txt" "$out/peer.txt")
	# Figures, not just rows: cmd/ratios prints a row with n/a when its
	# benchmark is missing.
	grep -Eq '^\| valid key, Handler \| [0-9]' "$out/ratios.md"
	grep -Eq '^\| BenchmarkLookupLatency \| 1000000 \| [0-9]' "$out/ratios.md"
	grep -q '</svg>' "$out/chart.svg"
	stage "all benchmarks ran"
}

machine() {
	stage "machine"
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "cpus: $(nproc)"
		echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
		echo "go: $(go version)"
		echo "kernel: $(uname -sr)"
		echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo ' (uncommitted changes)')"
		echo "flags: $COUNT rounds of -benchtime $BENCHTIME"
		echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	} | tee "$results/machine.txt"
	if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
		echo "warning: the machine is busy (load average above); timings will be noisy"
	fi
}

# measure: the benchmarks, interleaved (see the top of this file).
measure() {
	compile
	local flags=(-test.benchtime "$BENCHTIME")

	: >"$results/root.txt"
	: >"$results/peer.txt"
	for round in $(seq "$COUNT"); do
		stage "round $round of $COUNT: root request benchmarks (-bench '$request_bench')"
		{
			bin root "$root" "${flags[@]}" -test.bench "$request_bench" -test.count 1
			bin cache "$root/cache" "${flags[@]}" -test.bench "$cache_bench" -test.count 1
		} | tee -a "$results/root.txt"
		stage "round $round of $COUNT: peer benchmarks (bench module, -bench '$peer_bench')"
		bin peer "$bench" "${flags[@]}" -test.bench "$peer_bench" -test.count 1 | tee -a "$results/peer.txt"
	done

	stage "root benchmarks: store scale (-bench '$store_bench' -count $COUNT)"
	bin root "$root" "${flags[@]}" -test.bench "$store_bench" -test.count "$COUNT" | tee "$results/store.txt"
	stage "bench module: lookup latency (-bench '$latency_bench' -count $COUNT)"
	bin peer "$bench" "${flags[@]}" -test.bench "$latency_bench" -test.count "$COUNT" | tee "$results/latency.txt"
}

load_test() {
	rm -f "$results"/wrk*.txt "$results"/wrk*.log
	if [ "${WRK:-1}" = 0 ]; then
		return
	fi
	local keys
	for keys in ${WRK_KEYS:-100000 1000000}; do
		stage "wrk load test, $keys keys"
		KEYS=$keys OUT="$results/wrk-$keys.txt" DURATION="${DURATION:-3}" PAIRS="${PAIRS:-8}" \
			"$bench/wrk.sh" 2>&1 | tee "$results/wrk-$keys.log"
	done
}

# report: benchstat, the targets and the chart from bench/results/.
report() {
	local f
	for f in root.txt store.txt peer.txt; do
		[ -s "$results/$f" ] || { echo "no $results/$f: run bench/run.sh first" >&2; exit 1; }
	done
	local files=("$results/root.txt" "$results/store.txt" "$results/peer.txt")
	[ -s "$results/latency.txt" ] && files+=("$results/latency.txt")
	stage "benchstat"
	(
		cd "$results"
		bs() { go run "$benchstat" "$@"; }
		for f in root.txt store.txt peer.txt latency.txt; do
			[ -s "$f" ] || continue
			echo "### benchstat $f"
			bs "$f"
			echo
		done
		echo "### ours against the floor (benchstat -col /impl, floor is the base)"
		bs -filter '.name:Request /path:(valid OR unknown)' -col /impl root.txt
		echo
		echo "### ours against the peers, whole stack (benchstat -col /impl, apikey is the base)"
		bs -filter '/impl:(apikey OR apikey-keyarg OR echo-keyauth OR echo5-keyauth OR fiber-keyauth)' -col /impl peer.txt
	) | tee "$results/benchstat.txt"

	stage "targets"
	local args=()
	[ "${STRICT:-0}" = 1 ] && args+=(-strict)
	for f in "$results"/wrk-*.txt; do
		[ -s "$f" ] && args+=(-wrk "$f")
	done
	status=0
	(cd "$bench" && go run ./cmd/ratios "${args[@]}" "${files[@]}") | tee "$results/ratios.md" || status=$?

	stage "chart"
	local note
	note="$(nproc) CPUs, $(go version | awk '{print $3}'), $(sed -n 's/^flags: //p' "$results/machine.txt" 2>/dev/null)."
	(cd "$bench" && go run ./chart -o "$results/chart.svg" -note "$note" "${files[@]}")
	cp "$results/chart.svg" "$bench/chart.svg"
	echo "wrote $results/chart.svg and $bench/chart.svg"
}

COUNT=${COUNT:-8}
BENCHTIME=${BENCHTIME:-0.5s}
status=0
case "${1:-}" in
--short)
	short
	;;
--report)
	report
	;;
"")
	mkdir -p "$results"
	machine
	measure
	load_test
	report
	stage "done; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
	;;
-h | --help) usage ;;
*) usage >&2; exit 2 ;;
esac
exit "$status"
