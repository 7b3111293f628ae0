#!/usr/bin/env bash
# Fuzzes every fuzz target of the root package for FUZZTIME each (default
# 30s), one after another, and prints how many inputs each one executed.
# The seed corpora live in testdata/fuzz/<FuzzName>/; a failing input is
# written there by `go test` and fails this script.
#
#   FUZZTIME=5s ./scripts/fuzz.sh
#
# With four targets at 30s each, a run takes about two and a half minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-30s}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

targets=$(go test -list '^Fuzz' . | grep '^Fuzz' || true)
if [ -z "$targets" ]; then
	echo "no fuzz targets found"; exit 1
fi

status=0
for t in $targets; do
	echo "== $t (fuzztime $FUZZTIME)"
	start=$(date +%s)
	if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" . >"$log" 2>&1; then
		result=ok
	else
		result=FAIL
		status=1
		cat "$log"
	fi
	# The fuzzer's last progress line: "fuzz: elapsed: 30s, execs: 123456 (4115/sec), ..."
	execs=$(sed -n 's/^fuzz: elapsed: [^,]*, execs: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
	printf '%-16s %-4s execs=%s wall=%ss\n' "$t" "$result" "${execs:-unknown}" "$(($(date +%s) - start))"
done
exit $status
