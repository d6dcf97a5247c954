//! The request line (RFC 9112 §2.2, §3, §2.3): separators, methods, the four target forms,
//! versions, line endings, and the method/target limits at and one past the limit.

use super::*;
use crate::{ParseError as E, TargetForm, Version};

#[test]
fn valid_request_lines() {
    // (request line, method, path, query, host, version, form)
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
        Version,
        TargetForm,
    );
    let rows: &[Row] = &[
        (
            "GET / HTTP/1.1",
            "GET",
            "/",
            None,
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "GET /a/b?x=1&y HTTP/1.1",
            "GET",
            "/a/b",
            Some("x=1&y"),
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "GET /p? HTTP/1.1",
            "GET",
            "/p",
            Some(""),
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "GET /?a?b HTTP/1.1",
            "GET",
            "/",
            Some("a?b"),
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "GET //x HTTP/1.1",
            "GET",
            "//x",
            None,
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "GET /a%20b HTTP/1.1",
            "GET",
            "/a%20b",
            None,
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "GET /{|}^`\"<>\\ HTTP/1.1",
            "GET",
            "/{|}^`\"<>\\",
            None,
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "get / HTTP/1.1",
            "get",
            "/",
            None,
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "M-SEARCH / HTTP/1.1",
            "M-SEARCH",
            "/",
            None,
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "OPTIONS * HTTP/1.1",
            "OPTIONS",
            "*",
            None,
            "h",
            Version::Http11,
            TargetForm::Asterisk,
        ),
        (
            "GET / HTTP/1.0",
            "GET",
            "/",
            None,
            "h",
            Version::Http10,
            TargetForm::Origin,
        ),
        (
            "GET / HTTP/1.2",
            "GET",
            "/",
            None,
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "GET / HTTP/1.9",
            "GET",
            "/",
            None,
            "h",
            Version::Http11,
            TargetForm::Origin,
        ),
        (
            "GET http://example.com HTTP/1.1",
            "GET",
            "/",
            None,
            "example.com",
            Version::Http11,
            TargetForm::Absolute,
        ),
        (
            "GET http://e.com?q HTTP/1.1",
            "GET",
            "/",
            Some("q"),
            "e.com",
            Version::Http11,
            TargetForm::Absolute,
        ),
        (
            "GET HTTPS://E.com:8443/a/b?c=d HTTP/1.1",
            "GET",
            "/a/b",
            Some("c=d"),
            "E.com:8443",
            Version::Http11,
            TargetForm::Absolute,
        ),
        (
            "GET http://[::1]:80/x HTTP/1.1",
            "GET",
            "/x",
            None,
            "[::1]:80",
            Version::Http11,
            TargetForm::Absolute,
        ),
        (
            "GET http://127.0.0.1/ HTTP/1.1",
            "GET",
            "/",
            None,
            "127.0.0.1",
            Version::Http11,
            TargetForm::Absolute,
        ),
        (
            "CONNECT example.com:443 HTTP/1.1",
            "CONNECT",
            "",
            None,
            "example.com:443",
            Version::Http11,
            TargetForm::Authority,
        ),
        (
            "CONNECT [2001:db8::1]:65535 HTTP/1.1",
            "CONNECT",
            "",
            None,
            "[2001:db8::1]:65535",
            Version::Http11,
            TargetForm::Authority,
        ),
    ];
    for &(line, method, path, query, host, version, form) in rows {
        let input = req(line, "");
        let head = ok(&input);
        let view = head.view(&input);
        assert_eq!(view.method(), method, "{line}");
        assert_eq!(view.path(), path, "{line}");
        assert_eq!(view.query(), query, "{line}");
        assert_eq!(view.host(), Some(host), "{line}");
        assert_eq!(view.version(), version, "{line}");
        assert_eq!(head.form, form, "{line}");
        assert_eq!(view.target(), line.split(' ').nth(1).unwrap(), "{line}");
        assert_eq!(head.head_len, input.len(), "{line}");
    }
}

#[test]
fn invalid_request_lines() {
    let rows: &[(&[u8], E)] = &[
        (b" GET / HTTP/1.1", E::InvalidMethod),
        (b"G(T / HTTP/1.1", E::InvalidMethod),
        (b"G\x00T / HTTP/1.1", E::InvalidMethod),
        (b"GET  / HTTP/1.1", E::InvalidRequestLine),
        (b"GET\t/ HTTP/1.1", E::InvalidRequestLine),
        (b"GET", E::InvalidRequestLine),
        (b"GET /", E::InvalidRequestLine),
        (b"GET / ", E::InvalidVersion),
        (b"GET /  HTTP/1.1", E::InvalidVersion),
        (b"GET / HTTP/1.1 ", E::InvalidVersion),
        (b"GET /a b HTTP/1.1", E::InvalidVersion),
        (b"GET /\tHTTP/1.1", E::InvalidTarget),
        (b"GET /\x7f HTTP/1.1", E::InvalidTarget),
        (b"GET /\x00 HTTP/1.1", E::InvalidTarget),
        (b"GET /\x80 HTTP/1.1", E::InvalidTarget),
        (b"GET /\xc3\xa9 HTTP/1.1", E::InvalidTarget),
        (b"GET /#frag HTTP/1.1", E::InvalidTarget),
        (b"GET foo HTTP/1.1", E::InvalidTarget),
        (b"GET ftp://h/ HTTP/1.1", E::InvalidTarget),
        (b"GET http:/h/ HTTP/1.1", E::InvalidTarget),
        (b"GET http:///p HTTP/1.1", E::InvalidTarget),
        (b"GET http://:80/p HTTP/1.1", E::InvalidTarget),
        (b"GET http://u@h/ HTTP/1.1", E::InvalidTarget),
        (b"GET http://h:x/ HTTP/1.1", E::InvalidTarget),
        (b"GET http://[::g]/ HTTP/1.1", E::InvalidTarget),
        (b"CONNECT h HTTP/1.1", E::InvalidTarget),
        (b"CONNECT h: HTTP/1.1", E::InvalidTarget),
        (b"CONNECT h:0 HTTP/1.1", E::InvalidTarget),
        (b"CONNECT h:65536 HTTP/1.1", E::InvalidTarget),
        (b"CONNECT :443 HTTP/1.1", E::InvalidTarget),
        (b"CONNECT h:999999 HTTP/1.1", E::InvalidTarget),
        (b"GET :http://h/ HTTP/1.1", E::InvalidTarget),
        (b"GET * HTTP/1.1", E::TargetFormMismatch),
        (b"GET h:80 HTTP/1.1", E::TargetFormMismatch),
        (b"CONNECT / HTTP/1.1", E::TargetFormMismatch),
        (b"CONNECT * HTTP/1.1", E::TargetFormMismatch),
        (b"CONNECT http://h:1/ HTTP/1.1", E::TargetFormMismatch),
        (b"GET / HTTP/2.0", E::VersionNotSupported),
        (b"GET / HTTP/3.0", E::VersionNotSupported),
        (b"GET / HTTP/9.9", E::VersionNotSupported),
        (b"GET / HTTP/0.9", E::InvalidVersion),
        (b"GET / HTTP/1", E::InvalidVersion),
        (b"GET / HTTP/1.", E::InvalidVersion),
        (b"GET / HTTP/11.1", E::InvalidVersion),
        (b"GET / HTTP/1.10", E::InvalidVersion),
        (b"GET / http/1.1", E::InvalidVersion),
        (b"GET / HTTP/a.1", E::InvalidVersion),
        (b"GET / HTTP 1.1", E::InvalidVersion),
    ];
    for (line, kind) in rows {
        let mut input = line.to_vec();
        input.extend_from_slice(b"\r\nHost: h\r\n\r\n");
        assert_eq!(err(&input), *kind, "{:?}", String::from_utf8_lossy(line));
    }
}

#[test]
fn line_endings_are_crlf_only() {
    let rows: &[(&[u8], E)] = &[
        (b"GET / HTTP/1.1\nHost: h\r\n\r\n", E::BareLf),
        (b"GET / HTTP/1.1\rHost: h\r\n\r\n", E::BareCr),
        (b"GET / HTTP/1.1\r\r\n", E::BareCr),
        (b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", E::BareLf),
        (b"\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", E::BareCr),
        (b"\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", E::BareLf),
    ];
    for (input, kind) in rows {
        assert_eq!(err(input), *kind, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn leading_empty_lines_are_skipped_and_counted() {
    let input = b"\r\n\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    let head = ok(input);
    assert_eq!(head.view(input).method(), "GET");
    assert_eq!(head.head_len, input.len());
    // They count towards the header section: a stream of CRLFs cannot go on forever.
    let mut l = limits();
    l.max_header_bytes = 64;
    assert_eq!(err_with(l, &b"\r\n".repeat(40)), E::HeaderSectionTooLarge);
}

#[test]
fn method_limit() {
    let at = "M".repeat(limits().max_method_bytes);
    assert_eq!(
        ok(&req(&format!("{at} / HTTP/1.1"), "")).method.len as usize,
        at.len()
    );
    let past = "M".repeat(limits().max_method_bytes + 1);
    assert_eq!(
        err(&req(&format!("{past} / HTTP/1.1"), "")),
        E::MethodTooLong
    );
    // Decided before the method ends: a client streaming a huge token is cut off at the limit.
    assert_eq!(
        parse_prefix(limits(), past.as_bytes()),
        Err(E::MethodTooLong)
    );
    assert_eq!(parse_prefix(limits(), at.as_bytes()), Ok(Status::Partial));
}

#[test]
fn target_limit() {
    let max = limits().max_target_bytes;
    let at = format!("/{}", "a".repeat(max - 1));
    let head = ok(&req(&format!("GET {at} HTTP/1.1"), ""));
    assert_eq!(head.target.len as usize, max);
    let past = format!("/{}", "a".repeat(max));
    assert_eq!(
        err(&req(&format!("GET {past} HTTP/1.1"), "")),
        E::TargetTooLong
    );
    assert_eq!(
        parse_prefix(limits(), format!("GET {past}").as_bytes()),
        Err(E::TargetTooLong)
    );
    assert_eq!(
        parse_prefix(limits(), format!("GET {at}").as_bytes()),
        Ok(Status::Partial)
    );
}

#[test]
fn version_garbage_is_refused_before_the_line_ends() {
    assert_eq!(
        parse_prefix(limits(), b"GET / HTTX"),
        Err(E::InvalidVersion)
    );
    assert_eq!(
        parse_prefix(limits(), b"GET / HTTP/1.1"),
        Ok(Status::Partial)
    );
    assert_eq!(
        parse_prefix(limits(), b"GET / HTTP/1.1\r"),
        Ok(Status::Partial)
    );
}

/// One call on a prefix that may be incomplete.
pub(super) fn parse_prefix(limits: Limits, input: &[u8]) -> Result<Status, ParseError> {
    Parser::new(limits).parse(input)
}

#[test]
fn errors_are_sticky_and_reset_recovers() {
    let mut parser = Parser::new(limits());
    assert_eq!(parser.parse(b"GET /\x00"), Err(E::InvalidTarget));
    assert_eq!(
        parser.parse(b"GET /\x00 HTTP/1.1\r\n"),
        Err(E::InvalidTarget)
    );
    parser.reset();
    let input = req("GET / HTTP/1.1", "");
    assert_eq!(parser.parse(&input), Ok(Status::Complete));
    // Complete stays complete until reset.
    assert_eq!(parser.parse(&input), Ok(Status::Complete));
}

#[test]
fn reset_keeps_the_headers_allocation() {
    let mut parser = Parser::new(limits());
    let input = req("GET / HTTP/1.1", "A: 1\r\nB: 2\r\nC: 3\r\n");
    assert_eq!(parser.parse(&input), Ok(Status::Complete));
    let capacity = parser.head().headers.capacity();
    parser.reset();
    assert!(parser.head().headers.is_empty());
    assert_eq!(parser.head().headers.capacity(), capacity);
    assert_eq!(
        *parser.head(),
        RequestHead {
            headers: Vec::new(),
            ..RequestHead::default()
        }
    );
}
