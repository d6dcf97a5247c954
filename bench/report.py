#!/usr/bin/env python3
"""Turns the raw outputs of bench/run.sh into tables: prints them, and writes docs/BENCHMARKS.md.

Inputs (in --dir): wrk/<i>.<round> + wrk/<i>.name (load), criterion.txt and parser.txt (micro),
idle.json, growth.json, allocs.json (memory; see memory.py). Any part may be missing (--no-micro,
--no-memory); its section then says so.
"""
import argparse
import datetime
import glob
import json
import os
import re
import statistics
import subprocess

HYPER = {"/health": "hyper /health", "/hello/:name": "hyper /hello/:name"}


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip() or \
            subprocess.run(cmd, shell=True, capture_output=True, text=True).stderr.strip()
    except OSError:
        return "?"


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def parse_wrk(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1))
    p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    return rps, p50, p99, (int(errors.group(1)) if errors else 0), (sock.group(1) if sock else "")


def load_table(d):
    rows = {}
    for name_file in sorted(glob.glob(os.path.join(d, "wrk", "*.name"))):
        i = os.path.basename(name_file).split(".")[0]
        name = open(name_file).read().strip()
        paths = sorted((p for p in glob.glob(os.path.join(d, "wrk", f"{i}.*"))
                        if not p.endswith(".name")), key=lambda p: int(p.rsplit(".", 1)[1]))
        runs = [parse_wrk(p) for p in paths]
        rows[name] = {
            "rps": statistics.median(r[0] for r in runs),
            "p50": statistics.median(r[1] for r in runs),
            "p99": statistics.median(r[2] for r in runs),
            "all_rps": [r[0] for r in runs],
            "errors": sum(r[3] for r in runs),
            "socket": "; ".join(r[4] for r in runs if r[4]),
        }
    return rows


def criterion(d):
    path = os.path.join(d, "criterion.txt")
    if not os.path.exists(path):
        return None
    out, name = {}, None
    for line in open(path):
        m = re.match(r"^(\S+?)\s*(time:\s+\[(.*)\])?\s*$", line.rstrip())
        if line.strip().startswith("time:"):
            m2 = re.search(r"\[(\S+ \S+) (\S+ \S+) (\S+ \S+)\]", line)
            if name and m2:
                out[name] = m2.group(2)
        elif m and not line.startswith(" ") and "/" in m.group(1):
            name = m.group(1)
            if m.group(2):
                m2 = re.search(r"\[(\S+ \S+) (\S+ \S+) (\S+ \S+)\]", line)
                out[name] = m2.group(2)
    return out


def lines(d, name, prefix):
    path = os.path.join(d, name)
    if not os.path.exists(path):
        return None
    return [l.rstrip() for l in open(path) if l.startswith(prefix)]


def jload(d, name):
    path = os.path.join(d, name)
    return json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else None


def mib(b):
    return f"{b / 2**20:.1f} MiB"


def to_us(text):
    v, unit = text.split()
    return float(v) * {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3}[unit]


def main():
    ap = argparse.ArgumentParser()
    for opt in ["dir", "rounds", "duration", "connections", "threads", "workers", "load-start",
                "load-end", "command", "out"]:
        ap.add_argument("--" + opt, required=True)
    a = ap.parse_args()
    d = a.dir
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    machine = [
        ("date", now),
        ("commit", sh("git rev-parse --short HEAD") + (" (with local changes)" if sh("git status --porcelain --untracked-files=no") else "")),
        ("CPU", f"{cpu}, {sh('nproc')} CPUs (nproc)"),
        ("memory", sh("free -g | awk '/Mem:/ {print $2 \" GiB\"}'")),
        ("kernel", sh("uname -sr")),
        ("rustc", sh("rustc --version")),
        ("wrk", sh("wrk -v 2>&1 | head -1")),
        ("nginx", sh("nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1")),
        ("load average (start → end of the load rounds)", f"{a.load_start.split()[0]} → {a.load_end.split()[0]} (1-minute; other work on the machine shows here)"),
    ]
    out = []
    p = out.append
    p("# Benchmarks")
    p("")
    p("The latest run of the benchmark suite (issue 5). **Reproduce with one command:**")
    p("`bench/run.sh` (about 10 minutes; `--quick` for a smoke run that leaves this file alone).")
    p("It installs `wrk` and `nginx` when missing (as root, through apt-get), builds everything in")
    p("release mode, runs the load rounds, the micro-benchmarks and the memory checks, prints the")
    p("tables and rewrites this file. How the figures were improved, the profiles behind them and")
    p("what is left: [decisions/0003-performance.md](decisions/0003-performance.md).")
    p("")
    p("Two smaller scripts check one change at a time: `bench/ab.sh OLD NEW [PATH]` runs two")
    p("wasmgate builds against each other in alternating wrk rounds and prints req/s and server CPU")
    p("per request; `bench/traps.sh` measures trapping guests under the backtrace settings")
    p("(docs/security.md, finding F5). Guest fairness: `bench/fairness.sh`; soak: `bench/soak.sh`;")
    p("outbound HTTP: `bench/outbound.sh`; key-value stores: `bench/kv.sh` (their sections are kept when")
    p("this file is rewritten).")
    p("")
    p("## Machine")
    p("")
    p("| | |")
    p("|---|---|")
    for k, v in machine:
        p(f"| {k} | {v} |")
    p("")
    p("The load generator runs on the same 2 CPUs as the server under test, so absolute numbers")
    p("say as much about wrk as about the server: **read the ratios**, each against the hyper")
    p("reference on the same path measured in the same run.")
    p("")
    rows = load_table(d)
    p("## Load")
    p("")
    p(f"`wrk -t{a.threads} -c{a.connections} -d{a.duration}s --latency` (keep-alive), {a.rounds} rounds;"
      " each round runs the three /health targets back to back, then the three /hello ones (which"
      " group goes first alternates; the order inside a group rotates). req/s, p50 and p99 are"
      " medians over the rounds; the ratio is the median over the rounds of req/s divided by the"
      " hyper reference's req/s on the same path in the same round. Every server has "
      f"{a.workers} worker threads (wasmgate and hyper: tokio workers; nginx: worker processes).")
    p("")
    p("| target | req/s | p50 | p99 | ratio vs hyper | req/s per round |")
    p("|---|---:|---:|---:|---:|---|")
    ratios = {}
    for name, r in rows.items():
        path = name.split(" ")[-1]
        ref = rows.get(HYPER.get(path, ""))
        # The median of per-round ratios: each pairs two measurements taken a few seconds apart.
        ratio = statistics.median(x / y for x, y in zip(r["all_rps"], ref["all_rps"])) \
            if ref else float("nan")
        ratios[name] = ratio
        rounds = ", ".join(f"{x:,.0f}" for x in r["all_rps"])
        flag = f" ({r['errors']} non-2xx)" if r["errors"] else ""
        p(f"| {name}{flag} | {r['rps']:,.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {ratio:.2f}x | {rounds} |")
    p("")
    p("- wasmgate wasm `/hello/:name` runs the hello plugin (a Rust guest) in a fresh wasm instance")
    p("  per request; hyper and nginx answer the same JSON natively.")
    p("- nginx answers from its config (`return 200`), a fixed body: it is the C ceiling, not a peer.")
    p("")
    crit = criterion(d)
    parser = lines(d, "parser.txt", "parser:")
    alloc = lines(d, "parser.txt", "alloc:")
    p("## Micro-benchmarks")
    p("")
    if crit is None:
        p("Not run (`--no-micro`).")
    else:
        p("Parser against httparse on the same inputs, brought to the same information (method,")
        p("target, fields, Host, persistence, the body de-framed into one buffer; see")
        p("`crates/server/benches/common/mod.rs`). `cargo bench -p wasmgate-server --bench parser`: rounds alternate")
        p("between the two parsers; median time per input; ratio = httparse time / wasmgate time")
        p("(>= 1.0: wasmgate at least as fast).")
        p("")
        p("| input | bytes | wasmgate | httparse | ratio |")
        p("|---|---:|---:|---:|---:|")
        for l in parser or []:
            m = re.match(r"parser: (\S+)\s+bytes=(\d+)\s+wasmgate=\s*([\d.]+)ns httparse=\s*([\d.]+)ns ratio=([\d.]+)x", l)
            if m:
                p(f"| {m.group(1)} | {m.group(2)} | {float(m.group(3)):.0f} ns | {float(m.group(4)):.0f} ns | {m.group(5)}x |")
        p("")
        p("Criterion (`cargo bench -p wasmgate-server --bench micro`), median estimates:")
        p("")
        p("| benchmark | time |")
        p("|---|---:|")
        for k, v in crit.items():
            p(f"| `{k}` | {v} |")
        p("")
        p("Heap allocations of the parser, counted by the host's counting allocator installed as the")
        p("global allocator of the bench binary (`crates/server/benches/parser.rs`; 10,000 parses after one")
        p("warm-up parse; the run fails if a parse with reused buffers allocates):")
        p("")
        p("```")
        for l in alloc or []:
            p(l)
        p("```")
    p("")
    p("## Memory")
    p("")
    idle, growth, allocs = jload(d, "idle.json"), jload(d, "growth.json"), jload(d, "allocs.json")
    if not idle:
        p("Not run (`--no-memory`).")
    else:
        p("`bench/memory.py` against fresh release servers (`bench/wasmgate.bench.toml`). RSS is the")
        p("server process's `VmRSS`.")
        p("")
        p("| check | result |")
        p("|---|---|")
        p(f"| RSS with {idle['connections']:,} idle keep-alive connections (each answered one request) | {mib(idle['rss_with_idle'])} total ({mib(idle['rss_before'])} before them; {idle['bytes_per_connection']:,.0f} B per connection; the server counted {idle['server_live_connections']:,.0f} open) |")
        if growth:
            p(f"| RSS after {growth['requests_first']:,.0f} mixed requests (/health, /hello/x) | {mib(growth['rss_after_first'])} |")
            p(f"| RSS after {growth['requests_total']:,.0f} mixed requests | {mib(growth['rss_after_total'])} (growth {growth['growth_bytes'] / 1024:+,.0f} KiB) |")
        if allocs:
            for path, v in allocs.items():
                p(f"| heap allocations per request, GET {path} (server's counting allocator, {v['requests']:,.0f} requests) | {v['allocs_per_request']:.1f} ({v['bytes_per_request']:,.0f} B) |")
    p("")
    # Targets.
    p("## Targets (issue 5)")
    p("")
    p("| target | this run | met |")
    p("|---|---|---|")
    def row(what, value, ok):
        p(f"| {what} | {value} | {'yes' if ok else '**no**'} |")
    nat = ratios.get("wasmgate native /health")
    if nat is not None:
        row("native `/health` >= 1.0x hyper", f"{nat:.2f}x", nat >= 1.0)
    wasm = ratios.get("wasmgate wasm /hello/:name")
    if wasm is not None:
        row("wasm `/hello/:name` >= 0.8x hyper", f"{wasm:.2f}x", wasm >= 0.8)
        p99 = rows["wasmgate wasm /hello/:name"]["p99"]
        row("wasm `/hello/:name` p99 <= 1.5 ms at 64 connections", f"{p99:.2f} ms", p99 <= 1.5)
    if parser:
        worst = min(float(re.search(r"ratio=([\d.]+)x", l).group(1)) for l in parser)
        row("parser >= 1.0x httparse (every input)", f"worst input {worst:.2f}x", worst >= 1.0)
    if crit:
        call = next((v for k, v in crit.items() if k.startswith("plugin/")), None)
        if call:
            row("plugin instantiate + call + teardown < 10 µs", call, to_us(call) < 10)
    if idle:
        row("10,000 idle keep-alive connections < 64 MiB RSS", mib(idle["rss_with_idle"]),
            idle["rss_with_idle"] < 64 * 2**20)
    if growth:
        row(f"no RSS growth, {growth['requests_first']:,.0f} → {growth['requests_total']:,.0f} requests (<= 1 MiB)",
            f"{growth['growth_bytes'] / 1024:+,.0f} KiB", growth["growth_bytes"] <= 2**20)
    if alloc:
        zero = all(" 0.00 allocs" in l.split("reused buffers:")[1][:14] for l in alloc)
        row("no parser allocation per request (beyond the body's)", "0 with reused buffers; the body buffer only with a fresh one", zero)
    p("")
    # Sections other scripts write (`<!-- bench/NAME.sh -->` to `<!-- /bench/NAME.sh -->`, through
    # bench/common.py: bench/outbound.sh, bench/kv.sh): kept as they are.
    if a.out != "/dev/null" and os.path.exists(a.out):
        previous = open(a.out).read()
        for m in re.finditer(r"<!-- (bench/[\w.]+) -->.*?<!-- /\1 -->", previous, re.S):
            p(m.group(0))
            p("")
    p(f"Produced by `{a.command.strip()}`.")
    text = "\n".join(out) + "\n"
    print(text)
    if a.out != "/dev/null":
        open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
