#!/bin/sh
# Runs the multi-process fault harness of pgstore (pgstore/internal/replicas):
# every scenario, 8 replica processes over one real PostgreSQL (a throwaway
# server, or APIKEY_TEST_DATABASE_URL), and prints the report: a plain
# table, then a Markdown table for BENCHMARKS.md. Extra arguments go to the
# harness, e.g. -scenarios steady,restart -short -v.
set -eu
cd "$(dirname "$0")/../pgstore"
exec go run ./internal/replicas/cmd/replicas -replicas 8 "$@"
