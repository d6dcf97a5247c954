#!/usr/bin/env bash
# Issue 20 item 1: healthy plugins must not trap or get quarantined when the host's pools are
# saturated. bench/saturation.sh
#
# Serves tests/guests/kv_after_sleep_v2.wat (an ABI v2 guest that waits 5 ms, then calls kv_get
# on a SQLite store, so the host hands the result back through a nested `wasmgate_alloc` call)
# and prints the status counts of two configurations:
#
#   small     [runtime] max_instances = 4; one such plugin; 8 concurrent clients, 400 requests
#   defaults  every limit at its default (max_instances = 256); two such plugins, 150 clients
#             each, 1500 requests each (3000 in all)
#
# Expected on a fixed server: only 200s (body '0' or '1': the kv_get code) and, where a plugin's
# queue is full, 503 `overloaded`; never a 500 `trap` or a 503 `quarantined`. The clients are
# bench/saturation_clients.py (keep-alive, closed loop); everything runs on 127.0.0.1.
#
# The server is the debug build by default (status counts need no optimisation, and a debug
# build saturates sooner); WASMGATE=/path/to/wasmgate runs another binary, e.g. one built from an
# older commit, to compare. Needs cargo, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ -z "${WASMGATE:-}" ]; then
  cargo build -p wasmgate --quiet
  WASMGATE=$root/target/debug/wasmgate
fi
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

port=18230
# run NAME RUNTIME_LINES PLUGINS CLIENT_GROUPS...: one server, one load, its counts.
run() {
  local name=$1 runtime=$2 plugins=$3
  shift 3
  {
    printf '[server]\nlisten = "127.0.0.1:%s"\ndata_dir = "%s"\n' "$port" "$tmp/data-$name"
    printf '[runtime]\nmodule_cache = false\n%b\n' "$runtime"
    printf '[stores.kv]\nsync = "normal"\n'
    for p in $plugins; do
      printf '[plugins.%s]\nwasm = "%s"\nkv = ["kv"]\n' "$p" "$root/tests/guests/kv_after_sleep_v2.wat"
      printf '[[routes]]\nmethod = "GET"\npath = "/%s"\nplugin = "%s"\n' "$p" "$p"
    done
  } >"$tmp/$name.toml"
  "$WASMGATE" serve --config "$tmp/$name.toml" --log-level error >"$tmp/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/ready" && break
    sleep 0.1
  done
  echo "$name:"
  python3 bench/saturation_clients.py "$port" "$@"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

run small 'max_instances = 4' 'p' /p 8 400
run defaults '' 'a b' /a 150 1500 /b 150 1500
