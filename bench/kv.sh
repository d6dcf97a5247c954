#!/usr/bin/env bash
# Key-value stores (issue 13): what a store costs a plugin route, on SQLite and on Redis.
# bench/kv.sh [--write] [ROUNDS] [SECONDS] [CONNECTIONS]
#
#   hello         GET /hello/x: the hello plugin, no store (the baseline: a fresh wasm instance)
#   sqlite full   GET /l/CODE on plugins/links with its store on SQLite (the default: a file in
#                 WAL mode, sync = "full"): one kv get + one kv incr (a write) per request
#   sqlite normal the same with sync = "normal" (the trade docs/decisions/0005 explains)
#   redis         the same with the store on a redis-server this script starts on a free
#                 loopback port (in memory: --save "" --appendonly no) and stops at the end
#
# One release wasmgate per store (each also serves /hello/x; the baseline runs on the first),
# wrk -t2 --latency, keep-alive, CONNECTIONS (default 64) connections, ROUNDS (default 3)
# alternating rounds of SECONDS (default 10; docs/BENCHMARKS.md has `--write 5 10`: a noisy shared
# machine wants more rounds). wrk does not follow redirects: every 302 is one request, one get and
# one counted click. Prints, as medians over the rounds: req/s, p50, p99, the server CPU per
# request (user + system from /proc, wasmgate's and for Redis redis-server's too), the ratio to
# /hello/x, and the derived cost of one store operation:
#   per op (throughput) = (1/rps_store - 1/rps_hello) / 2 ops
#   per op (CPU)        = (cpu_store - cpu_hello) / 2 ops
# and checks from /metrics that every increment succeeded (a timed-out increment still answers 302:
# the plugin redirects anyway). With --write, also replaces the "Key-value stores" section of
# docs/BENCHMARKS.md (bench/run.sh keeps it when it rewrites the file). Everything runs on this
# machine and on 127.0.0.1, wrk included: read the ratios.
#
# Needs cargo, curl, python3, wrk and redis-server (apt-get install wrk redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
write=0
if [ "${1:-}" = --write ]; then write=1; shift; fi
ROUNDS=${1:-3} DURATION=${2:-10} CONNECTIONS=${3:-64}
THREADS=2
for tool in wrk curl python3 cargo redis-server; do
  command -v "$tool" >/dev/null || { echo "bench/kv.sh: needs $tool (apt-get install wrk redis-server)" >&2; exit 2; }
done

echo "bench: building (release)" >&2
cargo build --release -p wasmgate --quiet
./target/release/wasmgate build --config "$root/wasmgate.toml" >/dev/null

tmp=$(mktemp -d /tmp/wasmgate-kv.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { # url
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; exit 1
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
tck=$(getconf CLK_TCK)

# redis-server, in memory, on a free loopback port.
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  >"$tmp/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
python3 - "$REDIS_PORT" <<'PY' || { echo "bench: redis-server did not start" >&2; cat "$tmp/redis.log" >&2; exit 1; }
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
        s.sendall(b"PING\r\n")
        if s.recv(16).startswith(b"+PONG"):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
PY

# One wasmgate per store: name, [stores.links] keys.
stores=(sqlite-full sqlite-normal redis)
store_keys=(
  "path = \"$tmp/links-full.sqlite\""
  "path = \"$tmp/links-normal.sqlite\"
sync = \"normal\""
  "backend = \"redis\"
url = \"redis://127.0.0.1:$REDIS_PORT/0\""
)
ports=() wg_pids=()
for i in 0 1 2; do
  port=$(free_port)
  cat >"$tmp/${stores[$i]}.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
[runtime]
cache_dir = "$root/.wasmgate/cache"

[stores.links]
${store_keys[$i]}

[plugins.hello]
wasm = "$root/plugins/target/wasm32-wasip1/release/hello.wasm"

[plugins.links]
wasm = "$root/plugins/target/wasm32-wasip1/release/links.wasm"
kv = ["links"]
allowed_outbound_hosts = ["https://*.wikipedia.org"]

[plugins.links.vars]

[[routes]]
method = "GET"
path = "/hello/:name"
plugin = "hello"

[[routes]]
method = "POST"
path = "/links"
plugin = "links"

[[routes]]
method = "GET"
path = "/l/:code"
plugin = "links"

[[routes]]
method = "GET"
path = "/links/:code/stats"
plugin = "links"
EOF
  ./target/release/wasmgate serve --config "$tmp/${stores[$i]}.toml" --log-level warn \
    >"$tmp/${stores[$i]}.log" 2>&1 &
  wg_pids+=($!)
  pids+=($!)
  ports+=("$port")
done

# One link per store (its title fetch is refused by the host: example.org is not allowed), and
# the answers checked before anything is measured.
for i in 0 1 2; do
  base="http://127.0.0.1:${ports[$i]}"
  wait_up "$base/ready"
  created=$(curl -sS -o /dev/null -w '%{http_code}' "$base/links" \
    -H 'content-type: application/json' -d '{"url": "https://example.org/bench", "code": "bench"}')
  [ "$created" = 201 ] || { echo "bench: ${stores[$i]}: POST /links answered $created" >&2; cat "$tmp/${stores[$i]}.log" >&2; exit 1; }
  followed=$(curl -sS -o /dev/null -w '%{http_code}' "$base/l/bench")
  [ "$followed" = 302 ] || { echo "bench: ${stores[$i]}: GET /l/bench answered $followed" >&2; exit 1; }
done
curl -fsS "http://127.0.0.1:${ports[0]}/hello/x" | grep -q '"message":"Hello, x!"' \
  || { echo "bench: /hello/x answers wrongly" >&2; exit 1; }

names=("hello /hello/x (no store)" "links /l/CODE, SQLite sync=full" "links /l/CODE, SQLite sync=normal" "links /l/CODE, Redis")
urls=("http://127.0.0.1:${ports[0]}/hello/x" "http://127.0.0.1:${ports[0]}/l/bench"
      "http://127.0.0.1:${ports[1]}/l/bench" "http://127.0.0.1:${ports[2]}/l/bench")
servers=("${wg_pids[0]}" "${wg_pids[0]}" "${wg_pids[1]}" "${wg_pids[2]}")
echo "bench: $ROUNDS rounds x ${#urls[@]} targets x ${DURATION}s, $CONNECTIONS connections" >&2
load_start=$(cut -d' ' -f1 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  for k in 0 1 2 3; do
    i=$(( (k + round - 1) % 4 ))
    before=$(cpu "${servers[$i]}") redis_before=$(cpu "$redis_pid")
    wrk -t$THREADS -c"$CONNECTIONS" -d"${DURATION}s" --latency "${urls[$i]}" >"$tmp/wrk.$i.$round"
    after=$(cpu "${servers[$i]}") redis_after=$(cpu "$redis_pid")
    echo "$before $after $redis_before $redis_after $tck" >"$tmp/cpu.$i.$round"
    echo "  round $round: ${names[$i]}: $(grep Requests/sec "$tmp/wrk.$i.$round" | tr -s ' ')" >&2
  done
done
load_end=$(cut -d' ' -f1 /proc/loadavg)
sleep 1 # the requests in flight when wrk stopped finish (and count their click)
for i in 0 1 2; do
  curl -fsS "http://127.0.0.1:${ports[$i]}/metrics" >"$tmp/metrics.$i"
  curl -fsS "http://127.0.0.1:${ports[$i]}/links/bench/stats" >"$tmp/stats.$i"
done

command_line="bench/kv.sh"
[ "$write" = 1 ] && command_line+=" --write"
command_line+=" $ROUNDS $DURATION $CONNECTIONS"
python3 - "$tmp" "$ROUNDS" "$DURATION" "$CONNECTIONS" "$load_start" "$load_end" "$command_line" "$write" "$root/docs/BENCHMARKS.md" <<'PY'
import datetime, json, re, statistics, subprocess, sys, textwrap
sys.path.insert(0, "bench")
from common import wrk, write_section
wrap = lambda t: textwrap.fill(" ".join(t.split()), width=100, break_long_words=False, break_on_hyphens=False)
bullet = lambda t: textwrap.fill(" ".join(t.split()), width=100, initial_indent="- ", subsequent_indent="  ",
                                  break_long_words=False, break_on_hyphens=False)
tmp, rounds, duration, conns, load_start, load_end, command, write, doc = sys.argv[1:]
rounds = int(rounds)
names = ["hello `/hello/x` (no store)", "links `/l/CODE`, SQLite `sync = \"full\"` (default)",
         "links `/l/CODE`, SQLite `sync = \"normal\"`", "links `/l/CODE`, Redis"]

def run(i, r):
    result = wrk(f"{tmp}/wrk.{i}.{r}", f"{names[i]} round {r}")
    requests = result["requests"]
    before, after, rb, ra, tck = (float(x) for x in open(f"{tmp}/cpu.{i}.{r}").read().split())
    return {**result,
            "cpu": (after - before) / tck / requests * 1e6,
            "redis_cpu": (ra - rb) / tck / requests * 1e6}

runs = [[run(i, r) for r in range(1, rounds + 1)] for i in range(4)]
med = [{k: statistics.median(x[k] for x in runs[i]) for k in runs[i][0]} for i in range(4)]
ratio = [statistics.median(a["rps"] / h["rps"] for a, h in zip(runs[i], runs[0])) for i in range(4)]

# Every increment done: /metrics of each store's process, and the clicks the plugin counted.
def sample(text, name):
    m = re.search("^" + re.escape(name) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0
checks = []
for s, i in ((0, 1), (1, 2), (2, 3)):
    metrics = open(f"{tmp}/metrics.{s}").read()
    incr = {o: sample(metrics, f'wasmgate_kv_operations_total{{store="links",op="incr",outcome="{o}"}}')
            for o in ("ok", "timeout", "unavailable")}
    clicks = json.load(open(f"{tmp}/stats.{s}"))["clicks"]
    sent = sum(x["requests"] for x in runs[i])
    checks.append((names[i], incr, clicks, sent))
    if incr["timeout"] or incr["unavailable"]:
        print(f"bench: warning: {names[i]}: increments that failed: {incr}", file=sys.stderr)

rows = []
for i in range(4):
    m = med[i]
    cpu = f"{m['cpu']:.1f} µs" + (f" + {m['redis_cpu']:.1f} µs redis-server" if i == 3 else "")
    if i == 0:
        per_op = "—"
    else:
        t = (1 / m["rps"] - 1 / med[0]["rps"]) / 2 * 1e6
        c = (m["cpu"] + (m["redis_cpu"] if i == 3 else 0) - med[0]["cpu"]) / 2
        per_op = f"{t:.1f} µs / {c:.1f} µs"
    per_round = ", ".join(f"{x['rps']:,.0f}" for x in runs[i])
    rows.append(f"| {names[i]} | {m['rps']:,.0f} | {m['p50']:.2f} ms | {m['p99']:.2f} ms | {ratio[i]:.2f}x | {cpu} | {per_op} | {per_round} |")
table = "\n".join(["| target | req/s | p50 | p99 | vs /hello/x | server CPU per request | per store op: throughput / CPU | req/s per round |",
                   "|---|---:|---:|---:|---:|---:|---:|---|"] + rows)
counted = "\n".join(f"- {n}: {int(c):,} clicks counted for {s:,} requests wrk completed; increments {', '.join(f'{k} {int(v):,}' for k, v in incr.items())}"
                    for n, incr, c, s in checks)
counted_md = "\n".join(bullet(line[2:]) for line in counted.split("\n"))
print(table)
print()
print(counted)
if write != "1":
    sys.exit(0)
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
commit = sh("git rev-parse --short HEAD") + (" (with local changes)" if sh("git status --porcelain --untracked-files=no") else "")
intro = wrap(f"""What a store costs a plugin route (issue 13), in one run: `{command}` ({now}, commit
{commit}, load average {load_start} → {load_end}). `GET /l/CODE` runs plugins/links in a fresh
wasm instance, which makes one `kv_get` (the link) and one `kv_incr` (its click count: a write)
and answers 302; wrk does not follow redirects. The baseline is `GET /hello/x` (the hello plugin,
no store). One release wasmgate per store, each with the default limits (`timeout = "500ms"`; a
pool of 4 SQLite connections); the SQLite files are on this machine's disk (virtio, ext4), Redis
is a local `redis-server` in memory. `wrk -t2 -c{conns} -d{duration}s --latency`, {rounds}
alternating rounds; req/s, p50, p99 and CPU are medians over the rounds, the ratio the median of
the per-round ratios. Server CPU per request is the user + system time of the serving process
(and of redis-server, for Redis) over the requests wrk completed. Per store operation:
throughput = (1/rps − 1/rps of /hello/x) / 2 operations; CPU = (CPU per request − that of
/hello/x) / 2. Everything, wrk included, shares the 2 CPUs of a machine other work also uses:
read the ratios.""")
notes = "\n".join(bullet(n) for n in [
    """SQLite `sync = "full"` (the default) flushes the WAL to the disk at every commit, one per
    click, under the file's one write lock: its throughput is the disk's flush rate, whatever the
    CPUs, and its CPU includes the kernel's work for each flush. `"normal"` flushes only at
    checkpoints: an acknowledged write survives a crash of the process but not necessarily of the
    machine ([decisions/0005-key-value-stores.md](decisions/0005-key-value-stores.md)).""",
    """Redis answers from memory over loopback: a round trip per operation, and its own CPU
    (counted above). Its durability is the server's configuration, here none.""",
])
checks_text = wrap("""Every click counted (the plugin's stats and `/metrics` after the rounds; the
requests in flight when wrk stops are answered, and counted, after it stops counting them):""")
write_section(doc, "bench/kv.sh", f"""## Key-value stores

{intro}

{table}

{notes}

{checks_text}

{counted_md}""")
print("bench: wrote the Key-value stores section of docs/BENCHMARKS.md", file=sys.stderr)
PY
