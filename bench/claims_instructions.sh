#!/usr/bin/env bash
# Instructions per row of the claims case (bench/cases/claims.sh), counted by
# valgrind's callgrind in a single-user backend: independent of the machine's
# load, unlike the timings. Counts only the executor run of each count(*)
# (--toggle-collect=standard_ExecutorRun), divided by the rows scanned.
#
#   bash bench/claims_instructions.sh         (after scripts/install.sh [--release];
#                                               inside your sandbox; needs valgrind)
#
# (The impersonated case also counts apply_impersonation itself, run through the
# executor: ~5.7M instructions once, +14 per row at the default 200k rows.)
# Cases: the literal (no RLS); auth.uid() (0.3.0, the cached-Datum V1 entry
# uid_fast); the same policy through the 0.2.0 entry (pgrx #[pg_extern]
# wrapper, symbol uid_wrapper, still in the library); (select auth.uid()); the
# Supabase-style SQL helper. CLAIMS_CG_KEEP=1 keeps the callgrind files (their
# directory is printed) for callgrind_annotate.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
ROWS=${CLAIMS_CG_ROWS:-200000}
source scripts/cluster.sh
trap cluster_stop EXIT
cluster_start
uid=00000000-0000-4000-8000-000000000042
psql -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE bench_cg"
psql -q -v ON_ERROR_STOP=1 -d bench_cg <<SQL
CREATE EXTENSION fluxbase_admin;
CREATE SCHEMA bench;
CREATE FUNCTION bench.uid_sql() RETURNS uuid LANGUAGE sql STABLE AS \$\$
  SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
\$\$;
-- the 0.2.0 entry point of auth.uid() (kept in the library for old installs)
CREATE FUNCTION bench.uid_020() RETURNS uuid STRICT STABLE PARALLEL SAFE LANGUAGE c AS '\$libdir/fluxbase_admin', 'uid_wrapper';
GRANT USAGE ON SCHEMA bench TO authenticated;
CREATE TABLE public.items (id bigint PRIMARY KEY, user_id uuid NOT NULL, payload int NOT NULL);
INSERT INTO public.items
SELECT g, ('00000000-0000-4000-8000-' || lpad((g % 100 + 1)::text, 12, '0'))::uuid, g FROM generate_series(1, $ROWS) g;
CREATE TABLE public.items_020 (LIKE public.items INCLUDING ALL);
INSERT INTO public.items_020 SELECT * FROM public.items;
CREATE TABLE public.items_wrapped (LIKE public.items INCLUDING ALL);
INSERT INTO public.items_wrapped SELECT * FROM public.items;
CREATE TABLE public.items_sql (LIKE public.items INCLUDING ALL);
INSERT INTO public.items_sql SELECT * FROM public.items;
ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.items_020 ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.items_wrapped ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.items_sql ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.items FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE POLICY own ON public.items_020 FOR SELECT TO authenticated USING (user_id = bench.uid_020());
CREATE POLICY own ON public.items_wrapped FOR SELECT TO authenticated USING (user_id = (SELECT auth.uid()));
CREATE POLICY own ON public.items_sql FOR SELECT TO authenticated USING (user_id = bench.uid_sql());
GRANT SELECT ON public.items, public.items_020, public.items_wrapped, public.items_sql TO authenticated, service_role;
INSERT INTO auth.users (id, email) VALUES ('$uid', 'user42@example.com');
VACUUM ANALYZE;
SELECT dashboard.start_impersonation('$uid', 'benchmark');
SQL
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
out=$(mktemp -d /tmp/claims-cg.XXXXXX)
chown postgres "$out"
claims="SELECT set_config('request.jwt.claims', '{\"sub\":\"$uid\",\"role\":\"authenticated\"}', false);"
count() {  # name, setup, query: prints instructions per row
    local name=$1 setup=$2 query=$3
    printf '%s\nSET max_parallel_workers_per_gather = 0;\n%s\n%s\n' "$setup" "$query" "$query" \
        | runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$out/$name.cg" \
            --collect-atstart=no --toggle-collect=standard_ExecutorRun \
            "$PG_BIN/postgres" --single -D "$CLUSTER_DIR/data" bench_cg >"$out/$name.out" 2>"$out/$name.err" \
        || { cat "$out/$name.err" "$out/$name.out"; return 1; }
    grep -q "count = \"$((ROWS / 100))\"" "$out/$name.out" || { echo "$name: wrong count"; cat "$out/$name.out"; return 1; }
    # (the query runs twice, the first time warming the caches; both are counted)
    local ir
    ir=$(sed -n 's/^summary: //p' "$out/$name.cg")
    printf '  %-34s %8.1f instructions per row\n' "$name" "$(echo "$ir / (2 * $ROWS)" | bc -l)"
}
echo "==> callgrind: instructions per row (executor only, $ROWS rows, each query twice)"
count literal "SET ROLE service_role;" "SELECT count(*) FROM public.items WHERE user_id = '$uid';"
count auth_uid_0.3.0 "$claims SET ROLE authenticated;" "SELECT count(*) FROM public.items;"
count auth_uid_0.3.0_impersonated "BEGIN; SELECT dashboard.apply_impersonation((SELECT id FROM auth.impersonation_sessions));" "SELECT count(*) FROM public.items;"
count auth_uid_0.2.0_wrapper "$claims SET ROLE authenticated;" "SELECT count(*) FROM public.items_020;"
count select_auth_uid "$claims SET ROLE authenticated;" "SELECT count(*) FROM public.items_wrapped;"
count sql_helper "$claims SET ROLE authenticated;" "SELECT count(*) FROM public.items_sql;"
if [ -n "${CLAIMS_CG_KEEP:-}" ]; then echo "  callgrind files: $out"; else rm -rf "$out"; fi
