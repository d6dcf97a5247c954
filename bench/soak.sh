#!/usr/bin/env bash
# Soak test (issue 6): mixed hostile and healthy load against a release server for SOAK_SECONDS
# (default 600 = 10 minutes), sampling its memory and descriptors, then a verdict.
#
#   healthy      wrk, 16 connections, round robin over GET /health, GET /ok (a WAT guest) and
#                POST /echo with a 1 KiB body: every answer must be a 2xx, no socket error;
#   misbehaving  wrk, 2 connections, over guests that trap (with stderr output), spin into their
#                deadline, and grow memory past their cap (their breakers open; spin is capped at
#                one call at a time, one queued);
#   hostile      bench/soak_clients.py: 50 slowloris connections, 5 trickling bodies, clients that
#                reset mid-request and mid-response (512 KiB echo, reset after 1 KiB).
#
# Every SOAK_SAMPLE_SECONDS (default 30) it prints RSS, open descriptors, live connections and
# request counts; at the end, the first and last samples side by side, wrk's reports, and the
# error count on the healthy routes (wrk's view and the server's own /metrics). Exit status 1 if
# a healthy request failed. Traffic goes to 127.0.0.1 only; everything started is stopped on exit.
#
# Needs: wrk (apt-get install wrk), python3, curl. Usage: bench/soak.sh, or SOAK_SECONDS=60 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SOAK_SECONDS=${SOAK_SECONDS:-600}
SAMPLE=${SOAK_SAMPLE_SECONDS:-30}
PORT=${SOAK_PORT:-18090}
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "soak: $tool is required (apt-get install $tool)" >&2; exit 2; }
done

cargo build --release -p wasmgate --quiet
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

g="$root/tests/guests"
cat >"$work/soak.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT"
max_connections = 1024
[timeouts]
header_read = "5s"
body_read = "2s"
linger = "200ms"
[runtime]
module_cache = false
[plugins.ok]
wasm = "$g/ok.wat"
[plugins.echo]
wasm = "$g/echo.wat"
[plugins.trap]
wasm = "$g/unreachable.wat"
[plugins.spin]
wasm = "$g/spin.wat"
fuel = 100000000000
deadline = "100ms"
max_concurrency = 1
max_queue = 1
[plugins.memory]
wasm = "$g/memory_growth.wat"
max_memory_bytes = "4MiB"
[[routes]]
method = "GET"
path = "/ok"
plugin = "ok"
[[routes]]
method = "POST"
path = "/echo"
plugin = "echo"
[[routes]]
method = "GET"
path = "/bad/trap"
plugin = "trap"
[[routes]]
method = "GET"
path = "/bad/spin"
plugin = "spin"
[[routes]]
method = "GET"
path = "/bad/memory"
plugin = "memory"
EOF

target/release/wasmgate serve --config "$work/soak.toml" --log-level warn >"$work/server.out" 2>"$work/server.err" &
server=$!
pids+=("$server")
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null || { echo "soak: server not ready" >&2; cat "$work/server.err" >&2; exit 2; }

metric() { # metric NAME_OR_PREFIX: sum of the samples whose line starts with it
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v p="$1" 'index($0, p) == 1 { s += $NF } END { printf "%d", s }'
}
sample() {
  local t=$1 rss fds
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status")
  fds=$(ls "/proc/$server/fd" | wc -l)
  printf "%6s %9s %5s %6s %10s %10s\n" "$t" "$rss" "$fds" "$(metric wasmgate_connections_active)" \
    "$(metric 'wasmgate_plugin_calls_total{plugin="ok",outcome="ok"}')" \
    "$(metric wasmgate_plugin_calls_total)"
}

echo "soak: ${SOAK_SECONDS}s against 127.0.0.1:$PORT (pid $server), sampling every ${SAMPLE}s"
wrk -t1 -c16 -d"${SOAK_SECONDS}s" --timeout 5s -s bench/soak.lua "http://127.0.0.1:$PORT" \
  -- "GET /health" "GET /ok" "POST /echo 1024" >"$work/healthy.txt" 2>&1 &
pids+=("$!")
healthy=$!
wrk -t1 -c2 -d"${SOAK_SECONDS}s" --timeout 5s -s bench/soak.lua "http://127.0.0.1:$PORT" \
  -- "GET /bad/trap" "GET /bad/spin" "GET /bad/memory" >"$work/bad.txt" 2>&1 &
pids+=("$!")
bad=$!
python3 bench/soak_clients.py --port "$PORT" --seconds "$SOAK_SECONDS" >"$work/hostile.txt" 2>&1 &
pids+=("$!")
hostile=$!

printf "%6s %9s %5s %6s %10s %10s\n" "t(s)" "RSS(MiB)" "fds" "conns" "ok calls" "all calls" | tee "$work/samples.txt"
sample 0 | tee -a "$work/samples.txt"
start=$(date +%s)
while kill -0 "$healthy" 2>/dev/null; do
  sleep "$SAMPLE" || true
  now=$(( $(date +%s) - start ))
  kill -0 "$server" 2>/dev/null || { echo "soak: the server died" >&2; cat "$work/server.err" >&2; exit 1; }
  sample "$now" | tee -a "$work/samples.txt"
done
wait "$healthy" "$bad" || true
wait "$hostile" || true
sleep 3  # let the hostile connections be reclaimed
sample end | tee -a "$work/samples.txt"

echo
echo "== healthy (wrk) =="; cat "$work/healthy.txt"
echo "== misbehaving (wrk) =="; cat "$work/bad.txt"
echo "== $(cat "$work/hostile.txt")"
echo "== server-side outcomes =="
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^wasmgate_(requests_total|plugin_calls_total|plugin_rejected_total|plugin_breaker_opened_total|timeouts_total|connections_closed_total)' | grep -v ' 0$' || true

wrk_errors=$(awk '/Non-2xx/ { s += $NF } /Socket errors/ { gsub(",", ""); s += $4 + $6 + $8 + $10 } END { print s + 0 }' "$work/healthy.txt")
server_errors=$(curl -s "http://127.0.0.1:$PORT/metrics" \
  | awk '/^wasmgate_requests_total\{route="(\/health|\/ok|\/echo)"/ && !/status="200"/ { s += $NF } END { print s + 0 }')
# samples.txt: header, t=0 (before load), samples under load, then "end" (load stopped).
read -r base_rss base_fds < <(awk 'NR == 2 { print $2, $3 }' "$work/samples.txt")
read -r first_rss first_fds < <(awk 'NR == 3 { print $2, $3 }' "$work/samples.txt")
read -r last_rss last_fds < <(tail -n 2 "$work/samples.txt" | awk 'NR == 1 { print $2, $3 }')
read -r end_rss end_fds < <(awk 'END { print $2, $3 }' "$work/samples.txt")
max_rss=$(awk 'NR > 2 { if ($2 > m) m = $2 } END { print m }' "$work/samples.txt")
echo
echo "soak verdict: ${SOAK_SECONDS}s. RSS MiB: before ${base_rss}, under load ${first_rss} -> ${last_rss} (max ${max_rss}), after ${end_rss}." \
  "fds: before ${base_fds}, under load ${first_fds} -> ${last_fds}, after ${end_fds}." \
  "Healthy-route errors: wrk ${wrk_errors}, server ${server_errors}."
[ "$wrk_errors" -eq 0 ] && [ "$server_errors" -eq 0 ]
