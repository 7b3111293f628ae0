#!/usr/bin/env bash
# Requests per second over real TCP, with and without the apikey middleware:
# builds cmd/loadserver, serves GET /v1/ping both ways and drives each with
# wrk for the same time, sending the same request bytes.
#
#   bench/wrk.sh                  # 10 s per run
#   DURATION=30 ROUNDS=3 bench/wrk.sh
#
# Environment (defaults):
#   DURATION=10     seconds per measured run (a 2 s warm-up precedes each)
#   THREADS=2 CONNS=64   wrk -t and -c
#   ROUNDS=1        runs per variant, alternating; the median is reported
#                   (bench/run.sh uses 3)
#   KEYS=100000     keys in the server's memory store (with auth)
#   ADDR=127.0.0.1:8089
#   PIN=auto        auto: with 2 or more CPUs, server on CPU SERVER_CPU with
#                   GOMAXPROCS=1 and wrk on CPU WRK_CPU; off: no pinning
#   SERVER_CPU=0 WRK_CPU=1
#   OUT=bench/results/wrk.txt   key=value summary for cmd/ratios
#
# Why pin: on 2 cores, an unpinned server (GOMAXPROCS=2) and wrk fight over
# both cores and the split between them decides the result. Pinned, each
# has its own core, the server is the bottleneck (the script prints the
# server's CPU use: about 1.0 core means server-bound) and the ratio
# compares what one core serves with and without authentication.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-1}
KEYS=${KEYS:-100000}
ADDR=${ADDR:-127.0.0.1:8089}
PIN=${PIN:-auto}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
OUT=${OUT:-$here/results/wrk.txt}
WARMUP=2

if ! command -v wrk >/dev/null; then
	echo "== installing wrk (Debian package)"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get install -y wrk >/dev/null 2>&1 ||
		{ $sudo apt-get update -qq && $sudo apt-get install -y wrk >/dev/null; }
fi

tmp=$(mktemp -d)
server_pid="" rps="" cores=""
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
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
	placement="server on CPU $SERVER_CPU (GOMAXPROCS=1), wrk on CPU $WRK_CPU"
else
	placement="no pinning (GOMAXPROCS=${server_procs:-$(nproc)})"
fi

# start_server AUTH: starts the server, waits for it to print its key.
start_server() {
	local auth=$1
	: >"$tmp/key"
	env ${server_procs:+GOMAXPROCS=$server_procs} "${server_pin[@]}" \
		"$tmp/loadserver" -auth="$auth" -addr "$ADDR" -keys "$KEYS" >"$tmp/key" 2>"$tmp/server.log" &
	server_pid=$!
	for _ in $(seq 600); do
		[ -s "$tmp/key" ] && return 0
		if ! kill -0 "$server_pid" 2>/dev/null; then
			echo "loadserver exited:" >&2; cat "$tmp/server.log" >&2; exit 1
		fi
		sleep 0.1
	done
	echo "loadserver did not start in 60 s" >&2; exit 1
}

stop_server() {
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}

# cpu_ticks PID: user+system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure AUTH: one warm-up and one measured wrk run; sets rps and cores
# (the server's CPU use). It runs in this shell, not a subshell, so that
# the EXIT trap sees the server it started and its exit ends the script.
measure() {
	local auth=$1 key out before after
	start_server "$auth"
	key=$(head -n1 "$tmp/key")
	local args=(-t"$THREADS" -c"$CONNS" -H "Authorization: Bearer $key" "http://$ADDR/v1/ping")
	"${wrk_pin[@]}" wrk -d"${WARMUP}s" "${args[@]}" >/dev/null
	before=$(cpu_ticks "$server_pid")
	out=$("${wrk_pin[@]}" wrk -d"${DURATION}s" --latency "${args[@]}")
	after=$(cpu_ticks "$server_pid")
	stop_server
	if grep -q "Non-2xx" <<<"$out"; then
		echo "auth=$auth: the server answered non-2xx:" >&2; echo "$out" >&2; exit 1
	fi
	local p50 p99
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	cores=$(awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v d="$DURATION" 'BEGIN {printf "%.2f", t / hz / d}')
	printf '  auth=%-5s %10s req/s  p50 %-8s p99 %-8s server CPU %s cores\n' "$auth" "$rps" "$p50" "$p99" "$cores"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "== wrk -t$THREADS -c$CONNS -d${DURATION}s GET /v1/ping, $KEYS keys; $placement"
without=() with=() cpu_without=() cpu_with=()
for round in $(seq "$ROUNDS"); do
	[ "$ROUNDS" -gt 1 ] && echo "round $round"
	measure false
	without+=("$rps") cpu_without+=("$cores")
	measure true
	with+=("$rps") cpu_with+=("$cores")
done
rps_without=$(printf '%s\n' "${without[@]}" | median)
rps_with=$(printf '%s\n' "${with[@]}" | median)
cpu_without=$(printf '%s\n' "${cpu_without[@]}" | median)
cpu_with=$(printf '%s\n' "${cpu_with[@]}" | median)
ratio=$(awk -v a="$rps_with" -v b="$rps_without" 'BEGIN {printf "%.3f", a / b}')
verdict=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.9) ? "PASS" : "MISS"}')

printf '\nwithout auth: %s req/s\nwith auth:    %s req/s\nratio:        %s (target >= 0.90: %s)\n' \
	"$rps_without" "$rps_with" "$ratio" "$verdict"

mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<EOF
duration_s=$DURATION
threads=$THREADS
conns=$CONNS
rounds=$ROUNDS
keys=$KEYS
placement=$placement
without_auth_rps=$rps_without
with_auth_rps=$rps_with
without_auth_server_cpu=$cpu_without
with_auth_server_cpu=$cpu_with
ratio=$ratio
EOF
