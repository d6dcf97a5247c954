//! Redirects: handed to the plugin unless `[outbound] max_redirects` allows them; followed ones
//! are checked against the allow-list at every hop (a refused hop makes no connection), bounded
//! (at the limit and one past it), and change the request as browsers do.

use super::*;

#[tokio::test]
async fn redirects_are_returned_unless_followed_and_followed_ones_are_checked() {
    let other = Upstream::start(Script::Ok).await;
    let target: &'static str =
        Box::leak(format!("http://other.test:{}/", other.addr.port()).into_boxed_str());
    let up = Upstream::start(Script::RedirectTo(target)).await;
    let pinned = |s: &mut OutboundSettings| {
        s.resolve
            .insert("other.test".into(), "127.0.0.1".parse().unwrap());
    };
    // Not followed by default: the plugin gets the 302.
    let c = client(&settings(pinned), &["http://127.0.0.1:*"]);
    let answer = c
        .send(get(&up.url("/")), &Forwarded::default(), later(), None)
        .await
        .unwrap();
    assert_eq!(answer.status, 302);
    // Followed, to a host not on the list: refused, and the other upstream never sees a connection.
    let c = client(
        &settings(|s| {
            pinned(s);
            s.max_redirects = 3;
        }),
        &["http://127.0.0.1:*"],
    );
    let err = c
        .send(get(&up.url("/")), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::NotAllowed { .. }), "{err}");
    assert_eq!(other.accepted(), 0);
}

#[tokio::test]
async fn followed_redirects_change_method_and_credentials_as_browsers_do_and_are_bounded() {
    let other = Upstream::start(Script::Ok).await;
    let target: &'static str =
        Box::leak(format!("http://127.0.0.1:{}/landed", other.addr.port()).into_boxed_str());
    let see_other = Upstream::start(Script::Redirect(303, target)).await;
    let temporary = Upstream::start(Script::Redirect(307, target)).await;
    let c = client(&settings(|s| s.max_redirects = 2), &["http://127.0.0.1:*"]);
    let post = |url: &'static str| Call {
        method: b"POST",
        url: url.as_bytes(),
        headers: vec![
            (b"authorization", b"Bearer secret"),
            (b"content-type", b"text/plain"),
        ],
        body: b"payload",
    };
    let url: &'static str = Box::leak(see_other.url("/form").into_boxed_str());
    let answer = c
        .send(post(url), &Forwarded::default(), later(), None)
        .await;
    assert_eq!(answer.unwrap().status, 200);
    let head = other.last_head();
    assert!(
        head.starts_with("get /landed http/1.1\r\n"),
        "303 makes a GET: {head}"
    );
    assert!(!head.contains("content-length"), "without the body: {head}");
    assert!(!head.contains("content-type"), "{head}");
    assert!(
        !head.contains("authorization"),
        "another origin gets no credentials: {head}"
    );
    assert!(head.contains("user-agent: wasmgate/"), "{head}");

    let url: &'static str = Box::leak(temporary.url("/form").into_boxed_str());
    let answer = c
        .send(post(url), &Forwarded::default(), later(), None)
        .await;
    assert_eq!(answer.unwrap().status, 200);
    let head = other.last_head();
    assert!(
        head.starts_with("post /landed http/1.1\r\n"),
        "307 repeats: {head}"
    );
    assert!(head.contains("content-length: 7"), "with the body: {head}");

    // A loop ends at max_redirects.
    let looping = Upstream::start(Script::RedirectTo("/again")).await;
    let err = c
        .send(get(&looping.url("/")), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Protocol(_)), "{err}");
    assert!(err.to_string().contains("more than 2 redirects"), "{err}");
    assert_eq!(looping.received(), 3, "the request and two hops");
    assert_eq!(
        looping.accepted(),
        1,
        "hops to the same upstream reuse its connection"
    );
}

#[tokio::test]
async fn redirects_up_to_max_redirects_are_followed_and_one_more_is_refused() {
    let end = Upstream::start(Script::Ok).await;
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let middle = Upstream::start(Script::RedirectTo(leak(end.url("/end")))).await;
    let start = Upstream::start(Script::RedirectTo(leak(middle.url("/middle")))).await;
    let allow = ["http://127.0.0.1:*"];
    let c = client(&settings(|s| s.max_redirects = 2), &allow);
    let answer = c
        .send(get(&start.url("/")), &Forwarded::default(), later(), None)
        .await;
    assert_eq!(answer.unwrap().body, b"hello", "two hops, two allowed");
    let c = client(&settings(|s| s.max_redirects = 1), &allow);
    let err = c
        .send(get(&start.url("/")), &Forwarded::default(), later(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Protocol(_)), "{err}");
    assert!(err.to_string().contains("more than 1 redirects"), "{err}");
    assert_eq!(end.accepted(), 1, "the hop past the limit was not made");
}
