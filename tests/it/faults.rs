//! Faults: SIGTERM under load, a module cache on a failing disk, and 100,000 trapping requests in
//! a row (memory and descriptors must end where they started).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::{
    ChildServer, RawClient, TestServer, eventually, exchange, logs_contain, metric, repo_root,
    scrape,
};

/// A scratch directory with a config file naming guests by absolute path, removed on drop.
struct Site(PathBuf);

impl Site {
    fn new(name: &str, config: &str) -> Site {
        let dir =
            std::env::temp_dir().join(format!("wasmgate-faults-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let guests = repo_root().join("tests/guests");
        let text = config.replace("GUESTS", guests.to_str().unwrap());
        std::fs::write(dir.join("wasmgate.toml"), text).unwrap();
        Site(dir)
    }

    fn serve(&self) -> ChildServer {
        let config = self.0.join("wasmgate.toml");
        ChildServer::spawn(
            &[
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            None,
            true,
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads one whole response, or nothing at all: a response cut short is a failure.
fn response_or_nothing(c: &mut RawClient) -> Option<crate::support::RawResponse> {
    let mut first = [0u8; 1];
    match c.stream.peek(&mut first) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(c.response()),
    }
}

#[test]
fn sigterm_under_load_answers_every_request_whose_head_was_read_and_exits_within_the_grace() {
    let site = Site::new(
        "sigterm",
        "[timeouts]\nshutdown_grace = \"4s\"\nlinger = \"100ms\"\n\
         [plugins.sleep]\nwasm = \"GUESTS/sleep.wat\"\ndeadline = \"5s\"\nmax_concurrency = 6\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/sleep\"\nplugin = \"sleep\"\n",
    );
    let server = site.serve();
    let addr = server.addr();
    // Background load on keep-alive connections, going on through the signal.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = (0..3)
        .map(|_| {
            let (stop, answered) = (stop.clone(), answered.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(mut c) = RawClient::try_connect(addr) else {
                        return;
                    };
                    loop {
                        if c.stream
                            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                            .is_err()
                        {
                            break;
                        }
                        // A keep-alive request racing the close may get no answer (the client
                        // retries it); it must never get half of one.
                        match response_or_nothing(&mut c) {
                            Some(resp) => {
                                assert_eq!(resp.status, 200);
                                answered.fetch_add(1, Ordering::Relaxed);
                                if resp.header("connection") == Some("close") {
                                    break;
                                }
                            }
                            None => break,
                        }
                    }
                }
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
    let mut slow: Vec<RawClient> = (0..10)
        .map(|_| {
            let mut c = RawClient::connect(addr);
            c.send(b"GET /sleep?700 HTTP/1.1\r\nHost: x\r\n\r\n");
            c
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || {
            let m = scrape(addr);
            metric(&m, r#"wasmgate_plugin_in_flight{plugin="sleep"}"#) == Some(6.0)
                && metric(&m, r#"wasmgate_plugin_queued{plugin="sleep"}"#) == Some(4.0)
        }),
        "{}",
        scrape(addr)
    );
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    for c in &mut slow {
        let resp = c.response();
        assert_eq!((resp.status, resp.text().as_str()), (200, "slept\n"));
        assert_eq!(resp.header("connection"), Some("close"));
    }
    let (code, stderr) = server.wait(Duration::from_secs(10));
    let took = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().expect("no loader saw a partial response");
    }
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(4), "exit {took:?} after SIGTERM");
    assert!(stderr.contains("forced=0"), "{stderr}");
}

#[test]
fn an_unwritable_module_cache_degrades_to_compiling_with_a_warning() {
    // A path whose parent is a regular file: unusable even for root.
    let file = std::env::temp_dir().join(format!("wasmgate-cache-file-{}", std::process::id()));
    std::fs::write(&file, b"not a directory").unwrap();
    let cache = file.join("cache");
    let server = TestServer::start(&format!(
        "[runtime]\ncache_dir = \"{}\"\n[plugins.ok]\nwasm = \"tests/guests/ok.wat\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/ok\"\nplugin = \"ok\"\n",
        cache.display()
    ));
    assert!(eventually(Duration::from_secs(10), || {
        exchange(server.addr, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").status == 200
    }));
    assert!(
        logs_contain(&["module cache", "unusable", &cache.display().to_string()]),
        "a warning names the directory"
    );
    let _ = std::fs::remove_file(&file);
}

/// Sends `n` requests pipelined in batches on one connection and checks every answer.
fn trap_requests(addr: SocketAddr, n: usize) {
    const BATCH: usize = 100;
    let request = b"GET /trap HTTP/1.1\r\nHost: x\r\n\r\n";
    let batch: Vec<u8> = request.repeat(BATCH);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    for _ in 0..n / BATCH {
        stream.write_all(&batch).unwrap();
        let mut seen = 0;
        while seen < BATCH {
            let got = stream.read(&mut chunk).unwrap();
            assert!(got > 0, "closed");
            buf.extend_from_slice(&chunk[..got]);
            // Every answer is a 500 with a small JSON body; count whole ones.
            while let Some(end) = whole_response(&buf) {
                assert!(
                    buf.starts_with(b"HTTP/1.1 500 "),
                    "{:?}",
                    String::from_utf8_lossy(&buf[..end])
                );
                buf.drain(..end);
                seen += 1;
            }
        }
    }
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

#[test]
fn a_hundred_thousand_trapping_requests_leave_memory_and_descriptors_where_they_started() {
    // Saturates both cores for a while: not beside the tests that must see every request succeed.
    let _calm = crate::support::exclusive_network();
    const TOTAL: usize = 100_000;
    const CLIENTS: usize = 4;
    const WARM_UP: usize = 2_000;
    let site = Site::new(
        "traps",
        "[server]\nmax_requests_per_connection = 1000000\n\
         [plugins.trap]\nwasm = \"GUESTS/trap.wat\"\nbreaker_threshold = 4000000000\ndeadline = \"10s\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/trap\"\nplugin = \"trap\"\n",
    );
    let server = site.serve();
    let addr = server.addr();
    let reading = |name: &str| metric(&scrape(addr), name).unwrap();
    // Warm up: pool slots, allocator arenas, the log writer, metric label sets.
    let warm: Vec<_> = (0..CLIENTS)
        .map(|_| std::thread::spawn(move || trap_requests(addr, WARM_UP)))
        .collect();
    warm.into_iter().for_each(|t| t.join().unwrap());
    let rss0 = reading("wasmgate_resident_memory_bytes");
    let fds0 = reading("wasmgate_open_fds");

    let t = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| std::thread::spawn(move || trap_requests(addr, TOTAL / CLIENTS)))
        .collect();
    clients.into_iter().for_each(|t| t.join().unwrap());
    let took = t.elapsed();

    let m = scrape(addr);
    let traps = metric(
        &m,
        r#"wasmgate_plugin_calls_total{plugin="trap",outcome="trap"}"#,
    );
    assert_eq!(traps, Some((TOTAL + CLIENTS * WARM_UP) as f64));
    let rss1 = reading("wasmgate_resident_memory_bytes");
    let fds1 = reading("wasmgate_open_fds");
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
    server.signal(libc::SIGTERM);
    let (code, _) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0));
}
