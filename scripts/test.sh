#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a developer's.
#
# Installs what the integration tests need when it is missing (the PostgreSQL and MariaDB
# server packages the test harness starts throwaway servers from, PAM's userdb module and
# Perl's DB_File for MariaDB's cleartext-password user), then runs every test of every
# feature, the crate's and toolkits/' (sea-orm). The servers already running on the machine
# are never used.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
[ -e /usr/lib/x86_64-linux-gnu/security/pam_userdb.so ] || ls /lib/*/security/pam_userdb.so >/dev/null 2>&1 || need+=(libpam-modules)
perl -MDB_File -e1 2>/dev/null || need+=(libdb-file-perl)
# The real clients the proxy's tests drive (and scripts/proxy-bench.sh: pgbench, mariadb-slap).
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing test server packages: ${need[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "WARNING: missing ${need[*]} and not root: install them (apt-get install ${need[*]})" >&2
    fi
fi

# `--workspace`: the crate and `toolkits/` (the sea-orm examples and tests), built once with
# every feature.
cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
