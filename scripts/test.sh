#!/usr/bin/env bash
# The whole test suite: every Go module in the tree, with the race detector,
# go vet and gofmt. .ci/run calls exactly this script with CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

modules=$(find . -name go.mod -not -path './.git/*' -not -path '*/testdata/*' -exec dirname {} \; | sort)

echo "== gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

for m in $modules; do
	echo "== $m: go vet"
	(cd "$m" && go vet ./...)
	echo "== $m: go test -race"
	(cd "$m" && go test -race -count=1 ./...)
done
echo "== all tests passed"
