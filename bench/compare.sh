#!/usr/bin/env bash
# Compare the root package's benchmarks between a base commit and the
# working tree, interleaved: both test binaries are compiled once, then each
# round runs the base and the new one seconds apart (alternating which goes
# first), so load from elsewhere hits both alike. Prints benchstat's
# comparison and, for each side, ours against the hand-written floor
# measured in the same process.
#
#   bench/compare.sh BASE              e.g. bench/compare.sh ce8092d
#
# Environment: ROUNDS=10 BENCHTIME=1s BENCH='Request$|Parse|Digest'
# Needs: git, the Go module proxy (for benchstat). Writes nothing in the
# tree; results go to a temporary folder that is printed at the end.
set -euo pipefail

base=${1:?usage: bench/compare.sh BASE-COMMIT}
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-10}
benchtime=${BENCHTIME:-1s}
pattern=${BENCH:-'Request$|Parse|Digest'}
benchstat=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

out=$(mktemp -d)
git -C "$root" worktree add --detach -q "$out/base-tree" "$base"
trap 'git -C "$root" worktree remove --force "$out/base-tree" >/dev/null 2>&1 || true' EXIT

(cd "$out/base-tree" && go test -c -o "$out/base.test" .)
(cd "$root" && go test -c -o "$out/new.test" .)

{
	echo "base: $(git -C "$root" rev-parse --short "$base"); new: working tree of $(git -C "$root" rev-parse --short HEAD)"
	echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) CPUs; $(go version | awk '{print $3}')"
	echo "$rounds rounds of -benchtime $benchtime, -bench '$pattern'; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt"

run() { (cd "$root" && "$out/$1.test" -test.run '^$' -test.bench "$pattern" -test.benchtime "$benchtime" -test.count 1 | grep '^Benchmark' >>"$out/$1.txt"); }
: >"$out/base.txt"
: >"$out/new.txt"
for r in $(seq "$rounds"); do
	printf 'round %d of %d\n' "$r" "$rounds" >&2
	if [ $((r % 2)) = 1 ]; then run base; run new; else run new; run base; fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"

echo
echo "### benchstat base new"
(cd "$out" && go run "$benchstat" base.txt new.txt)

# median ns/op of one benchmark in one file (its exact name: impl=apikey
# is not impl=apikey-keyarg, impl=floor not impl=floor-alloc)
median() { awk -v n="$2" '$1 ~ ("^" n "(-[0-9]+)?$") {print $3}' "$1" | sort -g | awk '{v[NR]=$1} END {if (NR == 0) exit 1; print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# values: ns/op of one benchmark in one file, one line per round
values() { awk -v n="$2" '$1 ~ ("^" n "(-[0-9]+)?$") {print $3}' "$1"; }
# median of the per-round ratios of two benchmarks in one file
ratio() {
	paste <(values "$1" "$2") <(values "$1" "$3") | awk '$2 > 0 {print $1 / $2}' | sort -g |
		awk '{v[NR]=$1} END {if (NR == 0) exit 1; printf "%.3f", (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}
echo
echo "### ours against the floor, medians of $rounds rounds (ratio: median of the per-round ratios)"
floor=BenchmarkRequest/path=valid/impl=floor
for side in base new; do
	ours=$(median "$out/$side.txt" 'BenchmarkRequest/path=valid/impl=apikey') || continue
	fl=$(median "$out/$side.txt" "$floor") || continue
	r=$(ratio "$out/$side.txt" 'BenchmarkRequest/path=valid/impl=apikey' "$floor")
	rk=$(ratio "$out/$side.txt" 'BenchmarkRequest/path=valid/impl=apikey-keyarg' "$floor" || echo n/a)
	awk -v s="$side" -v o="$ours" -v f="$fl" -v r="$r" -v rk="$rk" \
		'BEGIN {printf "%-4s valid key: apikey %.1f ns, floor %.1f ns, Handler %s, HandlerFunc %s\n", s, o, f, r, rk}'
done
echo
echo "results: $out"
