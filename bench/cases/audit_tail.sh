#!/usr/bin/env bash
# `fluxbase audit tail` to a local syslog receiver (issue 35): entries per
# second delivered to rsyslogd (TCP, RFC 5424, octet-counted frames, a cursor
# file rewritten after each chunk of frames is out), each entry's hash checked on the way.
# Target: >= 20,000 entries/s. Then the purge that retires them: how long
# purge_audit_through takes on the log, and the slowest sign-in made while it
# runs (no chain lock is held: sign-ins must not wait for it).
#
#   BENCH_TAIL_ENTRIES (default 200000): entries in the log
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DB=bench_audit_tail
N=${BENCH_TAIL_ENTRIES:-200000}
source "$ROOT/bench/lib.sh"
RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
[ -x "$RSYSLOGD" ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsyslog >/dev/null; }
if [ -z "${FLUXBASE_BIN:-}" ]; then
    (cd "$ROOT" && cargo build -q --release -p fluxbase)
    FLUXBASE_BIN="$ROOT/target/release/fluxbase"
fi
fresh_db
export PGDATABASE=$DB
psql -q -X -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION fluxbase_admin;
INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id, details, ip)
SELECT 'db:bench', 'bench.event', 'thing', g::text, jsonb_build_object('n', g, 'note', 'a typical small details document'),
       '10.0.0.1'::inet FROM generate_series(1, $N) g;
SQL
TOTAL=$(psql -X -qtA -c "SELECT last_id FROM dashboard_auth.audit_chain_head")

PORT=${BENCH_SYSLOG_PORT:-15514}
cat >"$WORK/rsyslog.conf" <<CONF
global(workDirectory="$WORK" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="$PORT")
template(name="raw" type="string" string="%msg%\n")
*.* action(type="omfile" file="$WORK/out.log" template="raw" asyncWriting="on" flushOnTXEnd="off" ioBufferSize="256k")
CONF
"$RSYSLOGD" -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslog.pid" 2>"$WORK/rsyslog.err" &
RS=$!
trap 'kill $RS 2>/dev/null; wait $RS 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

URL="postgresql://postgres@/$DB?host=$PGHOST&port=$PGPORT"
t0=$(date +%s.%N)
DATABASE_URL=$URL FLUXBASE_SESSION_FILE=/nonexistent env -u RUST_BACKTRACE "$FLUXBASE_BIN" audit tail --batch 5000 \
    --cursor-file "$WORK/cursor" --syslog "tcp://127.0.0.1:$PORT"
t1=$(date +%s.%N)
# (the receiver's file catches up: count what arrived)
for _ in $(seq 1 300); do
    got=$(wc -l <"$WORK/out.log" 2>/dev/null || echo 0)
    [ "$got" -ge "$TOTAL" ] && break
    sleep 0.1
done
t2=$(date +%s.%N)
echo "audit tail: $TOTAL entries sent in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s, all $got received after $(awk -v a="$t0" -v b="$t2" 'BEGIN {printf "%.2f", b - a}') s"
awk -v n="$TOTAL" -v a="$t0" -v b="$t1" 'BEGIN { r = n / (b - a); printf "audit_tail: %.0f entries/s to rsyslog over TCP (target >= 20000) %s\n", r, (r >= 20000 ? "PASS" : "FAIL") }'
[ "$got" -ge "$TOTAL" ] || { echo "!! rsyslog received $got of $TOTAL"; exit 1; }

# The purge: its duration, and sign-ins made meanwhile.
psql -q -X -c "SELECT dashboard_auth.setup_first_admin('bench@example.com', 'correct-horse-battery-9', 'Bench')" >/dev/null
p0=$(date +%s.%N)
psql -X -qtA -c "SELECT dashboard_auth.purge_audit_through($TOTAL)" >"$WORK/purged" &
PURGE=$!
worst=0; n=0
while kill -0 $PURGE 2>/dev/null; do
    s0=$(date +%s%N)
    psql -X -qtA -c "SELECT status FROM dashboard_auth.login('bench@example.com', 'correct-horse-battery-9')" >/dev/null
    ms=$(( ($(date +%s%N) - s0) / 1000000 ))
    [ $ms -gt $worst ] && worst=$ms
    n=$((n + 1))
done
wait $PURGE
p1=$(date +%s.%N)
echo "purge_audit_through: $(cat "$WORK/purged") entries in $(awk -v a="$p0" -v b="$p1" 'BEGIN {printf "%.2f", b - a}') s; $n sign-ins meanwhile, slowest $worst ms (psql start-up included)"
