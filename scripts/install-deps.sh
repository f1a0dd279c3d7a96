#!/usr/bin/env bash
# Installs everything fluxbase_admin needs to build, install and test, on a fresh
# Debian 12 machine, as root. Idempotent: each step is skipped when already done.
set -euo pipefail

PGRX_VERSION=0.18.0
PG_MAJOR=15

need_apt=()
# chromium: the browser the dashboard tests drive (Playwright, no browser download).
for pkg in postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib libclang-dev clang sudo pkg-config libssl-dev chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Debian's postgresql package may start a cluster of its own; we never use it.
if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION"; then
  echo "==> cargo install cargo-pgrx $PGRX_VERSION (takes a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -q "pg$PG_MAJOR" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
  echo "==> cargo pgrx init --pg$PG_MAJOR /usr/bin/pg_config"
  cargo pgrx init --pg$PG_MAJOR /usr/bin/pg_config
fi
