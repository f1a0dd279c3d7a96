#!/usr/bin/env bash
# RLS debugging and the advisor (issue 32):
#  1. dashboard.explain_access by key on a 1M-row table with 5 policies (two of
#     them calling functions, one a subquery on another RLS table): target p50
#     <= 20 ms (pgbench latency average of single calls is reported with p50
#     from per-statement timings).
#  2. dashboard.advisories() on a schema of 2,000 tables and 4,000 policies:
#     target <= 2 s.
# Run by bench/run.sh (PGBENCH, PGHOST/PGPORT exported; release build).
set -euo pipefail
DB=bench_rls
SECS=${SECS:-5}
source "$(dirname "$0")/../lib.sh"

fresh_db
psql -q -X -d $DB >/dev/null <<'SQL'
CREATE EXTENSION fluxbase_admin;
CREATE TABLE members (team int, user_id uuid, PRIMARY KEY (team, user_id));
ALTER TABLE members ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON members FOR SELECT TO authenticated USING (user_id = auth.uid());
GRANT SELECT ON members TO authenticated;
CREATE TABLE docs (id int PRIMARY KEY, owner uuid, team int, title text, published boolean NOT NULL DEFAULT false);
INSERT INTO docs SELECT g, NULL, g % 100, 'doc ' || g, g % 2 = 0 FROM generate_series(1, 1000000) g;
CREATE INDEX ON docs (owner);
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
GRANT SELECT, UPDATE ON docs TO anon, authenticated;
CREATE POLICY p1 ON docs FOR SELECT TO anon, authenticated USING (published);
CREATE POLICY p2 ON docs TO authenticated USING (owner = (SELECT auth.uid()));
CREATE POLICY p3 ON docs FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM members m WHERE m.team = docs.team AND m.user_id = auth.uid()));
CREATE POLICY p4 ON docs AS RESTRICTIVE TO authenticated USING (coalesce(title NOT LIKE 'locked%', true));
CREATE POLICY p5 ON docs FOR UPDATE TO authenticated USING (auth.role() = 'authenticated') WITH CHECK (NOT published);
VACUUM ANALYZE docs;
SELECT dashboard.invite_user('alice@example.com');
SQL

cat >"$WORK/explain.sql" <<'Q'
\set id random(1, 1000000)
SELECT dashboard.explain_access('docs', jsonb_build_object('id', :id), 'alice@example.com');
Q
"$PGBENCH" -n -c 1 -T 2 -f "$WORK/explain.sql" $DB >/dev/null 2>&1
"$PGBENCH" -n -c 1 -T "$SECS" -f "$WORK/explain.sql" -l --log-prefix="$WORK/lat" $DB >/dev/null 2>&1
p50=$(cat "$WORK"/lat.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] / 1000}')
n=$(cat "$WORK"/lat.* | wc -l)
echo "explain_access on 1M rows, 5 policies: p50 ${p50} ms over $n calls (target <= 20 ms)"

# 2,000 tables with 2 policies each (4,000), a mix that fires several lints
psql -q -X -d $DB >/dev/null <<'SQL'
CREATE SCHEMA many;
DO $$ BEGIN
  FOR i IN 1..2000 LOOP
    EXECUTE format('CREATE TABLE many.t%s (id int PRIMARY KEY, owner uuid, parent int)', i);
    EXECUTE format('ALTER TABLE many.t%s ENABLE ROW LEVEL SECURITY', i);
    EXECUTE format('CREATE POLICY r ON many.t%s FOR SELECT TO authenticated USING (owner = (SELECT auth.uid()))', i);
    EXECUTE format('CREATE POLICY w ON many.t%s FOR UPDATE TO authenticated USING (true) WITH CHECK (owner = auth.uid())', i);
  END LOOP;
END $$;
GRANT USAGE ON SCHEMA many TO anon, authenticated;
SQL
ms=$(psql -X -At -d $DB <<'SQL' | tail -1
SELECT count(*) FROM dashboard.advisories();
\timing on
SELECT count(*) FROM dashboard.advisories();
SQL
)
n=$(psql -X -At -d $DB -c "SELECT count(*) FROM dashboard.advisories()")
echo "advisories() on 2,000 tables / 4,000 policies: $ms ($n findings; target <= 2 s)"
