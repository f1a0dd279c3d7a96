#!/usr/bin/env bash
# A project-local Python virtualenv with the client-level test dependencies.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$ROOT/.venv/bin/pytest" ] || ! cmp -s "$ROOT/tests/requirements.txt" "$ROOT/.venv/requirements.txt"; then
    python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/requirements.txt"
    cp "$ROOT/tests/requirements.txt" "$ROOT/.venv/requirements.txt"
fi
