//! The built-in routes through a real HTTP client.

use crate::support::{TestServer, exchange, metric};

#[test]
fn health_answers_ok_with_uptime() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let resp = ureq::get(&server.url("/health")).call()?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert!(resp.header("date").is_some());
    let body: serde_json::Value = serde_json::from_str(&resp.into_string()?)?;
    assert_eq!(body["status"], "ok");
    assert!(body["uptime"].as_u64().is_some(), "{body}");
    Ok(())
}

#[test]
fn metrics_expose_every_family_after_traffic() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    for _ in 0..3 {
        ureq::get(&server.url("/health")).call()?;
    }
    // A 404 is an `Err` to ureq, and the point here.
    let _ = ureq::get(&server.url("/nope")).call();
    let resp = ureq::get(&server.url("/metrics")).call()?;
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = resp.into_string()?;
    assert_eq!(
        metric(
            &text,
            r#"wasmgate_requests_total{route="/health",method="GET",status="200"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"wasmgate_requests_total{route="none",method="GET",status="404"}"#
        ),
        Some(1.0)
    );
    for family in [
        "wasmgate_connections_accepted_total",
        "wasmgate_connections_active",
        r#"wasmgate_connections{state="dispatching"}"#,
        r#"wasmgate_request_duration_seconds_bucket{le="0.0001",route="/health"}"#,
        r#"wasmgate_request_duration_quantile_seconds{route="/health",quantile="0.99"}"#,
        "wasmgate_received_bytes_total",
        "wasmgate_sent_bytes_total",
        "wasmgate_resident_memory_bytes",
        "wasmgate_open_fds",
        "wasmgate_max_fds",
        "wasmgate_allocated_bytes_total",
        "wasmgate_allocations_total",
    ] {
        assert!(
            metric(&text, family).is_some(),
            "missing {family} in\n{text}"
        );
    }
    Ok(())
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_with_allow() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let err = ureq::get(&server.url("/missing"))
        .call()
        .expect_err("a 404 is an error to ureq");
    let ureq::Error::Status(404, resp) = err else {
        panic!("{err:?}")
    };
    let body: serde_json::Value = serde_json::from_str(&resp.into_string()?)?;
    assert_eq!(body["error"], "not_found");
    let err = ureq::post(&server.url("/health"))
        .send_string("x")
        .expect_err("a 405 is an error to ureq");
    let ureq::Error::Status(405, resp) = err else {
        panic!("{err:?}")
    };
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    Ok(())
}

#[test]
fn head_gets_the_headers_of_get_without_a_body() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let mut c = server.connect()?;
    c.send(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let head = c.response_to(true)?;
    let get = c.response()?;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        get.header("content-length"),
        "HEAD announces GET's length"
    );
    Ok(())
}

#[test]
fn server_wide_options_is_answered() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let resp = exchange(server.addr(), b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")?;
    assert_eq!(resp.status, 200);
    Ok(())
}
