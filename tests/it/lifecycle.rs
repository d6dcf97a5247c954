//! The real binary: graceful shutdown, EMFILE, bad addresses and configs.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::support::{
    ChildOptions, ChildServer, RawClient, Site, answers_200, eventually, metric, scrape,
};

const FAST: &str = "tests/configs/fast.toml";

const GET_HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn sigterm_drains_in_flight_requests_closes_idle_ones_and_exits_0() -> anyhow::Result<()> {
    let server = ChildServer::start(ChildOptions::serve(FAST))?;
    let addr = server.addr();
    let mut idle = RawClient::connect(addr)?;
    assert_eq!(idle.send(GET_HEALTH)?.response()?.status, 200);
    let mut in_flight = RawClient::connect(addr)?;
    in_flight.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")?;
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGTERM)?;
    assert!(
        idle.is_closed()?,
        "idle keep-alive connections close at once"
    );
    let resp = in_flight.send(b"cd")?.response()?;
    assert_eq!(resp.status, 200, "the in-flight request is answered");
    assert_eq!(resp.header("connection"), Some("close"));
    let exited = server.wait(Duration::from_secs(10))?;
    let stderr = &exited.stderr;
    assert_eq!(exited.code, Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    // `served` also counts the /ready probes made while waiting for the server to start.
    let summary = stderr
        .lines()
        .find(|l| l.contains("server stopped"))
        .with_context(|| format!("no summary line in:\n{stderr}"))?;
    let served: u64 = summary
        .split("served=")
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no served= in {summary:?}"))?;
    assert!(served >= 2 && summary.contains("forced=0"), "{summary}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer accepting"
    );
    Ok(())
}

#[test]
fn sigint_with_a_stuck_request_forces_it_after_the_grace_period() -> anyhow::Result<()> {
    let server = ChildServer::start(ChildOptions::serve(FAST))?;
    let mut stuck = RawClient::connect(server.addr())?;
    stuck.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")?;
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    server.signal(libc::SIGINT)?;
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    assert!(exited.stderr.contains("forced=1"), "{}", exited.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the grace period (500ms) bounds the wait"
    );
    Ok(())
}

#[test]
fn running_out_of_descriptors_backs_off_and_recovers() -> anyhow::Result<()> {
    let _calm = crate::support::exclusive_network();
    let server = ChildServer::start(ChildOptions {
        nofile: Some(64),
        ..ChildOptions::serve(FAST)
    })?;
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
    let metrics = scrape(addr)?;
    let emfile = metric(
        &metrics,
        r#"wasmgate_connections_rejected_total{kind="emfile"}"#,
    );
    assert!(emfile.unwrap_or(0.0) >= 1.0, "EMFILE counted:\n{metrics}");
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    assert!(exited.stderr.contains("backing off"), "{}", exited.stderr);
    Ok(())
}

#[test]
fn an_address_in_use_is_a_one_line_error() -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let server = ChildServer::start(ChildOptions {
        wait_ready: false,
        ..ChildOptions::new(&["serve", "--config", FAST, "--listen", &addr])
    })?;
    let exited = server.wait(Duration::from_secs(10))?;
    let stderr = &exited.stderr;
    assert_eq!(exited.code, Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .with_context(|| format!("no error line in:\n{stderr}"))?;
    assert!(
        line.contains(&format!("cannot listen on {addr}")) && line.contains("in use"),
        "{line}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}

#[test]
fn an_invalid_config_names_the_key_and_line_and_exits_2() -> anyhow::Result<()> {
    let site = Site::new("lifecycle-config")?;
    site.replace(
        "bad.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_conns = 3\n",
    )?;
    let config = site.path("bad.toml").to_string_lossy().into_owned();
    let server = ChildServer::start(ChildOptions {
        wait_ready: false,
        ..ChildOptions::new(&["serve", "--config", &config])
    })?;
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(2), "{}", exited.stderr);
    assert!(
        exited
            .stderr
            .contains("bad.toml:3:1: unknown field `max_conns`"),
        "{}",
        exited.stderr
    );
    Ok(())
}
