#!/usr/bin/env bash
# Two wasmgate builds against each other on one path, in alternating rounds:
# bench/ab.sh OLD_BINARY NEW_BINARY [PATH] [ROUNDS] [SECONDS]
#
# CONFIG=FILE serves FILE instead of bench/wasmgate.bench.toml, e.g. bench/wasmgate.ab.toml (only
# /hello/:name, in keys every build since the benchmark suite understands) to compare against a
# build older than the keys the bench config uses (`reuse`).
#
# For checking one change: keep the old binary (`cp target/release/wasmgate /tmp/wasmgate-old`),
# rebuild, then `bench/ab.sh /tmp/wasmgate-old target/release/wasmgate /health`. Both serve
# bench/wasmgate.bench.toml (build the hello plugin first for /hello paths: bench/run.sh does)
# on their own ports; wrk (keep-alive, 64 connections, 2 threads, as bench/run.sh) alternates
# between them, ROUNDS (default 5) of SECONDS (default 5). Prints each median req/s and
# new/old, and the server CPU time per request (user + system, from /proc) of each.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY [PATH] [ROUNDS] [SECONDS]" >&2; exit 2; }
OLD=$1 NEW=$2 URLPATH=${3:-/health} ROUNDS=${4:-5} DURATION=${5:-5}
command -v wrk >/dev/null || { echo "bench/ab.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

bins=("$OLD" "$NEW") names=(old new) ports=(18186 18187)
for i in 0 1; do
  "${bins[$i]}" serve --config "${CONFIG:-bench/wasmgate.bench.toml}" --listen "127.0.0.1:${ports[$i]}" \
    --log-level warn >"$tmp/server-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1; do
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:${ports[$i]}$URLPATH" && break
    sleep 0.1
  done
  curl -sf -o /dev/null "http://127.0.0.1:${ports[$i]}$URLPATH" ||
    { echo "${names[$i]}: $URLPATH does not answer 2xx" >&2; cat "$tmp/server-$i.log" >&2; exit 1; }
done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
tck=$(getconf CLK_TCK)
for round in $(seq "$ROUNDS"); do
  for k in 0 1; do
    i=$(( (k + round) % 2 ))
    before=$(cpu "${pids[$i]}")
    out=$(wrk -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:${ports[$i]}$URLPATH")
    after=$(cpu "${pids[$i]}")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    us=$(awk -v a="$before" -v b="$after" -v n="$requests" -v t="$tck" 'BEGIN {printf "%.2f", (b - a) / t / n * 1e6}')
    echo "$rps" >>"$tmp/rps-$i"
    echo "$us" >>"$tmp/cpu-$i"
    echo "  round $round: ${names[$i]}: $rps req/s, $us µs server CPU/request" >&2
  done
done

median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
old=$(median "$tmp/rps-0") new=$(median "$tmp/rps-1")
printf '%-4s %12s %18s\n' "" "req/s" "µs CPU/request"
for i in 0 1; do
  printf '%-4s %12.0f %18s\n' "${names[$i]}" "$(median "$tmp/rps-$i")" "$(median "$tmp/cpu-$i")"
done
awk -v o="$old" -v n="$new" 'BEGIN {printf "new/old: %.3fx req/s\n", n / o}'
