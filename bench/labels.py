#!/usr/bin/env python3
"""Metric-label cardinality (issue 20, item 3): what N distinct outbound hosts do to /metrics.

Serves plugins/fetch (allowed only http://127.0.0.1:<a closed port>) with the given wasmgate
binary, sends GET /fetch?url=http://h<i>.labels.test/ for i in 0..N (each a distinct host the
allow-list refuses: no lookup, no connection), and prints one JSON object: the size of /metrics
in bytes, its number of series (sample lines), and the server's RSS (VmRSS) before and after,
after one warm-up call. With a label per guest-chosen host the series grow with N; with the
allow-list entry as the label they do not.

Usage: bench/labels.py [--wasmgate target/debug/wasmgate] [--n 50000] [--clients 4]
Run it against two builds (e.g. a binary of the previous commit and of this one) to compare.
Traffic goes to 127.0.0.1 only.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return body


def scrape(port):
    text = get(port, "/metrics").decode()
    series = [l for l in text.splitlines() if l and not l.startswith("#")]
    return len(text.encode()), len(series)


def push(port, indices):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for n, i in enumerate(indices):
        if n and n % 5000 == 0:  # well under max_requests_per_connection
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/fetch?url=http://h{i}.labels.test/")
        resp = conn.getresponse()
        resp.read()
        if resp.status != 502:
            raise RuntimeError(f"h{i}: {resp.status}")
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wasmgate", default=os.path.join(ROOT, "target/debug/wasmgate"))
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    wasm = os.path.join(ROOT, "plugins/target/wasm32-wasip1/release/fetch.wasm")
    if not os.path.exists(wasm):
        sys.exit("bench/labels.py: build plugins/fetch first (cd plugins && cargo build --release -p fetch)")
    port, closed = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="wasmgate-labels.") as tmp:
        config = os.path.join(tmp, "wasmgate.toml")
        with open(config, "w") as f:
            f.write(
                f'[server]\nlisten = "127.0.0.1:{port}"\n\n'
                f'[plugins.fetch]\nwasm = "{wasm}"\n'
                f'allowed_outbound_hosts = ["http://127.0.0.1:{closed}"]\n\n'
                '[[routes]]\nmethod = "GET"\npath = "/fetch"\nplugin = "fetch"\n'
            )
        server = subprocess.Popen(
            [args.wasmgate, "serve", "--config", config, "--log-level", "error"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                try:
                    get(port, "/health")
                    break
                except OSError:
                    time.sleep(0.05)
            push(port, [-1])
            scrape(port)
            size0, series0 = scrape(port)
            rss0 = rss_bytes(server.pid)
            started = time.time()
            threads = [
                threading.Thread(target=push, args=(port, range(c, args.n, args.clients)))
                for c in range(args.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.time() - started
            size1, series1 = scrape(port)
            rss1 = rss_bytes(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(
        json.dumps(
            {
                "wasmgate": args.wasmgate,
                "distinct_hosts": args.n,
                "seconds": round(took, 1),
                "metrics_bytes": [size0, size1],
                "series": [series0, series1],
                "rss_bytes": [rss0, rss1],
                "rss_delta_mib": round((rss1 - rss0) / 1048576, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
