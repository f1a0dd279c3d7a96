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
#
# Each version's output starts with the date, the build (profile, LTO), the commit
# and the load average; each case's with the load average (uptime) before it and
# ends with its duration and the load after it: the machine is shared, so a figure
# is read with the load it was measured under. A case that fails is reported and
# the others still run (the exit status says whether any failed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/pg-env.sh
MAJORS=("${PG_MAJORS_ASKED[@]}")
if [ ${#MAJORS[@]} -gt 1 ]; then
    status=0
    for major in "${MAJORS[@]}"; do
        env -u PG_CONFIG PG_MAJOR="$major" bash "$0" "$@" || status=1
    done
    exit $status
fi
export PG_MAJOR=${MAJORS[0]}
source scripts/pg-env.sh
bash scripts/install-deps.sh "$PG_MAJOR"
bash scripts/python-env.sh
load() { sed -n 's/.*load average: //p' <(uptime); }
lto=$(sed -n '/^\[profile.release\]/,/^\[/ s/^lto *= *"\?\([a-z]*\)"\?.*/\1/p' Cargo.toml)
echo "==> PostgreSQL $PG_MAJOR ($("$PG_CONFIG" --version)), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (modified)'), load average $(load)"
if [ -n "${BENCH_SKIP_BUILD:-}" ]; then
    # (a smoke run of the cases: whatever build is installed, e.g. scripts/test.sh's debug one;
    # its figures are not the release build's)
    echo "==> BENCH_SKIP_BUILD: using the extension installed in PostgreSQL $PG_MAJOR as it is (not a release figure)"
else
    echo "==> building the extension (release, lto = ${lto:-off}; cargo feature pg$PG_MAJOR) and installing it into $("$PG_CONFIG" --sharedir)"
    log=$(mktemp /tmp/fluxbase-bench-install.XXXXXX)
    bash scripts/install.sh --release >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
    rm -f "$log"
    # The web cases (dashboard, tables) run the fluxbase server: the release one,
    # built here, before any measurement (not inside a case).
    if [ -z "${FLUXBASE_BIN:-}" ]; then
        echo "==> building the fluxbase server (release, lto = ${lto:-off})"
        cargo build -q --release -p fluxbase
        export FLUXBASE_BIN="$ROOT/target/release/fluxbase"
    fi
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
failed=()
for c in "${cases[@]}"; do
    echo "==> PostgreSQL $PG_MAJOR: $c (load average before: $(load))"
    t0=$SECONDS
    # (stderr too: every line of a case is labelled with its version)
    if ! bash "bench/cases/$c.sh" 2>&1 | sed -u "s/^/[pg$PG_MAJOR] /"; then
        failed+=("$c")
        echo "[pg$PG_MAJOR] !! $c FAILED; the server log's last lines:"
        tail -n 30 "$CLUSTER_DIR/server.log" | sed "s/^/[pg$PG_MAJOR]   | /"
        # (a crashed server restarts by itself: the next case waits for it)
        for _ in $(seq 120); do "$PG_BIN/pg_isready" -q && break; sleep 1; done
    fi
    echo "[pg$PG_MAJOR] ($c: $((SECONDS - t0)) s; load average after: $(load))"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "==> PostgreSQL $PG_MAJOR: failed: ${failed[*]}"
    exit 1
fi
