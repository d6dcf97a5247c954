//! The byte layout of ABI v1 (docs/ABI.md): encoding a request into the bytes the guest reads, and
//! decoding + validating the bytes the guest answers with.
//!
//! Pure functions over byte slices: no wasmtime, no I/O, no HTTP status codes. The decoder is the
//! trust boundary between guest memory and the HTTP writer, so it must never panic, never allocate
//! in proportion to a count it has not yet seen backed by bytes, and refuse everything docs/ABI.md
//! refuses (each refusal has a test below).

use std::fmt;

/// One HTTP request as the guest sees it. Borrowed from the server's parsed request so that
/// encoding is the only copy.
#[derive(Debug, Clone, Copy)]
pub struct GuestRequest<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub version: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub params: &'a [(&'a str, String)],
    pub body: &'a [u8],
}

/// A validated guest response: every header is safe to write as-is (token name, no CR/LF/NUL/CTL
/// in the value, none of the framing headers the host owns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Fuel the call burned (budget minus what was left), for metrics.
    pub fuel_used: u64,
}

/// A request field longer than a `u32` length prefix can express. Unreachable with the HTTP limits
/// in config.rs, but the encoder refuses rather than truncating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request field `{field}` is too large for ABI v1 ({len} bytes, at most 4 GiB - 1)")]
pub struct RequestTooLarge {
    pub field: &'static str,
    pub len: usize,
}

/// Why a response was refused. All of these are the guest's fault: 502 `invalid_response`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The encoding ends before `field` is complete.
    #[error("response truncated: `{field}` needs bytes past offset {offset}")]
    Truncated { field: &'static str, offset: usize },
    /// Bytes left over after the body: `resp_len` must be the exact encoding length.
    #[error("response has {extra} trailing bytes after the body")]
    TrailingBytes { extra: usize },
    /// Status outside 200..=599 (1xx can't be a final answer).
    #[error("response status {0} is outside 200..=599")]
    Status(u32),
    /// A header name that is not an RFC 9110 token (shown lossily, cut to 64 bytes).
    #[error("response header #{index} has an invalid name {name:?} (not an RFC 9110 token)")]
    HeaderName { index: u32, name: String },
    /// A header value with CR, LF, NUL or another control character except HTAB.
    #[error("response header `{name}` has a control character in its value (CR, LF, NUL, ...)")]
    HeaderValue { name: String },
    /// `Content-Length`, `Transfer-Encoding` or `Connection`: framing is the host's.
    #[error(
        "response header `{name}` is owned by the host (framing) and may not be set by a plugin"
    )]
    HostOwnedHeader { name: String },
    /// `resp_len` larger than the route's `max_response_bytes`.
    #[error("response length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: u32, max: u32 },
    /// `[resp_ptr, resp_ptr + resp_len)` is not inside the guest's memory.
    #[error("response [{ptr:#x}, +{len}) lies outside guest memory of {memory_size} bytes")]
    OutOfBounds {
        ptr: u32,
        len: u32,
        memory_size: usize,
    },
}

/// Headers whose values decide message framing; the host writes them itself.
const HOST_OWNED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// Encodes `req` in the ABI v1 request layout.
pub fn encode_request(req: &GuestRequest<'_>) -> Result<Vec<u8>, RequestTooLarge> {
    let strs = [req.method, req.target, req.path, req.query, req.version];
    let size = strs.iter().map(|s| 4 + s.len()).sum::<usize>()
        + 4
        + req
            .headers
            .iter()
            .map(|(n, v)| 8 + n.len() + v.len())
            .sum::<usize>()
        + 4
        + req
            .params
            .iter()
            .map(|(n, v)| 8 + n.len() + v.len())
            .sum::<usize>()
        + 4
        + req.body.len();
    let mut out = Vec::with_capacity(size);
    let names = ["method", "target", "path", "query", "version"];
    for (field, s) in names.into_iter().zip(strs) {
        put_str(&mut out, field, s.as_bytes())?;
    }
    put_count(&mut out, "header_count", req.headers.len())?;
    for (name, value) in req.headers {
        put_str(&mut out, "header name", name.as_bytes())?;
        put_str(&mut out, "header value", value)?;
    }
    put_count(&mut out, "param_count", req.params.len())?;
    for (name, value) in req.params {
        put_str(&mut out, "param name", name.as_bytes())?;
        put_str(&mut out, "param value", value.as_bytes())?;
    }
    put_str(&mut out, "body", req.body)?;
    debug_assert_eq!(out.len(), size);
    Ok(out)
}

fn put_count(out: &mut Vec<u8>, field: &'static str, n: usize) -> Result<(), RequestTooLarge> {
    let n = u32::try_from(n).map_err(|_| RequestTooLarge { field, len: n })?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn put_str(out: &mut Vec<u8>, field: &'static str, s: &[u8]) -> Result<(), RequestTooLarge> {
    put_count(out, field, s.len())?;
    out.extend_from_slice(s);
    Ok(())
}

/// Splits `wasmgate_handle`'s return value into `(resp_ptr, resp_len)`, both unsigned 32-bit.
pub fn split_handle_result(r: i64) -> (u32, u32) {
    let r = r as u64;
    ((r >> 32) as u32, r as u32)
}

/// Checks `[ptr, ptr + len)` against the response cap and the memory size and returns it as a
/// range into memory. The cap is checked first: an oversize answer is reported as such even when
/// it also points outside memory.
pub fn response_range(
    ptr: u32,
    len: u32,
    max_response_bytes: u32,
    memory_size: usize,
) -> Result<std::ops::Range<usize>, ResponseError> {
    if len > max_response_bytes {
        return Err(ResponseError::TooLarge {
            len,
            max: max_response_bytes,
        });
    }
    let start = ptr as usize;
    match start.checked_add(len as usize) {
        Some(end) if end <= memory_size => Ok(start..end),
        _ => Err(ResponseError::OutOfBounds {
            ptr,
            len,
            memory_size,
        }),
    }
}

/// Decodes and validates an ABI v1 response. `fuel_used` is left at 0 for the caller to fill in.
pub fn decode_response(bytes: &[u8]) -> Result<GuestResponse, ResponseError> {
    let mut r = Reader { bytes, pos: 0 };
    let status = r.u32("status")?;
    if !(200..=599).contains(&status) {
        return Err(ResponseError::Status(status));
    }
    let count = r.u32("header_count")?;
    // Each header needs at least 8 bytes of length prefixes, so the remaining input bounds how
    // many can really follow: never trust `count` for the allocation.
    let mut headers = Vec::with_capacity((count as usize).min(r.remaining() / 8));
    for index in 0..count {
        let name = r.str("header name")?;
        let value = r.str("header value")?;
        if !is_token(name) {
            let shown = &name[..name.len().min(64)];
            return Err(ResponseError::HeaderName {
                index,
                name: String::from_utf8_lossy(shown).into_owned(),
            });
        }
        // A token is ASCII, so this cannot fail; the fallback is only to avoid a panic path.
        let name = String::from_utf8(name.to_vec()).unwrap_or_default();
        if HOST_OWNED_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            return Err(ResponseError::HostOwnedHeader { name });
        }
        if !is_field_value(value) {
            return Err(ResponseError::HeaderValue { name });
        }
        headers.push((name, value.to_vec()));
    }
    let body = r.str("body")?.to_vec();
    if r.remaining() != 0 {
        return Err(ResponseError::TrailingBytes {
            extra: r.remaining(),
        });
    }
    Ok(GuestResponse {
        status: status as u16,
        headers,
        body,
        fuel_used: 0,
    })
}

/// RFC 9110 §5.6.2 token: one or more tchar.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Field value bytes: anything but control characters, except HTAB (obs-text 0x80.. is allowed,
/// as RFC 9110 §5.5 allows it).
fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&c| c == b'\t' || !(c < 0x20 || c == 0x7f))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], ResponseError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(ResponseError::Truncated {
            field,
            offset: self.pos,
        })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ResponseError> {
        let b = self.take(field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str(&mut self, field: &'static str) -> Result<&'a [u8], ResponseError> {
        let len = self.u32(field)?;
        self.take(field, len as usize)
    }
}

impl fmt::Display for GuestRequest<'_> {
    /// Short form for logs: method and target only (headers and body may be sensitive).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.target)
    }
}

/// Encodes a response the way a guest would; used by tests here and in the runtime.
#[cfg(test)]
pub(crate) fn encode_response(status: u32, headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (n, v) in headers {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(n);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(headers: &[(&[u8], &[u8])]) -> Result<GuestResponse, ResponseError> {
        decode_response(&encode_response(200, headers, b"hi"))
    }

    #[test]
    fn request_layout_matches_the_abi() {
        let headers: [(&str, &[u8]); 1] = [("Host", b"x")];
        let params = [("rest", "a b".to_string())];
        let req = GuestRequest {
            method: "GET",
            target: "/e/a%20b?q=1",
            path: "/e/a%20b",
            query: "q=1",
            version: "HTTP/1.1",
            headers: &headers,
            params: &params,
            body: b"",
        };
        let got = encode_request(&req).unwrap();
        let mut want = Vec::new();
        for s in ["GET", "/e/a%20b?q=1", "/e/a%20b", "q=1", "HTTP/1.1"] {
            want.extend_from_slice(&(s.len() as u32).to_le_bytes());
            want.extend_from_slice(s.as_bytes());
        }
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&4u32.to_le_bytes());
        want.extend_from_slice(b"Host");
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(b"x");
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&4u32.to_le_bytes());
        want.extend_from_slice(b"rest");
        want.extend_from_slice(&3u32.to_le_bytes());
        want.extend_from_slice(b"a b");
        want.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(got, want);
    }

    #[test]
    fn decodes_a_valid_response() {
        let bytes = encode_response(
            404,
            &[(b"X-A", b"1\tb \x80"), (b"content-type", b"text/plain")],
            b"nope",
        );
        let r = decode_response(&bytes).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(
            r.headers,
            vec![
                ("X-A".to_string(), b"1\tb \x80".to_vec()),
                ("content-type".to_string(), b"text/plain".to_vec())
            ]
        );
        assert_eq!(r.body, b"nope");
    }

    #[test]
    fn refuses_status_outside_200_599() {
        for s in [0, 100, 199, 600, u32::MAX] {
            let e = decode_response(&encode_response(s, &[], b"")).unwrap_err();
            assert_eq!(e, ResponseError::Status(s));
        }
        for s in [200, 599] {
            assert!(decode_response(&encode_response(s, &[], b"")).is_ok());
        }
    }

    #[test]
    fn refuses_non_token_header_names() {
        for name in [&b""[..], b"a b", b"a:b", b"a\r\nb", b"\xc3\xa9", b"a\0"] {
            assert!(
                matches!(ok(&[(name, b"v")]), Err(ResponseError::HeaderName { .. })),
                "{name:?}"
            );
        }
        assert!(ok(&[(b"!#$%&'*+-.^_`|~09azAZ", b"v")]).is_ok());
    }

    #[test]
    fn refuses_control_characters_in_values() {
        for v in [
            &b"a\rb"[..],
            b"a\nb",
            b"a\r\nX-Evil: 1",
            b"\0",
            b"\x01",
            b"\x7f",
            b"\x1b[31m",
        ] {
            assert!(
                matches!(ok(&[(b"X-A", v)]), Err(ResponseError::HeaderValue { .. })),
                "{v:?}"
            );
        }
        assert!(ok(&[(b"X-A", b"tab\tok")]).is_ok());
    }

    #[test]
    fn refuses_host_owned_headers_in_any_case() {
        for name in [
            &b"Content-Length"[..],
            b"content-length",
            b"TRANSFER-ENCODING",
            b"Connection",
        ] {
            assert!(
                matches!(
                    ok(&[(name, b"1")]),
                    Err(ResponseError::HostOwnedHeader { .. })
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn refuses_truncation_at_every_length() {
        let bytes = encode_response(200, &[(b"X-A", b"1")], b"body");
        for n in 0..bytes.len() {
            assert!(
                matches!(
                    decode_response(&bytes[..n]),
                    Err(ResponseError::Truncated { .. })
                ),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn refuses_trailing_bytes() {
        let mut bytes = encode_response(200, &[], b"body");
        bytes.push(0);
        assert_eq!(
            decode_response(&bytes),
            Err(ResponseError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn huge_header_count_does_not_allocate_or_panic() {
        let mut bytes = 200u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_response(&bytes),
            Err(ResponseError::Truncated { .. })
        ));
    }

    #[test]
    fn response_range_checks_cap_then_bounds() {
        assert_eq!(response_range(16, 8, 100, 24), Ok(16..24));
        assert_eq!(
            response_range(16, 9, 100, 24),
            Err(ResponseError::OutOfBounds {
                ptr: 16,
                len: 9,
                memory_size: 24
            })
        );
        assert_eq!(
            response_range(u32::MAX, u32::MAX, u32::MAX, usize::MAX),
            Ok(u32::MAX as usize..2 * u32::MAX as usize)
        );
        assert_eq!(
            response_range(0, 101, 100, 1 << 20),
            Err(ResponseError::TooLarge { len: 101, max: 100 })
        );
    }

    #[test]
    fn split_handle_result_is_unsigned() {
        assert_eq!(split_handle_result(-1), (u32::MAX, u32::MAX));
        assert_eq!(split_handle_result((16 << 32) | 42), (16, 42));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_response(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_mutated_valid_input(
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..4),
            cut in 0usize..80,
        ) {
            let mut bytes = encode_response(200, &[(b"X-A", b"1"), (b"B", b"two")], b"body!");
            for (i, b) in flips {
                if i < bytes.len() { bytes[i] = b; }
            }
            bytes.truncate(cut);
            let _ = decode_response(&bytes);
        }

        #[test]
        fn valid_responses_round_trip(
            status in 200u32..=599,
            body in proptest::collection::vec(any::<u8>(), 0..64),
            value in "[ -~\t]{0,16}",
        ) {
            let bytes = encode_response(status, &[(b"X-V", value.as_bytes())], &body);
            let r = decode_response(&bytes).unwrap();
            prop_assert_eq!(r.status as u32, status);
            prop_assert_eq!(r.body, body);
            prop_assert_eq!(&r.headers[0].1, value.as_bytes());
        }
    }
}
