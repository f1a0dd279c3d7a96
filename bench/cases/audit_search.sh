#!/usr/bin/env bash
# dashboard.audit_search on an audit log of 1M entries (row changes of 50
# tables by a database role, after 1,000 admin entries):
#  - a search for a target in no entry, for a rare target ('type:id') and
#    for an admin's entries by user id, each against the newest page with no
#    filter; target cost ratio <= 3 (a search reads what it returns, not the log).
#  - anchor: the same searches as the single ORed condition audit_search ran
#    before (what a hand-written search of the log does), sent as SQL.
# Measured here: cost ratios 1.19, 1.57, 2.05 and 1.15, 1.50, 2.19 in two runs;
#   the single condition 150-425x slower (it reads the whole log). 2026-12-02,
#   release builds: PG 15 1.10, 1.21, 1.88; PG 18 1.60, 1.73, 2.87 (single
#   condition 170-526x slower).
# Run by bench/run.sh (PGBENCH, PGHOST/PGPORT exported; release build).
set -euo pipefail
DB=bench_audit_search
SECS=${SECS:-4}
source "$(dirname "$0")/../lib.sh"

fresh_db
ADMIN=$(psql -q -X -At -d $DB -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION fluxbase_admin;
SELECT user_id FROM dashboard_auth.setup_first_admin('root@example.com', 'correct horse battery staple', 'Root');
-- (entries written by SQL go through the same commit-time chain append)
INSERT INTO dashboard_auth.audit_log (actor, actor_id, action, target_type, target_id)
SELECT 'root@example.com', (SELECT id FROM dashboard_auth.users), 'admin.bench', 'setting', 'key' || g
  FROM generate_series(1, 1000) g;
-- (one transaction of 1M entries: it spills to the transaction's file and is
-- appended in 16 MB chunks at commit; it crashed the server before the fix of
-- 2026-12-02, tests/test_audit_hardening.py holds the regression test)
INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id)
SELECT 'db:app', 'row.update', 'table', 'public.t' || mod(g, 50) FROM generate_series(1, 1000000) g;
VACUUM ANALYZE dashboard_auth.audit_log;
SQL
)
ADMIN=$(echo "$ADMIN" | head -1)
RARE=setting:key500
ABSENT=4f1b6c2e-0000-4000-8000-000000000000
# Sanity: the function and the single condition find the same entries.
for t in "$RARE" "$ABSENT" public.t7 setting; do
    ok=$(psql -X -At -d $DB -c "
      SELECT (SELECT array_agg(id) FROM dashboard.audit_search(target => '$t'))
             IS NOT DISTINCT FROM
             (SELECT array_agg(id) FROM (SELECT id FROM dashboard_auth.audit_log
               WHERE target_id = '$t' OR target_type = '$t' OR (target_type || ':' || target_id) = '$t'
               ORDER BY id DESC LIMIT 50) s)")
    [ "$ok" = t ] || { echo "!! audit_search(target => '$t') differs from the single condition"; exit 1; }
done

OLD="SELECT * FROM dashboard_auth.audit_log WHERE"
echo "SELECT count(*) FROM dashboard.audit_search();" >"$WORK/newest.sql"
echo "SELECT count(*) FROM dashboard.audit_search(target => '$ABSENT');" >"$WORK/absent.sql"
echo "SELECT count(*) FROM dashboard.audit_search(target => '$RARE');" >"$WORK/rare.sql"
echo "SELECT count(*) FROM dashboard.audit_search(actor => '$ADMIN');" >"$WORK/admin.sql"
target_sql() { echo "$OLD (target_id = '$1' OR target_type = '$1' OR (target_type || ':' || target_id) = '$1') ORDER BY id DESC LIMIT 50;"; }
target_sql "$ABSENT" >"$WORK/old_absent.sql"
target_sql "$RARE" >"$WORK/old_rare.sql"
echo "$OLD (actor = '$ADMIN' OR actor_id::text = '$ADMIN') ORDER BY id DESC LIMIT 50;" >"$WORK/old_admin.sql"

"$PGBENCH" -n -c 1 -T 1 -f "$WORK/newest.sql" $DB >/dev/null 2>&1

ROUNDS=${ROUNDS:-3}
declare -A t
names=(newest absent rare admin old_absent old_rare old_admin)
for n in "${names[@]}"; do t[$n]=0; done
for r in $(seq "$ROUNDS"); do
    for n in "${names[@]}"; do
        # (the slow anchors once: they read the whole log every time)
        if [ "$r" -gt 1 ] && [[ $n == old_* ]]; then continue; fi
        t[$n]=$(best "${t[$n]}" "$(tps "$n")")
    done
done

awk -v nw="${t[newest]}" -v a="${t[absent]}" -v r="${t[rare]}" -v ad="${t[admin]}" \
    -v oa="${t[old_absent]}" -v orr="${t[old_rare]}" -v oad="${t[old_admin]}" 'BEGIN {
  printf "audit_search, newest page:      %9.1f tps (baseline)\n", nw
  line("target in no entry", a, oa); line("rare target type:id", r, orr); line("an admin by user id", ad, oad)
  printf "\n"
}
function line(what, x, old,   c) {
  c = nw / x
  printf "  %-28s %9.1f tps  cost ratio %.2f (target <= 3) %s   single condition: %.1f tps (%.0fx slower)\n",
         what, x, c, (c <= 3 ? "PASS" : "FAIL"), old, x / old
}'
psql -q -X -c "DROP DATABASE $DB" >/dev/null
