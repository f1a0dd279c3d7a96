# Sourced by the pgbench-driven cases: a scratch directory for their scripts
# (removed on exit), a fresh database, and the throughput of one script.
# The case sets DB (and SECS, the seconds of each measurement) first.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PGBENCH=${PGBENCH:-pgbench}

fresh_db() {
    psql -q -X -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
}
# tps SCRIPT [QUERY_MODE]: one client running $WORK/SCRIPT.sql for SECS seconds
tps() { "$PGBENCH" -n -c 1 -T "$SECS" -f "$WORK/$1.sql" ${2:+-M $2} "$DB" 2>&1 | awk '/^tps/ {print $3}'; }
# the larger of two numbers (the best round counts: others' load only slows a round)
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
