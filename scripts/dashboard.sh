#!/usr/bin/env bash
# The dashboard, from a fresh machine: install what is missing, build and install
# the extension and the `fluxbase` binary, start an embedded PostgreSQL cluster
# (15, or 18 with PG_MAJOR=18; see scripts/pg-env.sh) whose data directory
# persists between runs ($FLUXBASE_DATA, default .pgdata/ in the checkout, or
# .pgdata-18/ for PostgreSQL 18), create the extension and a non-superuser login role for the web
# server, and run `fluxbase serve`:
#
#   Fluxbase dashboard: http://localhost:8080/admin
#
# Ctrl-C stops the server and the cluster. Running it again finds the same admin.
# With DATABASE_URL set, no cluster is started: the server connects there (that
# database needs the extension, and the login must be a non-superuser member of
# fluxbase_dashboard; see the README).
#
# FLUXBASE_LISTEN (default 127.0.0.1:8080), FLUXBASE_PGPORT (default 54329).
#
# What users should run is what this serves: the extension and the server are
# optimised builds (cargo profile `dashboard`: release with thin LTO, which
# builds much faster than release's fat LTO; see Cargo.toml). The time the
# build and start took is printed once the dashboard is up. FLUXBASE_PROFILE=dev
# builds debug instead (faster to build, slower to use).
set -euo pipefail
START=$SECONDS
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/pg-env.sh
LISTEN=${FLUXBASE_LISTEN:-127.0.0.1:8080}
PROFILE=${FLUXBASE_PROFILE:-dashboard}
case "$PROFILE" in
    dev) PROFILE_DIR=debug ;;
    *) PROFILE_DIR=$PROFILE ;;
esac
FLUXBASE="$ROOT/target/$PROFILE_DIR/fluxbase"
LOG=$(mktemp /tmp/fluxbase-dashboard.XXXXXX.log)

if [ -n "${DATABASE_URL:-}" ]; then
    echo "==> building fluxbase"
    cargo build -q --profile "$PROFILE" -p fluxbase
    exec "$FLUXBASE" serve --listen "$LISTEN"
fi

bash scripts/install-deps.sh "$PG_MAJOR"
echo "==> building ($PROFILE profile) and installing fluxbase_admin (log: $LOG)"
bash scripts/install.sh --profile "$PROFILE" >"$LOG" 2>&1 || { cat "$LOG"; exit 1; }
echo "==> building fluxbase ($PROFILE profile)"
cargo build -q --profile "$PROFILE" -p fluxbase

PG_BIN=$("$PG_CONFIG" --bindir)
DEFAULT_DATA=$ROOT/.pgdata; [ "$PG_MAJOR" = 15 ] || DEFAULT_DATA=$ROOT/.pgdata-$PG_MAJOR
DATA=${FLUXBASE_DATA:-$DEFAULT_DATA}
PGPORT=${FLUXBASE_PGPORT:-54329}
SOCK=$(mktemp -d /tmp/fluxbase-dashboard.XXXXXX)
chown postgres:postgres "$SOCK"
pg() { runuser -u postgres -- "$@"; }

if [ ! -s "$DATA/PG_VERSION" ]; then
    echo "==> creating the PostgreSQL cluster in $DATA"
    mkdir -p "$DATA"
    chown postgres:postgres "$DATA"
    chmod 700 "$DATA"
    pg "$PG_BIN/initdb" -D "$DATA" -U postgres -A peer -E UTF8 --locale=C.UTF-8 >>"$LOG" 2>&1 \
        || { cat "$LOG"; echo "(the postgres OS user must be able to reach $DATA; set FLUXBASE_DATA elsewhere if not)"; exit 1; }
    # Only the Unix socket: the server connects over it as a dedicated role.
    cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = ''
shared_preload_libraries = 'pg_stat_statements'
CONF
    echo "local all all trust" >"$DATA/pg_hba.conf"  # the socket directory is private to root and postgres
fi

if pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    echo "PostgreSQL is already running on $DATA (another scripts/dashboard.sh?): stop that one first" >&2
    exit 1
fi

SERVER=""
stop() {
    trap - EXIT INT TERM
    if [ -n "$SERVER" ]; then
        kill -TERM "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$SOCK"
    echo "Stopped the dashboard and PostgreSQL (data kept in $DATA)."
}
chmod 750 "$SOCK"
env -u RUST_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-k $SOCK -p $PGPORT" start >/dev/null || { tail -20 "$DATA/server.log"; rm -rf "$SOCK"; exit 1; }
trap stop EXIT
trap 'exit 130' INT TERM

psql_su() { psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PGPORT" -U postgres "$@"; }
psql_su -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'fluxbase'" | grep -q 1 \
    || psql_su -d postgres -c "CREATE DATABASE fluxbase"
psql_su -d fluxbase <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS fluxbase_admin;
ALTER EXTENSION fluxbase_admin UPDATE;
-- Analytics' query performance (preloaded above; the extension must exist too).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
DO $$ BEGIN
    CREATE ROLE fluxbase_web LOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
GRANT fluxbase_dashboard TO fluxbase_web;
SQL

export DATABASE_URL="postgresql://fluxbase_web@/fluxbase?host=$SOCK&port=$PGPORT"
"$FLUXBASE" serve --listen "$LISTEN" &
SERVER=$!
ELAPSED=$((SECONDS - START))
echo "==> ready in $((ELAPSED / 60)) min $((ELAPSED % 60)) s (build, install and start; $PROFILE profile)"
wait "$SERVER"
