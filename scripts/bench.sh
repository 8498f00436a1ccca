#!/usr/bin/env bash
# `make bench`: every benchmark of the stack in one run on loopback, so the
# ratios compare figures taken on the same (shared, noisy) machine at the
# same time. Prints Markdown; BENCHMARKS.md records a run and how to read it.
#   BENCH_OBJECTS   objects loaded into the core's collection (default 1000000)
#   BENCH_DURATION  seconds per load run against the gateway (default 10)
#   BENCH_REVOKE_TRIALS  revocations timed through two gateways (default 20)
#   BENCH_LARGE_OBJECTS  1 MiB objects for the page byte cap run: 16 readers,
#                   capped and uncapped core (default 48; 0 skips it; the
#                   uncapped run peaks near 1 GiB)
#   BENCH_BASELINE  a git revision: also compare the core with that build,
#                   each on its own database loaded by its own benchcore
#                   (schemas may differ), request by request in alternation
set -euo pipefail
cd "$(dirname "$0")/.."

echo "# Taxiway benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3-), $(uname -sr)"
echo

echo "## Go micro-benchmarks"
echo
echo '```'
go test -run '^$' -bench . -benchtime 1x -count 1 ./internal/... >/dev/null # compile once
go test -run '^$' -bench . -benchmem ./taxiicore/... ./tokenservice/... ./caddymodule/... | grep -E '^(Benchmark|ok|pkg)'
echo '```'
echo

echo "## Gateway: taxii_auth against plain reverse_proxy"
echo
go run ./cmd/benchgateway -duration "${BENCH_DURATION:-10}s"
echo

echo "## Token service"
echo
go run ./cmd/benchtoken
echo

echo "## Revocation latency"
echo
go run ./cmd/benchrevoke -trials "${BENCH_REVOKE_TRIALS:-20}"
echo

echo "## Core on ${BENCH_OBJECTS:-1000000} objects"
echo
go run ./cmd/benchcore -objects "${BENCH_OBJECTS:-1000000}" -large-objects "${BENCH_LARGE_OBJECTS:-48}"

if [ -n "${BENCH_BASELINE:-}" ]; then
	echo
	echo "## Core against ${BENCH_BASELINE} on ${BENCH_OBJECTS:-1000000} objects"
	echo
	base=$(mktemp -d)
	trap 'git worktree remove --force "$base/src" >/dev/null 2>&1; rm -rf "$base"' EXIT
	git worktree add --detach "$base/src" "$BENCH_BASELINE" >/dev/null 2>&1
	(cd "$base/src" && go build -o "$base/taxiway" ./cmd/taxiway && go build -o "$base/benchcore" ./cmd/benchcore)
	go build -o "$base/candidate" ./cmd/taxiway
	go run ./cmd/benchcore -objects "${BENCH_OBJECTS:-1000000}" -taxiway-bin "$base/candidate" \
		-baseline-bin "$base/taxiway" -baseline-loader "$base/benchcore" -requests 1000 -rounds 4
fi
