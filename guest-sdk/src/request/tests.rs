//! Decoding, lossy text, body access and JSON errors of [`Request`](super::Request).

use super::*;
use crate::wire::{AbiVersion, Field, RawRequest, tag};

#[test]
fn decode_is_lossy_for_text_and_exact_for_the_body() {
    let raw = RawRequest {
        method: b"GET",
        target: b"/\xff",
        path: b"/\xff",
        version: b"HTTP/1.1",
        headers: vec![(b"X-Latin1", b"caf\xe9")],
        params: vec![(b"key", b"a\xff/b")],
        body: b"\xff\x00",
        ..RawRequest::default()
    };
    let req = Request::decode(raw.encode(AbiVersion::V2).unwrap()).unwrap();
    assert_eq!(req.param("key"), Some("a\u{FFFD}/b"));
    assert_eq!(req.param_bytes("key"), Some(&b"a\xff/b"[..]));
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
        .param_bytes("raw", vec![0xff])
        .peer_addr("[::1]:4000")
        .client_addr("::1")
        .route("/a/*rest")
        .id("r-1")
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
    assert_eq!(
        back.params().collect::<Vec<_>>(),
        [("rest", "a/b"), ("raw", "\u{FFFD}")]
    );
    assert_eq!(back.param_bytes("raw"), Some(&[0xff][..]));
    assert_eq!(
        (
            back.peer_addr(),
            back.client_addr(),
            back.route(),
            back.id()
        ),
        (
            Some("[::1]:4000"),
            Some("::1"),
            Some("/a/*rest"),
            Some("r-1")
        )
    );
}

/// The v2 request of docs/ABI.md ("v2 worked examples"), byte for byte.
const ABI_MD_V2_REQUEST: &str = "\
    03000000474554 06000000 2f6c2f616263 06000000 2f6c2f616263 00000000 \
    08000000 485454502f312e31 01000000 04000000 486f7374 01000000 61 \
    01000000 04000000 636f6465 03000000 616263 00000000 \
    04000000 01000000 0f000000 3132372e302e302e313a3530303030 \
    02000000 09000000 3132372e302e302e31 03000000 08000000 2f6c2f3a636f6465 \
    04000000 10000000 39663363303030303030303030303031";

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn decodes_the_v2_example_of_abi_md() {
    let bytes = hex(ABI_MD_V2_REQUEST);
    assert_eq!(bytes.len(), 167);
    let req = Request::decode(bytes.clone()).unwrap();
    assert_eq!((req.method(), req.path()), ("GET", "/l/abc"));
    assert_eq!(req.param("code"), Some("abc"));
    assert_eq!(req.peer_addr(), Some("127.0.0.1:50000"));
    assert_eq!(req.client_addr(), Some("127.0.0.1"));
    assert_eq!(req.route(), Some("/l/:code"));
    assert_eq!(req.id(), Some("9f3c000000000001"));
    assert!(req.body().is_empty());
    // And the SDK encodes it back to the same bytes.
    assert_eq!(req.encode().unwrap(), bytes);
}

#[test]
fn the_body_is_found_before_the_fields_and_unknown_tags_are_skipped() {
    let raw = RawRequest {
        method: b"POST",
        body: b"the body",
        fields: vec![
            Field {
                tag: 99,
                value: b"from a later host",
            },
            Field {
                tag: tag::ROUTE,
                value: b"/first",
            },
            Field {
                tag: tag::ROUTE,
                value: b"/second",
            },
        ],
        ..RawRequest::default()
    };
    let req = Request::decode(raw.encode(AbiVersion::V2).unwrap()).unwrap();
    assert_eq!(req.body(), b"the body");
    assert_eq!(req.route(), Some("/first"));
    assert_eq!((req.peer_addr(), req.id()), (None, None));
    assert_eq!(req.into_body(), b"the body");
}

#[test]
fn a_v1_encoding_is_not_a_v2_request() {
    let v1 = RawRequest::default().encode(AbiVersion::V1).unwrap();
    assert!(Request::decode(v1).is_err());
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

#[test]
fn bearer_tokens_follow_rfc_6750() {
    for (header, token) in [
        ("Bearer abc", Some("abc")),
        ("bearer abc", Some("abc")),
        ("BEARER   a-b.c_d~e+f/g==", Some("a-b.c_d~e+f/g==")),
        ("Bearer ", None),
        ("Bearer", None),
        ("Bearer ===", None),
        ("Bearer a b", None),
        ("Bearer a\"b", None),
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None),
        ("Bearerabc", None),
        ("", None),
    ] {
        assert_eq!(super::bearer_token(header), token, "{header:?}");
    }
}
