#!/usr/bin/env bash
# Benchmarks: one command. For each PostgreSQL major version asked for, builds
# the extension in release mode for it, starts a throwaway cluster, runs every
# bench/cases/*.sh (or the ones named), each of which prints its results as
# ratios against a baseline measured in the same run; every figure is printed
# under the version it was measured on.
#
#   bench/run.sh                    all cases, on PostgreSQL 15 then 18
#   PG_MAJOR=18 bench/run.sh        on one version (15 or 18; or PG_CONFIG=...)
#   bench/run.sh validate_session   just bench/cases/validate_session.sh
#   BENCH_SKIP_BUILD=1 ...          use the build installed already (smoke runs; not for figures)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/pg-env.sh
MAJORS=("${PG_MAJORS_ASKED[@]}")
if [ ${#MAJORS[@]} -gt 1 ]; then
    for major in "${MAJORS[@]}"; do
        env -u PG_CONFIG PG_MAJOR="$major" bash "$0" "$@"
    done
    exit 0
fi
export PG_MAJOR=${MAJORS[0]}
source scripts/pg-env.sh
bash scripts/install-deps.sh "$PG_MAJOR"
bash scripts/python-env.sh
echo "==> PostgreSQL $PG_MAJOR ($("$PG_CONFIG" --version))"
if [ -n "${BENCH_SKIP_BUILD:-}" ]; then
    # (a smoke run of the cases: whatever build is installed, e.g. scripts/test.sh's debug one;
    # its figures are not the release build's)
    echo "==> BENCH_SKIP_BUILD: using the extension installed in PostgreSQL $PG_MAJOR as it is"
else
    echo "==> building the extension (release, for PostgreSQL $PG_MAJOR)"
    bash scripts/install.sh --release >/tmp/fluxbase-bench-install.log 2>&1 || { cat /tmp/fluxbase-bench-install.log; exit 1; }
fi
source scripts/cluster.sh
# (that version's psql and pgbench)
export PATH="$PG_BIN:$PATH"
# The cluster lives in memory when there is room: with fsync off, the WAL and
# table files still reach the page cache, and the kernel writing back the
# gigabytes a write case produces ran in the middle of later measurements.
if [ -z "${FLUXBASE_CLUSTER_PARENT:-}" ] && [ -d /dev/shm ] \
    && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $((12 * 1024 * 1024)) ]; then
    export FLUXBASE_CLUSTER_PARENT=/dev/shm
fi
trap cluster_stop EXIT
cluster_start
# Benchmarks measure our code, not the disk or the server's background jobs:
# commits don't wait for the WAL flush, and no checkpoint or autovacuum starts
# in the middle of a measurement. (With the defaults, a write case ran into a
# checkpoint in most of its 4-second measurements, each followed by a burst of
# full-page images, and into autovacuum in some: the same build's ratios moved
# by 0.2 between runs.) Cases that write CHECKPOINT and VACUUM before each
# measurement instead, as pgbench vacuums before its runs.
psql -q -c "ALTER SYSTEM SET synchronous_commit = off" -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
    -c "ALTER SYSTEM SET checkpoint_timeout = '1d'" -c "ALTER SYSTEM SET autovacuum = off" \
    -c "SELECT pg_reload_conf()" >/dev/null
export PGBENCH="$PG_BIN/pgbench" PYTHON="$ROOT/.venv/bin/python"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=($(ls bench/cases/*.sh | xargs -n1 basename | sed 's/\.sh$//'))
for c in "${cases[@]}"; do
    echo "==> PostgreSQL $PG_MAJOR: $c"
    bash "bench/cases/$c.sh" | sed -u "s/^/[pg$PG_MAJOR] /"
done
