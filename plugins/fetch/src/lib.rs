//! `fetch`: one outbound HTTP call, shown as JSON. A demo of the SDK's `http` module and the
//! plugin the integration tests (tests/it/outbound.rs) and the outbound benchmark
//! (bench/outbound.sh) drive; it is not served by the default `wasmgate.toml`.
//!
//! - `GET /fetch?url=<percent-encoded absolute URL>` → one `GET` of that URL through the host,
//!   then `200 {"status": <upstream status>, "body": <upstream body as text, at most 4 KiB>,
//!   "truncated": <whether it was cut>, "headers": {"content-type": ...}}`. Any upstream status
//!   is an answer: a 404 upstream is a 200 here with `"status": 404`.
//! - The host refused or failed the call → `502 {"error": "<errno name>", "message": "<the
//!   host's message>"}` (`denied`, `address_blocked`, `dns`, `connect`, `timeout`, `too_large`,
//!   `protocol`, ...), or `503` for `busy` (the plugin's `max_outbound_concurrency`).
//! - No `url` parameter → `400 bad_request`, without a host call.
//!
//! The host's message is passed to the client on purpose (it names the allow-list entry to add,
//! the guarded address, the bound that passed): that is what a demo should show, and what a
//! real plugin should log instead. Which URLs work is entirely the host's decision
//! (`allowed_outbound_hosts`, the SSRF guard, the `max_outbound_*` limits); see README.md.

use wasmgate_sdk::serde_json::{Map, Value, json};
use wasmgate_sdk::wire::Errno;
use wasmgate_sdk::{Error, Request, Response, http};

/// The most of the upstream's body shown, in bytes (cut at a character boundary).
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// The upstream headers shown (the rest are dropped).
const SHOWN_HEADERS: [&str; 1] = ["content-type"];

wasmgate_sdk::handler!(fetch);

/// `GET /fetch?url=...`.
fn fetch(req: Request) -> Response {
    let Some(url) = req.query("url").filter(|u| !u.is_empty()) else {
        return Response::bad_request(
            "give the URL to fetch as the query parameter `url`, percent-encoded",
        );
    };
    match http::Request::get(url).header("accept", "*/*").send() {
        Ok(answer) => shown(&answer),
        Err(e) => failed(&e),
    }
}

/// The upstream's answer as this plugin shows it.
fn shown(answer: &http::Response) -> Response {
    let (body, truncated) = text_prefix(answer.body(), MAX_BODY_BYTES);
    let headers: Map<String, Value> = SHOWN_HEADERS
        .iter()
        .filter_map(|name| Some((name.to_string(), Value::from(answer.header(name)?))))
        .collect();
    Response::json(
        200,
        &json!({
            "status": answer.status(),
            "body": body,
            "truncated": truncated,
            "headers": headers,
        }),
    )
}

/// A failed call: its error code's name and the host's message.
fn failed(e: &Error) -> Response {
    let status = if e.errno == Errno::Busy { 503 } else { 502 };
    Response::error(status, e.errno.name(), e.message.clone())
}

/// `body` as text (invalid UTF-8 replaced), cut to at most `max` bytes at a character
/// boundary; and whether anything was cut.
fn text_prefix(body: &[u8], max: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(body);
    if text.len() <= max {
        return (text.into_owned(), false);
    }
    let cut = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    (text[..cut].to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgate_sdk::testing;

    /// `GET /fetch?url=<url, percent-encoded>` through the wire encoding, as the host calls it.
    fn call_with(url: &str) -> (u16, Value) {
        let encoded: String = url
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let req = Request::builder()
            .target(&format!("/fetch?url={encoded}"))
            .build();
        let resp = testing::call(fetch, req);
        (resp.status(), resp.body_json().unwrap())
    }

    #[test]
    fn an_answer_is_shown_with_its_status_body_and_content_type() {
        let url = "https://api.example.com/v1/items?page=2&q=a+b";
        testing::http_answer(
            "GET",
            url,
            http::Response::new(200)
                .with_header("Content-Type", "application/json")
                .with_header("x-other", "dropped")
                .with_body(r#"{"items":[]}"#),
        );
        let (status, body) = call_with(url);
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"status": 200, "body": r#"{"items":[]}"#, "truncated": false,
                   "headers": {"content-type": "application/json"}})
        );
        let sent = testing::http_requests();
        assert_eq!(sent.len(), 1, "one call per request");
        assert_eq!((sent[0].method(), sent[0].url()), ("GET", url));
        assert!(sent[0].body_bytes().is_empty());
    }

    #[test]
    fn an_upstream_error_status_is_an_answer_not_a_failure() {
        let url = "http://127.0.0.1:8081/missing";
        testing::http_answer("GET", url, http::Response::new(404).with_body("nope"));
        let (status, body) = call_with(url);
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"status": 404, "body": "nope", "truncated": false, "headers": {}})
        );
    }

    #[test]
    fn a_long_body_is_cut_at_a_character_boundary() {
        let url = "https://a.example/big";
        // 4095 ASCII bytes then a 3-byte character: 4096 would split it.
        let long = format!("{}€{}", "x".repeat(MAX_BODY_BYTES - 1), "y".repeat(100));
        testing::http_answer("GET", url, http::Response::new(200).with_body(long));
        let (_, body) = call_with(url);
        assert_eq!(body["truncated"], true);
        assert_eq!(body["body"], "x".repeat(MAX_BODY_BYTES - 1));

        let exact = "z".repeat(MAX_BODY_BYTES);
        testing::http_answer(
            "GET",
            url,
            http::Response::new(200).with_body(exact.clone()),
        );
        let (_, body) = call_with(url);
        assert_eq!(
            (body["body"].clone(), body["truncated"].clone()),
            (json!(exact), json!(false))
        );
    }

    #[test]
    fn a_binary_body_is_shown_lossily() {
        let url = "https://a.example/bin";
        testing::http_answer(
            "GET",
            url,
            http::Response::new(200).with_body(vec![b'a', 0xff]),
        );
        let (_, body) = call_with(url);
        assert_eq!(body["body"], "a\u{fffd}");
    }

    #[test]
    fn refusals_and_failures_are_502_with_the_error_name_and_the_hosts_message() {
        // No canned answer: the stand-in refuses like a host whose allow-list lacks the URL.
        let (status, body) = call_with("https://not-granted.example/");
        assert_eq!(status, 502);
        assert_eq!(body["error"], "denied");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("not-granted.example"),
            "{body}"
        );

        for (errno, name) in [
            (Errno::AddressBlocked, "address_blocked"),
            (Errno::Timeout, "timeout"),
            (Errno::TooLarge, "too_large"),
            (Errno::Connect, "connect"),
        ] {
            let url = format!("https://{name}.example/");
            testing::http_fail("GET", &url, errno, &format!("the host says {name}"));
            let (status, body) = call_with(&url);
            assert_eq!(
                (status, body),
                (
                    502,
                    json!({"error": name, "message": format!("the host says {name}")})
                )
            );
        }
    }

    #[test]
    fn busy_is_503() {
        let url = "https://busy.example/";
        testing::http_fail("GET", url, Errno::Busy, "16 calls in flight");
        let (status, body) = call_with(url);
        assert_eq!(status, 503);
        assert_eq!(body["error"], "busy");
    }

    #[test]
    fn no_url_is_a_400_without_a_host_call() {
        for target in ["/fetch", "/fetch?url=", "/fetch?other=1"] {
            let resp = testing::call(fetch, Request::builder().target(target).build());
            assert_eq!(resp.status(), 400, "{target}");
            assert_eq!(resp.body_json::<Value>().unwrap()["error"], "bad_request");
        }
        assert!(testing::http_requests().is_empty());
    }
}
