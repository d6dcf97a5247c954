//! The one response serializer.
//!
//! Owns the bytes of every response the server sends: a valid status line, `Date`, framing
//! (`Content-Length`, never a guest's), `Connection`, the handler's headers, then the body unless
//! the request was HEAD or the status forbids one. Handlers build a [`Response`] value; only this
//! module turns it into bytes, so framing cannot be got wrong anywhere else. Also the one
//! statement of a `Retry-After` value ([`retry_after_secs`]), shared by the host and the SDK.

use std::borrow::Cow;
use std::time::Duration;

/// `wait` as the delay-seconds of a `Retry-After` header (RFC 9110, section 10.2.3): whole
/// seconds, rounded up so a client that waits that long is never early, and at least 1 (a
/// `Retry-After: 0` invites an immediate retry that would be refused again).
///
/// ```
/// use std::time::Duration;
/// use wasmgate_http::encode::retry_after_secs;
///
/// assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
/// assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
/// assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
/// assert_eq!(retry_after_secs(Duration::ZERO), 1);
/// ```
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// A response as handlers produce it: framing headers are added here, never by them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code; the reason phrase is [`reason`]'s.
    pub status: u16,
    /// Header fields in the order they are sent, after the ones the encoder owns (`Date`,
    /// `Content-Length`, `Connection`).
    pub headers: Vec<(Cow<'static, str>, Cow<'static, [u8]>)>,
    /// The body (not sent for HEAD, 1xx, 204 and 304).
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no headers and an empty body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON body with its content type.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response::new(status)
            .header("content-type", b"application/json")
            .body(body)
    }

    /// Adds a header (names are given as static or owned text: see [`Response::headers`]).
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, [u8]>>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }
}

/// How the request being answered shapes its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// HEAD: send the headers of the response a GET would get, without its body.
    pub head_request: bool,
    /// Keep the connection open after this response.
    pub keep_alive: bool,
    /// The client spoke HTTP/1.0, which closes by default: keep-alive must be said explicitly.
    pub http10: bool,
}

/// Reason phrases for the statuses the server itself produces and the common ones guests use.
/// The phrase is informative only (RFC 9112 §4: clients ignore it), so unknown codes get none.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The interim response sent before reading a body the client is waiting to send.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Appends the encoded response to `out`. `date` is an IMF-fixdate (RFC 9110 §5.6.7), sent unless
/// the response carries its own `Date` (a handler that relays another server's answer keeps its
/// date: RFC 9110 §6.6.1 lets an origin choose it). `extra` are headers the server adds to every
/// response (e.g. a request id), written after the framing headers and before the handler's.
pub fn encode(
    resp: &Response,
    framing: Framing,
    date: &str,
    extra: &[(&str, &[u8])],
    out: &mut Vec<u8>,
) {
    let status = resp.status;
    // RFC 9110 §8.6: no Content-Length on 1xx and 204; 304 describes a body it does not carry.
    let no_body_status = matches!(status, 100..=199 | 204 | 304);
    out.reserve(128 + resp.body.len());
    // Written piece by piece rather than with `write!`: this runs for every response, and the
    // formatting machinery costs more than the rest of the head together.
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    if !resp
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("date"))
    {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !no_body_status {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, resp.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    if !framing.keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if framing.http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    for (name, value) in extra {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &resp.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !framing.head_request && !no_body_status {
        out.extend_from_slice(&resp.body);
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 99, 100, 4096, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    fn text(resp: &Response, framing: Framing) -> String {
        let mut out = Vec::new();
        encode(resp, framing, DATE, &[], &mut out);
        String::from_utf8(out).unwrap()
    }

    const KEEP: Framing = Framing {
        head_request: false,
        keep_alive: true,
        http10: false,
    };

    #[test]
    fn frames_with_content_length_and_date() {
        let resp = Response::json(200, b"{}".to_vec());
        assert_eq!(
            text(&resp, KEEP),
            "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"
        );
    }

    #[test]
    fn head_keeps_the_length_but_drops_the_body() {
        let resp = Response::new(200).body(b"hello".to_vec());
        let out = text(
            &resp,
            Framing {
                head_request: true,
                ..KEEP
            },
        );
        assert!(
            out.contains("content-length: 5\r\n") && out.ends_with("\r\n\r\n"),
            "{out}"
        );
    }

    #[test]
    fn connection_header_follows_persistence_and_version() {
        let resp = Response::new(404);
        assert!(
            text(
                &resp,
                Framing {
                    keep_alive: false,
                    ..KEEP
                }
            )
            .contains("connection: close\r\n")
        );
        assert!(
            text(
                &resp,
                Framing {
                    http10: true,
                    ..KEEP
                }
            )
            .contains("connection: keep-alive\r\n")
        );
        assert!(!text(&resp, KEEP).contains("connection"));
    }

    /// A handler's own `Date` (any case) replaces the server's: exactly one `Date` is sent.
    #[test]
    fn a_handlers_date_replaces_the_servers() {
        let own = "Tue, 01 Dec 2026 10:00:00 GMT";
        let resp = Response::new(200).header("Date", own.as_bytes().to_vec());
        let out = text(&resp, KEEP);
        assert_eq!(
            out.to_ascii_lowercase().matches("date:").count(),
            1,
            "{out}"
        );
        assert!(out.contains(&format!("Date: {own}\r\n")), "{out}");
        assert!(!out.contains(DATE), "{out}");
    }

    #[test]
    fn extra_headers_come_after_framing_and_before_the_handlers() {
        let resp = Response::new(200).header("x-h", b"1".to_vec());
        let mut out = Vec::new();
        encode(&resp, KEEP, DATE, &[("x-request-id", b"abc")], &mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("content-length: 0\r\nx-request-id: abc\r\nx-h: 1\r\n\r\n"),
            "{out}"
        );
    }

    #[test]
    fn no_length_or_body_where_the_status_forbids_it() {
        for status in [204, 304] {
            let out = text(&Response::new(status).body(b"x".to_vec()), KEEP);
            assert!(
                !out.contains("content-length") && out.ends_with("\r\n\r\n"),
                "{out}"
            );
        }
        assert!(text(&Response::new(599), KEEP).starts_with("HTTP/1.1 599 \r\n"));
    }
}
