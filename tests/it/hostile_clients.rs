//! Hostile clients at scale: a thousand slowloris connections, and a connection storm past the
//! file-descriptor limit. (One slow connection, one EMFILE episode: `lifecycle.rs`,
//! `connections.rs`; the parser on arbitrary bytes: `fuzz/`.)

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use crate::support::{
    ChildOptions, ChildServer, RawClient, TestServer, answers_200, eventually, metric,
    raise_fd_limit, scrape, try_eventually,
};

const TRICKLERS: usize = 1000;

#[test]
fn a_thousand_trickling_connections_do_not_stop_a_good_client_and_are_reclaimed()
-> anyhow::Result<()> {
    let _calm = crate::support::exclusive_network();
    assert!(raise_fd_limit()? >= 2 * TRICKLERS as u64 + 200);
    let server = TestServer::start(
        "[server]\nmax_connections = 1100\n\
         [timeouts]\nheader_read = \"2s\"\nlinger = \"100ms\"\n",
    )?;
    let started = Instant::now();
    let mut tricklers = Vec::with_capacity(TRICKLERS);
    for _ in 0..TRICKLERS {
        let mut s = TcpStream::connect(server.addr())?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")?;
        tricklers.push(s);
    }
    let connected = started.elapsed();
    assert!(
        eventually(Duration::from_secs(3), || {
            server.metric("wasmgate_connections_active") >= TRICKLERS as f64
        }),
        "all {TRICKLERS} are being served (connected in {connected:?})"
    );
    // Trickle one byte per connection every 50 ms, the way slowloris keeps a head open, while a
    // well-behaved client is served normally.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in &mut tricklers {
                    // The server closes them at the header deadline: writes then fail, by design.
                    let _ = s.write(b"a");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            tricklers
        })
    };
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(server.get("/health")?.status, 200);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    // The header timeout (2 s from each connection's first byte, however it trickles) reclaims
    // every one of them, while they are still trickling.
    assert!(
        eventually(Duration::from_secs(6), || {
            server.metric(r#"wasmgate_timeouts_total{kind="header_read"}"#) >= TRICKLERS as f64
                && server.metric("wasmgate_connections_active") == 0.0
        }),
        "reclaimed:\n{}",
        server.metrics()
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tricklers = trickle.join().expect("the trickling thread");
    assert_eq!(
        server.metric(r#"wasmgate_connections_closed_total{reason="header_timeout"}"#),
        TRICKLERS as f64
    );
    drop(tricklers);
    assert_eq!(server.get("/health")?.status, 200);
    Ok(())
}

/// `GET /metrics` on `c` (a keep-alive connection made before the storm): the exposition text.
fn metrics_on(c: &mut RawClient) -> anyhow::Result<String> {
    let resp = c
        .send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?
        .response()?;
    ensure!(resp.status == 200, "GET /metrics answered {}", resp.status);
    Ok(resp.text())
}

#[test]
fn a_connection_storm_past_the_descriptor_limit_leaves_it_serving_and_it_recovers()
-> anyhow::Result<()> {
    let _calm = crate::support::exclusive_network();
    raise_fd_limit()?;
    let server = ChildServer::start(ChildOptions {
        nofile: Some(128),
        ..ChildOptions::serve("tests/configs/fast.toml")
    })?;
    let addr = server.addr();
    let fds = |text: &str| metric(text, "wasmgate_open_fds").context("wasmgate_open_fds");
    // A client connected before the storm, on keep-alive.
    let mut veteran = RawClient::connect(addr)?;
    let baseline = fds(&metrics_on(&mut veteran)?)?;

    // The storm: far more connections than the server has descriptors, all held open.
    let mut storm = Vec::new();
    for _ in 0..1000 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            storm.push(s);
        }
    }
    assert!(storm.len() > 500, "only {} connected", storm.len());
    std::thread::sleep(Duration::from_millis(300));
    // It keeps serving the connections it has, and says what is happening.
    let during = metrics_on(&mut veteran)?;
    assert!(
        metric(
            &during,
            r#"wasmgate_connections_rejected_total{kind="emfile"}"#
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{during}"
    );
    // (No `wasmgate_open_fds` in this scrape: at the limit even /proc/self/fd cannot be opened.)

    // When the storm goes away it serves new clients by itself, and gives the descriptors back.
    drop(storm);
    assert!(
        eventually(Duration::from_secs(10), || answers_200(addr, "/health")),
        "serves new clients again"
    );
    // Until the descriptors are back, a scrape may still lack `wasmgate_open_fds`: keep polling.
    assert!(
        try_eventually(Duration::from_secs(10), || Ok(metric(
            &metrics_on(&mut veteran)?,
            "wasmgate_open_fds"
        )
        .is_some_and(|n| n <= baseline + 1.0)))?,
        "descriptors back to {baseline}"
    );
    drop(veteran);
    assert!(scrape(addr)?.contains("wasmgate_open_fds"));
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    assert!(exited.stderr.contains("backing off"), "{}", exited.stderr);
    assert!(!exited.stderr.contains("panicked"), "{}", exited.stderr);
    Ok(())
}
