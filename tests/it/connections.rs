//! Connection handling: timeouts, the connection cap, clients that vanish.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::support::{TestServer, eventually};

const FAST_TIMEOUTS: &str = "[timeouts]\nheader_read = \"300ms\"\nbody_read = \"300ms\"\nidle = \"300ms\"\nlinger = \"100ms\"\n";

const GET_HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn slowloris_head_gets_408_then_close() -> anyhow::Result<()> {
    let server = TestServer::start(FAST_TIMEOUTS)?;
    let mut c = server.connect()?;
    let started = Instant::now();
    // Trickle a byte at a time: the deadline covers the whole head, so trickling does not extend it.
    for b in b"GET /health HTTP/1.1\r\nHo" {
        c.send(&[*b])?;
        std::thread::sleep(Duration::from_millis(15));
    }
    let resp = c.response()?;
    assert_eq!(resp.status, 408);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed()?);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        server.metric(r#"wasmgate_timeouts_total{kind="header_read"}"#),
        1.0
    );
    Ok(())
}

#[test]
fn a_silent_connection_is_closed_at_the_header_deadline() -> anyhow::Result<()> {
    let server = TestServer::start(FAST_TIMEOUTS)?;
    let mut c = server.connect()?;
    assert!(
        c.is_closed()?,
        "closed without an answer: nothing was asked"
    );
    assert!(eventually(Duration::from_secs(2), || server.metric(
        r#"wasmgate_connections_closed_total{reason="header_timeout"}"#
    ) == 1.0));
    Ok(())
}

#[test]
fn idle_keep_alive_connections_are_closed() -> anyhow::Result<()> {
    let server = TestServer::start(FAST_TIMEOUTS)?;
    let mut c = server.connect()?;
    assert_eq!(c.send(GET_HEALTH)?.response()?.status, 200);
    let idle_from = Instant::now();
    assert!(c.is_closed()?);
    assert!(idle_from.elapsed() >= Duration::from_millis(250));
    assert!(eventually(Duration::from_secs(2), || server
        .metric(r#"wasmgate_timeouts_total{kind="idle"}"#)
        == 1.0));
    Ok(())
}

#[test]
fn a_stalled_body_gets_408() -> anyhow::Result<()> {
    let server = TestServer::start(FAST_TIMEOUTS)?;
    let mut c = server.connect()?;
    c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")?;
    let resp = c.response()?;
    assert_eq!(resp.status, 408);
    assert!(c.is_closed()?);
    assert_eq!(
        server.metric(r#"wasmgate_timeouts_total{kind="body_read"}"#),
        1.0
    );
    Ok(())
}

#[test]
fn a_client_that_stops_reading_is_closed_on_the_write_timeout() -> anyhow::Result<()> {
    let server = TestServer::start("[timeouts]\nwrite = \"300ms\"\n")?;
    let mut c = server.connect()?;
    // Pipeline enough requests for /metrics responses to fill both socket buffers, never reading.
    // The send itself fails (or times out) once the server gives up on us: that is the point.
    let req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    c.set_write_timeout(Duration::from_secs(5))?;
    let _ = c.send(&req);
    assert!(
        eventually(Duration::from_secs(10), || server
            .metric(r#"wasmgate_timeouts_total{kind="write"}"#)
            == 1.0),
        "{}",
        server.metrics()
    );
    Ok(())
}

#[test]
fn a_reset_mid_body_costs_only_that_connection() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    {
        let mut c = server.connect()?;
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")?;
        crate::support::reset(c.into_stream())?;
    }
    assert!(eventually(Duration::from_secs(2), || server.metric(
        r#"wasmgate_connections_closed_total{reason="client_closed"}"#
    ) == 1.0));
    assert_eq!(server.get("/health")?.status, 200);
    Ok(())
}

#[test]
fn at_max_connections_new_clients_wait_in_the_backlog() -> anyhow::Result<()> {
    let server = TestServer::start("[server]\nmax_connections = 2\n")?;
    let mut a = server.connect()?;
    let mut b = server.connect()?;
    a.send(GET_HEALTH)?;
    b.send(GET_HEALTH)?;
    assert_eq!((a.response()?.status, b.response()?.status), (200, 200));
    // The third connects (the kernel accepts into the backlog) but is not served...
    let mut c = std::net::TcpStream::connect(server.addr())?;
    c.write_all(GET_HEALTH)?;
    c.set_read_timeout(Some(Duration::from_millis(300)))?;
    let mut buf = [0u8; 64];
    assert!(
        c.read(&mut buf).is_err(),
        "not served while two connections are open"
    );
    assert_eq!(server.metric("wasmgate_connections_accepted_total"), 2.0);
    // ...until a slot frees up; nothing was dropped.
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let n = c.read(&mut buf)?;
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    Ok(())
}

#[test]
fn the_read_buffer_stays_bounded_by_the_head_limit() -> anyhow::Result<()> {
    let server = TestServer::start("[http]\nmax_header_bytes = \"4KiB\"\n")?;
    let mut c = server.connect()?;
    // An endless header line: refused at the limit, not buffered.
    let chunk = vec![b'a'; 1024];
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ")?;
    for _ in 0..8 {
        if c.send(&chunk).is_err() {
            break;
        }
    }
    assert_eq!(c.response()?.status, 431);
    Ok(())
}

#[test]
fn requests_per_connection_are_capped() -> anyhow::Result<()> {
    let server = TestServer::start("[server]\nmax_requests_per_connection = 2\n")?;
    let mut c = server.connect()?;
    assert_eq!(c.send(GET_HEALTH)?.response()?.header("connection"), None);
    assert_eq!(
        c.send(GET_HEALTH)?.response()?.header("connection"),
        Some("close")
    );
    assert!(c.is_closed()?);
    Ok(())
}

#[test]
fn stopping_closes_idle_connections_and_reports_what_was_served() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let mut idle = server.connect()?;
    idle.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")?;
    idle.response()?;
    idle.response()?;
    let summary = server.stop();
    assert_eq!((summary.served, summary.forced), (2, 0));
    assert!(idle.is_closed()?);
    Ok(())
}

#[test]
fn a_body_dripped_just_inside_the_stall_timeout_is_cut_at_the_total_deadline() -> anyhow::Result<()>
{
    let server = TestServer::start(
        "[timeouts]\nbody_read = \"200ms\"\nbody_total = \"600ms\"\nlinger = \"100ms\"\n",
    )?;
    let mut c = server.connect()?;
    c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")?;
    let started = Instant::now();
    for _ in 0..20 {
        // One byte every 100 ms never stalls for 200 ms...
        if c.send(b"x").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_millis(900) {
            break;
        }
    }
    // ...but the whole body had 600 ms.
    assert_eq!(c.response()?.status, 408);
    assert_eq!(
        server.metric(r#"wasmgate_timeouts_total{kind="body_total"}"#),
        1.0
    );
    Ok(())
}
