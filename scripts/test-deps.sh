#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing: the tests start
# real clickhouse-server and PostgreSQL 15 servers, and check objects with the zstd CLI.
set -euo pipefail
need=()
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server clickhouse-client)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
[ -x /usr/bin/time ] || need+=(time)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "tidemark tests: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q "${need[@]}" >/dev/null
# The packages may start system-wide servers; the tests start their own.
$sudo service clickhouse-server stop >/dev/null 2>&1 || true
$sudo service postgresql stop >/dev/null 2>&1 || true
