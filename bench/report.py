#!/usr/bin/env python3
"""Turns the raw outputs of bench/run.sh into tables: prints them, and writes docs/BENCHMARKS.md.

Inputs (in --dir): wrk/<i>.name (target i's name, "SERVER PATH ...") and, per wrk thread count T,
wrk/tT/<i>.<round> (wrk's output) + wrk/tT/<i>.<round>.cpu (the server's CPU µs per request) (load);
criterion.txt and parser.txt (micro); idle.json, growth.json, growth-reuse.json, allocs.json
(memory; see memory.py). Any part may be missing (--no-micro, --no-memory); its section then says so.
"""
import argparse
import datetime
import glob
import json
import os
import re
import statistics
import subprocess

# The references (target names as bench/run.sh writes them). Every ratio pairs runs of the same
# round and wrk thread count: /health rows against hyper /health, every other row against hyper
# /hello/x (the same JSON, natively), and the /ok rows also against hyper calling wasmtime.
HYPER_HEALTH = "hyper /health"
HYPER_HELLO = "hyper /hello/x"
HYPER_WASMTIME = "hyper+wasmtime /ok (ok.wat, fresh)"
WG_HEALTH = "wasmgate native /health"
WG_FRESH = "wasmgate wasm /hello/x (fresh)"
WG_REUSE = "wasmgate wasm /warm/x (reuse)"
WG_OK = "wasmgate wasm /ok (ok.wat, fresh)"


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


def load_tables(d):
    """{threads: {name: row}}, rows in target order (bench/run.sh's `targets`)."""
    names = {}
    for name_file in glob.glob(os.path.join(d, "wrk", "*.name")):
        names[int(os.path.basename(name_file).split(".")[0])] = open(name_file).read().strip()
    tables = {}
    for tdir in sorted(glob.glob(os.path.join(d, "wrk", "t*")), key=lambda p: int(p.rsplit("t", 1)[1])):
        rows = {}
        for i in sorted(names):
            paths = sorted((p for p in glob.glob(os.path.join(tdir, f"{i}.*")) if os.path.basename(p).count(".") == 1),
                           key=lambda p: int(p.rsplit(".", 1)[1]))
            if not paths:
                continue
            runs = [parse_wrk(p) for p in paths]
            cpu = [float(open(p + ".cpu").read()) for p in paths if os.path.exists(p + ".cpu")]
            rows[names[i]] = {
                "rps": statistics.median(r[0] for r in runs),
                "p50": statistics.median(r[1] for r in runs),
                "p99": statistics.median(r[2] for r in runs),
                "cpu": statistics.median(cpu) if cpu else float("nan"),
                "all_rps": [r[0] for r in runs],
                "errors": sum(r[3] for r in runs),
                "socket": "; ".join(r[4] for r in runs if r[4]),
            }
        tables[int(os.path.basename(tdir)[1:])] = rows
    return tables


def ratio(rows, name, ref):
    """The median over the rounds of name's req/s / ref's req/s in the same round (NaN if absent)."""
    if name not in rows or ref not in rows:
        return float("nan")
    return statistics.median(x / y for x, y in zip(rows[name]["all_rps"], rows[ref]["all_rps"]))


def path_of(name):
    """The request path in a target's name ("wasmgate wasm /ok (ok.wat, fresh)" -> "/ok")."""
    return next((w for w in name.split() if w.startswith("/")), "")


def reference(name):
    return HYPER_HEALTH if path_of(name) == "/health" else HYPER_HELLO


def criterion(d):
    """{benchmark: median estimate} from criterion's output (a name too long for criterion's
    column is printed on a line of its own, its `time:` on the next)."""
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


def plugin_notes(d):
    """The lines of criterion.txt starting with `plugin/` that are not timings (a skipped case)."""
    path = os.path.join(d, "criterion.txt")
    if not os.path.exists(path):
        return []
    return [l.strip() for l in open(path) if l.startswith("plugin/") and ":" in l and "time:" not in l]


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
        ("commit", sh("git rev-parse --short HEAD") + (" (with local changes)" if sh("git --no-optional-locks status --porcelain --untracked-files=no") else "")),
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
    p("The latest run of the benchmark suite (issues 5 and 14). **Reproduce with one command:**")
    p("`bench/run.sh` (about 20 minutes; `--quick` for a smoke run that leaves this file alone).")
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
    p("say as much about wrk as about the server: **read the ratios**, each against a reference")
    p("measured in the same round of the same run.")
    p("")
    tables = load_tables(d)
    threads = " and ".join(f"`-t{t}`" for t in tables) or "(none)"
    p("## Load")
    p("")
    p(f"`wrk -c{a.connections} -d{a.duration}s --latency` (keep-alive), with {threads}, {a.rounds} rounds."
      " Each round runs two groups of targets, /health (wasmgate, hyper, nginx) and the wasm routes"
      " with their references, each group at one wrk thread count and then at the other; which group"
      " and which thread count go first alternate, and the order inside a group rotates, each server"
      " next to its reference. req/s, p50, p99 and the server's CPU time per request (user + system"
      " of its processes, from /proc, over the wrk run; wrk shares the CPUs) are medians over the"
      " rounds; a ratio is the median over the rounds of req/s divided by the reference's req/s in"
      " the same round at the same thread count: hyper /health for /health rows, hyper /hello/x for"
      " the others, and for the /ok rows also hyper calling wasmtime on the same guest. Every server"
      f" has {a.workers} worker threads (wasmgate and hyper: tokio workers; nginx: worker processes).")
    p("")
    for t, rows in tables.items():
        p(f"### `wrk -t{t} -c{a.connections}`")
        p("")
        p("| target | req/s | p50 | p99 | server CPU/req | vs hyper | vs hyper+wasmtime | req/s per round |")
        p("|---|---:|---:|---:|---:|---:|---:|---|")
        for name, r in rows.items():
            vs = ratio(rows, name, reference(name))
            vs_wt = f"{ratio(rows, name, HYPER_WASMTIME):.2f}x" if path_of(name) == "/ok" else ""
            rounds = ", ".join(f"{x:,.0f}" for x in r["all_rps"])
            flag = f" ({r['errors']} non-2xx)" if r["errors"] else ""
            flag += f" (socket errors: {r['socket']})" if r["socket"] else ""
            p(f"| {name}{flag} | {r['rps']:,.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['cpu']:.1f} µs"
              f" | {vs:.2f}x | {vs_wt} | {rounds} |")
        p("")
        own = ratio(rows, WG_OK, HYPER_WASMTIME)
        if own == own:
            wg, ref = rows[WG_OK]["cpu"], rows[HYPER_WASMTIME]["cpu"]
            wt = ratio(rows, HYPER_WASMTIME, HYPER_HELLO)
            p(f"**wasmgate's own per-call overhead** (`-t{t}`): wasmgate /ok ÷ hyper+wasmtime /ok ="
              f" **{own:.2f}x**; server CPU per request {wg:.1f} µs against {ref:.1f} µs"
              f" ({wg - ref:+.1f} µs). For scale, hyper+wasmtime /ok ÷ hyper /hello/x = {wt:.2f}x"
              " (what a fresh wasmtime instance costs hyper).")
            p("")
    p("- `/hello/x (fresh)` runs the hello plugin (a Rust SDK guest) in a fresh wasm instance per")
    p("  request; `/warm/x (reuse)` the same module with `reuse = { max_requests = 10000 }` (warm")
    p("  instances); hyper and nginx answer the same JSON natively.")
    p("- `/ok` runs tests/guests/ok.wat (hand-written, ABI v1, no imports) in a fresh instance per")
    p("  request: in wasmgate, and in `bench/hyper-ref` calling wasmtime 48 directly (a pooled")
    p("  instance from an `InstancePre`, async call, fuel and epochs as wasmgate's engine, no WASI,")
    p("  no request encoding): the gap between the two is what wasmgate adds around an instance.")
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
    growth_reuse = jload(d, "growth-reuse.json")
    if not idle:
        p("Not run (`--no-memory`).")
    else:
        p("`bench/memory.py` against fresh release servers (`bench/wasmgate.bench.toml`). RSS is the")
        p("server process's `VmRSS`.")
        p("")
        p("| check | result |")
        p("|---|---|")
        p(f"| RSS with {idle['connections']:,} idle keep-alive connections (each answered one request) | {mib(idle['rss_with_idle'])} total ({mib(idle['rss_before'])} before them; {idle['bytes_per_connection']:,.0f} B per connection; the server counted {idle['server_live_connections']:,.0f} open) |")
        for g, what in [(growth, "mixed requests (/health, /hello/x: fresh instances)"),
                        (growth_reuse, "requests to /warm/x (instance reuse)")]:
            if g:
                p(f"| RSS after {g['requests_first']:,.0f} {what} | {mib(g['rss_after_first'])} |")
                p(f"| RSS after {g['requests_total']:,.0f} {what} | {mib(g['rss_after_total'])} (growth {g['growth_bytes'] / 1024:+,.0f} KiB) |")
        if allocs:
            for path, v in allocs.items():
                p(f"| heap allocations per request, GET {path} (server's counting allocator, {v['requests']:,.0f} requests) | {v['allocs_per_request']:.1f} ({v['bytes_per_request']:,.0f} B) |")
    p("")
    # Targets.
    p("## Targets (issue 14, and issue 5's that still hold)")
    p("")
    p("Each load target is checked at both wrk thread counts. The server CPU per request of the")
    p("fresh route is also measured build against build with `bench/ab.sh`, as is `/health`.")
    p("")
    p("| target | measured | ok? |")
    p("|---|---|---|")
    def row(what, value, ok):
        if ok is None:
            p(f"| {what} | {value} | n/a |")
        else:
            p(f"| {what} | {value} | {'yes' if ok else '**no**'} |")
    def load_row(what, name, ref, at_least):
        for t, rows in tables.items():
            if name in rows and ref in rows:
                v = ratio(rows, name, ref)
                row(f"{what} >= {at_least}x hyper (`-t{t}`)", f"{v:.2f}x", v >= at_least)
    def p99_row(what, name, at_most):
        for t, rows in tables.items():
            if name in rows:
                v = rows[name]["p99"]
                row(f"{what} p99 <= {at_most} ms (`-t{t}`)", f"{v:.2f} ms", v <= at_most)
    load_row("fresh instance, Rust SDK `/hello/x`", WG_FRESH, HYPER_HELLO, 0.65)
    p99_row("fresh instance, Rust SDK `/hello/x`", WG_FRESH, 2.0)
    for t, rows in tables.items():
        if WG_FRESH in rows:
            v = rows[WG_FRESH]["cpu"]
            row(f"fresh instance, Rust SDK `/hello/x` server CPU <= 14 µs per request (`-t{t}`)",
                f"{v:.1f} µs", v <= 14)
    load_row("fresh instance, ok.wat `/ok`", WG_OK, HYPER_HELLO, 0.8)
    load_row("instance reuse, Rust SDK `/warm/x`", WG_REUSE, HYPER_HELLO, 0.85)
    p99_row("instance reuse, Rust SDK `/warm/x`", WG_REUSE, 1.5)
    for t, rows in tables.items():
        if WG_HEALTH in rows and HYPER_HEALTH in rows:
            v = ratio(rows, WG_HEALTH, HYPER_HEALTH)
            row(f"native `/health` >= 0.97x hyper, no regression (`-t{t}`)", f"{v:.2f}x", v >= 0.97)
    if crit is not None:
        call = crit.get("plugin/hello_instantiate_call_teardown")
        row("criterion `plugin/hello_instantiate_call_teardown` <= 5 µs", call or "not in this run",
            to_us(call) <= 5 if call else False)
    if parser:
        worst = min(float(re.search(r"ratio=([\d.]+)x", l).group(1)) for l in parser)
        row("stretch: parser >= 1.0x httparse (every input)", f"worst input {worst:.2f}x", worst >= 1.0)
    if idle:
        row(f"{idle['connections']:,} idle keep-alive connections < 64 MiB RSS", mib(idle["rss_with_idle"]),
            idle["rss_with_idle"] < 64 * 2**20)
    for g, mode in [(growth, "fresh instances, /health + /hello/x"), (growth_reuse, "instance reuse, /warm/x")]:
        if g:
            row(f"no RSS growth, {g['requests_first']:,.0f} → {g['requests_total']:,.0f} requests, {mode} (<= 1 MiB)",
                f"{g['growth_bytes'] / 1024:+,.0f} KiB", g["growth_bytes"] <= 2**20)
    if alloc:
        zero = all(" 0.00 allocs" in l.split("reused buffers:")[1][:14] for l in alloc)
        row("no parser allocation per request (beyond the body's)", "0 with reused buffers; the body buffer only with a fresh one", zero)
    p("")
    if crit is not None:
        plugin = [(k, v) for k, v in crit.items() if k.startswith("plugin/")]
        notes = plugin_notes(d)
        p("Every criterion `plugin/` case of this run (median estimates):")
        p("")
        for k, v in plugin:
            p(f"- `{k}`: {v}")
        for n in notes:
            p(f"- {n}")
        if not plugin and not notes:
            p("- (none)")
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
