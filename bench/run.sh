#!/usr/bin/env bash
# The benchmark suite (issue 5), one command: bench/run.sh [--quick] [--no-micro] [--no-memory]
#
#   load    wrk, keep-alive, 64 connections, 2 threads, against wasmgate's native GET /health,
#           wasmgate's wasm GET /hello/:name (the hello plugin), a plain hyper 1.x server answering
#           the same JSON (bench/hyper-ref, bench-only) and nginx `return 200` (the C ceiling).
#           Every server gets 2 worker threads/processes (this machine's core count). Rounds
#           alternate between the servers (each round runs every target once, in a rotated order);
#           the figures are medians over the rounds, and every ratio is against the hyper reference
#           on the same path, measured in the same run.
#   micro   criterion (crates/server/benches/micro.rs: plugin call cost, 1,000-route matching) and the
#           alternating parser-vs-httparse bench with its allocation counts (crates/server/benches/parser.rs).
#   memory  bench/memory.py on fresh servers: RSS with 10,000 idle keep-alive connections, RSS
#           after 10,000 and after 1,000,000 mixed requests, heap allocations per request.
#
# Writes docs/BENCHMARKS.md (date, machine, every table) and prints the tables. --quick: 2 rounds
# of 3 s, short micro runs, 100,000 requests for the growth check (a smoke run, not for the docs
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
  ROUNDS=${BENCH_ROUNDS:-3} DURATION=${BENCH_DURATION:-10} GROWTH=${BENCH_GROWTH:-1000000}
  write_docs=${BENCH_WRITE_DOCS:-1}
fi
CONNECTIONS=64 THREADS=2 WORKERS=2
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
WORKERS=$WORKERS bench/hyper-ref/target/release/hyper-ref "127.0.0.1:$HYPER_PORT" >"$tmp/hyper.log" 2>&1 &
pids+=($!)
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
for port in $WG_PORT $HYPER_PORT $NGINX_PORT; do
  curl -fsS "http://127.0.0.1:$port/hello/x" | grep -q '"message":"Hello, x!"' \
    || { echo "bench: :$port answers /hello/x wrongly" >&2; exit 1; }
  curl -fsS "http://127.0.0.1:$port/health" | grep -q '"status":"ok"' \
    || { echo "bench: :$port answers /health wrongly" >&2; exit 1; }
done

# --- load --------------------------------------------------------------------------------------
# Rounds alternate between the servers; the figures are medians over rounds, and each ratio is the
# median of the per-round ratios against hyper on the same path.
targets=(
  "wasmgate native /health|http://127.0.0.1:$WG_PORT/health"
  "hyper /health|http://127.0.0.1:$HYPER_PORT/health"
  "nginx /health|http://127.0.0.1:$NGINX_PORT/health"
  "wasmgate wasm /hello/:name|http://127.0.0.1:$WG_PORT/hello/bench"
  "hyper /hello/:name|http://127.0.0.1:$HYPER_PORT/hello/bench"
  "nginx /hello/:name|http://127.0.0.1:$NGINX_PORT/hello/bench"
)
mkdir -p "$tmp/wrk"
echo "bench: load, $ROUNDS rounds x ${#targets[@]} targets x ${DURATION}s" >&2
load_start=$(cat /proc/loadavg)
# Each round measures the /health trio back to back, then the /hello trio, so that a server and
# its reference run under the same background load; the order inside each trio rotates from
# round to round, and which trio goes first alternates.
for round in $(seq 1 "$ROUNDS"); do
  order=()
  for trio in 0 3; do
    for k in 0 1 2; do order+=($(( trio + (k + round - 1) % 3 ))); done
  done
  [ $((round % 2)) = 0 ] && order=("${order[@]:3:3}" "${order[@]:0:3}")
  for i in "${order[@]}"; do
    name=${targets[$i]%%|*} url=${targets[$i]#*|}
    out="$tmp/wrk/$i.$round"
    wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency "$url" >"$out"
    echo "  round $round: $name: $(grep Requests/sec "$out" | tr -s ' ')" >&2
  done
done
load_end=$(cat /proc/loadavg)
for i in "${!targets[@]}"; do echo "${targets[$i]%%|*}" >"$tmp/wrk/$i.name"; done

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
  echo "bench: memory (10,000 idle connections; growth to $GROWTH requests; allocations)" >&2
  stop_pid "$wg_pid" 2>/dev/null || true
  start_wasmgate "$tmp/wasmgate-idle.log"
  python3 bench/memory.py idle --pid "$wg_pid" --port $WG_PORT >"$tmp/idle.json"
  stop_pid "$wg_pid"
  start_wasmgate "$tmp/wasmgate-growth.log"
  python3 bench/memory.py growth --pid "$wg_pid" --port $WG_PORT --n "$GROWTH" >"$tmp/growth.json"
  python3 bench/memory.py allocs --pid "$wg_pid" --port $WG_PORT >"$tmp/allocs.json"
  stop_pid "$wg_pid"
fi

# --- report ------------------------------------------------------------------------------------
out=/dev/null
[ "$write_docs" = 1 ] && out="$root/docs/BENCHMARKS.md"
python3 bench/report.py --dir "$tmp" --rounds "$ROUNDS" --duration "$DURATION" \
  --connections $CONNECTIONS --threads $THREADS --workers $WORKERS \
  --load-start "$load_start" --load-end "$load_end" --command "bench/run.sh $*" --out "$out"
[ "$write_docs" = 1 ] && echo "bench: wrote docs/BENCHMARKS.md" >&2
exit 0
