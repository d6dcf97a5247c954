#!/usr/bin/env bash
# The benchmark suite (issues 5 and 14), one command: bench/run.sh [--quick] [--no-micro] [--no-memory]
#
#   load    wrk, keep-alive, 64 connections, once with 1 thread and once with 2, against:
#           wasmgate's native GET /health, hyper's and nginx's; wasmgate's wasm GET /hello/x (the
#           hello plugin, a Rust SDK guest, in a fresh instance per request), GET /warm/x (the same
#           module with instance reuse), a plain hyper 1.x server answering the same JSON
#           (bench/hyper-ref, bench-only) and nginx `return 200` (the C ceiling); and the trivial
#           hand-written guest tests/guests/ok.wat served by wasmgate (GET /ok, fresh instances)
#           and by hyper calling wasmtime 48 directly (hyper-ref's GET /ok: a fresh pooled
#           instance per request, fuel, epochs, no WASI), so that wasmgate's own per-call
#           overhead is a number in every run. Every server gets 2 worker threads/processes (this
#           machine's core count). Rounds alternate between the servers and between the two wrk
#           thread counts; the figures are medians over the rounds, and every ratio is against a
#           reference measured in the same round, a few seconds apart. The server's CPU time per
#           request (user + system, /proc) is recorded with each wrk run.
#   micro   criterion (crates/server/benches/micro.rs: plugin call cost, 1,000-route matching) and the
#           alternating parser-vs-httparse bench with its allocation counts (crates/server/benches/parser.rs).
#   memory  bench/memory.py on fresh servers: RSS with 10,000 idle keep-alive connections, RSS
#           after 10,000 and after 1,000,000 requests (mixed /health + /hello/x; then /warm/x alone,
#           instance reuse, on another fresh server), heap allocations per request.
#
# Writes docs/BENCHMARKS.md (date, machine, every table) and prints the tables. --quick: 2 rounds
# of 3 s, short micro runs, 100,000 requests for the growth checks (a smoke run, not for the docs
# unless you say so with BENCH_WRITE_DOCS=1). Load generator and servers share the machine, so
# read ratios, not absolute numbers. Traffic goes to 127.0.0.1 only; everything this script
# starts is stopped on exit.
#
# Needs: cargo, python3, curl, wrk and nginx (Debian: apt-get install wrk nginx-light; run as root
# and the script installs them itself).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0 micro=1 memory=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-micro) micro=0 ;;
    --no-memory) memory=0 ;;
    *) echo "usage: bench/run.sh [--quick] [--no-micro] [--no-memory]" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  ROUNDS=${BENCH_ROUNDS:-2} DURATION=${BENCH_DURATION:-3} GROWTH=${BENCH_GROWTH:-100000}
  write_docs=${BENCH_WRITE_DOCS:-0}
else
  ROUNDS=${BENCH_ROUNDS:-5} DURATION=${BENCH_DURATION:-5} GROWTH=${BENCH_GROWTH:-1000000}
  write_docs=${BENCH_WRITE_DOCS:-1}
fi
CONNECTIONS=64 WRK_THREADS=(1 2) WORKERS=2
OK_WAT=tests/guests/ok.wat
WG_PORT=18180 HYPER_PORT=18181 NGINX_PORT=18182

# --- tools -------------------------------------------------------------------------------------
missing=()
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bench: installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq
    pkgs=()
    for t in "${missing[@]}"; do [ "$t" = nginx ] && pkgs+=(nginx-light) || pkgs+=("$t"); done
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    echo "bench: missing ${missing[*]}; install with: apt-get install wrk nginx-light" >&2
    exit 2
  fi
fi
for tool in python3 curl cargo; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- build -------------------------------------------------------------------------------------
echo "bench: building (release)" >&2
cargo build --release -p wasmgate --quiet
./target/release/wasmgate build --config "$root/wasmgate.toml"
(cd bench/hyper-ref && cargo build --release --quiet)

# --- servers -----------------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/wasmgate-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# The file-descriptor limit: bench/memory.py holds 10,000 connections open.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

wait_up() { # url
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; exit 1
}

start_wasmgate() { # logfile; sets wg_pid
  ./target/release/wasmgate serve --config bench/wasmgate.bench.toml --log-level warn >"$1" 2>&1 &
  wg_pid=$!
  pids+=("$wg_pid")
  wait_up "http://127.0.0.1:$WG_PORT/health"
}

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

start_wasmgate "$tmp/wasmgate.log"
WORKERS=$WORKERS bench/hyper-ref/target/release/hyper-ref "127.0.0.1:$HYPER_PORT" "$OK_WAT" \
  >"$tmp/hyper.log" 2>&1 &
hyper_pid=$!
pids+=("$hyper_pid")
# nginx: its own config and prefix in the temp dir; as many worker processes as the others have
# worker threads; keep-alive as long as wasmgate's default (10,000 requests per connection).
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<NGINX
worker_processes $WORKERS;
daemon on;
pid $tmp/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /health { default_type application/json; return 200 '{"status":"ok","uptime":1}'; }
        location /hello/ { default_type application/json; return 200 '{"message":"Hello, x!"}'; }
    }
}
NGINX
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx.conf" -e "$tmp/nginx/error.log"
wait_up "http://127.0.0.1:$HYPER_PORT/health"
wait_up "http://127.0.0.1:$NGINX_PORT/health"

# Same answers everywhere (status and body shape) before anything is measured.
check() { # url grep-pattern
  curl -fsS "$1" | grep -q "$2" || { echo "bench: $1 answers wrongly (want $2)" >&2; exit 1; }
}
for port in $WG_PORT $HYPER_PORT $NGINX_PORT; do
  check "http://127.0.0.1:$port/hello/x" '"message":"Hello, x!"'
  check "http://127.0.0.1:$port/health" '"status":"ok"'
done
check "http://127.0.0.1:$WG_PORT/warm/x" '"message":"Hello, x!"'
for port in $WG_PORT $HYPER_PORT; do check "http://127.0.0.1:$port/ok" '^hello from ok.wat$'; done
# /warm/x must really be served by warm instances (both the config and the guest opt in), or its
# figure would silently be a second fresh-instance one.
for _ in 1 2 3; do curl -fsS -o /dev/null "http://127.0.0.1:$WG_PORT/warm/x"; done
reused=$(curl -fsS "http://127.0.0.1:$WG_PORT/metrics" |
  awk '/^wasmgate_plugin_reused_instance_calls_total[{].*plugin="hello_reused"/ {s += $NF} END {print s + 0}')
[ "${reused%.*}" -gt 0 ] ||
  { echo "bench: /warm/x is not served by reused instances (wasmgate_plugin_reused_instance_calls_total = 0)" >&2; exit 1; }

# --- load --------------------------------------------------------------------------------------
# NAME|SERVER|PATH; the report lists them in this order. Its ratios: wasmgate /health against
# hyper /health; every wasm route against hyper /hello/x; /ok also against hyper+wasmtime /ok.
targets=(
  "wasmgate native /health|wasmgate|/health"
  "hyper /health|hyper|/health"
  "nginx /health|nginx|/health"
  "wasmgate wasm /hello/x (fresh)|wasmgate|/hello/x"
  "wasmgate wasm /warm/x (reuse)|wasmgate|/warm/x"
  "hyper /hello/x|hyper|/hello/x"
  "nginx /hello/x|nginx|/hello/x"
  "wasmgate wasm /ok (ok.wat, fresh)|wasmgate|/ok"
  "hyper+wasmtime /ok (ok.wat, fresh)|hyper|/ok"
)
# Two groups, each run as a whole at one wrk thread count, then at the other. Within a group the
# order rotates from round to round (and runs backwards in even rounds); the base orders put each
# server next to its reference (wasmgate /hello/x and /warm/x beside hyper /hello/x, wasmgate /ok
# beside hyper+wasmtime /ok), so a ratio pairs two runs a few seconds apart.
groups=("0 1 2" "3 5 4 7 8 6")
port_of() { case $1 in wasmgate) echo $WG_PORT ;; hyper) echo $HYPER_PORT ;; nginx) echo $NGINX_PORT ;; esac; }
pids_of() { # server -> the processes whose CPU time the server's work shows in
  case $1 in
    wasmgate) echo "$wg_pid" ;;
    hyper) echo "$hyper_pid" ;;
    nginx) pgrep -P "$(cat "$tmp/nginx.pid")" | tr '\n' ' ' ;;
  esac
}
cpu_ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'; }
tck=$(getconf CLK_TCK)
mkdir -p "$tmp/wrk"
for i in "${!targets[@]}"; do echo "${targets[$i]%%|*}" >"$tmp/wrk/$i.name"; done
echo "bench: load, $ROUNDS rounds x ${#targets[@]} targets x wrk -t${WRK_THREADS[0]} and -t${WRK_THREADS[1]} x ${DURATION}s" >&2
load_start=$(cat /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  gorder=(0 1) torder=("${WRK_THREADS[@]}")
  if [ $((round % 2)) = 0 ]; then gorder=(1 0) torder=("${WRK_THREADS[1]}" "${WRK_THREADS[0]}"); fi
  for g in "${gorder[@]}"; do
    read -ra base <<<"${groups[$g]}"
    n=${#base[@]} order=()
    for k in $(seq 0 $((n - 1))); do order+=("${base[$(( (k + round - 1) % n ))]}"); done
    if [ $((round % 2)) = 0 ]; then
      rev=(); for ((k = n - 1; k >= 0; k--)); do rev+=("${order[$k]}"); done; order=("${rev[@]}")
    fi
    for t in "${torder[@]}"; do
      mkdir -p "$tmp/wrk/t$t"
      for i in "${order[@]}"; do
        IFS='|' read -r name server path <<<"${targets[$i]}"
        out="$tmp/wrk/t$t/$i.$round"
        read -ra spids <<<"$(pids_of "$server")"
        before=$(cpu_ticks "${spids[@]}")
        wrk -t"$t" -c$CONNECTIONS -d"${DURATION}s" --latency "http://127.0.0.1:$(port_of "$server")$path" >"$out"
        after=$(cpu_ticks "${spids[@]}")
        requests=$(awk '/requests in/ {print $1}' "$out")
        awk -v a="$before" -v b="$after" -v n="$requests" -v t="$tck" \
          'BEGIN {printf "%.2f\n", (b - a) / t / n * 1e6}' >"$out.cpu"
        echo "  round $round, -t$t: $name: $(grep Requests/sec "$out" | tr -s ' '), $(cat "$out.cpu") µs CPU/request" >&2
      done
    done
  done
done
load_end=$(cat /proc/loadavg)

# --- micro -------------------------------------------------------------------------------------
if [ "$micro" = 1 ]; then
  echo "bench: micro-benchmarks (criterion, parser)" >&2
  stop_pid "$wg_pid"   # the servers sit idle meanwhile; wasmgate restarts for memory
  if [ "$quick" = 1 ]; then crit=(--warm-up-time 1 --measurement-time 2); pquick=--quick
  else crit=(--warm-up-time 2 --measurement-time 5); pquick=; fi
  cargo bench -p wasmgate-server --bench micro -- "${crit[@]}" >"$tmp/criterion.txt" 2>&1
  cargo bench -p wasmgate-server --bench parser -- $pquick >"$tmp/parser.txt" 2>&1
fi

# --- memory ------------------------------------------------------------------------------------
if [ "$memory" = 1 ]; then
  echo "bench: memory (10,000 idle connections; growth to $GROWTH requests, fresh and reuse; allocations)" >&2
  stop_pid "$wg_pid" 2>/dev/null || true
  start_wasmgate "$tmp/wasmgate-idle.log"
  python3 bench/memory.py idle --pid "$wg_pid" --port $WG_PORT >"$tmp/idle.json"
  stop_pid "$wg_pid"
  start_wasmgate "$tmp/wasmgate-growth.log"
  python3 bench/memory.py growth --pid "$wg_pid" --port $WG_PORT --n "$GROWTH" >"$tmp/growth.json"
  python3 bench/memory.py allocs --pid "$wg_pid" --port $WG_PORT \
    --paths /health,/hello/x,/warm/x,/ok >"$tmp/allocs.json"
  stop_pid "$wg_pid"
  start_wasmgate "$tmp/wasmgate-growth-reuse.log"
  python3 bench/memory.py growth --pid "$wg_pid" --port $WG_PORT --n "$GROWTH" --path /warm/x \
    >"$tmp/growth-reuse.json"
  stop_pid "$wg_pid"
fi

# --- report ------------------------------------------------------------------------------------
out=/dev/null
[ "$write_docs" = 1 ] && out="$root/docs/BENCHMARKS.md"
python3 bench/report.py --dir "$tmp" --rounds "$ROUNDS" --duration "$DURATION" \
  --connections $CONNECTIONS --threads "${WRK_THREADS[*]}" --workers $WORKERS \
  --load-start "$load_start" --load-end "$load_end" --command "bench/run.sh $*" --out "$out"
[ "$write_docs" = 1 ] && echo "bench: wrote docs/BENCHMARKS.md" >&2
exit 0
