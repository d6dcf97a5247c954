//! Percent-decoding and `application/x-www-form-urlencoded` query parsing.
//!
//! This module owns turning the raw query string the host passes into `(name, value)` pairs, with
//! the rules browsers use (WHATWG URL standard): pairs split on `&`, name and value on the first
//! `=`, `+` means space, `%XX` is a byte, and an invalid escape is kept literally rather than
//! rejected — a handler should see what a browser would have meant, not an error. It must not
//! touch paths or route params: the host already percent-decoded params, and the path is handed
//! to plugins still encoded on purpose (docs/ABI.md) so `%2F` stays distinguishable from `/`.

use std::borrow::Cow;

/// Decodes `%XX` escapes. Invalid escapes (`%zz`, a lone `%`) are kept as they are, and bytes
/// that do not form UTF-8 become U+FFFD, so this never fails.
///
/// It does not turn `+` into a space: that rule belongs to query strings only, and
/// [`Request::query`](crate::Request::query) already applies it.
///
/// ```
/// use wasmgate_sdk::percent_decode;
///
/// assert_eq!(percent_decode("/files/a%20b%2Fc"), "/files/a b/c");
/// assert_eq!(percent_decode("100%"), "100%");
/// assert_eq!(percent_decode("a+b"), "a+b");
/// assert_eq!(percent_decode("%E2%9C%93"), "✓");
/// assert_eq!(percent_decode("%FF"), "\u{FFFD}");
/// ```
pub fn percent_decode(input: &str) -> Cow<'_, str> {
    decode(input, false)
}

/// Splits a raw query string into decoded `(name, value)` pairs, in order, keeping repeated
/// names. Empty pieces (`a=1&&b=2`, a trailing `&`) are skipped; a piece without `=` has an
/// empty value.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (
                decode(name, true).into_owned(),
                decode(value, true).into_owned(),
            )
        })
        .collect()
}

/// The shared decoder; `plus_is_space` selects form-encoding rules. Borrows when there is
/// nothing to decode, which is the common case for ids and names.
fn decode(input: &str, plus_is_space: bool) -> Cow<'_, str> {
    let needs_work = input
        .bytes()
        .any(|b| b == b'%' || (plus_is_space && b == b'+'));
    if !needs_work {
        return Cow::Borrowed(input);
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        parse_query(q)
    }

    fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn splits_and_decodes_like_a_browser_form() {
        assert_eq!(pairs(""), owned(&[]));
        assert_eq!(
            pairs("a=1&b=two+words&a=3"),
            owned(&[("a", "1"), ("b", "two words"), ("a", "3")])
        );
        assert_eq!(pairs("flag&x="), owned(&[("flag", ""), ("x", "")]));
        assert_eq!(pairs("&&a=1&"), owned(&[("a", "1")]));
        assert_eq!(pairs("k=a=b"), owned(&[("k", "a=b")]));
        assert_eq!(pairs("%6Bey=%41%2b%26"), owned(&[("key", "A+&")]));
        assert_eq!(pairs("q=caf%C3%A9"), owned(&[("q", "café")]));
        assert_eq!(pairs("=v"), owned(&[("", "v")]));
    }

    #[test]
    fn invalid_escapes_are_kept_and_bad_utf8_is_replaced() {
        assert_eq!(
            pairs("a=%&b=%4&c=%zz&d=%4g"),
            owned(&[("a", "%"), ("b", "%4"), ("c", "%zz"), ("d", "%4g")])
        );
        assert_eq!(pairs("x=%ff%fe"), owned(&[("x", "\u{FFFD}\u{FFFD}")]));
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%%41"), "%A");
    }

    #[test]
    fn borrows_when_nothing_to_decode() {
        assert!(matches!(percent_decode("plain"), Cow::Borrowed("plain")));
        assert!(matches!(decode("a+b", false), Cow::Borrowed("a+b")));
        assert!(matches!(decode("a+b", true), Cow::Owned(_)));
    }
}
