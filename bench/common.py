"""What the bench scripts' Python shares (bench/outbound.sh, bench/kv.sh): reading one wrk
`--latency` report, and writing one marked section of docs/BENCHMARKS.md (the text between
`<!-- bench/NAME.sh -->` and `<!-- /bench/NAME.sh -->`, which bench/report.py keeps when
bench/run.sh rewrites the file)."""
import re
import sys


def ms(text):
    """A wrk duration ("850.00us", "1.23ms", "2.00s") in milliseconds."""
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def wrk(path, label):
    """The figures of the wrk report at `path`: req/s, p50 and p99 (ms) and the requests
    completed. Exits, naming `label`, when wrk saw an error status or a socket error: a round
    with failures measures the failures."""
    text = open(path).read()
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    if bad or errors:
        sys.exit(f"bench: {label} had failures: {bad and bad.group(0)} {errors and errors.group(0)}")
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "p50": ms(re.search(r"\s50%\s+(\S+)", text).group(1)),
            "p99": ms(re.search(r"\s99%\s+(\S+)", text).group(1)),
            "requests": int(re.search(r"(\d+) requests in", text).group(1))}


def write_section(doc, name, body):
    """Replaces the section `name` (e.g. "bench/kv.sh") of the file `doc` with `body` between its
    markers, or adds it before the closing "Produced by" line when the file has none."""
    section = f"<!-- {name} -->\n{body}\n<!-- /{name} -->"
    text = open(doc).read()
    marked = re.compile(f"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    if marked.search(text):
        text = marked.sub(lambda _: section, text)
    else:
        produced = text.rfind("\nProduced by `")
        if produced >= 0:
            text = text[:produced + 1] + section + "\n\n" + text[produced + 1:]
        else:
            text = text + "\n" + section + "\n"
    open(doc, "w").write(text)
