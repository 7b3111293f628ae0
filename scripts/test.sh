#!/usr/bin/env bash
# The whole test suite: every Go module in the tree, with the race detector,
# go vet and gofmt; the examples' smoke tests; the PostgreSQL tests against
# a throwaway server the tests start themselves.
#
# With CI=true (.ci/run sets it) it also installs PostgreSQL, Redis (for
# redislimit's tests, which start their own redis-server) and Chromium (for
# the real-browser test in manage/browser) from Debian if they are
# missing, fails instead of skipping when one cannot be found,
# runs every fuzz target for FUZZTIME (default 30s) and runs each benchmark
# once (-benchtime=100x) so none of them rots.
set -euo pipefail
cd "$(dirname "$0")/.."

ci=${CI:-false}
start=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - start)); }

have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null; }
if [ "$ci" = true ] && ! have_postgres && [ -z "${APIKEY_TEST_DATABASE_URL:-}" ]; then
	step "installing PostgreSQL from Debian"
	sudo_cmd=""
	[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

have_redis() { command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ]; }
if [ "$ci" = true ] && ! have_redis; then
	step "installing Redis from Debian"
	sudo_cmd=""
	[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

# The names manage/browser looks for, and CHROME_PATH, which it takes first.
have_chromium() {
	[ -n "${CHROME_PATH:-}" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
		command -v google-chrome >/dev/null || command -v google-chrome-stable >/dev/null
}
if [ "$ci" = true ] && ! have_chromium; then
	step "installing Chromium from Debian"
	sudo_cmd=""
	[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

modules=$(find . -name go.mod -not -path './.git/*' -not -path '*/testdata/*' -exec dirname {} \; | sort)

step "gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

for m in $modules; do
	step "$m: go vet"
	(cd "$m" && go vet ./...)
	step "$m: go test -race"
	(cd "$m" && go test -race -count=1 ./...)
done

if [ "$ci" = true ] || [ -n "${FUZZTIME:-}" ]; then
	step "fuzzing (${FUZZTIME:-30s} per target)"
	FUZZTIME=${FUZZTIME:-30s} ./scripts/fuzz.sh
fi

if [ "$ci" = true ] || [ -n "${BENCH_SHORT:-}" ]; then
	step "benchmarks, one short run each"
	./bench/run.sh --short
fi

step "all tests passed"
