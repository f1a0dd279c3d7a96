#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, runs the
# plain-Rust unit tests, installs the extension into PostgreSQL 15, starts a
# throwaway cluster, runs the client-level tests (tests/, pytest) against it,
# then the pgrx #[pg_test] suite. Exits non-zero when anything fails; the
# cluster is stopped on every way out.
#
#   scripts/test.sh              everything
#   scripts/test.sh -k lockout   only client tests matching (passed to pytest)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}

bash scripts/install-deps.sh
bash scripts/python-env.sh

echo "==> unit tests (fluxbase_core, fluxbase CLI)"
cargo test -q -p fluxbase_core -p fluxbase

echo "==> build and install the extension"
cargo pgrx install --pg-config "$PG_CONFIG" >/tmp/fluxbase-install.log 2>&1 || { cat /tmp/fluxbase-install.log; exit 1; }
cargo build -q -p fluxbase

source scripts/cluster.sh
trap cluster_stop EXIT
cluster_start
export FLUXBASE_BIN="$ROOT/target/debug/fluxbase"

echo "==> client-level tests against a real cluster"
status=0
"$ROOT/.venv/bin/pytest" -q -p no:cacheprovider tests "$@" || status=$?
# A backend that crashed would have made the postmaster restart its children.
if grep -q "terminated by signal\|server process .* was terminated" "$CLUSTER_DIR/server.log"; then
    echo "!! a backend crashed during the tests:"; grep -B2 -A5 "terminated by signal" "$CLUSTER_DIR/server.log" | head -40
    status=1
fi
cluster_stop
[ $status -eq 0 ] || exit $status

if [ $# -eq 0 ]; then
    echo "==> pgrx #[pg_test] suite"
    PGTEST_DIR=$(mktemp -d /tmp/fbpgt.XXXX); chown postgres:postgres "$PGTEST_DIR"
    env -u RUST_BACKTRACE cargo pgrx test pg15 --runas postgres --pgdata "$PGTEST_DIR/d" 2>&1 | tail -15
    rc=${PIPESTATUS[0]}
    rm -rf "$PGTEST_DIR"
    exit $rc
fi
