#!/usr/bin/env bash
# auth.uid() per row: a count(*) over 1M rows under the RLS policy
# `using (user_id = auth.uid())` (not wrapped in a select), as an impersonated
# user, against the same scan with the uid as a literal (service_role, which
# bypasses RLS, with `where user_id = '<uuid>'`). Target: within 2x.
# For comparison: the same policy with a Supabase-style SQL helper
# (current_setting + jsonb per row) and with `(select auth.uid())`.
# Parallel query is off so the numbers measure per-row cost, not worker count.
set -euo pipefail
DB=bench_claims
psql -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
"${PYTHON:-python3}" - "$DB" <<'PY'
import statistics, sys, time
import psycopg

db = sys.argv[1]
c = psycopg.connect(dbname=db, user="postgres", autocommit=True)
c.execute("CREATE EXTENSION fluxbase_admin")
c.execute("""
CREATE SCHEMA bench_sql;
-- The SQL helper as Supabase writes it: legacy GUC first, then the JSON claims.
CREATE FUNCTION bench_sql.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
GRANT USAGE ON SCHEMA bench_sql TO authenticated;
INSERT INTO auth.users (id, email)
SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'user' || g || '@example.com'
FROM generate_series(1, 100) g;
CREATE TABLE public.items (id bigint PRIMARY KEY, user_id uuid NOT NULL, payload int NOT NULL);
INSERT INTO public.items
SELECT g, ('00000000-0000-4000-8000-' || lpad((g % 100 + 1)::text, 12, '0'))::uuid, g FROM generate_series(1, 1000000) g;
CREATE TABLE public.items_sql (LIKE public.items INCLUDING ALL);
INSERT INTO public.items_sql SELECT * FROM public.items;
CREATE TABLE public.items_wrapped (LIKE public.items INCLUDING ALL);
INSERT INTO public.items_wrapped SELECT * FROM public.items;
ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.items_sql ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.items_wrapped ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.items FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE POLICY own ON public.items_sql FOR SELECT TO authenticated USING (user_id = bench_sql.uid());
CREATE POLICY own ON public.items_wrapped FOR SELECT TO authenticated USING (user_id = (SELECT auth.uid()));
GRANT SELECT ON public.items, public.items_sql, public.items_wrapped TO authenticated, service_role;
""")
c.execute("VACUUM ANALYZE public.items, public.items_sql, public.items_wrapped")
uid = "00000000-0000-4000-8000-000000000042"
sid = c.execute("SELECT dashboard.start_impersonation(%s, 'benchmark')", (uid,)).fetchone()[0]
c.execute("SET max_parallel_workers_per_gather = 0")


def timed(setup, sql, runs=5):
    times, n = [], None
    for i in range(runs + 1):  # the first run warms the cache and is not counted
        c.execute("BEGIN")
        for s, a in setup:
            c.execute(s, a)
        t = time.perf_counter()
        n = c.execute(sql).fetchone()[0]
        if i:
            times.append(time.perf_counter() - t)
        c.execute("ROLLBACK")
    return statistics.median(times), n


literal, n0 = timed([("SET LOCAL ROLE service_role", ())], f"SELECT count(*) FROM public.items WHERE user_id = '{uid}'")
imp, n1 = timed([("SELECT dashboard.apply_impersonation(%s)", (sid,))], "SELECT count(*) FROM public.items")
# measured again right after, on the same (now cached) table: the smaller one counts
literal = min(literal, timed([("SET LOCAL ROLE service_role", ())], f"SELECT count(*) FROM public.items WHERE user_id = '{uid}'")[0])
# The SQL helper with only the JSON claims set (PostgREST >= 9 sets no legacy GUCs).
claims_only = [("SET LOCAL ROLE authenticated", ()),
               ("SELECT set_config('request.jwt.claims', %s, true)", (f'{{"sub":"{uid}","role":"authenticated"}}',))]
sqlh, n2 = timed(claims_only, "SELECT count(*) FROM public.items_sql")
rust_claims_only, n3 = timed(claims_only, "SELECT count(*) FROM public.items")
wrapped, n4 = timed(claims_only, "SELECT count(*) FROM public.items_wrapped")
assert n0 == n1 == n2 == n3 == n4 == 10000, (n0, n1, n2, n3, n4)
print(f"  literal uid (service_role, no RLS):        {literal*1000:8.1f} ms  (baseline)")
print(f"  auth.uid() in Rust, impersonated user:     {imp*1000:8.1f} ms  ratio {imp/literal:5.2f}x  (target <= 2x) {'OK' if imp/literal <= 2 else 'MISSED'}")
print(f"  auth.uid() in Rust, claims JSON only:      {rust_claims_only*1000:8.1f} ms  ratio {rust_claims_only/literal:5.2f}x")
print(f"  (select auth.uid()) wrapped:               {wrapped*1000:8.1f} ms  ratio {wrapped/literal:5.2f}x")
print(f"  Supabase-style SQL helper (claims JSON):   {sqlh*1000:8.1f} ms  ratio {sqlh/literal:5.2f}x  (Supabase reports ~24x)")
PY
psql -q -c "DROP DATABASE IF EXISTS $DB"
