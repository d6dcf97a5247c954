//! The plugin's routes end to end, through `testing::call` (the exact encode → handle → decode
//! path of the host) with the SDK's stand-ins for variables, the store and outbound HTTP.

use super::*;
use crate::store::fault;
use std::time::Duration;
use wasmgate_sdk::http;
use wasmgate_sdk::serde_json::{Value, json};
use wasmgate_sdk::testing;
use wasmgate_sdk::wire::Errno;

/// Runs the plugin's entry point exactly as `handler!` does.
fn call(req: Request) -> Response {
    testing::call(|req| routes().handle(req), req)
}

fn body(resp: &Response) -> Value {
    resp.body_json()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", resp.body_text()))
}

/// Asserts the status and the host-shaped error body, and returns the message.
fn assert_error(resp: &Response, status: u16, kind: &str) -> String {
    assert_eq!(resp.status(), status, "{:?}", resp.body_text());
    assert_eq!(resp.header_value("content-type"), Some("application/json"));
    let v = body(resp);
    assert_eq!(v["error"], kind, "{v}");
    v["message"].as_str().expect("a message").to_owned()
}

fn post_raw(body: &str) -> wasmgate_sdk::RequestBuilder {
    Request::builder()
        .method("POST")
        .route("/links")
        .target("/links")
        .header("content-type", "application/json")
        .body(body)
}

fn post(v: Value) -> wasmgate_sdk::RequestBuilder {
    post_raw(&v.to_string())
}

fn create(v: Value) -> Response {
    call(post(v).build())
}

/// Creates a link and returns its code.
fn created(url: &str) -> String {
    let resp = create(json!({ "url": url }));
    assert_eq!(resp.status(), 201, "{:?}", resp.body_text());
    body(&resp)["code"].as_str().unwrap().to_owned()
}

fn visit_as(method: &str, code: &str) -> Response {
    call(
        Request::builder()
            .method(method)
            .route("/l/:code")
            .target(&format!("/l/{code}"))
            .param("code", code)
            .build(),
    )
}

fn visit(code: &str) -> Response {
    visit_as("GET", code)
}

fn stats(code: &str) -> Response {
    call(
        Request::builder()
            .route("/links/:code/stats")
            .target(&format!("/links/{code}/stats"))
            .param("code", code)
            .build(),
    )
}

fn html(title_html: &str) -> http::Response {
    page(200, title_html)
}

fn page(status: u16, title_html: &str) -> http::Response {
    http::Response::new(status)
        .with_header("Content-Type", "text/html; charset=utf-8")
        .with_body(format!(
            "<!doctype html><html><head>{title_html}</head><body>hi</body></html>"
        ))
}

// ---- create, redirect, count, stats ----

#[test]
fn create_redirect_count_and_stats() {
    let resp = create(json!({ "url": "https://example.org/a?b=c#d" }));
    assert_eq!(resp.status(), 201);
    let v = body(&resp);
    let code = v["code"].as_str().unwrap();
    assert_eq!(code.len(), code::LEN);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
    assert_eq!(resp.header_value("location"), Some(&*format!("/l/{code}")));
    assert_eq!(v["url"], "https://example.org/a?b=c#d");
    assert_eq!(v["title"], Value::Null, "no outbound grant: no title");
    assert!(v.get("clicks").is_none());
    let created_at = v["created_at"].as_str().unwrap();
    assert!(
        created_at.len() == 20 && created_at.ends_with('Z') && created_at > "2024",
        "{created_at}"
    );

    let s = stats(code);
    assert_eq!(s.status(), 200);
    assert_eq!(s.header_value("cache-control"), Some("no-store"));
    assert_eq!(
        body(&s),
        json!({"code": code, "url": "https://example.org/a?b=c#d", "title": null,
               "clicks": 0, "created_at": created_at})
    );

    for n in 1..=3 {
        let r = visit(code);
        assert_eq!(r.status(), 302);
        assert_eq!(
            r.header_value("location"),
            Some("https://example.org/a?b=c#d")
        );
        assert_eq!(r.header_value("cache-control"), Some("private, no-store"));
        assert_eq!(body(&stats(code))["clicks"], n);
    }
}

#[test]
fn clicks_are_counted_per_link() {
    let a = created("https://a.example/");
    let b = created("https://b.example/");
    assert_ne!(a, b);
    visit(&a);
    visit(&a);
    visit(&b);
    assert_eq!(body(&stats(&a))["clicks"], 2);
    assert_eq!(body(&stats(&b))["clicks"], 1);
    assert_eq!(
        visit(&b).header_value("location"),
        Some("https://b.example/")
    );
}

#[test]
fn surrounding_whitespace_is_trimmed_from_the_url() {
    let resp = create(json!({ "url": "  https://example.org/\n" }));
    assert_eq!(body(&resp)["url"], "https://example.org/");
}

#[test]
fn head_redirects_without_counting() {
    let code = created("https://example.org/");
    let head = visit_as("HEAD", &code);
    assert_eq!(head.status(), 302);
    assert_eq!(head.header_value("location"), Some("https://example.org/"));
    assert_eq!(body(&stats(&code))["clicks"], 0);
    let head = call(
        Request::builder()
            .method("HEAD")
            .route("/links/:code/stats")
            .param("code", &*code)
            .build(),
    );
    assert_eq!(head.status(), 200);
}

#[test]
fn unknown_codes_are_404() {
    for code in ["nothere", "abc", "x", "a b", "../etc", &"y".repeat(40)] {
        assert_error(&visit(code), 404, "not_found");
        assert_error(&stats(code), 404, "not_found");
        assert_error(&visit_as("HEAD", code), 404, "not_found");
    }
}

#[test]
fn unknown_codes_with_invalid_syntax_never_reach_the_store() {
    testing::kv_deny(store::STORE);
    assert_error(&visit("a/b"), 404, "not_found");
    assert_error(&stats("no"), 404, "not_found");
}

#[test]
fn other_methods_get_405() {
    let put = call(Request::builder().method("PUT").route("/links").build());
    assert_error(&put, 405, "method_not_allowed");
    assert_eq!(put.header_value("allow"), Some("POST"));
    let post = call(
        Request::builder()
            .method("POST")
            .route("/l/:code")
            .param("code", "abc")
            .build(),
    );
    assert_eq!(post.header_value("allow"), Some("GET, HEAD"));
    assert_error(
        &call(Request::builder().route("/other").build()),
        404,
        "not_found",
    );
}

// ---- chosen codes ----

#[test]
fn a_chosen_code_is_used_once() {
    let resp = create(json!({ "url": "https://example.org/", "code": "my-Link_1" }));
    assert_eq!(resp.status(), 201);
    assert_eq!(body(&resp)["code"], "my-Link_1");
    assert_eq!(resp.header_value("location"), Some("/l/my-Link_1"));
    assert_eq!(
        visit("my-Link_1").header_value("location"),
        Some("https://example.org/")
    );

    let again = create(json!({ "url": "https://other.example/", "code": "my-Link_1" }));
    let message = assert_error(&again, 409, "conflict");
    assert!(message.contains("`my-Link_1` is taken"), "{message}");
    // The first link is untouched.
    assert_eq!(
        visit("my-Link_1").header_value("location"),
        Some("https://example.org/")
    );
    // Codes are case-sensitive; null is the same as no code.
    assert_eq!(
        create(json!({ "url": "https://x.example/", "code": "MY-LINK_1" })).status(),
        201
    );
    let resp = create(json!({ "url": "https://x.example/", "code": null }));
    assert_eq!(body(&resp)["code"].as_str().unwrap().len(), code::LEN);
}

#[test]
fn a_taken_code_is_refused_before_fetching_a_title() {
    create(json!({ "url": "https://example.org/", "code": "taken" }));
    testing::http_reset();
    create(json!({ "url": "https://example.org/", "code": "taken" }));
    assert!(testing::http_requests().is_empty());
}

#[test]
fn invalid_chosen_codes_are_422() {
    for code in [
        "ab",
        "",
        &"x".repeat(33),
        "with space",
        "slash/es",
        "dot.ted",
        "ünï",
    ] {
        let resp = create(json!({ "url": "https://example.org/", "code": code }));
        assert_error(&resp, 422, "invalid_code");
    }
    // Nothing was created, and no title was fetched.
    assert!(testing::http_requests().is_empty());
}

#[test]
fn generated_codes_are_drawn_again_on_collision() {
    let links = Links::open().unwrap();
    let link = Link {
        url: "https://example.org/".into(),
        title: None,
        created_at: None,
    };
    links.insert("aaaaaaa", &link).unwrap().unwrap();
    links.insert("bbbbbbb", &link).unwrap().unwrap();
    let mut draws = ["aaaaaaa", "bbbbbbb", "ccccccc"].into_iter();
    let (code, stored) =
        store::insert_generated(&links, &link, || draws.next().unwrap().to_owned()).unwrap();
    assert_eq!(code, "ccccccc");
    assert_eq!(stored.link, link);
    assert_eq!(links.get("ccccccc").unwrap().unwrap().link, link);

    let mut tries = 0;
    let resp = store::insert_generated(&links, &link, || {
        tries += 1;
        "aaaaaaa".to_owned()
    })
    .unwrap_err();
    assert_eq!(tries, store::MAX_CODE_ATTEMPTS);
    assert_error(&resp, 503, "no_free_code");
}

// ---- body and URL validation ----

#[test]
fn malformed_bodies_are_400() {
    for (raw, kind) in [
        ("", "empty_body"),
        ("{oops", "invalid_json"),
        (r#"{"url": "https://example.org/""#, "invalid_json"),
        ("[]", "wrong_json_shape"),
        ("\"https://example.org/\"", "wrong_json_shape"),
        ("{}", "wrong_json_shape"),
        (r#"{"link": "https://example.org/"}"#, "wrong_json_shape"),
        (r#"{"url": 42}"#, "wrong_json_shape"),
        (r#"{"url": null}"#, "wrong_json_shape"),
        (
            r#"{"url": "https://example.org/", "code": 7}"#,
            "wrong_json_shape",
        ),
    ] {
        let message = assert_error(&call(post_raw(raw).build()), 400, kind);
        assert!(message.contains("expected {\"url\""), "{raw}: {message}");
    }
    let not_utf8 = call(post_raw("").body(vec![b'{', 0xff, b'}']).build());
    assert_error(&not_utf8, 400, "invalid_json");
}

#[test]
fn unknown_fields_are_ignored() {
    let resp = create(json!({ "url": "https://example.org/", "tags": ["x"] }));
    assert_eq!(resp.status(), 201);
}

#[test]
fn unacceptable_urls_are_422() {
    let too_long = format!("https://example.org/{}", "a".repeat(2048));
    for url in [
        "",
        "example.org",
        "/l/abc",
        "javascript:alert(1)",
        "ftp://example.org/",
        "https://",
        "https://user:pw@example.org/",
        "https://example.org/a b",
        too_long.as_str(),
    ] {
        let message = assert_error(&create(json!({ "url": url })), 422, "invalid_url");
        assert!(!message.is_empty());
    }
    let exactly = format!("https://example.org/{}", "a".repeat(2048 - 20));
    assert_eq!(create(json!({ "url": exactly })).status(), 201);
}

// ---- API key ----

#[test]
fn without_an_api_key_creation_is_open() {
    assert_eq!(
        create(json!({ "url": "https://example.org/" })).status(),
        201
    );
    testing::set_var("api_key", "");
    assert_eq!(
        create(json!({ "url": "https://example.org/" })).status(),
        201
    );
    testing::set_var("api_key", "  ");
    assert_eq!(
        create(json!({ "url": "https://example.org/" })).status(),
        201
    );
}

#[test]
fn an_api_key_is_required_when_set() {
    testing::set_var("api_key", "k3y-s3cret");
    let resp = create(json!({ "url": "https://example.org/" }));
    let message = assert_error(&resp, 401, "unauthorized");
    assert!(message.contains("Authorization: Bearer"), "{message}");
    assert_eq!(
        resp.header_value("www-authenticate"),
        Some("Bearer realm=\"links\"")
    );
    // Other schemes do not count as a key.
    let basic = call(
        post(json!({ "url": "https://example.org/" }))
            .header("Authorization", "Basic azNreS1zM2NyZXQ6")
            .build(),
    );
    assert_error(&basic, 401, "unauthorized");
    // The key is checked before the body: no validation details for strangers.
    assert_error(&call(post_raw("{oops").build()), 401, "unauthorized");
}

#[test]
fn a_wrong_api_key_is_refused_without_echoing_anything() {
    testing::set_var("api_key", "k3y-s3cret");
    for wrong in ["nope", "k3y-s3cre", "k3y-s3cret2", "K3Y-S3CRET"] {
        let resp = call(
            post(json!({ "url": "https://example.org/" }))
                .header("Authorization", format!("Bearer {wrong}"))
                .build(),
        );
        assert_error(&resp, 401, "unauthorized");
        assert_eq!(
            resp.header_value("www-authenticate"),
            Some("Bearer realm=\"links\", error=\"invalid_token\"")
        );
        let everything = format!(
            "{:?}{:?}",
            resp.headers().collect::<Vec<_>>(),
            resp.body_text()
        );
        assert!(!everything.contains("k3y"), "{everything}");
        assert!(!everything.contains(wrong), "{everything}");
    }
}

#[test]
fn the_right_api_key_is_accepted() {
    testing::set_var("api_key", "k3y-s3cret");
    for header in ["Bearer k3y-s3cret", "bearer  k3y-s3cret"] {
        let resp = call(
            post(json!({ "url": "https://example.org/" }))
                .header("Authorization", header)
                .build(),
        );
        assert_eq!(resp.status(), 201, "{header}");
        assert!(!resp.body_text().unwrap().contains("k3y"));
    }
    // Following and stats stay public.
    let code = {
        let resp = call(
            post(json!({ "url": "https://example.org/" }))
                .header("Authorization", "Bearer k3y-s3cret")
                .build(),
        );
        body(&resp)["code"].as_str().unwrap().to_owned()
    };
    assert_eq!(visit(&code).status(), 302);
    assert_eq!(stats(&code).status(), 200);
}

// ---- store failures ----

#[test]
fn an_unavailable_store_is_503_on_every_route() {
    let code = created("https://example.org/");
    for errno in [Errno::Unavailable, Errno::Timeout, Errno::Busy] {
        for (what, req) in [
            (
                "create",
                post(json!({ "url": "https://example.org/" })).build(),
            ),
            ("follow", visit_req(&code)),
            ("stats", stats_req(&code)),
        ] {
            fault::fail_after(0, errno);
            let resp = call(req);
            assert_error(&resp, 503, "store_unavailable");
            assert_eq!(
                resp.header_value("retry-after"),
                Some("1"),
                "{what} {errno}"
            );
        }
    }
    // A failure after the store opened is answered the same way.
    fault::fail_after(1, Errno::Timeout);
    assert_error(&visit(&code), 503, "store_unavailable");
    fault::fail_after(2, Errno::Unavailable);
    assert_error(&stats(&code), 503, "store_unavailable");
    fault::fail_after(1, Errno::Unavailable);
    assert_error(
        &create(json!({ "url": "https://example.org/" })),
        503,
        "store_unavailable",
    );
}

fn visit_req(code: &str) -> Request {
    Request::builder()
        .route("/l/:code")
        .param("code", code)
        .build()
}

fn stats_req(code: &str) -> Request {
    Request::builder()
        .route("/links/:code/stats")
        .param("code", code)
        .build()
}

#[test]
fn a_store_that_is_not_granted_is_a_500_not_a_trap() {
    let code = created("https://example.org/");
    testing::kv_deny(store::STORE);
    assert_error(
        &create(json!({ "url": "https://example.org/" })),
        500,
        "denied",
    );
    assert_error(&visit(&code), 500, "denied");
    assert_error(&stats(&code), 500, "denied");
}

#[test]
fn a_click_that_cannot_be_counted_still_redirects() {
    let code = created("https://example.org/");
    fault::fail_after(2, Errno::Unavailable); // open and get succeed, incr fails
    let resp = visit(&code);
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.header_value("location"), Some("https://example.org/"));
    fault::reset();
    assert_eq!(body(&stats(&code))["clicks"], 0);
}

#[test]
fn a_corrupt_record_or_counter_is_a_500() {
    let kv = wasmgate_sdk::kv::Store::open(store::STORE).unwrap();
    kv.set("link:broken", "https://example.org/").unwrap();
    assert_error(&visit("broken"), 500, "invalid");
    let code = created("https://example.org/");
    kv.set(format!("clicks:{code}"), "many").unwrap();
    assert_error(&stats(&code), 500, "invalid");
    // The redirect itself still works: only the count is lost.
    assert_eq!(visit(&code).status(), 302);
}

// ---- titles ----

#[test]
fn the_title_is_fetched_and_stored() {
    testing::http_answer(
        "GET",
        "https://example.org/post",
        html("<TITLE>\n  Q&amp;A:   the  &quot;best&quot; post  </title>"),
    );
    let resp = create(json!({ "url": "https://example.org/post" }));
    assert_eq!(resp.status(), 201);
    let v = body(&resp);
    assert_eq!(v["title"], "Q&A: the \"best\" post");
    let code = v["code"].as_str().unwrap();
    assert_eq!(body(&stats(code))["title"], "Q&A: the \"best\" post");

    let sent = testing::http_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].method(), sent[0].url()),
        ("GET", "https://example.org/post")
    );
    assert!(
        sent[0]
            .header_value("accept")
            .unwrap()
            .starts_with("text/html")
    );
}

#[test]
fn a_long_title_is_capped() {
    let long = "word ".repeat(100);
    testing::http_answer(
        "GET",
        "https://example.org/",
        html(&format!("<title>{long}</title>")),
    );
    let v = body(&create(json!({ "url": "https://example.org/" })));
    let title = v["title"].as_str().unwrap();
    assert!(title.chars().count() <= title::MAX_TITLE_CHARS, "{title}");
    assert!(title.starts_with("word word") && !title.ends_with(' '));
}

/// Makes the title fetch of a URL fail in one way.
type Setup = fn(&str);

#[test]
fn any_title_failure_still_creates_the_link() {
    let cases: [(&str, Setup); 11] = [
        ("not allowed (no answer configured: denied)", |_| {}),
        ("timeout", |url| {
            testing::http_fail("GET", url, Errno::Timeout, "slow")
        }),
        ("guarded address", |url| {
            testing::http_fail("GET", url, Errno::AddressBlocked, "private")
        }),
        ("dns", |url| {
            testing::http_fail("GET", url, Errno::Dns, "no such name")
        }),
        ("too large", |url| {
            testing::http_fail("GET", url, Errno::TooLarge, "1 MiB")
        }),
        ("404", |url| {
            testing::http_answer("GET", url, page(404, "<title>Gone</title>"))
        }),
        ("redirect", |url| {
            let resp =
                http::Response::new(301).with_header("location", "https://elsewhere.example/");
            testing::http_answer("GET", url, resp)
        }),
        ("not HTML", |url| {
            let resp = http::Response::new(200)
                .with_header("content-type", "application/json")
                .with_body(r#"{"title": "<title>no</title>"}"#);
            testing::http_answer("GET", url, resp)
        }),
        ("no content type", |url| {
            testing::http_answer(
                "GET",
                url,
                http::Response::new(200).with_body("<title>x</title>"),
            )
        }),
        ("no title", |url| {
            testing::http_answer("GET", url, html("<meta charset=utf-8>"))
        }),
        ("blank title", |url| {
            testing::http_answer("GET", url, html("<title> \n </title>"))
        }),
    ];
    for (i, (what, setup)) in cases.iter().enumerate() {
        let url = format!("https://site{i}.example/page");
        setup(&url);
        let resp = create(json!({ "url": url }));
        assert_eq!(resp.status(), 201, "{what}");
        let v = body(&resp);
        assert_eq!(v["title"], Value::Null, "{what}");
        let code = v["code"].as_str().unwrap();
        assert_eq!(visit(code).header_value("location"), Some(&*url), "{what}");
    }
}

#[test]
fn a_title_that_cannot_be_stored_leaves_the_link_without_one() {
    testing::http_answer("GET", "https://example.org/", html("<title>Hi</title>"));
    fault::fail_after(2, Errno::Unavailable); // open and insert succeed, the update fails
    let resp = create(json!({ "url": "https://example.org/" }));
    assert_eq!(resp.status(), 201);
    let v = body(&resp);
    assert_eq!(v["title"], Value::Null);
    fault::reset();
    let s = body(&stats(v["code"].as_str().unwrap()));
    assert_eq!(
        (s["title"].clone(), s["url"].clone()),
        (Value::Null, json!("https://example.org/"))
    );
}

/// A creation by the client at `addr`.
fn create_from(addr: &str, n: usize) -> Response {
    call(
        post(json!({ "url": format!("https://example.org/{addr}/{n}") }))
            .client_addr(addr)
            .build(),
    )
}

/// `create_limit_per_minute`: a client's creations past the limit in its window answer 429
/// with the seconds left in the window as `Retry-After` (one clock: `advance_clock` moves the
/// window's TTL); other clients are not affected, and the next window admits again.
#[test]
fn creations_past_the_limit_answer_429_with_the_seconds_left_in_the_window() {
    testing::set_var(limit::VAR, "3");
    for n in 0..3 {
        assert_eq!(create_from("10.0.0.1", n).status(), 201, "creation {n}");
    }
    testing::advance_clock(Duration::from_millis(20_500));
    let refused = create_from("10.0.0.1", 3);
    assert_error(&refused, 429, "too_many_requests");
    assert_eq!(
        refused.header_value("retry-after"),
        Some("40"),
        "39.5 s left, rounded up"
    );
    assert_eq!(create_from("10.0.0.2", 0).status(), 201, "another client");
    testing::advance_clock(Duration::from_millis(39_499));
    assert_eq!(
        create_from("10.0.0.1", 4).header_value("retry-after"),
        Some("1"),
        "1 ms left"
    );
    testing::advance_clock(Duration::from_millis(1));
    assert_eq!(create_from("10.0.0.1", 5).status(), 201, "a new window");
}

#[test]
fn no_limit_unless_set_and_a_bad_limit_is_a_500_not_an_open_door() {
    for n in 0..20 {
        assert_eq!(create_from("10.0.0.1", n).status(), 201);
    }
    testing::set_var(limit::VAR, "");
    assert_eq!(create_from("10.0.0.1", 20).status(), 201, "empty: unset");
    for bad in ["0", "-1", "ten"] {
        testing::set_var(limit::VAR, bad);
        let resp = create_from("10.0.0.1", 21);
        let message = assert_error(&resp, 500, "misconfigured");
        assert!(message.contains(limit::VAR), "{message}");
    }
}

/// A store that is down while admitting: the plugin's 503 with `Retry-After`, no creation.
#[test]
fn a_store_failure_while_admitting_is_a_503() {
    testing::set_var(limit::VAR, "3");
    fault::fail_after(0, Errno::Unavailable);
    let resp = create_from("10.0.0.1", 0);
    fault::reset();
    assert_error(&resp, 503, "store_unavailable");
    assert!(resp.header_value("retry-after").is_some());
}
