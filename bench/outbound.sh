#!/usr/bin/env bash
# Outbound HTTP (issue 16): a plugin calling a native upstream, against nginx proxying to it.
# bench/outbound.sh [--write] [ROUNDS] [SECONDS] [CONNECTIONS]
#
#   upstream  nginx answering `return 200` with a 20-byte text body, on a free loopback port
#   A         wrk -> wasmgate -> plugins/fetch (GET /fetch?url=<upstream>) -> upstream: a fresh
#             wasm instance per request, one outbound GET through the host's pooled client
#   B         wrk -> nginx `proxy_pass` (HTTP/1.1 keep-alive pool to the upstream) -> upstream
#
# Same run, same connections (default 64), same duration (default 5 s), ROUNDS (default 3)
# alternating rounds, wrk -t2 --latency, keep-alive. wasmgate and the proxy nginx get 2 workers
# each, the upstream nginx 2; the plugin's `max_outbound_concurrency` and nginx's upstream
# `keepalive` are both CONNECTIONS, so neither side queues on a smaller pool. Prints the median
# req/s, p50 and p99 of A and B and the median of the per-round ratios A/B. With --write, also
# replaces the "Outbound HTTP" section of docs/BENCHMARKS.md (bench/run.sh keeps it when it
# rewrites the file). Everything runs on this machine and on 127.0.0.1: read the ratio.
#
# Needs cargo, curl, python3, wrk and nginx (apt-get install wrk nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
write=0
if [ "${1:-}" = --write ]; then write=1; shift; fi
ROUNDS=${1:-3} DURATION=${2:-5} CONNECTIONS=${3:-64}
THREADS=2 WORKERS=2
for tool in wrk curl python3 cargo; do
  command -v "$tool" >/dev/null || { echo "bench/outbound.sh: needs $tool" >&2; exit 2; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench/outbound.sh: needs nginx (apt-get install nginx-light)" >&2; exit 2; }

echo "bench: building (release)" >&2
cargo build --release -p wasmgate --quiet
(cd plugins && cargo build --release -p fetch --quiet)

tmp=$(mktemp -d /tmp/wasmgate-outbound.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for f in "$tmp"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port) WG_PORT=$(free_port) PROXY_PORT=$(free_port)
wait_up() { # url
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; exit 1
}

# nginx, one instance per role: its own prefix, pid file and config in the temp dir.
start_nginx() { # name, server block
  mkdir -p "$tmp/$1"
  cat >"$tmp/$1.conf" <<NGINX
worker_processes $WORKERS;
daemon on;
pid $tmp/$1.pid;
error_log $tmp/$1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path $tmp/$1/body;
    proxy_temp_path $tmp/$1/proxy;
    fastcgi_temp_path $tmp/$1/fastcgi;
    uwsgi_temp_path $tmp/$1/uwsgi;
    scgi_temp_path $tmp/$1/scgi;
$2
}
NGINX
  "$NGINX" -p "$tmp/$1" -c "$tmp/$1.conf" -e "$tmp/$1/error.log"
}
start_nginx upstream "    server {
        listen 127.0.0.1:$UP_PORT;
        location / { default_type text/plain; return 200 'hello from upstream\n'; }
    }"
start_nginx proxy "    upstream origin {
        server 127.0.0.1:$UP_PORT;
        keepalive $CONNECTIONS;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"

cat >"$tmp/wasmgate.toml" <<EOF
[server]
listen = "127.0.0.1:$WG_PORT"
[runtime]
cache_dir = "$root/.wasmgate/cache"
[plugins.fetch]
wasm = "$root/plugins/target/wasm32-wasip1/release/fetch.wasm"
allowed_outbound_hosts = ["http://127.0.0.1:$UP_PORT"]
max_outbound_concurrency = $CONNECTIONS
[[routes]]
method = "GET"
path = "/fetch"
plugin = "fetch"
EOF
./target/release/wasmgate serve --config "$tmp/wasmgate.toml" --log-level warn >"$tmp/wasmgate.log" 2>&1 &
pids+=($!)

upstream="http://127.0.0.1:$UP_PORT/"
a_url="http://127.0.0.1:$WG_PORT/fetch?url=http%3A%2F%2F127.0.0.1%3A$UP_PORT%2F"
b_url="http://127.0.0.1:$PROXY_PORT/"
wait_up "$upstream"
wait_up "$b_url"
wait_up "$a_url"
# The same upstream answer both ways before anything is measured.
curl -fsS "$a_url" | grep -q '"status":200' || { echo "bench: A answers wrongly: $(curl -sS "$a_url")" >&2; exit 1; }
curl -fsS "$b_url" | grep -q 'hello from upstream' || { echo "bench: B answers wrongly" >&2; exit 1; }

names=("A wasmgate -> plugins/fetch -> upstream" "B nginx proxy_pass -> upstream")
urls=("$a_url" "$b_url")
echo "bench: $ROUNDS rounds x 2 targets x ${DURATION}s, $CONNECTIONS connections" >&2
load_start=$(cut -d' ' -f1 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  for k in 0 1; do
    i=$(( (k + round - 1) % 2 ))
    wrk -t$THREADS -c"$CONNECTIONS" -d"${DURATION}s" --latency "${urls[$i]}" >"$tmp/wrk.$i.$round"
    echo "  round $round: ${names[$i]}: $(grep Requests/sec "$tmp/wrk.$i.$round" | tr -s ' ')" >&2
  done
done
load_end=$(cut -d' ' -f1 /proc/loadavg)

command_line="bench/outbound.sh"
[ "$write" = 1 ] && command_line+=" --write"
command_line+=" $ROUNDS $DURATION $CONNECTIONS"
python3 - "$tmp" "$ROUNDS" "$DURATION" "$CONNECTIONS" "$load_start" "$load_end" "$command_line" "$write" "$root/docs/BENCHMARKS.md" <<'PY'
import statistics, subprocess, sys, datetime, textwrap
sys.path.insert(0, "bench")
from common import wrk, write_section
tmp, rounds, duration, conns, load_start, load_end, command, write, doc = sys.argv[1:]
rounds = int(rounds)

def run(i, r):
    result = wrk(f"{tmp}/wrk.{i}.{r}", f"{['A', 'B'][i]} round {r}")
    return (result["rps"], result["p50"], result["p99"])

runs = [[run(i, r) for r in range(1, rounds + 1)] for i in (0, 1)]
med = [tuple(statistics.median(x[k] for x in runs[i]) for k in range(3)) for i in (0, 1)]
ratio = statistics.median(a[0] / b[0] for a, b in zip(runs[0], runs[1]))
names = ["A: wrk -> wasmgate -> plugins/fetch -> upstream", "B: wrk -> nginx proxy_pass -> upstream"]
rows = []
for i in (0, 1):
    per_round = ", ".join(f"{x[0]:,.0f}" for x in runs[i])
    r = f"{ratio:.2f}x" if i == 0 else "1.00x"
    rows.append(f"| {names[i]} | {med[i][0]:,.0f} | {med[i][1]:.2f} ms | {med[i][2]:.2f} ms | {r} | {per_round} |")
table = "\n".join(["| path | req/s | p50 | p99 | ratio vs B | req/s per round |",
                   "|---|---:|---:|---:|---:|---|"] + rows)
print(table)
print(f"A/B: {ratio:.2f}x req/s; p99 {med[0][2]:.2f} ms vs {med[1][2]:.2f} ms")
if write != "1":
    sys.exit(0)
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
commit = sh("git rev-parse --short HEAD") + (" (with local changes)" if sh("git status --porcelain --untracked-files=no") else "")
about = textwrap.fill(
    f"A plugin calling a native upstream (issue 16), against nginx proxying to the same "
    f"upstream, in one run of `{command}` ({now}, commit {commit}; load average {load_start} "
    f"→ {load_end}, 1-minute: other work on the machine shows here). The upstream is nginx "
    f"answering `return 200` with a 20-byte text body on a loopback port. **A:** `wrk → "
    f"wasmgate → plugins/fetch → upstream`: each request runs the fetch plugin in a fresh wasm "
    f"instance, which makes one outbound `GET` through the host (allow-list check, guarded "
    f"resolver, the plugin's pooled keep-alive client) and answers the upstream's status and "
    f"body as JSON. **B:** `wrk → nginx proxy_pass → upstream`, with an HTTP/1.1 keep-alive "
    f"pool to the upstream. `wrk -t2 -c{conns} -d{duration}s --latency`, {rounds} alternating "
    f"rounds; req/s, p50 and p99 are medians over the rounds, the ratio the median of the "
    f"per-round ratios. wasmgate and the proxy nginx have 2 workers each, and the same "
    f"connection budget to the upstream (`max_outbound_concurrency = {conns}`, `keepalive "
    f"{conns}`); everything, wrk included, shares the 2 CPUs: read the ratio.",
    width=96, break_long_words=False, break_on_hyphens=False)
write_section(doc, "bench/outbound.sh", f"""## Outbound HTTP

{about}

{table}""")
print("bench: wrote the Outbound HTTP section of docs/BENCHMARKS.md", file=sys.stderr)
PY
