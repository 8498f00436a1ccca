#!/usr/bin/env bash
# `make test-compose`: docker-compose.yml with a real Docker engine and the
# real compose CLI (e2e/compose, build tag compose). Installs what is missing
# (scripts/docker-tools.sh), starts a dockerd of its own if none runs and stops
# only that one, builds stand-in base images when the official ones are not on
# the machine (scripts/standin-images.sh; no image registry is asked), then runs
# the test, which prints how long each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
bash scripts/docker-tools.sh install
eval "$(bash scripts/docker-tools.sh start)"
repo=$PWD
trap 'bash "$repo/scripts/docker-tools.sh" stop' EXIT
t1=$(date +%s)

# The official base images when this machine has them all (pulled by the
# user), else the stand-ins; TAXIWAY_STANDINS=1 asks for the stand-ins.
official=(golang:1.26-bookworm gcr.io/distroless/static-debian12:nonroot postgres:15-bookworm prom/prometheus:v2.53.0)
have_official=1
for img in "${official[@]}"; do
  docker image inspect "$img" >/dev/null 2>&1 || have_official=0
done
if [ "${TAXIWAY_STANDINS:-0}" = 1 ] || [ "$have_official" = 0 ]; then
  eval "$(bash scripts/standin-images.sh)"
fi
t2=$(date +%s)
echo "phase tools (install, dockerd)               $((t1 - t0))s"
echo "phase base images                            $((t2 - t1))s"

cd e2e/compose
go test -tags compose -count=1 -timeout 45m -v -run TestCompose .
