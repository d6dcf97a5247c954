#!/usr/bin/env python3
"""Closed-loop clients for bench/saturation.sh, against 127.0.0.1 only.

  saturation_clients.py PORT PATH CLIENTS REQUESTS [PATH CLIENTS REQUESTS ...]

For each (PATH, CLIENTS, REQUESTS) group, CLIENTS threads share REQUESTS GET requests to PATH,
each thread on its own keep-alive connection (a new one after a close). All groups run at once.
Prints one line per group: the path, then `STATUS x COUNT (kind)` for every status seen, the
error body's `error` kind naming why (trap, quarantined, overloaded, ...). Never judges: the
script that runs it reads the counts.
"""
import http.client
import json
import sys
import threading
from collections import Counter


def run_group(port, path, clients, requests, out):
    left = [requests]
    lock = threading.Lock()

    def take():
        with lock:
            if left[0] == 0:
                return False
            left[0] -= 1
            return True

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while take():
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                kind = ""
                if resp.status >= 400:
                    try:
                        kind = json.loads(body).get("error", "")
                    except ValueError:
                        kind = "?"
                key = (resp.status, kind)
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                key = ("io-error", type(e).__name__)
                conn.close()
            with lock:
                out[key] += 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    return threads


def main():
    port = int(sys.argv[1])
    groups = sys.argv[2:]
    if not groups or len(groups) % 3:
        sys.exit(__doc__)
    results, threads = [], []
    for i in range(0, len(groups), 3):
        path, clients, requests = groups[i], int(groups[i + 1]), int(groups[i + 2])
        out = Counter()
        results.append((path, out))
        threads += run_group(port, path, clients, requests, out)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for path, out in results:
        parts = [
            f"{status} x {n}" + (f" ({kind})" if kind else "")
            for (status, kind), n in sorted(out.items(), key=lambda kv: str(kv[0]))
        ]
        print(f"  {path}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
