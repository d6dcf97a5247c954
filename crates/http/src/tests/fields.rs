//! Field lines (RFC 9112 §5, RFC 9110 §5): names, values, OWS, obs-fold, CTLs, and the field count
//! and header section limits at and one past the limit, including the slowloris case.

use super::request_line::parse_prefix;
use super::*;
use crate::{FieldError as F, ParseError as E};

#[test]
fn values_are_ows_trimmed_and_keep_inner_bytes() {
    let rows: &[(&[u8], &[u8], &[u8])] = &[
        (b"X: v", b"X", b"v"),
        (b"X:v", b"X", b"v"),
        (b"X: \t v \t ", b"X", b"v"),
        (b"X:", b"X", b""),
        (b"X:   ", b"X", b""),
        (b"X: a  b\tc", b"X", b"a  b\tc"),
        (b"X: \x80\xff caf\xc3\xa9", b"X", b"\x80\xff caf\xc3\xa9"),
        (b"X: \"quoted, list\"; p=1", b"X", b"\"quoted, list\"; p=1"),
        (b"!#$%&'*+-.^_`|~09azAZ: 1", b"!#$%&'*+-.^_`|~09azAZ", b"1"),
    ];
    for (line, name, value) in rows {
        let mut input = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        input.extend_from_slice(line);
        input.extend_from_slice(b"\r\n\r\n");
        let head = ok(&input);
        let view = head.view(&input);
        let (n, v) = view.headers().nth(1).unwrap();
        assert_eq!(
            (n.as_bytes(), v),
            (*name, *value),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn invalid_field_lines() {
    let rows: &[(&[u8], F)] = &[
        (b"X : v\r\n", F::WhitespaceBeforeColon),
        (b"X\t: v\r\n", F::WhitespaceBeforeColon),
        (b": v\r\n", F::EmptyName),
        (b" X: v\r\n", F::ObsFold),
        (b"\tX: v\r\n", F::ObsFold),
        (b"X: a\r\n b\r\n", F::ObsFold),
        (b"X: a\r\n\tb\r\n", F::ObsFold),
        (b"X\r\n", F::MissingColon),
        (b"X v\r\n", F::WhitespaceBeforeColon),
        (b"X(: v\r\n", F::InvalidName),
        (b"X\x00: v\r\n", F::InvalidName),
        (b"\xc3\xa9: v\r\n", F::InvalidName),
        (b"X: a\x00b\r\n", F::InvalidValue),
        (b"X: a\x7fb\r\n", F::InvalidValue),
        (b"X: a\x0bb\r\n", F::InvalidValue),
        (b"X: a\x1bb\r\n", F::InvalidValue),
        (b"X: a\nY: b\r\n", F::BareLf),
        (b"X: a\rY: b\r\n", F::BareCr),
        (b"X:\n", F::BareLf),
        (b"\n", F::BareLf),
        (b"\r\r\n", F::BareCr),
    ];
    for (lines, kind) in rows {
        let mut input = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        input.extend_from_slice(lines);
        input.extend_from_slice(b"\r\n");
        assert_eq!(
            err(&input),
            E::Field(*kind),
            "{:?}",
            String::from_utf8_lossy(lines)
        );
    }
    // Whitespace between the request line and the first field (RFC 9112 §2.2): rejected too.
    assert_eq!(
        err(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n"),
        E::Field(F::ObsFold)
    );
}

#[test]
fn field_count_limit() {
    let max = limits().max_headers;
    let fields_at: String = (1..max).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let head = ok(&req("GET / HTTP/1.1", &fields_at));
    assert_eq!(head.headers.len(), max);
    let fields_past: String = (1..=max).map(|i| format!("X-{i}: {i}\r\n")).collect();
    assert_eq!(err(&req("GET / HTTP/1.1", &fields_past)), E::TooManyFields);
}

#[test]
fn header_section_limit() {
    let max = limits().max_header_bytes;
    let base = req("GET / HTTP/1.1", "X: \r\n");
    let at = req(
        "GET / HTTP/1.1",
        &format!("X: {}\r\n", "v".repeat(max - base.len())),
    );
    assert_eq!(at.len(), max);
    assert_eq!(ok(&at).head_len, max);
    let past = req(
        "GET / HTTP/1.1",
        &format!("X: {}\r\n", "v".repeat(max - base.len() + 1)),
    );
    assert_eq!(err(&past), E::HeaderSectionTooLarge);
}

#[test]
fn header_section_limit_is_decided_before_the_head_ends() {
    // A slowloris sending an endless header: refused once the bytes pass the limit, not buffered.
    let max = limits().max_header_bytes;
    let mut endless = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    endless.resize(max, b'v');
    assert_eq!(parse_prefix(limits(), &endless), Ok(Status::Partial));
    endless.push(b'v');
    assert_eq!(
        parse_prefix(limits(), &endless),
        Err(E::HeaderSectionTooLarge)
    );
    // Same with endless short field lines, and with a 1 MB blob in one read.
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    many.extend(b"A: b\r\n".repeat(10_000));
    let mut l = limits();
    l.max_headers = usize::MAX;
    assert_eq!(parse_prefix(l, &many), Err(E::HeaderSectionTooLarge));
    let mut blob = b"GET / HTTP/1.1\r\nX: ".to_vec();
    blob.resize(1 << 20, b'v');
    assert_eq!(parse_prefix(limits(), &blob), Err(E::HeaderSectionTooLarge));
}

#[test]
fn view_accessors() {
    let input = req(
        "GET /p?q HTTP/1.1",
        "Content-Type: text/plain\r\nX-Dup: 1\r\nx-dup: 2\r\n",
    );
    let head = ok(&input);
    let view = head.view(&input);
    assert_eq!(view.header("content-type"), Some(&b"text/plain"[..]));
    assert_eq!(view.header("X-DUP"), Some(&b"1"[..]));
    assert_eq!(view.header("missing"), None);
    let names: Vec<&str> = view.headers().map(|(n, _)| n).collect();
    assert_eq!(names, ["Host", "Content-Type", "X-Dup", "x-dup"]);
    assert_eq!(view.host(), Some("h"));
    assert_eq!(view.head().path.len, 2);
    // A wrong buffer never panics.
    assert_eq!(head.view(b"").method(), "");
}
