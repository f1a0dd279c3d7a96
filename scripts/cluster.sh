#!/usr/bin/env bash
# A throwaway PostgreSQL cluster (of $PG_CONFIG / $PG_MAJOR, see scripts/pg-env.sh) owned by this project: initdb as the
# `postgres` OS user (Postgres refuses root) into a private directory, listening
# only on a private Unix socket and port. Source this file, then call
# cluster_start and cluster_stop (the callers trap EXIT so it always stops).
#
# FLUXBASE_CLUSTER_PARENT: where the cluster's directory is made (default /tmp).
# FLUXBASE_PRELOAD: its shared_preload_libraries (default pg_stat_statements;
#   FLUXBASE_PRELOAD='' starts a cluster without any, as most servers run:
#   scripts/test.sh runs the hook-sensitive tests on both kinds, issue 29).
#
# After cluster_start:  PGHOST (socket dir), PGPORT, PGUSER=postgres are exported,
# so psql, the tests and the fluxbase CLI all find it.

source "$(dirname "${BASH_SOURCE[0]}")/pg-env.sh"
PG_BIN=${PG_BIN:-$("$PG_CONFIG" --bindir)}
FLUXBASE_PGPORT=${FLUXBASE_PGPORT:-54329}

cluster_start() {
    CLUSTER_DIR=$(mktemp -d "${FLUXBASE_CLUSTER_PARENT:-/tmp}/fluxbase-pg.XXXXXX")
    chown postgres:postgres "$CLUSTER_DIR"
    chmod 700 "$CLUSTER_DIR"
    export CLUSTER_DIR
    runuser -u postgres -- "$PG_BIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$CLUSTER_DIR/initdb.log" 2>&1 \
        || { cat "$CLUSTER_DIR/initdb.log"; return 1; }
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$CLUSTER_DIR'
port = $FLUXBASE_PGPORT
shared_preload_libraries = '${FLUXBASE_PRELOAD-pg_stat_statements}'
max_connections = 100
fsync = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
CONF
    # RUST_BACKTRACE in a postmaster's environment puts Rust backtraces into error DETAILs.
    env -u RUST_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -t 60 start >/dev/null \
        || { cat "$CLUSTER_DIR/server.log"; return 1; }
    export PGHOST="$CLUSTER_DIR" PGPORT="$FLUXBASE_PGPORT" PGUSER=postgres PGDATABASE=postgres
    export DATABASE_URL="postgresql://postgres@/postgres?host=$CLUSTER_DIR&port=$FLUXBASE_PGPORT"
}

cluster_stop() {
    if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$CLUSTER_DIR"
    fi
    unset CLUSTER_DIR
}
