#!/usr/bin/env bash
# Purging a large audit log while people sign in (issue 35): for each size in
# BENCH_PURGE_ENTRIES, a log of that many entries, then
# dashboard_auth.purge_audit_through(all of them) while 2 clients sign in and
# write an audited entry in a loop (each a commit that appends to the chain).
# Reports how long the log took to build, the purge's duration, and the
# clients' latency (p50, p99, worst) before and during the purge, plus the most
# lock waits seen at once during it and how many of them were waits for the
# purger (pg_blocking_pids). Target: no client ever waits for the purge.
#
#   BENCH_PURGE_ENTRIES (default "1000000 3000000"): log sizes, one run each
#
# The log is built the fast way the superuser has: INSERT ... SELECT into
# dashboard_auth.audit_log, 500,000 entries per transaction, each appended to
# the chain at its commit by the extension (so the chain is the real one:
# verify_audit_chain() checks what is left after the purge).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DB=bench_audit_purge
source "$ROOT/bench/lib.sh"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
SIZES=${BENCH_PURGE_ENTRIES:-1000000 3000000}
CHUNK=500000
PW=correct-horse-battery-9
status=0
for N in $SIZES; do
    export PGDATABASE=postgres
    fresh_db
    export PGDATABASE=$DB
    psql -q -X -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "CREATE EXTENSION fluxbase_admin" \
        -c "SELECT dashboard_auth.setup_first_admin('bench@example.com', '$PW', 'Bench')" >/dev/null
    b0=$(date +%s.%N)
    done_n=0
    while [ "$done_n" -lt "$N" ]; do
        n=$(( N - done_n < CHUNK ? N - done_n : CHUNK ))
        psql -q -X -v ON_ERROR_STOP=1 -c "INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id, details, ip)
            SELECT 'db:bench', 'bench.event', 'thing', g::text,
                   jsonb_build_object('n', g, 'note', 'a typical small details document'), '10.0.0.1'::inet
              FROM generate_series($done_n + 1, $done_n + $n) g" >/dev/null
        done_n=$(( done_n + n ))
    done
    b1=$(date +%s.%N)
    psql -q -X -c "VACUUM ANALYZE dashboard_auth.audit_log" -c "CHECKPOINT" >/dev/null
    TOTAL=$(psql -X -qtA -c "SELECT last_id FROM dashboard_auth.audit_chain_head")
    SIZE=$(psql -X -qtA -c "SELECT pg_size_pretty(pg_total_relation_size('dashboard_auth.audit_log'))")
    echo "audit_purge: $TOTAL entries built in $(awk -v a="$b0" -v b="$b1" 'BEGIN {printf "%.1f", b - a}') s ($SIZE with its indexes)"
    URL="postgresql://postgres@/$DB?host=$PGHOST&port=$PGPORT"
    if ! "$PYTHON" - "$URL" "$TOTAL" "$PW" <<'PY'; then status=1; fi
import statistics, sys, threading, time
import psycopg

url, total, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stop = threading.Event()
samples = []  # (start, latency s)
errors = []

def client():
    c = psycopg.connect(url, autocommit=True)
    c.execute("SET lock_timeout = '30s'")
    try:
        while not stop.is_set():
            t0 = time.monotonic()
            st = c.execute("SELECT status FROM dashboard_auth.login('bench@example.com', %s)", (pw,)).fetchone()[0]
            t1 = time.monotonic()
            c.execute("INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id) "
                      "VALUES ('db:bench', 'bench.meanwhile', 'thing', 'x')")
            t2 = time.monotonic()
            if st != "ok":
                errors.append(f"sign-in: {st}")
            samples.append((t0, "signin", t1 - t0))
            samples.append((t1, "write", t2 - t1))
    except Exception as e:  # reported below
        errors.append(repr(e))
    finally:
        c.close()

purger = psycopg.connect(url, autocommit=True)
purger_pid = purger.execute("SELECT pg_backend_pid()").fetchone()[0]
watch_stats = {"max_waiting": 0, "waiting_for_purger": 0, "samples": 0}
purging = threading.Event()

def watch():
    c = psycopg.connect(url, autocommit=True)
    while not stop.is_set():
        if purging.is_set():
            w, p = c.execute(
                "SELECT count(*), count(*) FILTER (WHERE %s = ANY(pg_blocking_pids(pid))) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> %s AND wait_event_type = 'Lock'",
                (purger_pid, purger_pid)).fetchone()
            # (only while the purge statement runs, not in its commit's one-entry append)
            still = c.execute("SELECT state = 'active' AND query LIKE '%%purge_audit_through%%' FROM pg_stat_activity "
                              "WHERE pid = %s", (purger_pid,)).fetchone()[0]
            if still:
                watch_stats["samples"] += 1
                watch_stats["max_waiting"] = max(watch_stats["max_waiting"], w)
                watch_stats["waiting_for_purger"] += p
        time.sleep(0.01)
    c.close()

threads = [threading.Thread(target=client) for _ in range(2)] + [threading.Thread(target=watch)]
for t in threads:
    t.start()
time.sleep(5)  # the baseline: before the purge
p0 = time.monotonic()
purging.set()
purged = purger.execute("SELECT dashboard_auth.purge_audit_through(%s)", (total,)).fetchone()[0]
purging.clear()
p1 = time.monotonic()
time.sleep(2)
stop.set()
for t in threads:
    t.join(60)
ok = purger.execute("SELECT ok FROM dashboard_auth.verify_audit_chain()").fetchone()[0]
purger.close()

def summary(rows):
    lat = sorted(r[2] * 1000 for r in rows)
    if not lat:
        return "no samples"
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return f"{len(lat)} ops, p50 {statistics.median(lat):.1f} ms, p99 {p99:.1f} ms, worst {lat[-1]:.1f} ms"

for kind in ("signin", "write"):
    before = [s for s in samples if s[1] == kind and s[0] + s[2] < p0]
    during = [s for s in samples if s[1] == kind and s[0] < p1 and s[0] + s[2] > p0]
    print(f"audit_purge {total}: {kind} before the purge: {summary(before)}; during it: {summary(during)}")
print(f"audit_purge {total}: purge_audit_through removed {purged} entries in {p1 - p0:.2f} s "
      f"({purged / (p1 - p0):.0f} entries/s); chain verifies after it: {ok}")
print(f"audit_purge {total}: lock waits during the purge statement ({watch_stats['samples']} samples): "
      f"at most {watch_stats['max_waiting']} at once, {watch_stats['waiting_for_purger']} for the purger "
      f"{'PASS' if watch_stats['waiting_for_purger'] == 0 and not errors and ok else 'FAIL'}")
if errors:
    print("!! " + "; ".join(errors[:5]))
sys.exit(0 if watch_stats["waiting_for_purger"] == 0 and not errors and ok else 1)
PY
done
exit $status
