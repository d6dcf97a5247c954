//! The real binary: graceful shutdown, EMFILE, bad addresses and configs.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::{ChildServer, RawClient, answers_200, eventually, exchange};

const SERVE_FAST: &[&str] = &[
    "serve",
    "--config",
    "tests/configs/fast.toml",
    "--listen",
    "127.0.0.1:0",
];

#[test]
fn sigterm_drains_in_flight_requests_closes_idle_ones_and_exits_0() {
    let server = ChildServer::spawn(SERVE_FAST, None, true);
    let addr = server.addr();
    let mut idle = RawClient::connect(addr);
    idle.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.response().status, 200);
    let mut in_flight = RawClient::connect(addr);
    in_flight.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGTERM);
    assert!(
        idle.is_closed(),
        "idle keep-alive connections close at once"
    );
    in_flight.send(b"cd");
    let resp = in_flight.response();
    assert_eq!(resp.status, 200, "the in-flight request is answered");
    assert_eq!(resp.header("connection"), Some("close"));
    let (code, stderr) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    // `served` also counts the /ready probes made while waiting for the server to start.
    let summary = stderr
        .lines()
        .find(|l| l.contains("server stopped"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let served: u64 = summary
        .split("served=")
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(served >= 2 && summary.contains("forced=0"), "{summary}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer accepting"
    );
}

#[test]
fn sigint_with_a_stuck_request_forces_it_after_the_grace_period() {
    let server = ChildServer::spawn(SERVE_FAST, None, true);
    let mut stuck = RawClient::connect(server.addr());
    stuck.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab");
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    server.signal(libc::SIGINT);
    let (code, stderr) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("forced=1"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the grace period (500ms) bounds the wait"
    );
}

#[test]
fn running_out_of_descriptors_backs_off_and_recovers() {
    let _calm = crate::support::exclusive_network();
    let server = ChildServer::spawn(SERVE_FAST, Some(64), true);
    let addr = server.addr();
    // Hold far more connections than the server has descriptors for.
    let mut held = Vec::new();
    for _ in 0..150 {
        if let Ok(s) = std::net::TcpStream::connect(addr) {
            held.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    // It kept running, and serves again by itself once clients go away.
    assert!(
        eventually(Duration::from_secs(10), || answers_200(addr, "/health")),
        "serves again"
    );
    let metrics = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text();
    let emfile = crate::support::metric(
        &metrics,
        r#"wasmgate_connections_rejected_total{kind="emfile"}"#,
    );
    assert!(emfile.unwrap_or(0.0) >= 1.0, "EMFILE counted:\n{metrics}");
    server.signal(libc::SIGTERM);
    let (code, stderr) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(stderr.contains("backing off"), "{stderr}");
}

#[test]
fn an_address_in_use_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let server = ChildServer::spawn(
        &[
            "serve",
            "--config",
            "tests/configs/fast.toml",
            "--listen",
            &addr,
        ],
        None,
        false,
    );
    let (code, stderr) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(1));
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains(&format!("cannot listen on {addr}")) && line.contains("in use"),
        "{line}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_invalid_config_names_the_key_and_line_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("wasmgate-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"[server]\nlisten = \"127.0.0.1:0\"\nmax_conns = 3\n")
        .unwrap();
    let server = ChildServer::spawn(&["serve", "--config", path.to_str().unwrap()], None, false);
    let (code, stderr) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml:3:1: unknown field `max_conns`"),
        "{stderr}"
    );
}
