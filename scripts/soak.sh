#!/usr/bin/env bash
# The long soak: the load test (tests/test_load.py: 32 connections, mixed hot
# operations, audit counts and chain checked at the end) for SOAK_SECONDS
# (default 600), on a throwaway cluster, then a check that no backend crashed.
#   scripts/soak.sh            10 minutes
#   SOAK_SECONDS=3600 scripts/soak.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
bash scripts/install-deps.sh
bash scripts/python-env.sh
bash scripts/install.sh --release >/tmp/fluxbase-soak-install.log 2>&1 || { cat /tmp/fluxbase-soak-install.log; exit 1; }
source scripts/cluster.sh
trap cluster_stop EXIT
cluster_start
LOAD_SECONDS=${SOAK_SECONDS:-600} LOAD_MAX_OPS=100000000 "$ROOT/.venv/bin/pytest" -q -p no:cacheprovider tests/test_load.py
if grep "terminated by signal" "$CLUSTER_DIR/server.log"; then
    echo "!! a backend crashed during the soak"; exit 1
fi
echo "soak: no backend crashed; audit counts matched; chain verified"
