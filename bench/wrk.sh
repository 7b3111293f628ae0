#!/usr/bin/env bash
# Requests per second and p99 latency over real TCP, with and without the
# apikey middleware, in alternating pairs of short runs.
#
# It builds cmd/loadserver and starts it twice, side by side: A, the bare
# server (no middleware, no keys), and B, the same server behind the
# middleware with a MemoryStore of KEYS keys. Both stay up for the whole
# run. After a warm-up of each, wrk drives them in PAIRS pairs of short
# runs, alternating which goes first: A B, B A, A B, B A, ... so that a
# drift in the machine's speed hits both sides alike. Each pair gives two
# ratios, throughput B / A and p99 latency B / A; the script prints every
# pair and each ratio's spread (min, median, max).
#
#   bench/wrk.sh                        # 8 pairs of 5 s runs, 100,000 keys
#   KEYS=1000000 bench/wrk.sh           # the same with a million keys
#   DURATION=1 PAIRS=2 WARMUP=1 bench/wrk.sh   # a quick check
#
# Environment (defaults):
#   DURATION=5      seconds per measured run
#   PAIRS=8         pairs of runs (A and B once each)
#   WARMUP=2        seconds of warm-up for each server, once, before the pairs
#   THREADS=2 CONNS=64   wrk -t and -c
#   KEYS=100000     keys in B's memory store (a million take a few seconds
#                   to file: cmd/loadserver files them with MemoryStore.Add)
#   BASE=bare       resident: A holds the same KEYS keys in a MemoryStore,
#                   unused (loadserver -resident), so that B / A is the
#                   middleware's cost alone, without the cost of holding
#                   the keys
#   ADDR=127.0.0.1:8089   A listens here, B on the next port
#   PIN=auto        auto: with 2 or more CPUs, both servers on CPU
#                   SERVER_CPU with GOMAXPROCS=1 and wrk on CPU WRK_CPU;
#                   off: no pinning
#   SERVER_CPU=0 WRK_CPU=1
#   OUT=bench/results/wrk.txt   summary for cmd/ratios (key=value lines and
#                   one "pair" line per pair)
#
# B's log gives what its keys cost in memory, heap and GC-scannable heap
# bytes per key (see cmd/loadserver); the script prints both and writes
# them to OUT.
#
# Why pin: on 2 cores, an unpinned server (GOMAXPROCS=2) and wrk fight over
# both cores and the split between them decides the result. Pinned, each
# has its own core, the server is the bottleneck (the script prints the
# server's CPU use: about 1.0 core means server-bound) and the ratio
# compares what one core serves with and without authentication. Only one
# server is driven at a time; the other one idles on the same core.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-5}
PAIRS=${PAIRS:-8}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
KEYS=${KEYS:-100000}
ADDR=${ADDR:-127.0.0.1:8089}
PIN=${PIN:-auto}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
OUT=${OUT:-$here/results/wrk.txt}
BASE=${BASE:-bare}
case $BASE in
bare) base_flags=() ;;
resident) base_flags=(-resident) ;;
*)
	echo "wrk.sh: BASE must be bare or resident, not $BASE" >&2
	exit 2
	;;
esac

host=${ADDR%:*}
port_a=${ADDR##*:}
port_b=$((port_a + 1))

if ! command -v wrk >/dev/null; then
	echo "== installing wrk (Debian package)"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get install -y wrk >/dev/null 2>&1 ||
		{ $sudo apt-get update -qq && $sudo apt-get install -y wrk >/dev/null; }
fi

tmp=$(mktemp -d)
pid_a="" pid_b=""
cleanup() {
	local p
	for p in $pid_a $pid_b; do
		if kill -0 "$p" 2>/dev/null; then
			kill "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== building cmd/loadserver"
(cd "$here" && go build -o "$tmp/loadserver" ./cmd/loadserver)

server_pin=() wrk_pin=() server_procs=${GOMAXPROCS:-}
if [ "$PIN" = auto ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	server_pin=(taskset -c "$SERVER_CPU")
	wrk_pin=(taskset -c "$WRK_CPU")
	server_procs=1
	placement="servers on CPU $SERVER_CPU (GOMAXPROCS=1), wrk on CPU $WRK_CPU"
else
	placement="no pinning (GOMAXPROCS=${server_procs:-$(nproc)})"
fi

# start NAME AUTH PORT [FLAG...]: starts a server in the background; its
# key goes to $tmp/NAME.key, its log to $tmp/NAME.log. Sets started_pid.
start() {
	local name=$1 auth=$2 port=$3
	shift 3
	: >"$tmp/$name.key"
	env ${server_procs:+GOMAXPROCS=$server_procs} "${server_pin[@]}" \
		"$tmp/loadserver" -auth="$auth" -addr "$host:$port" -keys "$KEYS" "$@" \
		>"$tmp/$name.key" 2>"$tmp/$name.log" &
	started_pid=$!
}

# wait_key NAME PID: waits (up to 120 s) for the server to print its key.
wait_key() {
	local name=$1 pid=$2
	for _ in $(seq 1200); do
		[ -s "$tmp/$name.key" ] && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "loadserver $name exited:" >&2; cat "$tmp/$name.log" >&2; exit 1
		fi
		sleep 0.1
	done
	echo "loadserver $name did not start in 120 s" >&2; exit 1
}

# cpu_ticks PID: user+system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# to_us: wrk's latency ("512.00us", "1.23ms", "1.02s") in microseconds.
to_us() {
	awk '{v = $1 + 0
		if ($1 ~ /us$/) print v
		else if ($1 ~ /ms$/) print v * 1000
		else if ($1 ~ /m$/) print v * 60e6
		else if ($1 ~ /s$/) print v * 1e6
		else print v}'
}

# drive NAME PORT PID SECONDS: one wrk run against a server; sets rps,
# p50, p99 (µs) and cores (the server's CPU use).
drive() {
	local name=$1 port=$2 pid=$3 secs=$4 key out before after
	key=$(head -n1 "$tmp/$name.key")
	before=$(cpu_ticks "$pid")
	out=$("${wrk_pin[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency \
		-H "Authorization: Bearer $key" "http://$host:$port/v1/ping")
	after=$(cpu_ticks "$pid")
	if grep -q "Non-2xx" <<<"$out"; then
		echo "$name: the server answered non-2xx:" >&2; echo "$out" >&2; exit 1
	fi
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out" | to_us)
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_us)
	cores=$(awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v d="$secs" 'BEGIN {printf "%.2f", t / hz / d}')
}

# stats: "min median max" of the numbers on stdin.
stats() {
	sort -g | awk '{v[NR] = $1} END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f %.3f %.3f\n", v[1], m, v[NR]}'
}
median() { stats | awk '{print $2}'; }

echo "== starting A ($BASE) on :$port_a and B (apikey, $KEYS keys) on :$port_b; $placement"
start a false "$port_a" ${base_flags[@]+"${base_flags[@]}"}
pid_a=$started_pid
start b true "$port_b"
pid_b=$started_pid
wait_key a "$pid_a"
wait_key b "$pid_b"
mem=$(grep -o 'heap_bytes_per_key=[0-9.]* scan_bytes_per_key=[0-9.]*' "$tmp/b.log" || true)
heap_per_key=$(sed -n 's/.*heap_bytes_per_key=\([0-9.]*\).*/\1/p' <<<"$mem")
scan_per_key=$(sed -n 's/.*scan_bytes_per_key=\([0-9.]*\).*/\1/p' <<<"$mem")
echo "B's keys in memory: ${heap_per_key:-?} heap bytes per key, ${scan_per_key:-?} GC-scannable bytes per key"

echo "== warm-up: ${WARMUP}s each"
drive a "$port_a" "$pid_a" "$WARMUP"
drive b "$port_b" "$pid_b" "$WARMUP"

echo "== wrk -t$THREADS -c$CONNS -d${DURATION}s GET /v1/ping, $PAIRS pairs (A = $BASE, B = apikey)"
pairs=() rps_a=() rps_b=() cpu_a=() cpu_b=() rps_ratios=() p99_ratios=()
for i in $(seq "$PAIRS"); do
	if ((i % 2)); then order="A B"; else order="B A"; fi
	for side in $order; do
		if [ "$side" = A ]; then
			drive a "$port_a" "$pid_a" "$DURATION"
			ra=$rps pa=$p99 ca=$cores
		else
			drive b "$port_b" "$pid_b" "$DURATION"
			rb=$rps pb=$p99 cb=$cores
		fi
	done
	rr=$(awk -v b="$rb" -v a="$ra" 'BEGIN {printf "%.4f", b / a}')
	pr=$(awk -v b="$pb" -v a="$pa" 'BEGIN {printf "%.4f", b / a}')
	printf 'pair %d (%s): A %9.0f req/s p99 %7.0f µs CPU %s | B %9.0f req/s p99 %7.0f µs CPU %s | B/A req/s %.3f p99 %.3f\n' \
		"$i" "${order// /}" "$ra" "$pa" "$ca" "$rb" "$pb" "$cb" "$rr" "$pr"
	pairs+=("pair $i ${order// /} bare_rps=$ra auth_rps=$rb bare_p99_us=$pa auth_p99_us=$pb bare_cpu=$ca auth_cpu=$cb")
	rps_a+=("$ra") rps_b+=("$rb") cpu_a+=("$ca") cpu_b+=("$cb")
	rps_ratios+=("$rr") p99_ratios+=("$pr")
done

read -r rmin rmed rmax < <(printf '%s\n' "${rps_ratios[@]}" | stats)
read -r pmin pmed pmax < <(printf '%s\n' "${p99_ratios[@]}" | stats)
verdict=$(awk -v r="$rmed" 'BEGIN {print (r >= 0.9) ? "PASS" : "MISS"}')
printf '\nper-pair ratios, B / A (min / median / max over %d pairs):\n' "$PAIRS"
printf '  throughput: %s / %s / %s   (earlier target: median >= 0.90: %s)\n' "$rmin" "$rmed" "$rmax" "$verdict"
printf '  p99:        %s / %s / %s\n' "$pmin" "$pmed" "$pmax"

mkdir -p "$(dirname "$OUT")"
{
	echo "duration_s=$DURATION"
	echo "pairs=$PAIRS"
	echo "threads=$THREADS"
	echo "conns=$CONNS"
	echo "keys=$KEYS"
	echo "base=$BASE"
	echo "placement=$placement"
	echo "without_auth_rps=$(printf '%s\n' "${rps_a[@]}" | median)"
	echo "with_auth_rps=$(printf '%s\n' "${rps_b[@]}" | median)"
	echo "without_auth_server_cpu=$(printf '%s\n' "${cpu_a[@]}" | median)"
	echo "with_auth_server_cpu=$(printf '%s\n' "${cpu_b[@]}" | median)"
	echo "ratio=$rmed"
	echo "p99_ratio=$pmed"
	[ -n "$heap_per_key" ] && echo "heap_bytes_per_key=$heap_per_key"
	[ -n "$scan_per_key" ] && echo "scan_bytes_per_key=$scan_per_key"
	printf '%s\n' "${pairs[@]}"
} >"$OUT"
echo "wrote $OUT"
