#!/bin/sh
# The proxy's cost in one run: pgbench -S -c 8 straight to the test PostgreSQL over TLS and
# through the in-process proxy, the added latency per simple query, a new connection via the
# proxy vs a direct IAM login, memory per idle proxied connection, and mariadb-slap (MariaDB
# needs root for its PAM service). Needs pgbench and mariadb-slap (scripts/test.sh installs
# the servers and clients). The figures go to stdout; the README's proxy section quotes one run.
set -eu
cd "$(dirname "$0")/.."
# Clear what would redirect the clients.
unset PGHOST PGPORT PGUSER PGPASSWORD PGSSLMODE PGDATABASE 2>/dev/null || true
exec cargo bench --bench proxy --features proxy,postgres,mysql "$@"
