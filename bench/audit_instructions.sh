#!/usr/bin/env bash
# Instructions per row of the audit case (bench/cases/audit.sh), counted by
# valgrind's callgrind in a single-user backend: independent of the machine's
# load, unlike the timings (this machine has no hardware counters for
# `perf stat -e instructions`). Counts the whole backend — each statement's
# parse, plan, execution, triggers and commit with its audit append — running
# K and then 3K statements in a row and divides the difference by 2K
# statements' rows, so the backend's start and end and its first statements
# (cache loads) cancel out. (exec_simple_query, which would bound the count to
# the statements, is inlined into PostgresMain in Debian's build.)
#
#   bash bench/audit_instructions.sh          (after scripts/install.sh --release;
#                                               inside your sandbox; needs valgrind)
#
# Sides: unaudited; enable_audit; pgaudit 1.7 with pgaudit.log = 'write' (when
# its library is installed: Debian's postgresql-15-pgaudit, see
# scripts/install-deps.sh; in a single-user backend its log lines go to stderr,
# whose write(2) callgrind does not count, as it does not count a server's).
# Workloads: 100-row INSERT and UPDATE batches (bench/cases/audit.sh's), and
# single-row INSERT and UPDATE statements, each its own transaction.
# AUDIT_CG_KEEP=1 keeps the callgrind files (their directory is printed) for
# callgrind_annotate (--inclusive=yes shows where an audited statement's
# instructions go); AUDIT_CG_K sets K (default 10).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/pg-env.sh
K=${AUDIT_CG_K:-10}
source scripts/cluster.sh
trap cluster_stop EXIT
FLUXBASE_PRELOAD='' cluster_start
psql -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE bench_cg"
psql -q -v ON_ERROR_STOP=1 -d bench_cg <<'SQL'
CREATE EXTENSION fluxbase_admin;
CREATE SEQUENCE public.ids;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['t_plain', 't_ours'] LOOP
        EXECUTE format('CREATE TABLE public.%I (id bigint PRIMARY KEY, account int NOT NULL, amount numeric NOT NULL,
                        status text NOT NULL, note text, updated_at timestamptz NOT NULL DEFAULT now())', t);
        EXECUTE format('INSERT INTO public.%I (id, account, amount, status, note)
                        SELECT -g, g %% 1000, g * 1.5, ''new'', ''row '' || g FROM generate_series(1, 100000) g', t);
    END LOOP;
END $$;
SELECT dashboard.enable_audit('public.t_ours');
VACUUM ANALYZE;
SQL
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
out=$(mktemp -d /tmp/audit-cg.XXXXXX)
chown postgres "$out"
have_pgaudit=
[ -e "$("$PG_CONFIG" --pkglibdir)/pgaudit.so" ] && have_pgaudit=1
# statements: workload table n first -> n statements, one a line
statements() {
    local w=$1 t=$2 n=$3 first=$4 i
    for i in $(seq "$first" $((first + n - 1))); do
        case $w in
            ins100) echo "INSERT INTO public.$t (id, account, amount, status, note) SELECT nextval('public.ids'), g, g * 2.5, 'new', 'batch row ' || g FROM generate_series(1, 100) g;" ;;
            upd100) echo "UPDATE public.$t SET amount = amount + 1, status = 'paid', updated_at = now() WHERE id BETWEEN $((-100 * i - 99)) AND $((-100 * i));" ;;
            ins1) echo "INSERT INTO public.$t (id, account, amount, status, note) VALUES (nextval('public.ids'), $i, $i * 2.5, 'new', 'one row $i');" ;;
            upd1) echo "UPDATE public.$t SET amount = amount + 1, status = 'paid', updated_at = now() WHERE id = $((-50000 - i));" ;;
        esac
    done
}
run() {  # name table n workload first [postgres options...]: prints the instruction count
    local name=$1 t=$2 n=$3 w=$4 first=$5
    shift 5
    statements "$w" "$t" "$n" "$first" \
        | runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$out/$name.cg" \
            "$PG_BIN/postgres" --single -D "$CLUSTER_DIR/data" "$@" bench_cg >"$out/$name.out" 2>"$out/$name.err" \
        || { cat "$out/$name.err" "$out/$name.out" >&2; return 1; }
    ! grep -q ERROR "$out/$name.out" "$out/$name.err" || { grep ERROR "$out/$name.out" "$out/$name.err" >&2; return 1; }
    sed -n 's/^summary: //p' "$out/$name.cg"
}
declare -A per_row=()
echo "==> callgrind: instructions per row (whole statements with their commit; (3K - K) = $((2 * K)) statements each)"
for w in ins100 upd100 ins1 upd1; do
    case $w in *100) rows=100 ;; *) rows=1 ;; esac
    sides=(plain ours)
    [ -z "$have_pgaudit" ] || sides+=(pgaudit)
    for side in "${sides[@]}"; do
        t=t_plain opts=()
        [ "$side" = ours ] && t=t_ours
        [ "$side" = pgaudit ] && opts=(-c shared_preload_libraries=pgaudit -c pgaudit.log=write)
        # (UPDATEs: each run its own rows, so no run updates rows another left dead)
        case $side in plain) base=0 ;; ours) base=100 ;; pgaudit) base=200 ;; esac
        a=$(run "${w}_${side}_k" "$t" "$K" "$w" $((base + 1)) "${opts[@]}")
        b=$(run "${w}_${side}_3k" "$t" $((3 * K)) "$w" $((base + K + 1)) "${opts[@]}")
        per_row[${w}_$side]=$(echo "($b - $a) / (2 * $K * $rows)" | bc -l)
    done
    line=$(printf '  %-7s unaudited %9.0f' "$w" "${per_row[${w}_plain]}")
    line+=$(printf '   enable_audit %9.0f (%.2fx)' "${per_row[${w}_ours]}" "$(echo "${per_row[${w}_ours]} / ${per_row[${w}_plain]}" | bc -l)")
    if [ -n "$have_pgaudit" ]; then
        line+=$(printf '   pgaudit %9.0f (%.2fx)' "${per_row[${w}_pgaudit]}" "$(echo "${per_row[${w}_pgaudit]} / ${per_row[${w}_plain]}" | bc -l)")
    fi
    echo "$line   instructions per row"
done
[ -n "$have_pgaudit" ] || echo "  (pgaudit: no pgaudit.so in $("$PG_CONFIG" --pkglibdir); not measured)"
if [ -n "${AUDIT_CG_KEEP:-}" ]; then echo "  callgrind files: $out"; else rm -rf "$out"; fi
