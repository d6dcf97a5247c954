#!/usr/bin/env bash
# Fairness benchmark (issue: guest CPU must not starve the server). Release build, one test at a
# time: two clients keep a guest spinning until its 200 ms deadline, back to back, while a third
# measures 1,000 sequential GET /health round trips on the same server. Prints p50/p99.
set -euo pipefail
cd "$(dirname "$0")/.."
FAIRNESS_SAMPLES=${FAIRNESS_SAMPLES:-1000} \
  cargo test --release -p wasmgate-tests --test it fairness -- --nocapture --test-threads=1 2>&1 \
  | grep -oE 'fairness: .*|test result.*'
