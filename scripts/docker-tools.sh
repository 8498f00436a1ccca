#!/usr/bin/env bash
# The Docker side of `make test-compose`, on a Debian-like machine:
#
#   docker-tools.sh install   Debian's docker.io and mmdebstrap if missing, and the
#                             compose and buildx CLI plugins built from the Go module
#                             proxy (once; kept in the cache below between runs)
#   docker-tools.sh start     a dockerd of our own if no engine answers; prints the
#                             variables (DOCKER_HOST, DOCKER_CONFIG) to eval
#   docker-tools.sh stop      stops the dockerd that `start` started, and nothing else
#
# Cache: $TAXIWAY_CACHE (default ~/.cache/taxiway): the plugins, and our dockerd's
# data root (images and build caches, so warm runs rebuild little).
set -euo pipefail

COMPOSE_VERSION=v5.6.0
BUILDX_VERSION=v0.38.2
CACHE=${TAXIWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taxiway}
# DOCKER_CONFIG for the test: only the plugins, none of the user's settings or credentials.
DOCKER_CONFIG_DIR=$CACHE/docker-config
PLUGINS=$DOCKER_CONFIG_DIR/cli-plugins
ENGINE=$CACHE/dockerd          # our dockerd: socket, pid file, data root
SOCK=$ENGINE/docker.sock

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

install_packages() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v docker >/dev/null || need+=(docker.io)
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
  [ ${#need[@]} -eq 0 ] && return 0
  echo "installing missing packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's package starts a system engine; the test runs its own.
  if command -v systemctl >/dev/null; then
    $sudo systemctl disable --now docker.service docker.socket 2>/dev/null || true
  fi
}

# build_plugin NAME MODULE VERSION PKG [LDFLAGS]: go build of a module's main
# package from the module proxy, into $PLUGINS/docker-NAME, unless that
# version is already there. (`go install` refuses modules whose go.mod has
# exclude directives, as compose's does.)
build_plugin() {
  local name=$1 module=$2 version=$3 pkg=$4 ldflags=${5:-}
  local out=$PLUGINS/docker-$name stamp=$PLUGINS/.docker-$name.version
  if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "building docker-$name $version from the Go module proxy (a few minutes, once)" >&2
  mkdir -p "$PLUGINS"
  local dir work
  dir=$(GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "go mod download $module@$version gave no directory" >&2; return 1; }
  work=$(mktemp -d)
  cp -r "$dir/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg") || { rm -rf "$work"; return 1; }
  rm -rf "$work"
  mv "$out.tmp" "$out"
  echo "$version" >"$stamp"
}

install() {
  install_packages
  build_plugin compose github.com/docker/compose/v5 "$COMPOSE_VERSION" ./cmd \
    "-X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION"
  build_plugin buildx github.com/docker/buildx "$BUILDX_VERSION" ./cmd/buildx \
    "-X github.com/docker/buildx/version.Version=$BUILDX_VERSION"
}

engine_answers() { timeout 10 docker ${1:+-H "$1"} info >/dev/null 2>&1; }

start() {
  mkdir -p "$ENGINE"
  local host
  if [ -n "${DOCKER_HOST:-}" ] && engine_answers "$DOCKER_HOST"; then
    host=$DOCKER_HOST
  elif engine_answers "unix:///var/run/docker.sock"; then
    host=unix:///var/run/docker.sock
  elif [ -S "$SOCK" ] && engine_answers "unix://$SOCK"; then
    host=unix://$SOCK   # ours, from an earlier start
  else
    echo "starting dockerd (data root $ENGINE/data)" >&2
    rm -f "$SOCK" "$ENGINE/dockerd.pid"
    # cgroupfs: the machine has no systemd managing cgroups.
    $sudo setsid dockerd --data-root "$ENGINE/data" --exec-root "$ENGINE/exec" \
      --pidfile "$ENGINE/dockerd.pid" -H "unix://$SOCK" \
      --exec-opt native.cgroupdriver=cgroupfs >"$ENGINE/dockerd.log" 2>&1 </dev/null &
    echo $! >"$ENGINE/started-by-us"
    host=unix://$SOCK
    for _ in $(seq 1 60); do
      engine_answers "$host" && break
      sleep 1
    done
    engine_answers "$host" || { tail -20 "$ENGINE/dockerd.log" >&2; echo "dockerd did not start" >&2; return 1; }
  fi
  echo "export DOCKER_HOST=$host DOCKER_CONFIG=$DOCKER_CONFIG_DIR"
}

stop() {
  [ -f "$ENGINE/started-by-us" ] || return 0
  local pid
  pid=$(cat "$ENGINE/dockerd.pid" 2>/dev/null || cat "$ENGINE/started-by-us")
  rm -f "$ENGINE/started-by-us"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "stopping our dockerd ($pid)" >&2
    $sudo kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
    $sudo kill -KILL "$pid" 2>/dev/null || true
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
