#!/usr/bin/env python3
"""Hostile clients for bench/soak.sh, against 127.0.0.1 only, for a bounded time.

Runs, in threads, until --seconds pass:
  slowloris   connections that trickle a request head one byte at a time (the server's header
              timeout must reclaim them);
  slow-body   requests whose body trickles (the body stall timeout must reclaim them);
  reset-req   clients that reset (RST) the connection in the middle of sending a request;
  reset-resp  clients that ask for a large echoed response and reset after its first bytes.
Prints one summary line of what each kind did. Never exits non-zero for what the server did: the
server's health is judged by bench/soak.sh from /metrics, /proc and wrk.
"""
import argparse
import random
import socket
import struct
import threading
import time

counts = {}
lock = threading.Lock()


def count(kind, key):
    with lock:
        counts.setdefault(kind, {}).setdefault(key, 0)
        counts[kind][key] += 1


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset(s):
    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def slowloris(port, until):
    # Start at a random moment, so the connections do not all time out (and reconnect) together.
    time.sleep(random.uniform(0, 5))
    while time.time() < until:
        try:
            s = connect(port)
            s.sendall(b"GET /ok HTTP/1.1\r\nHost: soak\r\nX-Slow: ")
            while time.time() < until:
                s.sendall(b"a")
                time.sleep(random.uniform(0.3, 0.7))
        except OSError:
            count("slowloris", "reclaimed")
        finally:
            try:
                s.close()
            except Exception:
                pass


def slow_body(port, until):
    while time.time() < until:
        try:
            s = connect(port)
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 1000\r\n\r\n")
            while time.time() < until:
                s.sendall(b"b")
                time.sleep(0.2)
            count("slow-body", "held to the end")
        except OSError:
            count("slow-body", "reclaimed")
        finally:
            try:
                s.close()
            except Exception:
                pass


def reset_request(port, until):
    head = b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 4096\r\n\r\n" + b"r" * 1000
    n = 0
    while time.time() < until:
        try:
            s = connect(port)
            cut = [10, 30, len(head)][n % 3]  # mid request line, mid headers, mid body
            s.sendall(head[:cut])
            reset(s)
            count("reset-req", "done")
        except OSError:
            count("reset-req", "error")
        n += 1
        time.sleep(0.02)


def reset_response(port, until):
    body = b"z" * (512 * 1024)
    req = b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    while time.time() < until:
        try:
            s = connect(port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(req)
            s.recv(1024)
            reset(s)
            count("reset-resp", "done")
        except OSError:
            count("reset-resp", "error")
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--slowloris", type=int, default=50)
    args = ap.parse_args()
    until = time.time() + args.seconds
    threads = []
    for _ in range(args.slowloris):
        threads.append(threading.Thread(target=slowloris, args=(args.port, until)))
    for _ in range(5):
        threads.append(threading.Thread(target=slow_body, args=(args.port, until)))
    for _ in range(2):
        threads.append(threading.Thread(target=reset_request, args=(args.port, until)))
        threads.append(threading.Thread(target=reset_response, args=(args.port, until)))
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, until - time.time()) + 15)
    print("hostile clients:", ", ".join(
        f"{kind} {sum(v.values())} ({', '.join(f'{k} {n}' for k, n in sorted(v.items()))})"
        for kind, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
