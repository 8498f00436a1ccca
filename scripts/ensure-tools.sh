#!/usr/bin/env bash
# Installs what `make test`, `make run` and `make bench` need and a fresh
# machine may lack: Postgres server binaries, pgbouncer, promtool (and, with
# --bench, wrk and hey).
# Uses Debian's packages; needs root or sudo only when something is missing.
set -euo pipefail

need=()
have_postgres() {
  [ -n "${TAXIWAY_PG_BIN:-}" ] && [ -x "$TAXIWAY_PG_BIN/postgres" ] && return 0
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && return 0
  command -v postgres >/dev/null && command -v initdb >/dev/null
}
have_postgres || need+=(postgresql)
# pgbouncer: `make test-pgbouncer` and `taxiway local -replicas N -pgbouncer`.
[ -n "${TAXIWAY_PGBOUNCER_BIN:-}" ] || command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
# promtool: the alert rules' checks and unit tests (deploy/prometheus).
command -v promtool >/dev/null || need+=(prometheus)
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null || need+=(wrk)
  command -v hey >/dev/null || need+=(hey)
fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing missing packages: ${need[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages start a system cluster on 5432, a system pgbouncer on
# 6432 and a Prometheus on 9090; Taxiway runs its own of each or none.
if [[ " ${need[*]} " == *" pgbouncer "* ]] && command -v systemctl >/dev/null; then
  $sudo systemctl disable --now pgbouncer 2>/dev/null || true
fi
if [[ " ${need[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
  $sudo systemctl disable --now prometheus 2>/dev/null || true
fi
if [[ " ${need[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null; then
  $sudo pg_ctlcluster --force "$(pg_lsclusters -h | awk 'NR==1{print $1}')" main stop 2>/dev/null || true
fi
