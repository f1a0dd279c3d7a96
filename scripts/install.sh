#!/usr/bin/env bash
# Build and install the extension into the PostgreSQL of $PG_CONFIG, with every
# version's scripts. `cargo pgrx install` writes the current version's install
# script (generated) and copies the upgrade scripts `sql/fluxbase_admin--<a>--<b>.sql`;
# it does not know the archived install scripts of released versions, so this
# copies `sql/versions/fluxbase_admin--<v>.sql` too: `CREATE EXTENSION
# fluxbase_admin VERSION '<v>'` (tests/test_upgrade.py) needs them.
# See docs/RELEASING.md.
#   scripts/install.sh             debug build, into PostgreSQL 15 (/usr/bin/pg_config)
#   scripts/install.sh --release   (any further arguments go to cargo pgrx install)
#   PG_MAJOR=18 scripts/install.sh                  into PostgreSQL 18 (see scripts/pg-env.sh)
#   PG_CONFIG=/path/bin/pg_config scripts/install.sh   into that installation (15 or 18)
# The build is for that major version (cargo feature pg15 or pg18).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/pg-env.sh
echo "==> cargo pgrx install for PostgreSQL $PG_MAJOR ($PG_CONFIG)"
# shellcheck disable=SC2086  # (PGRX_FEATURES is several words)
cargo pgrx install $PGRX_FEATURES "$@" --pg-config "$PG_CONFIG"
EXTDIR="$("$PG_CONFIG" --sharedir)/extension"
for f in sql/versions/fluxbase_admin--*.sql; do
    [ -e "$f" ] || continue
    # Never overwrite the current version's script with an archived one.
    [ "$(basename "$f")" = "fluxbase_admin--$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1).sql" ] && continue
    install -m 644 "$f" "$EXTDIR/"
    echo "installed archived script $(basename "$f") into $EXTDIR"
done
