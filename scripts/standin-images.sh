#!/usr/bin/env bash
# Stand-ins for the official base images that docker-compose.yml and the
# Dockerfiles name, built from Debian packages for a machine that cannot pull
# from an image registry (ours: CI reaches Debian's mirror and the Go module
# proxy, no registry). Users get the official images; `make test-compose` uses
# these only when the official ones are not on the machine already.
#
#   taxiway-standin/debian:bookworm-slim      mmdebstrap --variant=minbase bookworm
#   taxiway-standin/golang:1.26-bookworm      the same with Go 1.26.8 in /usr/local/go, trusting
#                                             this machine's certificate authorities
#   taxiway-standin/distroless-static:nonroot what gcr.io/distroless/static-debian12:nonroot
#                                             holds: CA certificates, tzdata, passwd with
#                                             nonroot (65532), no shell
#   taxiway-standin/postgres:15-bookworm      Debian's postgresql-15 behind deploy/standins/
#                                             postgres-entrypoint.sh (the official image's contract)
#   taxiway-standin/prometheus:v2             Debian's prometheus (2.42) as prom/prometheus lays
#                                             it out, for the compose file's monitoring profile
#                                             (Grafana has no Debian package: no stand-in)
#
# Prints the compose variables that select them (for eval). Each image is
# built once: delete it (docker rmi) to build it again.
set -euo pipefail
cd "$(dirname "$0")/.."

P=taxiway-standin
GO_TOOLCHAIN=go1.26.8
CACHE=${TAXIWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taxiway}/standins
mkdir -p "$CACHE"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

have() { docker image inspect "$1" >/dev/null 2>&1; }
say() { echo "stand-in $1" >&2; }

# The minbase root file system, as debian:bookworm-slim (plus CA certificates and tzdata,
# which the golang and distroless images carry).
if ! have $P/debian:bookworm-slim; then
  say "$P/debian:bookworm-slim (mmdebstrap, about a minute)"
  $sudo mmdebstrap --quiet --variant=minbase --include=ca-certificates,tzdata \
    bookworm "$CACHE/bookworm-minbase.tar"
  docker import --change 'CMD ["bash"]' "$CACHE/bookworm-minbase.tar" $P/debian:bookworm-slim >/dev/null
  rm -f "$CACHE/bookworm-minbase.tar"
fi

# Go as golang:1.26-bookworm has it, from the Go module proxy (GOTOOLCHAIN makes the
# go command fetch that exact toolchain, or use itself when it is that version).
if ! have $P/golang-toolchain:$GO_TOOLCHAIN; then
  say "$P/golang:1.26-bookworm ($GO_TOOLCHAIN)"
  goroot=$(GOTOOLCHAIN=$GO_TOOLCHAIN go env GOROOT)
  [ "$(GOTOOLCHAIN=$GO_TOOLCHAIN go env GOVERSION)" = "$GO_TOOLCHAIN" ] || { echo "no $GO_TOOLCHAIN" >&2; exit 1; }
  docker build -q -t $P/golang-toolchain:$GO_TOOLCHAIN --build-arg BASE=$P/debian:bookworm-slim \
    -f deploy/standins/golang.Dockerfile "$goroot" >/dev/null
fi
# The builds reach the Go module proxy through whatever this machine does, so
# the build image trusts the certificate authorities this machine trusts (an
# egress proxy's, here). Cheap, and done each time the bundle may have changed.
ca=$(mktemp -d)
cp /etc/ssl/certs/ca-certificates.crt "$ca/"
docker build -q -t $P/golang:1.26-bookworm --build-arg BASE=$P/golang-toolchain:$GO_TOOLCHAIN \
  -f "$PWD/deploy/standins/machine-ca.Dockerfile" "$ca" >/dev/null
rm -rf "$ca"

if ! have $P/distroless-static:nonroot; then
  say "$P/distroless-static:nonroot"
  docker build -q -t $P/distroless-static:nonroot --build-arg BASE=$P/debian:bookworm-slim \
    -f deploy/standins/distroless.Dockerfile deploy/standins >/dev/null
fi

# Postgres: Debian's postgresql-15, with the postgres user at uid 999 as in the official
# image, and without the cluster the package would create.
if ! have $P/postgres-base:15-bookworm; then
  say "$P/postgres:15-bookworm (mmdebstrap with postgresql-15, about two minutes)"
  $sudo mmdebstrap --quiet --variant=minbase --include=postgresql-15 \
    --essential-hook='echo "postgres:x:999:" >>"$1/etc/group"' \
    --essential-hook='echo "postgres:x:999:999::/var/lib/postgresql:/bin/bash" >>"$1/etc/passwd"' \
    --customize-hook='rm -rf "$1/var/lib/postgresql/15" "$1/etc/postgresql/15" "$1/var/cache/apt/archives/"*.deb' \
    bookworm "$CACHE/bookworm-postgres.tar"
  docker import "$CACHE/bookworm-postgres.tar" $P/postgres-base:15-bookworm >/dev/null
  rm -f "$CACHE/bookworm-postgres.tar"
fi
# Cheap (cached) every time, so a change to the entrypoint lands.
docker build -q -t $P/postgres:15-bookworm --build-arg BASE=$P/postgres-base:15-bookworm \
  -f deploy/standins/postgres.Dockerfile deploy/standins >/dev/null

# Prometheus: Debian's package (its postinst adds a prometheus user the image does not use).
if ! have $P/prometheus-base:v2; then
  say "$P/prometheus:v2 (mmdebstrap with prometheus, about a minute)"
  $sudo mmdebstrap --quiet --variant=minbase --include=prometheus \
    --customize-hook='rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*' \
    bookworm "$CACHE/bookworm-prometheus.tar"
  docker import "$CACHE/bookworm-prometheus.tar" $P/prometheus-base:v2 >/dev/null
  rm -f "$CACHE/bookworm-prometheus.tar"
fi
docker build -q -t $P/prometheus:v2 --build-arg BASE=$P/prometheus-base:v2 \
  -f deploy/standins/prometheus.Dockerfile deploy/standins >/dev/null

echo "export TAXIWAY_BUILD_IMAGE=$P/golang:1.26-bookworm TAXIWAY_RUNTIME_IMAGE=$P/distroless-static:nonroot POSTGRES_IMAGE=$P/postgres:15-bookworm PROMETHEUS_IMAGE=$P/prometheus:v2"
