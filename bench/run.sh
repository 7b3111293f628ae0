#!/usr/bin/env bash
# The one command for the benchmarks (BENCHMARKS.md explains the figures).
#
#   bench/run.sh            full run: root and peer benchmarks, benchstat,
#                           wrk, the targets as PASS/MISS, the chart
#   bench/run.sh --short    every benchmark once with -benchtime=100x, and
#                           the ratios and chart programs on that output,
#                           to prove they all run (CI); asserts no target
#   bench/run.sh --report   no measuring: benchstat, targets and chart again
#                           from the files already in bench/results/
#
# Environment (full run):
#   COUNT=6 BENCHTIME=1s    rounds (samples per benchmark) and -benchtime;
#                           COUNT=6 takes about 9-10 minutes on 2 busy cores
#   WRK=1                   0 skips the wrk load test (wrk.sh: DURATION=10,
#                           ROUNDS=3 here, see wrk.sh for the rest)
#   STRICT=0                1 makes a missed target fail the script
#
# Writes bench/results/ (git-ignored): machine.txt, root.txt, store.txt,
# peer.txt, wrk.txt, benchstat.txt, ratios.md, chart.svg; and copies the
# chart to bench/chart.svg, the one BENCHMARKS.md shows.
#
# The runs are interleaved: the root request benchmarks and the peer
# benchmarks are each compiled once and run COUNT rounds of -count 1, one
# after the other, so that ours and the floor (and echo) are measured
# seconds apart in every round and a burst of load from elsewhere hits
# both sides alike. The store benchmarks run in their own process, with
# -count COUNT: BenchmarkMemoryStoreLookup keeps a store of 1M keys (about
# 400 MB) alive for the rest of its process, which would slow and blur
# every request benchmark that ran after it. Together they are the same
# benchmarks as
#
#   go test -run '^$' -bench 'Request|Require|ErrorStyle|Parse|Digest|MemoryStore' -count $COUNT .
#   go test -run '^$' -bench VerifyCached -count $COUNT ./cache
#   (cd bench && go test -run '^$' -bench Peer -count $COUNT .)
#
# The cache benchmark (package cache) runs beside the root request
# benchmarks in every round and its output goes to root.txt with theirs.
set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
results=$bench/results
benchstat=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

request_bench='Request|Require|ErrorStyle|Parse|Digest'
cache_bench='VerifyCached'
store_bench='MemoryStore'
peer_bench='Peer'

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

start=$SECONDS
stage() { printf '\n== %s (%ds)\n' "$*" "$((SECONDS - start))"; }

# short: every benchmark once, then the report programs on that output.
short() {
	local out=$tmp
	local flags=(-run '^$' -count 1 -benchtime 100x)
	stage "root benchmarks, once each"
	(cd "$root" && go test "${flags[@]}" -bench "$request_bench|$store_bench" .) | tee "$out/root.txt"
	(cd "$root" && go test "${flags[@]}" -bench "$cache_bench" ./cache) | tee -a "$out/root.txt"
	stage "peer benchmarks, once each"
	(cd "$bench" && go test "${flags[@]}" -bench "$peer_bench" .) | tee "$out/peer.txt"
	stage "build, ratios and chart on that output (no target asserted)"
	(cd "$bench" && go build ./... &&
		go run ./cmd/ratios "$out/root.txt" "$out/peer.txt" >"$out/ratios.md" &&
		go run ./chart -o "$out/chart.svg" "$out/root.txt" "$out/peer.txt")
	grep -q '^| valid key' "$out/ratios.md"
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
	local bin=$tmp
	stage "compiling the test binaries"
	(cd "$root" && go test -c -o "$bin/root.test" .)
	(cd "$root" && go test -c -o "$bin/cache.test" ./cache)
	(cd "$bench" && go test -c -o "$bin/peer.test" .)
	local tflags=(-test.run '^$' -test.benchtime "$BENCHTIME")

	: >"$results/root.txt"
	: >"$results/peer.txt"
	for round in $(seq "$COUNT"); do
		stage "round $round of $COUNT: root request benchmarks (-bench '$request_bench')"
		(cd "$root" && "$bin/root.test" "${tflags[@]}" -test.bench "$request_bench" -test.count 1) | tee -a "$results/root.txt"
		if [ -x "$bin/cache.test" ]; then # absent while package cache has no tests
			(cd "$root/cache" && "$bin/cache.test" "${tflags[@]}" -test.bench "$cache_bench" -test.count 1) | tee -a "$results/root.txt"
		fi
		stage "round $round of $COUNT: peer benchmarks (bench module, -bench '$peer_bench')"
		(cd "$bench" && "$bin/peer.test" "${tflags[@]}" -test.bench "$peer_bench" -test.count 1) | tee -a "$results/peer.txt"
	done

	stage "root benchmarks: store scale (-bench '$store_bench' -count $COUNT)"
	(cd "$root" && "$bin/root.test" "${tflags[@]}" -test.bench "$store_bench" -test.count "$COUNT") | tee "$results/store.txt"
}

load_test() {
	rm -f "$results/wrk.txt"
	if [ "${WRK:-1}" != 0 ]; then
		stage "wrk load test"
		OUT="$results/wrk.txt" ROUNDS="${ROUNDS:-3}" "$bench/wrk.sh" 2>&1 | tee "$results/wrk.log"
	fi
}

# report: benchstat, the targets and the chart from bench/results/.
report() {
	local f
	for f in root.txt store.txt peer.txt; do
		[ -s "$results/$f" ] || { echo "no $results/$f: run bench/run.sh first" >&2; exit 1; }
	done
	stage "benchstat"
	(
		cd "$results"
		bs() { go run "$benchstat" "$@"; }
		for f in root.txt store.txt peer.txt; do
			echo "### benchstat $f"
			bs "$f"
			echo
		done
		echo "### ours against the floor (benchstat -col /impl, floor is the base)"
		bs -filter '.name:Request /path:(valid OR unknown)' -col /impl root.txt
		echo
		echo "### ours against echo keyauth, whole stack (benchstat -col /impl, apikey is the base)"
		bs -filter '/impl:(apikey OR echo-keyauth)' -col /impl peer.txt
	) | tee "$results/benchstat.txt"

	stage "targets"
	local args=()
	[ "${STRICT:-0}" = 1 ] && args+=(-strict)
	[ -s "$results/wrk.txt" ] && args+=(-wrk "$results/wrk.txt")
	status=0
	(cd "$bench" && go run ./cmd/ratios "${args[@]}" \
		"$results/root.txt" "$results/store.txt" "$results/peer.txt") | tee "$results/ratios.md" || status=$?

	stage "chart"
	local note
	note="$(nproc) CPUs, $(go version | awk '{print $3}'), $(sed -n 's/^flags: //p' "$results/machine.txt" 2>/dev/null)."
	(cd "$bench" && go run ./chart -o "$results/chart.svg" -note "$note" \
		"$results/root.txt" "$results/store.txt" "$results/peer.txt")
	cp "$results/chart.svg" "$bench/chart.svg"
	echo "wrote $results/chart.svg and $bench/chart.svg"
}

COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-1s}
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
