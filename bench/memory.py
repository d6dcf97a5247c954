#!/usr/bin/env python3
"""Memory benchmark for bench/run.sh: RSS of a running wasmgate under two workloads.

  idle   open N keep-alive connections, each after one answered GET /health, hold them all,
         and read the server's RSS (VmRSS of its pid): the total, and per connection above the
         RSS before they were opened;
  growth drive mixed GET /health + GET /hello/x with wrk (bench/count.lua) to 10,000 requests,
         read RSS, go on to 1,000,000, read RSS again: the difference is the growth; with
         --path P, GET P alone (e.g. /warm/x, the hello plugin with instance reuse);
  allocs heap allocations per request on each route (/health and /hello/x, or --paths P,Q,...),
         from the server's own counting allocator (wasmgate_allocations_total on /metrics) across
         a run of wrk on that route alone.

Usage: memory.py idle|growth|allocs --pid PID --port PORT [--n N] [--path P] [--paths P,Q]
prints one JSON object.
Traffic goes to 127.0.0.1 only. Needs wrk for growth and allocs.
"""
import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def requests_served(port):
    return metric_sum(metrics(port), "wasmgate_requests_total")


def drive(port, total, path=None, connections=64, threads=2):
    """Sends `total` requests with wrk (2 threads x total/2), returns the seconds it took."""
    per_thread = total // threads
    env = dict(os.environ)
    if path:
        env["BENCH_PATH"] = path
    start_count = requests_served(port)
    start = time.time()
    wrk = subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", "-d3600s", "-s", os.path.join(HERE, "count.lua"),
         f"http://127.0.0.1:{port}", "--", str(per_thread)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        # wrk's threads stop at their limit; wrk itself waits for -d, so end it once the server
        # has answered them all (it counts each request once its response is written).
        while requests_served(port) - start_count < per_thread * threads - connections:
            if wrk.poll() is not None:
                raise RuntimeError("wrk exited early")
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        wrk.send_signal(signal.SIGINT)
        try:
            wrk.wait(timeout=10)
        except subprocess.TimeoutExpired:
            wrk.kill()
    return time.time() - start


def idle(pid, port, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    drive(port, 10_000)  # warm the server up as in `growth`, so the delta is the connections
    before = rss_bytes(pid)
    conns = []
    request = b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            got = b""
            while b"\r\n\r\n" not in got or not got.endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("server closed a connection")
                got += chunk
            conns.append(s)
        time.sleep(1.0)
        live = metric_sum(metrics(port), "wasmgate_connections_active")
        after = rss_bytes(pid)
    finally:
        for s in conns:
            s.close()
    return {
        "connections": n,
        "server_live_connections": live,
        "rss_before": before,
        "rss_with_idle": after,
        "bytes_per_connection": (after - before) / n,
    }


def growth(pid, port, n, path=None):
    drive(port, 10_000, path)
    at_10k = rss_bytes(pid)
    served_10k = requests_served(port)
    seconds = drive(port, n - 10_000, path)
    at_n = rss_bytes(pid)
    return {
        "path": path or "/health + /hello/x",
        "requests_first": served_10k,
        "rss_after_first": at_10k,
        "requests_total": requests_served(port),
        "rss_after_total": at_n,
        "growth_bytes": at_n - at_10k,
        "seconds": seconds,
    }


def allocs(pid, port, n, paths=("/health", "/hello/x")):
    out = {}
    for path in paths:
        drive(port, 10_000, path)  # warm: caches, pool slots, buffers
        text = metrics(port)
        a0, r0 = metric_sum(text, "wasmgate_allocations_total"), requests_served(port)
        b0 = metric_sum(text, "wasmgate_allocated_bytes_total")
        drive(port, n, path)
        text = metrics(port)
        a1, r1 = metric_sum(text, "wasmgate_allocations_total"), requests_served(port)
        b1 = metric_sum(text, "wasmgate_allocated_bytes_total")
        # The /metrics scrape itself allocates; with n >= 100k requests it is noise.
        out[path] = {"requests": r1 - r0, "allocs_per_request": (a1 - a0) / (r1 - r0),
                     "bytes_per_request": (b1 - b0) / (r1 - r0)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["idle", "growth", "allocs"])
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int)
    ap.add_argument("--path", help="growth: this path alone instead of /health + /hello/x")
    ap.add_argument("--paths", help="allocs: comma-separated paths instead of /health,/hello/x")
    a = ap.parse_args()
    default = {"idle": 10_000, "growth": 1_000_000, "allocs": 100_000}[a.what]
    n = a.n or default
    if a.what == "idle":
        result = idle(a.pid, a.port, n)
    elif a.what == "growth":
        result = growth(a.pid, a.port, n, a.path)
    else:
        result = allocs(a.pid, a.port, n, *([a.paths.split(",")] if a.paths else []))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
