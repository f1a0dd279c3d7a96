#!/usr/bin/env bash
# What loading fluxbase_admin costs the statements it does not serve (issue 29
# item 5): pgbench's select-only (-S) and TPC-B-like scripts in backends where
# the library is loaded (role bench_loaded: session_preload_libraries =
# fluxbase_admin, so _PG_init has run and every hook is installed before the
# first statement) against backends where it is not (role bench_plain), same
# database, same tables, interleaved rounds; the median of the per-round
# ratios. Target: >= 0.98 of the unloaded throughput on both.
#
# Then what each hook costs, as the extra time per statement of a shape that
# exercises it (loaded minus unloaded, prepared statements, one client):
#   ExecutorRun hook + the transaction callbacks   SELECT 1 (one statement, one transaction)
#   needs_fmgr_hook                                 a statement looking up 20 functions
#   fmgr_hook                                       a SECURITY DEFINER function call
#   subtransaction callbacks                        SAVEPOINT / RELEASE
# (perf's instruction counter would be steadier: used when `perf stat -e
# instructions true` works; on a VM without it the time differences are shown.)
#
# Measured on 2 cores shared with other engineers' builds: see the figures the
# run prints with its load average (bench/run.sh).
set -euo pipefail
DB=bench_overhead
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-6}
source "$(dirname "$0")/../lib.sh"
fresh_db
"$PGBENCH" -i -q -s "${BENCH_SCALE:-10}" "$DB" >/dev/null 2>&1
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION fluxbase_admin;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_plain') THEN CREATE ROLE bench_plain LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_loaded') THEN CREATE ROLE bench_loaded LOGIN; END IF;
END $$;
GRANT ALL ON ALL TABLES IN SCHEMA public TO bench_plain, bench_loaded;
GRANT CREATE ON SCHEMA public TO bench_plain, bench_loaded;
CREATE FUNCTION public.sd(i int) RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS 'SELECT i + 1';
GRANT EXECUTE ON FUNCTION public.sd(int) TO bench_plain, bench_loaded;
SQL
psql -q -X -d "$DB" -c "ALTER ROLE bench_loaded IN DATABASE $DB SET session_preload_libraries = 'fluxbase_admin'" >/dev/null
psql -q -X -d "$DB" -c "ALTER ROLE bench_plain IN DATABASE $DB RESET ALL" >/dev/null

# The library is mapped in one kind of backend and not in the other.
mapped() {
    "${PYTHON:-python3}" - "$1" "$DB" <<'PY'
import sys, psycopg
with psycopg.connect(user=sys.argv[1], dbname=sys.argv[2]) as c:
    c.execute("SELECT 1")
    pid = c.info.backend_pid
    print("yes" if "fluxbase_admin" in open(f"/proc/{pid}/maps").read() else "no")
PY
}
[ "$(mapped bench_loaded)" = yes ] || { echo "bench_loaded's backend does not have the library"; exit 1; }
[ "$(mapped bench_plain)" = no ] || { echo "bench_plain's backend has the library"; exit 1; }

# tps_as ROLE BUILTIN_OR_SCRIPT
tps_as() {
    local what=(-b "$2")
    [ -f "$WORK/$2.sql" ] && what=(-f "$WORK/$2.sql")
    "$PGBENCH" -n -U "$1" -c 1 -T "$SECS" -M prepared "${what[@]}" "$DB" 2>&1 | awk '/^tps/ {print $3}'
}

echo "SELECT 1;" >"$WORK/one.sql"
{
    echo '\set i random(1, 1000)'
    printf 'SELECT '
    for i in $(seq 20); do printf 'lower(md5(:i::text)) || upper(%s::text)' "$i"; [ "$i" -lt 20 ] && printf ' || '; done
    echo ';'
} >"$WORK/lookups.sql"
echo "SELECT public.sd(1);" >"$WORK/secdef.sql"
printf 'BEGIN;\nSAVEPOINT s;\nRELEASE s;\nSAVEPOINT s;\nRELEASE s;\nCOMMIT;\n' >"$WORK/savepoints.sql"

results=()
for round in $(seq "$ROUNDS"); do
    line=""
    for s in select-only tpcb-like one lookups secdef savepoints; do
        if [ "$s" = tpcb-like ]; then
            psql -q -X -d "$DB" -c "VACUUM ANALYZE pgbench_branches, pgbench_tellers" -c "TRUNCATE pgbench_history" >/dev/null
        fi
        if [ $((round % 2)) = 1 ]; then p=$(tps_as bench_plain "$s"); l=$(tps_as bench_loaded "$s")
        else l=$(tps_as bench_loaded "$s"); p=$(tps_as bench_plain "$s"); fi
        line+="$s $p $l "
    done
    results+=("$line")
done
perf_ok=no
perf stat -e instructions true 2>&1 | grep -q "<not supported>\|not found\|Permission" || perf_ok=yes

python3 - "$SECS" "$perf_ok" "${results[@]}" <<'PY'
import statistics, sys
secs, perf_ok, rounds = sys.argv[1], sys.argv[2], sys.argv[3:]
data = {}
for r in rounds:
    f = r.split()
    for i in range(0, len(f), 3):
        data.setdefault(f[i], []).append((float(f[i + 1]), float(f[i + 2])))
print(f"  {len(rounds)} interleaved rounds of {secs} s per kind of backend, 1 client, prepared; medians")
for name, label in (("select-only", "pgbench -S (select-only)"), ("tpcb-like", "pgbench TPC-B-like")):
    ratio = statistics.median(l / p for p, l in data[name])
    p, l = (statistics.median(x) for x in zip(*data[name]))
    print(f"  {label:28} not loaded {p:8.0f} tps, loaded {l:8.0f} tps, ratio {ratio:.3f} "
          f"(target >= 0.98) {'PASS' if ratio >= 0.98 else 'FAIL'}")
print("  cost per statement with the library loaded (µs, loaded minus not loaded; noise of the same order on a shared machine):")
for name, what in (("one", "SELECT 1: ExecutorRun hook + transaction callbacks"),
                   ("lookups", "40 function lookups: needs_fmgr_hook (and ExecutorRun, xact)"),
                   ("secdef", "SECURITY DEFINER call: fmgr_hook START/END (and ExecutorRun, xact)"),
                   ("savepoints", "2 savepoints in a transaction: subxact callbacks (per transaction of 6 statements)")):
    cost = statistics.median(1e6 / l - 1e6 / p for p, l in data[name])
    p, l = (statistics.median(x) for x in zip(*data[name]))
    print(f"    {what:90} {cost:+7.2f} µs  ({p:.0f} vs {l:.0f} tps)")
if perf_ok != "yes":
    print("  (perf's instruction counter is not available here: `perf stat -e instructions true` says not supported)")
PY
psql -q -X -d postgres -c "DROP DATABASE $DB" >/dev/null
