//! Head semantics: Host (RFC 9112 §3.2), framing (RFC 9112 §6), Expect (RFC 9110 §10.1.1) and
//! persistence (RFC 9112 §9.3).

use super::*;
use crate::{ParseError as E, Version};

/// A request with exactly `fields` (no Host added).
fn raw(line: &str, fields: &str) -> Vec<u8> {
    format!("{line}\r\n{fields}\r\n").into_bytes()
}

#[test]
fn host_rules() {
    let valid: &[(&str, &str, Option<&str>)] = &[
        (
            "GET / HTTP/1.1",
            "Host: example.com\r\n",
            Some("example.com"),
        ),
        (
            "GET / HTTP/1.1",
            "host: EXAMPLE.com:8080\r\n",
            Some("EXAMPLE.com:8080"),
        ),
        ("GET / HTTP/1.1", "Host: \r\n", Some("")),
        ("GET / HTTP/1.1", "Host: h:\r\n", Some("h:")),
        ("GET / HTTP/1.1", "Host: [::1]\r\n", Some("[::1]")),
        ("GET / HTTP/1.1", "Host: [v1.x:y]:1\r\n", Some("[v1.x:y]:1")),
        (
            "GET / HTTP/1.1",
            "Host: 10.0.0.1:80\r\n",
            Some("10.0.0.1:80"),
        ),
        (
            "GET / HTTP/1.1",
            "Host: a%20b.c_d~e!$&'()*+,;=\r\n",
            Some("a%20b.c_d~e!$&'()*+,;="),
        ),
        ("GET / HTTP/1.0", "", None),
        ("GET / HTTP/1.0", "Host: h\r\n", Some("h")),
        // absolute-form: the target's authority wins over the Host field, which is still required.
        (
            "GET http://t.example/p HTTP/1.1",
            "Host: other\r\n",
            Some("t.example"),
        ),
        ("GET http://t.example/p HTTP/1.0", "", Some("t.example")),
        ("CONNECT t:443 HTTP/1.1", "Host: t:443\r\n", Some("t:443")),
    ];
    for (line, fields, host) in valid {
        let input = raw(line, fields);
        assert_eq!(ok(&input).view(&input).host(), *host, "{line} {fields:?}");
    }
    let invalid: &[(&str, &str, E)] = &[
        ("GET / HTTP/1.1", "", E::MissingHost),
        ("GET http://t/ HTTP/1.1", "", E::MissingHost),
        ("GET / HTTP/1.1", "Host: a\r\nHost: a\r\n", E::DuplicateHost),
        ("GET / HTTP/1.0", "Host: a\r\nhost: b\r\n", E::DuplicateHost),
        ("GET / HTTP/1.1", "Host: a b\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: a/b\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: u@a\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: a:b\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: a:1:2\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: a%2\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: a%zz\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: [::1\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: [zz]\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: [::1]x\r\n", E::InvalidHost),
        ("GET / HTTP/1.1", "Host: h\u{80}\r\n", E::InvalidHost),
        (
            "GET / HTTP/1.0",
            "Host: a,b\r\nHost: c\r\n",
            E::DuplicateHost,
        ),
    ];
    for (line, fields, kind) in invalid {
        assert_eq!(err(&raw(line, fields)), *kind, "{line} {fields:?}");
    }
}

#[test]
fn content_length() {
    let max = limits().max_body_bytes;
    let valid: &[(String, u64)] = &[
        ("Content-Length: 5\r\n".into(), 5),
        ("content-length: 0\r\n".into(), 0),
        ("Content-Length: 007\r\n".into(), 7),
        ("Content-Length: 5, 5\r\n".into(), 5),
        ("Content-Length: 5,5 , 5\r\n".into(), 5),
        ("Content-Length: 5\r\nContent-Length: 5\r\n".into(), 5),
        (format!("Content-Length: {max}\r\n"), max),
    ];
    for (fields, n) in valid {
        assert_eq!(
            ok(&req("POST / HTTP/1.1", fields)).framing,
            Framing::Length(*n),
            "{fields:?}"
        );
    }
    let invalid: &[(String, E)] = &[
        ("Content-Length: \r\n".into(), E::InvalidContentLength),
        ("Content-Length: abc\r\n".into(), E::InvalidContentLength),
        ("Content-Length: +5\r\n".into(), E::InvalidContentLength),
        ("Content-Length: -1\r\n".into(), E::InvalidContentLength),
        ("Content-Length: 0x5\r\n".into(), E::InvalidContentLength),
        ("Content-Length: 5 5\r\n".into(), E::InvalidContentLength),
        ("Content-Length: 5,\r\n".into(), E::InvalidContentLength),
        ("Content-Length: 5.0\r\n".into(), E::InvalidContentLength),
        (
            "Content-Length: 5, 6\r\n".into(),
            E::ConflictingContentLength,
        ),
        (
            "Content-Length: 5\r\nContent-Length: 6\r\n".into(),
            E::ConflictingContentLength,
        ),
        (
            "Content-Length: 18446744073709551616\r\n".into(),
            E::ContentLengthOverflow,
        ),
        (
            "Content-Length: 99999999999999999999999\r\n".into(),
            E::ContentLengthOverflow,
        ),
        (
            format!("Content-Length: {}\r\n", max + 1),
            E::ContentLengthTooLarge,
        ),
        (
            "Content-Length: 18446744073709551615\r\n".into(),
            E::ContentLengthTooLarge,
        ),
    ];
    for (fields, kind) in invalid {
        assert_eq!(err(&req("POST / HTTP/1.1", fields)), *kind, "{fields:?}");
    }
}

#[test]
fn transfer_encoding() {
    let valid = [
        "Transfer-Encoding: chunked\r\n",
        "transfer-encoding: CHUNKED\r\n",
        "Transfer-Encoding: chunked , \r\n",
        "Transfer-Encoding: ,chunked\r\n",
    ];
    for fields in valid {
        assert_eq!(
            ok(&req("POST / HTTP/1.1", fields)).framing,
            Framing::Chunked,
            "{fields:?}"
        );
    }
    let invalid: &[(&str, &str, E)] = &[
        (
            "HTTP/1.1",
            "Transfer-Encoding: gzip, chunked\r\n",
            E::UnsupportedTransferCoding,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            E::UnsupportedTransferCoding,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: x;q=\"a b\", chunked\r\n",
            E::UnsupportedTransferCoding,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chunked, gzip\r\n",
            E::ChunkedNotFinal,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: gzip\r\n",
            E::ChunkedNotFinal,
        ),
        ("HTTP/1.1", "Transfer-Encoding: \r\n", E::ChunkedNotFinal),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            E::ChunkedNotFinal,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chunked, chunked\r\n",
            E::ChunkedRepeated,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            E::ChunkedRepeated,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chunked;a=b\r\n",
            E::InvalidTransferEncoding,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: \"chunked\"\r\n",
            E::InvalidTransferEncoding,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chun ked\r\n",
            E::InvalidTransferEncoding,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: x;q\r\n",
            E::InvalidTransferEncoding,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: x;q=\"a\r\n",
            E::InvalidTransferEncoding,
        ),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            E::ContentLengthWithTransferEncoding,
        ),
        (
            "HTTP/1.1",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            E::ContentLengthWithTransferEncoding,
        ),
        (
            "HTTP/1.0",
            "Transfer-Encoding: chunked\r\n",
            E::TransferEncodingInHttp10,
        ),
        (
            "HTTP/1.0",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            E::TransferEncodingInHttp10,
        ),
    ];
    for (version, fields, kind) in invalid {
        assert_eq!(
            err(&req(&format!("POST / {version}"), fields)),
            *kind,
            "{fields:?}"
        );
    }
}

#[test]
fn no_framing_fields_means_no_body_for_any_method() {
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        assert_eq!(
            ok(&req(&format!("{method} / HTTP/1.1"), "")).framing,
            Framing::None
        );
    }
}

#[test]
fn expect() {
    let rows: &[(&str, &str, bool)] = &[
        ("HTTP/1.1", "Expect: 100-continue\r\n", true),
        ("HTTP/1.1", "expect: 100-CONTINUE\r\n", true),
        ("HTTP/1.1", "Expect: 100-continue, \r\n", true),
        ("HTTP/1.1", "", false),
        ("HTTP/1.1", "Expect: \r\n", false),
        // RFC 9110 §10.1.1: a 100-continue in an HTTP/1.0 request MUST be ignored.
        ("HTTP/1.0", "Expect: 100-continue\r\n", false),
    ];
    for (version, fields, expected) in rows {
        let head = ok(&req(
            &format!("POST / {version}"),
            &format!("Content-Length: 1\r\n{fields}"),
        ));
        assert_eq!(head.expect_continue, *expected, "{version} {fields:?}");
    }
    for fields in [
        "Expect: 200-ok\r\n",
        "Expect: 100-continue, x\r\n",
        "Expect: 100-continue;a=b\r\n",
        "Expect: 100\r\n",
    ] {
        assert_eq!(
            err(&req("POST / HTTP/1.1", fields)),
            E::UnsupportedExpectation,
            "{fields:?}"
        );
        assert_eq!(
            err(&req("POST / HTTP/1.0", fields)),
            E::UnsupportedExpectation,
            "{fields:?}"
        );
    }
}

#[test]
fn persistence() {
    let rows: &[(Version, &str, bool)] = &[
        (Version::Http11, "", true),
        (Version::Http11, "Connection: close\r\n", false),
        (Version::Http11, "Connection: Keep-Alive, CLOSE\r\n", false),
        (
            Version::Http11,
            "Connection: upgrade\r\nConnection: close\r\n",
            false,
        ),
        (Version::Http11, "Connection: closed\r\n", true),
        (Version::Http11, "Connection: keep-alive\r\n", true),
        (Version::Http10, "", false),
        (Version::Http10, "Connection: keep-alive\r\n", true),
        (Version::Http10, "Connection: foo, Keep-Alive\r\n", true),
        (Version::Http10, "Connection: keep-alive, close\r\n", false),
        (Version::Http10, "Connection: close\r\n", false),
    ];
    for (version, fields, keep_alive) in rows {
        let head = ok(&req(&format!("GET / {}", version.as_str()), fields));
        assert_eq!(head.keep_alive, *keep_alive, "{version:?} {fields:?}");
    }
}

#[test]
fn error_precedence() {
    // A framing/Host 400 wins over 413, 501 and 417: the most fundamental complaint first.
    assert_eq!(
        err(&raw(
            "POST / HTTP/1.1",
            "Expect: x\r\nContent-Length: 5\r\n"
        )),
        E::MissingHost
    );
    assert_eq!(
        err(&req(
            "POST / HTTP/1.1",
            "Expect: x\r\nContent-Length: 99999999999\r\n"
        )),
        E::ContentLengthTooLarge
    );
    assert_eq!(
        err(&req(
            "POST / HTTP/1.1",
            "Expect: x\r\nTransfer-Encoding: gzip, chunked\r\n"
        )),
        E::UnsupportedTransferCoding
    );
}
