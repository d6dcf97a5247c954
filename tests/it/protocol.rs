//! The wire protocol end to end, with raw bytes: malformed input, framing, pipelining, 100-continue.

use crate::support::{TestServer, exchange};

#[test]
fn malformed_requests_get_their_status_and_the_connection_closes() -> anyhow::Result<()> {
    let server = TestServer::start(
        "[http]\nmax_target_bytes = 64\nmax_header_bytes = 512\nmax_body_bytes = 16\n",
    )?;
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100));
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(600)
    );
    let cases: Vec<(&[u8], u16)> = vec![
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),                                      // no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),               // two Hosts
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),               // obs-fold
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),                         // space before colon
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400), // chunked not final: MUST 400
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n", 413),
        (long_target.as_bytes(), 414),
        (big_header.as_bytes(), 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417),
    ];
    for (request, status) in cases {
        let mut c = server.connect()?;
        let resp = c.send(request)?.response()?;
        assert_eq!(
            resp.status,
            status,
            "{:?}",
            String::from_utf8_lossy(request)
        );
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(resp.json()?["error"].is_string());
        assert!(
            c.is_closed()?,
            "closed after {:?}",
            String::from_utf8_lossy(request)
        );
    }
    assert!(
        server.metric(r#"wasmgate_parse_errors_total{kind="missing_host"}"#) >= 1.0,
        "{}",
        server.metrics()
    );
    Ok(())
}

#[test]
fn pipelined_requests_are_answered_in_order() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let mut c = server.connect()?;
    c.send(
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
          GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )?;
    let statuses = (0..5)
        .map(|_| c.response().map(|r| r.status))
        .collect::<std::io::Result<Vec<u16>>>()?;
    assert_eq!(statuses, [200, 404, 200, 405, 200]);
    assert!(c.is_closed()?);
    Ok(())
}

#[test]
fn a_body_is_never_read_as_the_next_request() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let mut c = server.connect()?;
    // The body of this GET looks like a request; it must be consumed as a body.
    let smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let req = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    );
    c.send(req.as_bytes())?
        .send(smuggled)?
        .send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")?;
    assert_eq!(c.response()?.status, 200);
    assert_eq!(
        c.response()?.status,
        404,
        "the next request is the one after the body"
    );
    Ok(())
}

#[test]
fn http10_closes_unless_keep_alive_is_asked_for() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let mut c = server.connect()?;
    assert_eq!(
        c.send(b"GET /health HTTP/1.0\r\n\r\n")?.response()?.status,
        200
    );
    assert!(c.is_closed()?);
    let mut c = server.connect()?;
    let resp = c
        .send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?
        .response()?;
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    assert_eq!(
        c.send(b"GET /health HTTP/1.0\r\n\r\n")?.response()?.status,
        200
    );
    Ok(())
}

#[test]
fn connection_close_is_honoured_and_absolute_form_is_accepted() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let resp = exchange(server.addr(), b"GET http://example.com/health?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    Ok(())
}

#[test]
fn expect_100_continue_gets_the_interim_response_first() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    let mut c = server.connect()?;
    c.send(
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )?;
    assert_eq!(
        c.response()?.status,
        100,
        "the interim response comes before the body is sent"
    );
    assert_eq!(c.send(b"hello")?.response()?.status, 200);
    // Refused before the body: no 100, a final answer, and the connection closes.
    let mut c = server.connect()?;
    c.send(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")?;
    assert_eq!(c.response()?.status, 404);
    assert!(c.is_closed()?);
    Ok(())
}

#[test]
fn leading_empty_lines_are_ignored() -> anyhow::Result<()> {
    let server = TestServer::start("")?;
    assert_eq!(
        exchange(
            server.addr(),
            b"\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        )?
        .status,
        200
    );
    Ok(())
}
