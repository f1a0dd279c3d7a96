#!/usr/bin/env bash
# The main job, from a fresh machine: install what is missing, build and install
# the extension and the CLI, start a throwaway PostgreSQL cluster (15 unless told), create the
# extension and walk through first-run setup, login, impersonation and the CLI,
# printing what a user would see. The cluster is removed at the end, also on failure.
# PostgreSQL 15 by default; PG_MAJOR=18 (or PG_CONFIG=/path/to/pg_config) for another
# supported version (scripts/pg-env.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/pg-env.sh

bash scripts/install-deps.sh "$PG_MAJOR"
echo "==> building and installing fluxbase_admin"
bash scripts/install.sh >/tmp/fluxbase-install.log 2>&1 || { cat /tmp/fluxbase-install.log; exit 1; }
cargo build -q -p fluxbase
FLUXBASE="$ROOT/target/debug/fluxbase"

source scripts/cluster.sh
export PATH="$PG_BIN:$PATH"
trap cluster_stop EXIT
cluster_start
echo "==> PostgreSQL is running on socket $PGHOST port $PGPORT"
echo

psql -X -q -v ON_ERROR_STOP=1 -P pager=off -f scripts/demo.sql

# The CLI, as an operator would use it: the login role is a member of fluxbase_dashboard.
export DATABASE_URL="postgresql://postgres@/postgres?host=$PGHOST&port=$PGPORT"
export FLUXBASE_SESSION_FILE="$CLUSTER_DIR/session"
run() { echo; echo "\$ fluxbase $*"; "$FLUXBASE" "$@"; }
if [ -x "$FLUXBASE" ] && "$FLUXBASE" --help >/dev/null 2>&1; then
    echo
    echo "== 7. The fluxbase CLI"
    run admin users list
    run admin sessions list
    run users list
    run users list --search alice
    run tables list
    run audit --limit 5
    run audit --target public.todos --action "row.*"
    run admin users list --output json
    echo; echo "\$ fluxbase admin users get no-such-id   # errors are one clear line and a non-zero exit"
    "$FLUXBASE" admin users get no-such-id || echo "(exit code $?)"
fi
echo
echo "==> done; the throwaway cluster is removed now"
