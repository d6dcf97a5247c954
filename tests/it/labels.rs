//! No metric label takes a string a client or a guest chose (ARCHITECTURE.md, the last
//! `crates/server` invariant; issue 20, item 3): a running server is pushed 10,000 distinct
//! outbound hosts (allowed, refused by the list and by the address guard), paths (a route's
//! parameter, unmatched paths, methods nobody standardised) and store keys, and the number of
//! series `/metrics` exports does not grow with them.
//!
//! All traffic stays on loopback: the allowed names are pinned to 127.0.0.1, and the refused ones
//! are refused before any lookup or connection.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, ensure};

use crate::support::{
    Answer, RawClient, Site, TestServer, Upstream, repo_root, sample_plugins_built, scrape,
};

/// Distinct hosts, paths and keys pushed through.
const DISTINCT: usize = 10_000;
/// The first rounds, which show every label set a round can produce (each outcome, status and
/// method class) before the count is taken.
const WARM_UP: usize = 200;
/// Client connections sending rounds at once.
const CLIENTS: usize = 4;
/// Names under `*.pin.test` pinned to loopback (the allowed, connecting outbound calls).
const PINNED: usize = 4;

/// `links` on a SQLite store (its keys are the codes clients pick, and it fetches a title from
/// each client's URL), `fetch` allowed every name under `pin.test` and the upstream's address
/// (so a pinned name on another port is refused by the address guard), and `hello` at
/// `/hello/:name`.
fn config(site: &Site, upstream: &Upstream) -> String {
    let wasm = |name: &str| {
        let path = repo_root().join(format!("plugins/target/wasm32-wasip1/release/{name}.wasm"));
        toml::Value::String(path.to_string_lossy().into_owned())
    };
    let pins: Vec<String> = (0..PINNED)
        .map(|i| format!("\"p{i}.pin.test\" = \"127.0.0.1\""))
        .collect();
    format!(
        r#"[outbound]
resolve = {{ {pins} }}

[stores.links]
path = {store}
sync = "normal"

[plugins.links]
wasm = {links}
kv = ["links"]
allowed_outbound_hosts = ["https://*.wikipedia.org"]
deadline = "10s"

[plugins.links.vars]

[plugins.fetch]
wasm = {fetch}
allowed_outbound_hosts = ["http://*.pin.test:*", "http://127.0.0.1:{port}"]
deadline = "10s"

[plugins.hello]
wasm = {hello}

[[routes]]
method = "POST"
path = "/links"
plugin = "links"

[[routes]]
method = "GET"
path = "/fetch"
plugin = "fetch"

[[routes]]
method = "GET"
path = "/hello/:name"
plugin = "hello"
"#,
        pins = pins.join(", "),
        store = toml::Value::String(site.path("links.sqlite").to_string_lossy().into_owned()),
        links = wasm("links"),
        fetch = wasm("fetch"),
        hello = wasm("hello"),
        port = upstream.port(),
    )
}

/// Round `i`: one of each kind of request, each with its own host, path or key.
fn round(client: &mut RawClient, i: usize, upstream_port: u16) -> anyhow::Result<()> {
    // A store key (`link:code{i}`, `clicks:...`) and an outbound host the list refuses.
    let body = format!(r#"{{"url": "http://h{i}.links.test/page", "code": "code{i}"}}"#);
    let post = format!(
        "POST /links HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // An outbound host: refused by the list, allowed (a pinned name on the upstream's port), or
    // refused by the address guard (a pinned name on a port no entry names).
    let url = match i % 4 {
        0 => format!("http://p{}.pin.test:{upstream_port}/x{i}", i % PINNED),
        1 => {
            let port = 1 + i % 60_000;
            let port = if port == upstream_port as usize {
                port + 1
            } else {
                port
            };
            format!("http://p{}.pin.test:{port}/x{i}", i % PINNED)
        }
        _ => format!("http://f{i}.denied.test/x{i}"),
    };
    let fetch = format!("GET /fetch?url={url} HTTP/1.1\r\nHost: x\r\n\r\n");
    // A route's parameter, an unmatched path, and an unmatched path with a made-up method.
    let hello = format!("GET /hello/n{i} HTTP/1.1\r\nHost: x\r\n\r\n");
    let unmatched = format!("GET /nowhere/{i} HTTP/1.1\r\nHost: x\r\n\r\n");
    let odd = format!("M{i} /odd/{i} HTTP/1.1\r\nHost: x\r\n\r\n");
    for (request, want) in [
        (post, &[201][..]),
        (fetch, &[200, 502][..]),
        (hello, &[200][..]),
        (unmatched, &[404][..]),
        (odd, &[404, 405][..]),
    ] {
        let resp = client.send(request.as_bytes())?.response()?;
        ensure!(
            want.contains(&resp.status),
            "round {i}: {} for {:?}: {}",
            resp.status,
            request.lines().next(),
            resp.text()
        );
    }
    Ok(())
}

/// Rounds `range`, [`CLIENTS`] at once.
fn rounds(addr: SocketAddr, range: std::ops::Range<usize>, port: u16) -> anyhow::Result<()> {
    let range = Arc::new(range);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let range = range.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                // A connection per round: well under max_requests_per_connection.
                for i in range.start..range.end {
                    if i % CLIENTS == c {
                        round(&mut RawClient::connect(addr)?, i, port)?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client thread")?;
    }
    Ok(())
}

/// The samples of `text` (one line each), by family name.
fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The series of `text` with their `outcome` label left out: what can grow with what clients and
/// guests choose. An outcome is one of a closed set and may first happen at any time (a store's
/// health check meeting contention under this load once counted `op="ping",outcome="timeout"`
/// late in the run), which is a bounded series, not growth.
fn shapes(text: &str) -> std::collections::BTreeSet<String> {
    series(text)
        .iter()
        .map(|s| {
            let name = s.split(' ').next().unwrap_or_default();
            match name.find("outcome=\"") {
                Some(at) => {
                    let end = name[at + 9..]
                        .find('"')
                        .map_or(name.len(), |e| at + 9 + e + 1);
                    let rest = name[end..].strip_prefix(',').unwrap_or(&name[end..]);
                    format!("{}{rest}", &name[..at])
                }
                None => name.to_string(),
            }
        })
        .collect()
}

#[test]
fn no_label_grows_with_the_hosts_paths_and_keys_clients_and_guests_choose() -> anyhow::Result<()> {
    sample_plugins_built();
    let upstream = Upstream::start(Answer::Ok)?;
    let site = Site::new("labels")?;
    let server = TestServer::start(&config(&site, &upstream))?;
    let (addr, port) = (server.addr(), upstream.port());

    rounds(addr, 0..WARM_UP, port)?;
    // The first scrape makes the series of `GET /metrics` itself; the second counts them.
    scrape(addr)?;
    let before = scrape(addr)?;
    rounds(addr, WARM_UP..DISTINCT, port)?;
    let after = scrape(addr)?;

    let (was, is) = (series(&before), series(&after));
    let (was_shapes, is_shapes) = (shapes(&before), shapes(&after));
    let new: Vec<&String> = is_shapes.difference(&was_shapes).take(5).collect();
    println!(
        "{DISTINCT} distinct hosts, paths and keys: {} series ({} bytes) after {WARM_UP} rounds, {} ({} bytes) after all",
        was.len(),
        before.len(),
        is.len(),
        after.len()
    );
    ensure!(
        new.is_empty(),
        "{} series after {WARM_UP} rounds, {} after {DISTINCT}; new ones (outcomes aside): {new:#?}",
        was.len(),
        is.len()
    );
    // The calls were really made, and counted under the entry that allowed them or `none`.
    let count = |sample: &str| {
        crate::support::metric(&after, sample).with_context(|| format!("no {sample}"))
    };
    ensure!(
        count(
            r#"wasmgate_outbound_calls_total{plugin="fetch",entry="http://*.pin.test:*",outcome="ok",status_class="2xx"}"#
        )? == (DISTINCT / 4) as f64
    );
    ensure!(
        count(
            r#"wasmgate_outbound_calls_total{plugin="fetch",entry="http://*.pin.test:*",outcome="address_blocked",status_class="none"}"#
        )? == (DISTINCT / 4) as f64
    );
    ensure!(
        count(
            r#"wasmgate_outbound_calls_total{plugin="fetch",entry="none",outcome="denied",status_class="none"}"#
        )? == (DISTINCT / 2) as f64
    );
    ensure!(
        count(
            r#"wasmgate_outbound_calls_total{plugin="links",entry="none",outcome="denied",status_class="none"}"#
        )? == DISTINCT as f64
    );
    Ok(())
}
