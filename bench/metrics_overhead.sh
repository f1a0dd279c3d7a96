#!/usr/bin/env bash
# What the server's request layer (Prometheus metrics, issue 35) adds to one
# request, measured in one process with no database and no network: the
# `prom::tests::request_layer_cost` test in release, metrics off and on in
# alternating rounds, best of 5 each. Read it against a dashboard request's
# own cost (bench/cases/dashboard.sh prints the server's CPU µs per request):
# the target is <= 2% of that. A machine's load slows both rounds alike.
#
#   bench/metrics_overhead.sh            (LAYER_REQUESTS=200000 per round)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
echo "==> $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load average $(sed -n 's/.*load average: //p' <(uptime))"
env -u RUST_BACKTRACE cargo test -q --release -p fluxbase_web --lib prom::tests::request_layer_cost -- --ignored --nocapture 2>&1 \
    | grep -E "request layer|panicked|FAILED|error"
echo "==> load average after: $(sed -n 's/.*load average: //p' <(uptime))"
