//! One outbound call at a time: what is allowed works and carries the host's headers; every
//! refusal (allow-list, guard, invalid input, size) happens before a connection; the bounds
//! (timeout, deadline, response and request size) hold at their limit and one past it; each
//! failure (connect, protocol, TLS) is its own error.

use super::*;

#[tokio::test]
async fn an_allowed_call_works_and_carries_the_hosts_headers() {
    let up = Upstream::start(Script::Ok).await;
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    let forwarded = Forwarded {
        request_id: Some("00000000000000ab".into()),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
    };
    let answer = c
        .send(get(&up.url("/x")), &forwarded, later(), None)
        .await
        .unwrap();
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &b"hello"[..])
    );
    assert!(answer.headers.iter().any(|(n, v)| n == "x-up" && v == b"1"));
    let head = up.last_head();
    assert!(head.starts_with("get /x http/1.1\r\n"), "{head}");
    assert!(head.contains("user-agent: wasmgate/"), "{head}");
    assert!(head.contains("x-request-id: 00000000000000ab"), "{head}");
    assert!(head.contains("traceparent: 00-0af7651916cd43dd"), "{head}");
    // The connection is reused for the next call.
    c.send(get(&up.url("/y")), &forwarded, later(), None)
        .await
        .unwrap();
    assert_eq!(up.accepted(), 1);
}

/// Issue 20, item 7: a plugin's own `x-request-id` and `traceparent` never reach the upstream;
/// the host's do, and with nothing to forward, none does.
#[tokio::test]
async fn the_plugins_own_correlation_headers_are_replaced_by_the_hosts() {
    let up = Upstream::start(Script::Ok).await;
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    let url = up.url("/");
    let forged = || Call {
        method: b"GET",
        url: url.as_bytes(),
        headers: vec![
            (&b"x-request-id"[..], &b"forged-id"[..]),
            (
                &b"traceparent"[..],
                &b"00-11111111111111111111111111111111-2222222222222222-01"[..],
            ),
        ],
        body: b"",
    };
    let forwarded = Forwarded {
        request_id: Some("00000000000000ab".into()),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
    };
    c.send(forged(), &forwarded, later(), None).await.unwrap();
    let head = up.last_head();
    assert!(
        head.contains("x-request-id: 00000000000000ab\r\n"),
        "{head}"
    );
    assert!(head.contains("traceparent: 00-0af7651916cd43dd"), "{head}");
    assert!(!head.contains("forged") && !head.contains("1111"), "{head}");
    c.send(forged(), &Forwarded::default(), later(), None)
        .await
        .unwrap();
    let head = up.last_head();
    assert!(
        !head.contains("x-request-id") && !head.contains("traceparent"),
        "{head}"
    );
}

#[tokio::test]
async fn a_host_not_on_the_list_is_refused_without_a_connection_naming_the_entry() {
    let up = Upstream::start(Script::Ok).await;
    let c = client(&settings(|_| {}), &["http://127.0.0.2:*"]);
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::NotAllowed { .. }), "{err}");
    let port = up.addr.port();
    assert!(
        err.to_string().contains(&format!(
            "add \"http://127.0.0.1:{port}\" to its allowed_outbound_hosts"
        )),
        "{err}"
    );
    // Another scheme, another port: not allowed either.
    let c = client(&settings(|_| {}), &[&format!("https://127.0.0.1:{port}")]);
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later(), None)
        .await;
    assert!(matches!(err, Err(OutboundError::NotAllowed { .. })));
    assert_eq!(up.accepted(), 0);
}

#[tokio::test]
async fn an_allowed_name_resolving_to_a_guarded_address_is_refused_before_connecting() {
    let up = Upstream::start(Script::Ok).await;
    let s = settings(|s| {
        s.resolve
            .insert("api.test".into(), "127.0.0.1".parse().unwrap());
    });
    let c = client(&s, &["http://api.test:*"]);
    let url = format!("http://api.test:{}/", up.addr.port());
    let err = c
        .send(get(&url), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::AddressBlocked { .. }), "{err}");
    assert!(err.to_string().contains("loopback"), "{err}");
    assert_eq!(up.accepted(), 0, "no connection was made");
    // Naming the address itself allows it.
    let c = client(&s, &["http://api.test:*", "http://127.0.0.1:*"]);
    let answer = c
        .send(get(&url), &Forwarded::default(), later(), None)
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
}

/// Issue 20, item 7: with `outbound_timeout` past the request's deadline, the call still ends
/// with `timeout` `outbound_reserve` before the deadline, so the guest has that long to answer
/// (before, it ended at the deadline itself, racing the request's 504).
#[tokio::test]
async fn a_call_ends_the_reserve_before_the_deadline_when_its_timeout_is_later() {
    let up = Upstream::start(Script::Slow(Duration::from_secs(5))).await;
    let limits = PluginLimits {
        deadline: Duration::from_secs(1),
        outbound_timeout: Duration::from_secs(10),
        outbound_reserve: Duration::from_millis(300),
        ..PluginLimits::default()
    };
    let c = bounded(
        &settings(|_| {}),
        |b| *b = Bounds::of(&limits),
        &["http://127.0.0.1:*"],
    );
    let started = Instant::now();
    let deadline = started + limits.deadline;
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), deadline, None)
        .await
        .unwrap_err();
    let ended = Instant::now();
    assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    assert!(
        ended + Duration::from_millis(250) <= deadline,
        "ended {:?} before the deadline",
        deadline.saturating_duration_since(ended)
    );
    assert!(
        ended - started >= Duration::from_millis(690),
        "{:?}",
        ended - started
    );

    // A reserve of the whole deadline or more keeps back half of it: the call still gets a turn.
    let half = PluginLimits {
        outbound_reserve: Duration::from_secs(5),
        ..limits
    };
    let c = bounded(
        &settings(|_| {}),
        |b| *b = Bounds::of(&half),
        &["http://127.0.0.1:*"],
    );
    let started = Instant::now();
    let err = c
        .send(
            get(&up.url("/")),
            &Forwarded::default(),
            started + half.deadline,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(490) && took < Duration::from_millis(900),
        "{took:?}"
    );
}

/// `http_send_timeout`: the guest's own bound ends a call sooner than the host's, and can never
/// make it later.
#[tokio::test]
async fn a_guests_timeout_shortens_the_calls_bound_and_never_lengthens_it() {
    let up = Upstream::start(Script::Slow(Duration::from_secs(5))).await;
    let c = bounded(
        &settings(|_| {}),
        |b| b.timeout = Duration::from_millis(400),
        &["http://127.0.0.1:*"],
    );
    let started = Instant::now();
    let err = c
        .send(
            get(&up.url("/")),
            &Forwarded::default(),
            later(),
            Some(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(95) && took < Duration::from_millis(350),
        "the guest's 100 ms: {took:?}"
    );
    let started = Instant::now();
    let err = c
        .send(
            get(&up.url("/")),
            &Forwarded::default(),
            later(),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(390) && took < Duration::from_secs(2),
        "the host's 400 ms, not the guest's minute: {took:?}"
    );
}

#[tokio::test]
async fn a_slow_upstream_times_out_at_the_calls_bound_and_at_the_deadline() {
    let up = Upstream::start(Script::Slow(Duration::from_secs(5))).await;
    let c = bounded(
        &settings(|_| {}),
        |b| b.timeout = Duration::from_millis(300),
        &["http://127.0.0.1:*"],
    );
    let started = Instant::now();
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The inbound request's deadline comes first when it is nearer.
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_millis(100);
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), deadline, None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    // A call given up closes its connection (hyper closes one whose answer nobody waits for), so
    // a hung upstream cannot keep the destination's places.
    assert!(
        eventually(Duration::from_secs(1), || open_to(&c, &up.url("/")) == 0).await,
        "{} places still taken",
        open_to(&c, &up.url("/"))
    );
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_cap() {
    let up = Upstream::start(Script::Endless).await;
    let c = bounded(
        &settings(|_| {}),
        |b| b.max_response_bytes = 100_000,
        &["http://127.0.0.1:*"],
    );
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::TooLarge(_)), "{err}");
    // The cut connection is closed, not pooled: its place comes back.
    assert!(
        eventually(Duration::from_secs(1), || open_to(&c, &up.url("/")) == 0).await,
        "{} places still taken",
        open_to(&c, &up.url("/"))
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    let url = format!("http://127.0.0.1:{port}/");
    let err = c
        .send(get(&url), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Connect(_)), "{err}");
}

#[test]
fn a_tls_failure_inside_an_io_error_is_recognised() {
    // What the connector hands hyper when the certificate does not verify (tokio-rustls's
    // io::Error inside the connector's): classified `connect` before `is_tls` looked inside.
    let failure = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, failure.clone());
    let connector = std::io::Error::other(tls);
    assert!(tls::is_tls(&connector));
    assert!(tls::is_tls(&failure));
    assert!(!tls::is_tls(&std::io::Error::other("connection refused")));
}

#[tokio::test]
async fn every_invalid_call_is_refused_before_a_connection() {
    let up = Upstream::start(Script::Ok).await;
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    let port = up.addr.port();
    let url = up.url("/");
    let urls = [
        "not a url".to_string(),
        "/relative".to_string(),
        format!("ftp://127.0.0.1:{port}/"),
        format!("http://user:hunter2@127.0.0.1:{port}/"),
        format!("http://user@127.0.0.1:{port}/"),
    ];
    for bad in &urls {
        let err = c
            .send(get(bad), &Forwarded::default(), later(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::Invalid(_)), "{bad}: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    let methods: [&[u8]; 3] = [b"", b"G T", b"G\x00T"];
    for method in methods {
        let call = Call {
            method,
            ..get(&url)
        };
        let err = c.send(call, &Forwarded::default(), later(), None).await;
        assert!(matches!(err, Err(OutboundError::Invalid(_))), "{method:?}");
    }
    let headers: [(&[u8], &[u8]); 8] = [
        (b"host", b"evil"),
        (b"Content-Length", b"0"),
        (b"transfer-encoding", b"chunked"),
        (b"connection", b"close"),
        (b"upgrade", b"websocket"),
        (b"bad name", b"x"),
        (b"", b"x"),
        (b"x-fine", b"a\r\nb"),
    ];
    for header in headers {
        let call = Call {
            headers: vec![header],
            ..get(&url)
        };
        let err = c.send(call, &Forwarded::default(), later(), None).await;
        assert!(matches!(err, Err(OutboundError::Invalid(_))), "{header:?}");
    }
    assert_eq!(up.accepted(), 0, "no invalid call made a connection");
}

#[tokio::test]
async fn a_response_body_at_the_cap_is_read_and_one_byte_more_is_too_large() {
    const CAP: usize = 1000;
    for (script, name) in [
        (Script::Sized as fn(usize) -> Script, "content-length"),
        (Script::ChunkedSized, "chunked"),
    ] {
        let at = Upstream::start(script(CAP)).await;
        let past = Upstream::start(script(CAP + 1)).await;
        let c = bounded(
            &settings(|_| {}),
            |b| b.max_response_bytes = CAP,
            &["http://127.0.0.1:*"],
        );
        let answer = c
            .send(get(&at.url("/")), &Forwarded::default(), later(), None)
            .await;
        assert_eq!(answer.unwrap().body.len(), CAP, "{name}");
        let err = c
            .send(get(&past.url("/")), &Forwarded::default(), later(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::TooLarge(_)), "{name}: {err}");
        assert!(err.to_string().contains("(1000)"), "{err}");
    }
}

#[tokio::test]
async fn a_request_body_at_the_cap_is_sent_and_one_byte_more_is_too_large_unsent() {
    const CAP: usize = 1000;
    let up = Upstream::start(Script::Ok).await;
    let c = bounded(
        &settings(|_| {}),
        |b| b.max_request_bytes = CAP,
        &["http://127.0.0.1:*"],
    );
    let url = up.url("/");
    let post = |body| Call {
        method: b"POST",
        body,
        ..get(&url)
    };
    let at = vec![b'x'; CAP];
    let answer = c
        .send(post(&at), &Forwarded::default(), later(), None)
        .await;
    assert_eq!(answer.unwrap().status, 200);
    let head = up.last_head();
    assert!(head.contains("content-length: 1000\r\n"), "{head}");
    let past = vec![b'x'; CAP + 1];
    let err = c
        .send(post(&past), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::TooLarge(_)), "{err}");
    assert_eq!(up.received(), 1, "the second was not sent");
}

#[tokio::test]
async fn an_upstream_that_breaks_http_is_a_protocol_error() {
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    for script in [Script::Garbage, Script::Hangup] {
        let up = Upstream::start(script).await;
        let err = c
            .send(get(&up.url("/")), &Forwarded::default(), later(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::Protocol(_)), "{err}");
        assert_eq!(up.accepted(), 1, "not retried: {err}");
    }
}

#[tokio::test]
async fn a_tls_handshake_that_never_completes_fails_connect_at_connect_timeout() {
    let up = Upstream::start(Script::Silent).await;
    let c = client(
        &settings(|s| s.connect_timeout = Duration::from_millis(300)),
        &["https://127.0.0.1:*"],
    );
    let started = Instant::now();
    let url = format!("https://127.0.0.1:{}/", up.addr.port());
    let err = c
        .send(get(&url), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, OutboundError::Connect(_)), "{err}");
    assert!(err.to_string().contains("connect_timeout"), "{err}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(up.accepted(), 1);
}

/// A `CONNECT` call is not refused, and is not a tunnel either (docs/ABI.md, "An outbound
/// request"): it goes out in authority form (`CONNECT host:port`, the path dropped), and a 2xx
/// answer comes back with its headers and no body (the client treats it as the start of a
/// tunnel the plugin has no way to use), on a connection that is not reused. Pinned because the
/// docs say so; whether to refuse it is a decision of its own.
#[tokio::test]
async fn a_connect_call_goes_out_in_authority_form_and_its_answer_has_no_body() {
    let up = Upstream::start(Script::Ok).await;
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    let url = up.url("/x");
    let call = Call {
        method: b"CONNECT",
        url: url.as_bytes(),
        headers: vec![],
        body: b"",
    };
    let answer = c
        .send(call, &Forwarded::default(), later(), None)
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty(), "{:?}", answer.body);
    let head = up.last_head();
    let port = url.rsplit(':').next().unwrap().trim_end_matches("/x");
    assert!(
        head.starts_with(&format!("connect 127.0.0.1:{port} http/1.1\r\n")),
        "{head}"
    );
    c.send(get(&url), &Forwarded::default(), later(), None)
        .await
        .unwrap();
    assert_eq!(up.accepted(), 2, "the CONNECT's connection is not reused");
}
