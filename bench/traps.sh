#!/usr/bin/env bash
# The cost of a trapping guest under three backtrace settings (docs/security.md, finding F5):
# bench/traps.sh [rounds] [seconds]
#
# Every request to /trap runs tests/guests/trap.wat, which traps at once (-> 500); its circuit
# breaker is raised out of reach so every request really runs the guest. Three release servers run
# side by side, differing only in their environment:
#
#   plain            no backtrace variables
#   RUST_BACKTRACE=1 a common debugging setting; wasmgate turns library backtraces off for itself
#                    (sys::quiet_library_backtraces), so this should cost nothing
#   +LIB_BACKTRACE=1 RUST_LIB_BACKTRACE=1 as well: every trap captures a native backtrace, which is
#                    what RUST_BACKTRACE=1 alone used to cost
#
# wrk (keep-alive, 16 connections, 2 threads) alternates between them for `rounds` rounds (default
# 3) of `seconds` (default 5); prints each median req/s and its ratio to `plain`. The load generator
# shares the machine: read the ratios. Needs cargo, curl and wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3} DURATION=${2:-5}
command -v wrk >/dev/null || { echo "bench/traps.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }

cargo build --release -p wasmgate --quiet
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

names=(plain "RUST_BACKTRACE=1" "+LIB_BACKTRACE=1")
envs=("" "RUST_BACKTRACE=1" "RUST_BACKTRACE=1 RUST_LIB_BACKTRACE=1")
ports=(18190 18191 18192)
for i in 0 1 2; do
  cat >"$tmp/wasmgate-$i.toml" <<EOF
[server]
listen = "127.0.0.1:${ports[$i]}"
[runtime]
module_cache = false
[plugins.trap]
wasm = "$(pwd)/tests/guests/trap.wat"
breaker_threshold = 4000000000
[[routes]]
method = "GET"
path = "/trap"
plugin = "trap"
EOF
  env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE ${envs[$i]} \
    ./target/release/wasmgate serve --config "$tmp/wasmgate-$i.toml" --log-level error \
    >"$tmp/server-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:${ports[$i]}/health" && break
    sleep 0.1
  done
  status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[$i]}/trap")
  [ "$status" = 500 ] || { echo "server ${names[$i]}: /trap gave $status" >&2; cat "$tmp/server-$i.log" >&2; exit 1; }
done

for round in $(seq "$ROUNDS"); do
  for k in 0 1 2; do
    i=$(( (k + round) % 3 ))
    rps=$(wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:${ports[$i]}/trap" | awk '/Requests\/sec/ {print $2}')
    echo "$rps" >>"$tmp/rps-$i"
    echo "  round $round: ${names[$i]}: $rps req/s" >&2
  done
done

median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
base=$(median "$tmp/rps-0")
printf '%-20s %12s %8s\n' setting "req/s" ratio
for i in 0 1 2; do
  m=$(median "$tmp/rps-$i")
  awk -v n="${names[$i]}" -v m="$m" -v b="$base" 'BEGIN {printf "%-20s %12.0f %7.2fx\n", n, m, m / b}'
done
