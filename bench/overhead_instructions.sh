#!/usr/bin/env bash
# What loading fluxbase_admin costs the statements it does not serve (issue 29
# item 5), counted in instructions by valgrind's callgrind, which the load of
# a shared machine cannot distort (bench/cases/overhead.sh measures the same in
# transactions per second, interleaved rounds).
#
# A single-user backend (`postgres --single`) runs a script of pgbench's
# transactions, with the library loaded before the first statement
# (`-c session_preload_libraries=fluxbase_admin`: _PG_init has run, every hook
# is installed) and without. The whole backend is counted (exec_simple_query is
# inlined into PostgresMain in Debian's build: no function to toggle on). Each
# side runs the script with N and with 2N transactions; the difference divided
# by N is the marginal cost of one transaction (reading it, parse, plan,
# execute, commit and every hook on the way), so start-up, cache warming,
# _PG_init itself and shut-down drop out.
# Every run starts from a copy of the same stopped cluster.
#
#   bash bench/overhead_instructions.sh   (after scripts/install.sh [--release];
#                                          inside your sandbox; needs valgrind)
#   OVERHEAD_CG_N=200 (transactions), OVERHEAD_CG_SHAPES="one secdef" (some),
#   OVERHEAD_CG_KEEP=1 (keep the callgrind files, for callgrind_annotate)
#
# Shapes: pgbench's select-only and TPC-B-like transactions (simple protocol),
# and one per hook: SELECT 1 (ExecutorRun hook + transaction callbacks), 20
# function lookups (needs_fmgr_hook), a SECURITY DEFINER call (fmgr_hook), two
# savepoints (subtransaction callbacks).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/pg-env.sh
N=${OVERHEAD_CG_N:-200}
source scripts/cluster.sh
trap cluster_stop EXIT
cluster_start
psql -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE bench_cg_overhead"
"$PG_BIN/pgbench" -i -q -s 1 bench_cg_overhead >/dev/null 2>&1
psql -q -v ON_ERROR_STOP=1 -d bench_cg_overhead <<'SQL'
CREATE EXTENSION fluxbase_admin;
CREATE FUNCTION public.sd(i int) RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS 'SELECT i + 1';
VACUUM ANALYZE;
SQL
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
out=$(mktemp -d /tmp/overhead-cg.XXXXXX)
chown postgres "$out"

# script SHAPE COUNT: COUNT transactions of SHAPE, one statement per line
script() {
    local shape=$1 n=$2 i
    for i in $(seq "$n"); do
        local aid=$(( (i * 7919) % 100000 + 1 )) tid=$(( i % 10 + 1 ))
        case $shape in
            select-only) echo "SELECT abalance FROM pgbench_accounts WHERE aid = $aid;" ;;
            tpcb-like)
                echo "BEGIN;"
                echo "UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = $aid;"
                echo "SELECT abalance FROM pgbench_accounts WHERE aid = $aid;"
                echo "UPDATE pgbench_tellers SET tbalance = tbalance + 5 WHERE tid = $tid;"
                echo "UPDATE pgbench_branches SET bbalance = bbalance + 5 WHERE bid = 1;"
                echo "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($tid, 1, $aid, 5, CURRENT_TIMESTAMP);"
                echo "END;"
                ;;
            one) echo "SELECT 1;" ;;
            lookups)
                printf 'SELECT '
                local k
                for k in $(seq 20); do printf "lower(md5('%s')) || upper('%s')" "$i" "$k"; [ "$k" -lt 20 ] && printf ' || '; done
                echo ';'
                ;;
            secdef) echo "SELECT public.sd($i);" ;;
            savepoints) printf 'BEGIN;\nSAVEPOINT s;\nRELEASE s;\nSAVEPOINT s;\nRELEASE s;\nCOMMIT;\n' ;;
        esac
    done
}

# count SHAPE SIDE COUNT: instructions of a backend running COUNT transactions
count() {
    local shape=$1 side=$2 n=$3 f="$out/$1-$2-$3"
    local preload=()
    [ "$side" = loaded ] && preload=(-c session_preload_libraries=fluxbase_admin)
    # (every run starts from the same copy of the stopped cluster: the writes
    # of one run do not make the next one's transactions dearer)
    rm -rf "$out/data" && cp -a "$CLUSTER_DIR/data" "$out/data"
    script "$shape" "$n" | runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$f.cg" \
        "$PG_BIN/postgres" --single -D "$out/data" "${preload[@]}" bench_cg_overhead >"$f.out" 2>"$f.err" \
        || { cat "$f.err" "$f.out"; return 1; }
    if grep -q "ERROR" "$f.out" "$f.err"; then grep -m3 ERROR "$f.out" "$f.err"; return 1; fi
    sed -n 's/^summary: //p' "$f.cg"
}

# Is the library really mapped in the loaded side, and not in the plain one?
# (callgrind names the objects it ran: fluxbase_admin.so must appear only in the loaded run)
mapped() {
    local f="$out/$1-$2-$N"
    callgrind_annotate --inclusive=yes "$f.cg" 2>/dev/null | grep -c "fluxbase_admin" || true
}

echo "==> callgrind: instructions per transaction (marginal, from $N and $((2 * N)) transactions)"
printf '  %-12s %14s %14s %12s %8s\n' shape "not loaded" loaded extra ratio
for shape in ${OVERHEAD_CG_SHAPES:-select-only tpcb-like one lookups secdef savepoints}; do
    p1=$(count "$shape" plain "$N"); l1=$(count "$shape" loaded "$N")
    l2=$(count "$shape" loaded $((2 * N))); p2=$(count "$shape" plain $((2 * N)))
    [ -n "${OVERHEAD_CG_DEBUG:-}" ] && echo "  raw: $p1 $p2 $l1 $l2"
    python3 - "$shape" "$N" "$p1" "$p2" "$l1" "$l2" <<'PY'
import sys
shape, n, p1, p2, l1, l2 = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
p, l = (p2 - p1) / n, (l2 - l1) / n
print(f"  {shape:12} {p:14.0f} {l:14.0f} {l - p:+12.0f} {p / l:8.4f}")
PY
done
[ -n "${OVERHEAD_CG_SHAPES:-}" ] || [ "$(mapped one loaded)" -gt 0 ] || { echo "the loaded backend did not run the library (session_preload_libraries ignored?)"; exit 1; }
[ -n "${OVERHEAD_CG_SHAPES:-}" ] || [ "$(mapped one plain)" = 0 ] || { echo "the plain backend ran the library"; exit 1; }
echo "  (ratio = not loaded / loaded instructions: the throughput ratio if instructions were time; target >= 0.98)"
if [ -n "${OVERHEAD_CG_KEEP:-}" ]; then echo "  callgrind files: $out"; else rm -rf "$out"; fi
