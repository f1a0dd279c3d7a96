#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, runs the
# plain-Rust unit tests, installs the extension into PostgreSQL 15, starts a
# throwaway cluster, runs the client-level tests (tests/, pytest) against it,
# then the pgrx #[pg_test] suite. Exits non-zero when anything fails; the
# cluster is stopped on every way out. Ends with one total line.
#
#   scripts/test.sh              everything
#   scripts/test.sh -k lockout   only client tests matching (passed to pytest; skips the pgrx suite)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
LOGS=$(mktemp -d /tmp/fluxbase-test-logs.XXXXXX)

bash scripts/install-deps.sh
bash scripts/python-env.sh

echo "==> unit tests (fluxbase_core, fluxbase CLI)"
# (pipefail is on: a pipeline fails when cargo or pytest does, not just tee)
if ! cargo test -p fluxbase_core -p fluxbase >"$LOGS/unit.log" 2>&1; then
    tail -50 "$LOGS/unit.log"; exit 1
fi
grep -E "^test result" "$LOGS/unit.log"

echo "==> build and install the extension"
bash scripts/install.sh >"$LOGS/install.log" 2>&1 || { cat "$LOGS/install.log"; exit 1; }
cargo build -q -p fluxbase

source scripts/cluster.sh
trap cluster_stop EXIT
cluster_start
export FLUXBASE_BIN="$ROOT/target/debug/fluxbase"

status=0
echo "==> web dashboard handler tests (fluxbase_web) against the cluster"
if ! cargo test -q -p fluxbase_web >"$LOGS/web.log" 2>&1; then
    tail -60 "$LOGS/web.log"; status=1
fi
grep -E "^test result" "$LOGS/web.log" || true

echo "==> client-level tests (pytest, browser tests in tests/web) against a real cluster"
if ! "$ROOT/.venv/bin/pytest" -q -p no:cacheprovider tests "$@" 2>&1 | tee "$LOGS/pytest.log"; then
    status=1
fi
# A backend that crashed would have made the postmaster restart its children.
# (Signal 9 is the fault tests killing a backend on purpose.)
if grep "terminated by signal" "$CLUSTER_DIR/server.log" | grep -qv "signal 9"; then
    echo "!! a backend crashed during the tests:"; grep -B8 "terminated by signal" "$CLUSTER_DIR/server.log" | head -60
    status=1
fi
cluster_stop

if [ $status -eq 0 ] && [ $# -eq 0 ]; then
    echo "==> pgrx #[pg_test] suite"
    PGTEST_DIR=$(mktemp -d /tmp/fbpgt.XXXX); chown postgres:postgres "$PGTEST_DIR"
    env -u RUST_BACKTRACE cargo pgrx test pg15 --runas postgres --pgdata "$PGTEST_DIR/d" >"$LOGS/pgtest.log" 2>&1 || status=1
    grep -E "^test |^test result" "$LOGS/pgtest.log" || true
    [ $status -eq 0 ] || tail -40 "$LOGS/pgtest.log"
    rm -rf "$PGTEST_DIR"
fi

# One closing line over every runner.
python3 - "$LOGS" <<'PY'
import pathlib, re, sys
passed = failed = skipped = 0
for log in pathlib.Path(sys.argv[1]).glob("*.log"):
    text = log.read_text(errors="replace")
    for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed", text):
        passed += int(m.group(1)); failed += int(m.group(2))
    if log.name == "pytest.log":
        tail = text.strip().splitlines()[-1] if text.strip() else ""
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail):
            if what == "passed": passed += int(n)
            elif what == "skipped": skipped += int(n)
            else: failed += int(n)
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
PY
rm -rf "$LOGS"
exit $status
