#!/usr/bin/env bash
# A PNG of every dashboard page (desktop and phone width) into target/screenshots/,
# by the browser test tests/web/test_screenshots.py on a throwaway cluster; then
# copies the desktop ones the README shows into docs/screenshots/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/test.sh -k test_screenshots_of_every_page
mkdir -p docs/screenshots
for p in setup login login-2fa home account account-2fa; do
    cp "target/screenshots/$p.png" docs/screenshots/
done
ls target/screenshots/
