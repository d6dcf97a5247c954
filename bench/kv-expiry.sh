#!/usr/bin/env bash
# Expiry that keeps up (issue 20, item 5): how many expired entries a store still keeps after a
# steady TTL workload, on SQLite and on Redis.
# bench/kv-expiry.sh [WRITES] [RATE] [TTL_MS]
#
# Writes WRITES (default 2000) distinct keys, RATE (default 200) a second, each with a TTL of
# TTL_MS (default 1000), through the store API (crates/server/src/kv/expiry_bench.rs, an ignored
# test this script runs), once on a fresh SQLite file (sync = "full") and once on a redis-server
# this script starts on a free loopback port (in memory) and stops at the end. Then counts what
# each backend keeps:
#   sqlite  rows in the table, of which expired (expires_at <= now) and live
#   redis   members of the index sorted set, value keys (Redis expires those itself), and members
#           of the expiry sorted set (absent before issue 20)
# With steady writes and no reclaiming, the expired entries kept grow with every write; with it,
# they stay a handful. The periodic sweep of the upkeep task (which reclaims what is left when the
# writes stop) is not part of this workload: kv::contract tests it.
#
# Needs cargo, python3, redis-server and redis-cli. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
WRITES=${1:-2000} RATE=${2:-200} TTL_MS=${3:-1000}
for tool in cargo python3 redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "bench/kv-expiry.sh: needs $tool" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/wasmgate-kv-expiry.XXXXXX)
redis_pid=
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 100); do
  redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done

echo "bench: building the workload (cargo test --no-run)" >&2
cargo test -q -p wasmgate-server --lib --no-run 2>/dev/null
workload() { # backend
  KV_BENCH_BACKEND=$1 KV_BENCH_PATH="$tmp/bench.sqlite" \
  KV_BENCH_REDIS_URL="redis://127.0.0.1:$port/0" KV_BENCH_PREFIX="bench:" \
  KV_BENCH_WRITES=$WRITES KV_BENCH_RATE=$RATE KV_BENCH_TTL_MS=$TTL_MS \
    cargo test -q -p wasmgate-server --lib kv::expiry_bench::expiry_workload -- \
      --ignored --exact --nocapture 2>/dev/null | grep '^wrote'
}

echo "workload: $WRITES distinct keys, $RATE/s, ttl ${TTL_MS} ms"
echo "sqlite: $(workload sqlite)"
python3 - "$tmp/bench.sqlite" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
total, = db.execute("SELECT count(*) FROM kv").fetchone()
expired, = db.execute("SELECT count(*) FROM kv WHERE expires_at <= ?", (now,)).fetchone()
print(f"sqlite: rows {total}, expired {expired}, live {total - expired}")
PY
echo "redis:  $(workload redis)"
r() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
index=$(r zcard bench:index)
values=$(r --scan --pattern 'bench:v:*' | wc -l)
expiry=$(r zcard bench:expiry)
echo "redis:  index members $index, of expired keys $((index - values)), live values $values, expiry-set members $expiry"
