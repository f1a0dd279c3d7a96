#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, runs the
# plain-Rust unit tests, then for each supported PostgreSQL major version (15,
# then 18): builds and installs the extension for it (one build per version),
# starts a throwaway cluster, runs the client-level tests (tests/, pytest:
# upgrades, dump/restore, the hot standby, the browser, ...) against it, the
# hook-sensitive tests (NO_PRELOAD_TESTS) again on a cluster without
# shared_preload_libraries (issue 29), then the pgrx #[pg_test] suite. Exits non-zero when anything fails; clusters are
# stopped on every way out. Ends with the totals per version, the suite's
# duration and one total line.
#
#   scripts/test.sh              everything, on PostgreSQL 15 and 18
#   PG_MAJOR=18 scripts/test.sh  everything, on one version (15 or 18; or PG_CONFIG=...)
#   scripts/test.sh -k lockout   only client tests matching (passed to pytest; skips the pgrx suite)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STARTED=$(date +%s)
source scripts/pg-env.sh
MAJORS=("${PG_MAJORS_ASKED[@]}")
LOGS=$(mktemp -d /tmp/fluxbase-test-logs.XXXXXX)

bash scripts/install-deps.sh "${MAJORS[@]}"
bash scripts/python-env.sh

echo "==> unit tests (fluxbase_core, fluxbase CLI)"
# (pipefail is on: a pipeline fails when cargo or pytest does, not just tee)
if ! cargo test -p fluxbase_core -p fluxbase >"$LOGS/unit.log" 2>&1; then
    tail -50 "$LOGS/unit.log"; exit 1
fi
grep -E "^test result" "$LOGS/unit.log"
# No import circles between the top-level modules of src/ and web/src/ (issue 31).
python3 scripts/check-layers.py
cargo build -q -p fluxbase
export FLUXBASE_BIN="$ROOT/target/debug/fluxbase"

# Everything that depends on the server version, for one major. Runs in a
# subshell (its own cluster, trap and environment); logs go to $LOGS/pg<major>/.
run_version() {
    local major=$1 dir="$LOGS/pg$1" status=0 t0
    t0=$(date +%s)
    mkdir -p "$dir"
    unset PG_CONFIG PG_BIN
    export PG_MAJOR=$major
    source scripts/pg-env.sh
    source scripts/cluster.sh
    echo "==> PostgreSQL $PG_MAJOR: build and install the extension ($PG_CONFIG)"
    bash scripts/install.sh >"$dir/install.log" 2>&1 || { cat "$dir/install.log"; return 1; }

    trap cluster_stop EXIT
    cluster_start || return 1
    echo "==> PostgreSQL $PG_MAJOR: web dashboard handler tests (fluxbase_web) against the cluster"
    if ! cargo test -q -p fluxbase_web >"$dir/web.log" 2>&1; then
        tail -60 "$dir/web.log"; status=1
    fi
    grep -E "^test result" "$dir/web.log" || true
    echo "==> PostgreSQL $PG_MAJOR: client-level tests (pytest, browser tests in tests/web) against a real cluster"
    if ! "$ROOT/.venv/bin/pytest" -q -p no:cacheprovider tests "${PYTEST_ARGS[@]}" 2>&1 | tee "$dir/pytest.log"; then
        status=1
    fi
    # A backend that crashed would have made the postmaster restart its children.
    # (Signal 9 is the fault tests killing a backend on purpose.)
    if grep "terminated by signal" "$CLUSTER_DIR/server.log" | grep -qv "signal 9"; then
        echo "!! a backend crashed during the tests:"; grep -B8 "terminated by signal" "$CLUSTER_DIR/server.log" | head -60
        status=1
    fi
    cluster_stop

    # Issue 29: the same tests' hook-sensitive part again on a cluster without
    # shared_preload_libraries (most servers: no other library's ExecutorRun
    # hook before ours), so a difference between the two kinds cannot hide.
    echo "==> PostgreSQL $PG_MAJOR: hook-sensitive tests on a cluster without shared_preload_libraries"
    FLUXBASE_PRELOAD='' cluster_start || return 1
    local rc log
    # (tests/ and tests/web/ each have their own conftest: one pytest run each)
    for log in nopreload nopreload-web; do
        rc=0
        if [ $log = nopreload ]; then set -- "${NO_PRELOAD_TESTS[@]}"; else set -- "${NO_PRELOAD_WEB_TESTS[@]}"; fi
        "$ROOT/.venv/bin/pytest" -q -p no:cacheprovider "$@" "${PYTEST_ARGS[@]}" >"$dir/pytest-$log.log" 2>&1 || rc=$?
        # (5: -k selected none of them)
        if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then
            tail -60 "$dir/pytest-$log.log"; status=1
        fi
        echo "   without preload ($log): $(tail -1 "$dir/pytest-$log.log")"
    done
    if grep "terminated by signal" "$CLUSTER_DIR/server.log" | grep -qv "signal 9"; then
        echo "!! a backend crashed (cluster without preload):"; grep -B8 "terminated by signal" "$CLUSTER_DIR/server.log" | head -60
        status=1
    fi
    cluster_stop

    if [ $status -eq 0 ] && [ ${#PYTEST_ARGS[@]} -eq 0 ]; then
        echo "==> PostgreSQL $PG_MAJOR: pgrx #[pg_test] suite"
        PGTEST_DIR=$(mktemp -d /tmp/fbpgt.XXXX); chown postgres:postgres "$PGTEST_DIR"
        # (cargo pgrx test pgNN picks that major's feature itself)
        env -u RUST_BACKTRACE cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$PGTEST_DIR/d" >"$dir/pgtest.log" 2>&1 || status=1
        grep -E "^test |^test result" "$dir/pgtest.log" || true
        [ $status -eq 0 ] || tail -40 "$dir/pgtest.log"
        rm -rf "$PGTEST_DIR"
    fi
    echo "PostgreSQL $PG_MAJOR took $(( $(date +%s) - t0 )) s" >"$dir/duration"
    return $status
}

PYTEST_ARGS=("$@")
# Run a second time, on a cluster without shared_preload_libraries (issue 29).
NO_PRELOAD_TESTS=(tests/test_error_fidelity.py tests/test_stepup.py tests/test_confinement.py tests/test_impersonation.py)
NO_PRELOAD_WEB_TESTS=("tests/web/test_sections.py::test_stepup_wrong_secret_then_right")
status=0
for major in "${MAJORS[@]}"; do
    ( run_version "$major" ) || status=1
done

# The totals: per version, then one closing line over every runner.
python3 - "$LOGS" "$(( $(date +%s) - STARTED ))" <<'PY'
import pathlib, re, sys
logs, duration = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def count(files):
    passed = failed = skipped = 0
    for log in files:
        text = log.read_text(errors="replace")
        for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed", text):
            passed += int(m.group(1)); failed += int(m.group(2))
        if log.name.startswith("pytest"):  # pytest.log, pytest-nopreload.log
            tail = text.strip().splitlines()[-1] if text.strip() else ""
            for n, what in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail):
                if what == "passed": passed += int(n)
                elif what == "skipped": skipped += int(n)
                else: failed += int(n)
    return passed, failed, skipped

total = [0, 0, 0]
parts = [("unit tests", None, [logs / "unit.log"])]
parts += [(f"PostgreSQL {d.name[2:]}", d, sorted(d.glob("*.log"))) for d in sorted(logs.glob("pg*"))]
for part, d, files in parts:
    p, f, s = count(files)
    took = (d / "duration").read_text().split()[-2] if d and (d / "duration").exists() else None
    print(f"   {part}: {p} ok, {f} not ok, {s} skipped" + (f" in {took} s" if took else ""))
    if d and list(d.glob("pytest-nopreload*.log")):  # (included in the line above)
        np, nf, ns = count(sorted(d.glob("pytest-nopreload*.log")))
        print(f"     of which without shared_preload_libraries: {np} ok, {nf} not ok, {ns} skipped")
    total = [a + b for a, b in zip(total, (p, f, s))]
print(f"suite duration: {duration} s")
print(f"total: {total[0]} passed, {total[1]} failed, {total[2]} skipped")
PY
rm -rf "$LOGS"
exit $status
