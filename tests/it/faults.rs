//! Faults: SIGTERM under load, a module cache on a failing disk, and 100,000 trapping requests in
//! a row (memory and descriptors must end where they started).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use crate::support::{
    RawClient, Site, TestServer, eventually, logs_contain, metric, repo_root, scrape,
    try_eventually,
};

const GET_HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

/// A site whose `wasmgate.toml` is `config` with `GUESTS` replaced by tests/guests' absolute path
/// (the real CLI runs with the site's config, wherever the site is).
fn site(name: &str, config: &str) -> anyhow::Result<Site> {
    let site = Site::new(&format!("faults-{name}"))?;
    let guests = repo_root().join("tests/guests");
    site.replace(
        "wasmgate.toml",
        config.replace("GUESTS", &guests.to_string_lossy()),
    )?;
    Ok(site)
}

#[test]
fn sigterm_under_load_answers_every_request_whose_head_was_read_and_exits_within_the_grace()
-> anyhow::Result<()> {
    let site = site(
        "sigterm",
        "[timeouts]\nshutdown_grace = \"4s\"\nlinger = \"100ms\"\n\
         [plugins.sleep]\nwasm = \"GUESTS/sleep.wat\"\ndeadline = \"5s\"\nmax_concurrency = 6\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/sleep\"\nplugin = \"sleep\"\n",
    )?;
    let server = site.serve()?;
    let addr = server.addr();
    // Background load on keep-alive connections, going on through the signal.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = (0..3)
        .map(|_| {
            let (stop, answered) = (stop.clone(), answered.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    // Refused: the server no longer accepts (it is shutting down).
                    let Ok(mut c) = RawClient::connect(addr) else {
                        return Ok(());
                    };
                    loop {
                        if c.send(GET_HEALTH).is_err() {
                            break;
                        }
                        // A keep-alive request racing the close may get no answer (the client
                        // retries it); it must never get half of one.
                        match c.response_or_close()? {
                            Some(resp) => {
                                ensure!(resp.status == 200, "answered {}", resp.status);
                                answered.fetch_add(1, Ordering::Relaxed);
                                if resp.header("connection") == Some("close") {
                                    break;
                                }
                            }
                            None => break,
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    // On a loaded machine the loaders may not have been scheduled yet: the signal must land while
    // they are running, so wait for their first answers (before the slow requests start their clock).
    assert!(
        eventually(Duration::from_secs(10), || answered.load(Ordering::Relaxed)
            > 0),
        "the background load is running"
    );
    // Ten slow requests with complete heads: six running, four queued behind the cap.
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut c = RawClient::connect(addr)?;
        c.send(b"GET /sleep?700 HTTP/1.1\r\nHost: x\r\n\r\n")?;
        slow.push(c);
    }
    let six_and_four = try_eventually(Duration::from_secs(5), || {
        let m = scrape(addr)?;
        Ok(
            metric(&m, r#"wasmgate_plugin_in_flight{plugin="sleep"}"#) == Some(6.0)
                && metric(&m, r#"wasmgate_plugin_queued{plugin="sleep"}"#) == Some(4.0),
        )
    })?;
    assert!(six_and_four, "{}", scrape(addr)?);
    let signalled = Instant::now();
    server.signal(libc::SIGTERM)?;
    for c in &mut slow {
        let resp = c.response()?;
        assert_eq!((resp.status, resp.text().as_str()), (200, "slept\n"));
        assert_eq!(resp.header("connection"), Some("close"));
    }
    let exited = server.wait(Duration::from_secs(10))?;
    let took = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join()
            .expect("a loader thread")
            .context("no loader saw a partial response")?;
    }
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    assert!(took < Duration::from_secs(4), "exit {took:?} after SIGTERM");
    assert!(exited.stderr.contains("forced=0"), "{}", exited.stderr);
    Ok(())
}

#[test]
fn an_unwritable_module_cache_degrades_to_compiling_with_a_warning() -> anyhow::Result<()> {
    // A path whose parent is a regular file: unusable even for root.
    let site = Site::new("faults-cache")?;
    site.replace("not-a-directory", b"a regular file")?;
    let cache = site.path("not-a-directory/cache");
    let server = TestServer::start(&format!(
        "[runtime]\ncache_dir = \"{}\"\n[plugins.ok]\nwasm = \"tests/guests/ok.wat\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/ok\"\nplugin = \"ok\"\n",
        cache.display()
    ))?;
    assert!(try_eventually(Duration::from_secs(10), || Ok(server
        .get("/ok")?
        .status
        == 200))?);
    assert!(
        logs_contain(&["module cache", "unusable", &cache.display().to_string()]),
        "a warning names the directory"
    );
    Ok(())
}

/// Sends `n` requests pipelined in batches on one connection and checks every answer.
fn trap_requests(addr: SocketAddr, n: usize) -> anyhow::Result<()> {
    const BATCH: usize = 100;
    let request = b"GET /trap HTTP/1.1\r\nHost: x\r\n\r\n";
    let batch: Vec<u8> = request.repeat(BATCH);
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    for _ in 0..n / BATCH {
        stream.write_all(&batch)?;
        let mut seen = 0;
        while seen < BATCH {
            let got = stream.read(&mut chunk)?;
            ensure!(got > 0, "closed after {seen} of a batch of {BATCH}");
            buf.extend_from_slice(&chunk[..got]);
            // Every answer is a 500 with a small JSON body; count whole ones.
            while let Some(end) = whole_response(&buf) {
                ensure!(
                    buf.starts_with(b"HTTP/1.1 500 "),
                    "{:?}",
                    String::from_utf8_lossy(&buf[..end])
                );
                buf.drain(..end);
                seen += 1;
            }
        }
    }
    Ok(())
}

/// Length of the first whole response in `buf` (Content-Length framed), if it is all there.
fn whole_response(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..head]).ok()?;
    let len: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))?
        .trim()
        .parse()
        .ok()?;
    (buf.len() >= head + len).then_some(head + len)
}

/// `clients` threads of [`trap_requests`], `per_client` requests each; the first failure is the error.
fn trap_clients(addr: SocketAddr, clients: usize, per_client: usize) -> anyhow::Result<()> {
    let threads: Vec<_> = (0..clients)
        .map(|_| std::thread::spawn(move || trap_requests(addr, per_client)))
        .collect();
    for t in threads {
        t.join().expect("a trapping client thread")?;
    }
    Ok(())
}

#[test]
fn a_hundred_thousand_trapping_requests_leave_memory_and_descriptors_where_they_started()
-> anyhow::Result<()> {
    // Saturates both cores for a while: not beside the tests that must see every request succeed.
    let _calm = crate::support::exclusive_network();
    const TOTAL: usize = 100_000;
    const CLIENTS: usize = 4;
    const WARM_UP: usize = 2_000;
    let site = site(
        "traps",
        "[server]\nmax_requests_per_connection = 1000000\n\
         [plugins.trap]\nwasm = \"GUESTS/trap.wat\"\nbreaker_threshold = 4000000000\ndeadline = \"10s\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/trap\"\nplugin = \"trap\"\n",
    )?;
    let server = site.serve()?;
    let addr = server.addr();
    // The server's process readings once the clients' connections are closed on its side too
    // (that happens asynchronously after the clients hang up, and an open connection holds a
    // descriptor): only the scrape's own connection is active.
    let settled = || -> anyhow::Result<(f64, f64)> {
        let mut text = String::new();
        let quiet = try_eventually(Duration::from_secs(10), || {
            text = scrape(addr)?;
            Ok(metric(&text, "wasmgate_connections_active") == Some(1.0))
        })?;
        ensure!(quiet, "the clients' connections are still open:\n{text}");
        let reading =
            |name: &str| metric(&text, name).with_context(|| format!("{name} in /metrics"));
        Ok((
            reading("wasmgate_resident_memory_bytes")?,
            reading("wasmgate_open_fds")?,
        ))
    };
    // Warm up: pool slots, allocator arenas, the log writer, metric label sets.
    trap_clients(addr, CLIENTS, WARM_UP)?;
    let (rss0, fds0) = settled()?;

    let t = Instant::now();
    trap_clients(addr, CLIENTS, TOTAL / CLIENTS)?;
    let took = t.elapsed();

    let m = scrape(addr)?;
    let traps = metric(
        &m,
        r#"wasmgate_plugin_calls_total{plugin="trap",outcome="trap"}"#,
    );
    assert_eq!(traps, Some((TOTAL + CLIENTS * WARM_UP) as f64));
    let (rss1, fds1) = settled()?;
    println!(
        "traps: {TOTAL} in {took:?}; RSS {:.1} -> {:.1} MiB; fds {fds0} -> {fds1}",
        rss0 / 1048576.0,
        rss1 / 1048576.0
    );
    assert!(
        rss1 - rss0 < 8.0 * 1024.0 * 1024.0,
        "RSS grew by {:.1} MiB",
        (rss1 - rss0) / 1048576.0
    );
    assert!(fds1 <= fds0, "descriptors {fds0} -> {fds1}");
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    Ok(())
}
