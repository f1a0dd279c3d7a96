#!/usr/bin/env bash
# Benchmarks: one command. Builds the extension in release mode, starts a
# throwaway cluster, runs every bench/cases/*.sh (or the ones named), each of
# which prints its results as ratios against a baseline measured in the same run.
#
#   bench/run.sh                 all cases
#   bench/run.sh validate_session   just bench/cases/validate_session.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
bash scripts/install-deps.sh
bash scripts/python-env.sh
echo "==> building the extension (release)"
bash scripts/install.sh --release >/tmp/fluxbase-bench-install.log 2>&1 || { cat /tmp/fluxbase-bench-install.log; exit 1; }
source scripts/cluster.sh
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
    echo "==> $c"
    bash "bench/cases/$c.sh"
done
