#!/usr/bin/env bash
# Build and install the extension into the PostgreSQL of $PG_CONFIG, with every
# version's scripts. `cargo pgrx install` writes the current version's install
# script (generated) and copies the upgrade scripts `sql/fluxbase_admin--<a>--<b>.sql`;
# it does not know the archived install scripts of released versions, so this
# copies `sql/versions/fluxbase_admin--<v>.sql` too: `CREATE EXTENSION
# fluxbase_admin VERSION '<v>'` (tests/test_upgrade.py) needs them.
# See docs/RELEASING.md.
#   scripts/install.sh             debug build
#   scripts/install.sh --release   (any further arguments go to cargo pgrx install)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
cargo pgrx install "$@" --pg-config "$PG_CONFIG"
EXTDIR="$("$PG_CONFIG" --sharedir)/extension"
for f in sql/versions/fluxbase_admin--*.sql; do
    [ -e "$f" ] || continue
    # Never overwrite the current version's script with an archived one.
    [ "$(basename "$f")" = "fluxbase_admin--$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1).sql" ] && continue
    install -m 644 "$f" "$EXTDIR/"
    echo "installed archived script $(basename "$f") into $EXTDIR"
done
