#!/usr/bin/env bash
# Fuzzes every fuzz target of the root package, manage and leak for
# FUZZTIME each (default 30s), one after another, and prints how many
# inputs each one executed. The seed corpora live in the package's
# testdata/fuzz/<FuzzName>/; a failing input is written there by `go test`
# and fails this script.
#
#   FUZZTIME=5s ./scripts/fuzz.sh
#
# With seven targets at 30s each, a run takes about four minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-30s}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
for pkg in . ./manage ./leak; do
	targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	if [ -z "$targets" ]; then
		echo "no fuzz targets found in $pkg"; exit 1
	fi
	for t in $targets; do
		echo "== $pkg $t (fuzztime $FUZZTIME)"
		start=$(date +%s)
		if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
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
done
exit $status
