#!/usr/bin/env bash
# A PNG of every dashboard page (desktop and phone width) into target/screenshots/,
# made by the browser tests that take them (tests/web/test_screenshots.py: sign-in
# and account pages; test_section_screenshots.py: Users, Admins, Settings, Audit,
# Analytics, the step-up dialog, dark mode; test_tables.py: the Tables section;
# test_keyboard.py: the keyboard-focused grid) on a throwaway
# PostgreSQL 15 cluster; then copies the desktop ones the README shows into
# docs/screenshots/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PG_MAJOR=${PG_MAJOR:-15} bash scripts/test.sh -k "screenshots or test_tables or test_keyboard"
mkdir -p docs/screenshots
for p in setup login login-2fa home account account-2fa \
         tables table table-edit-error table-enum-editor table-insert table-view-as sql-console \
         users user admins settings audit audit-entry analytics advisor reauth-dialog \
         table-keyboard home-dark table-dark users-dark analytics-dark; do
    if [ -f "target/screenshots/$p.png" ]; then
        cp "target/screenshots/$p.png" docs/screenshots/
    else
        echo "!! no screenshot of $p" >&2
    fi
done
ls target/screenshots/
