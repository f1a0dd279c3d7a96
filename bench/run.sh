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
trap cluster_stop EXIT
cluster_start
# Benchmarks measure our code, not the disk.
psql -q -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
export PGBENCH="$PG_BIN/pgbench" PYTHON="$ROOT/.venv/bin/python"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=($(ls bench/cases/*.sh | xargs -n1 basename | sed 's/\.sh$//'))
for c in "${cases[@]}"; do
    echo "==> $c"
    bash "bench/cases/$c.sh"
done
