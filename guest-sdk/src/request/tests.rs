//! Decoding, lossy text, body access and JSON errors of [`Request`](super::Request).

use super::*;
use crate::wire::{AbiVersion, RawRequest};

#[test]
fn decode_is_lossy_for_text_and_exact_for_the_body() {
    let raw = RawRequest {
        method: b"GET",
        target: b"/\xff",
        path: b"/\xff",
        version: b"HTTP/1.1",
        headers: vec![(b"X-Latin1", b"caf\xe9")],
        body: b"\xff\x00",
        ..RawRequest::default()
    };
    let req = Request::decode(raw.encode(AbiVersion::V1).unwrap()).unwrap();
    assert_eq!(req.path(), "/\u{FFFD}");
    assert_eq!(req.header("x-latin1"), Some("caf\u{FFFD}"));
    assert_eq!(req.body(), b"\xff\x00");
    assert!(req.text().is_err());
    assert_eq!(req.into_body(), b"\xff\x00");
}

#[test]
fn decode_then_encode_is_identity_for_utf8_requests() {
    let req = Request::builder()
        .method("PUT")
        .target("/a/b?x=1&y=%20")
        .version("HTTP/1.0")
        .header("A", "1")
        .header("a", "2")
        .param("rest", "a/b")
        .body("payload")
        .build();
    let bytes = req.encode().unwrap();
    let back = Request::decode(bytes.clone()).unwrap();
    assert_eq!(back.encode().unwrap(), bytes);
    assert_eq!(back.body(), b"payload");
    assert_eq!(back.query("y"), Some(" "));
    assert_eq!(back.header_all("A").count(), 2);
    // The decoded request keeps the whole buffer; equality is about what handlers see.
    assert_eq!(back.method(), req.method());
    assert_eq!(back.params().collect::<Vec<_>>(), [("rest", "a/b")]);
}

#[test]
fn decode_rejects_malformed_input() {
    assert!(Request::decode(vec![]).is_err());
    assert!(Request::decode(vec![1, 0, 0, 0]).is_err());
}

#[test]
fn json_reports_empty_and_syntax_errors_as_400() {
    let empty = Request::builder().body("  \n").build();
    assert!(matches!(
        empty.json::<serde_json::Value>(),
        Err(BodyError::Empty)
    ));
    let bad = Request::builder().body("{nope").build();
    let err = bad.json::<serde_json::Value>().unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.to_string()
            .starts_with("request body is not valid JSON: "),
        "{err}"
    );
}

#[test]
fn json_can_borrow_from_the_body() {
    let req = Request::builder().body(r#"["a","b"]"#).build();
    let v: Vec<&str> = req.json().unwrap();
    assert_eq!(v, ["a", "b"]);
}
