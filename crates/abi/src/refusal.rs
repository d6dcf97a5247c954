//! The host's refusal rules for responses (docs/ABI.md, "What the host refuses" and
//! "Clarifications" 8-9), and [`Refusal`], which names a broken rule.
//!
//! One statement of the rules for both sides: the host refuses a response that breaks one (502
//! `invalid_response`), and the SDK checks the same functions when a response is built, so a
//! plugin author gets an explanation instead of a bare 502. The token and field-value byte sets
//! are HTTP's, from `wasmgate-http`; this module adds only what the ABI decides: the status range
//! and the headers the host owns. It must not decode or encode bytes (that is `codec`).

use std::fmt;

use crate::message::RawResponse;

/// Headers whose values decide message framing: the host writes them itself, and refuses a
/// response that sets them (matched ASCII case-insensitively). A guest's `Date`, by contrast,
/// replaces the host's (docs/ABI.md, Clarifications 8).
pub const HOST_OWNED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// Most header fields a response may carry. Generous for real responses (a few dozen, several
/// `Set-Cookie`s), and the same order as the request side's `[http] max_headers` default: a guest
/// cannot make the host write (and clients parse) thousands of fields.
pub const MAX_RESPONSE_HEADERS: usize = 100;

/// A rule of docs/ABI.md that a response breaks. Names and values are shown lossily and cut to
/// 64 bytes, so a refusal can be logged whatever the guest sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A status outside 200..=599 (1xx can't be a final answer).
    Status(u32),
    /// A header name that is not an RFC 9110 token.
    HeaderName {
        /// Its position in the response's header list, from 0.
        index: u32,
        /// The name as sent.
        name: String,
    },
    /// A header value with CR, LF, NUL or another control character except HTAB.
    HeaderValue {
        /// The header's name.
        name: String,
    },
    /// `Content-Length`, `Transfer-Encoding` or `Connection`: framing is the host's.
    HostOwnedHeader {
        /// The header's name, as sent.
        name: String,
    },
    /// More than [`MAX_RESPONSE_HEADERS`] header fields.
    TooManyHeaders {
        /// How many the response has.
        count: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Status(s) => write!(
                f,
                "response status {s} is outside 200..=599 (1xx are interim responses, not a final answer)"
            ),
            Refusal::HeaderName { index, name } => write!(
                f,
                "response header #{index} has an invalid name {name:?} (not an RFC 9110 token: \
                 letters, digits and !#$%&'*+-.^_`|~ only)"
            ),
            Refusal::HeaderValue { name } => write!(
                f,
                "response header `{name}` has a control character in its value (CR, LF, NUL, ...; \
                 only tab is allowed)"
            ),
            Refusal::HostOwnedHeader { name } => write!(
                f,
                "response header `{name}` is owned by the host (framing: Content-Length, \
                 Transfer-Encoding, Connection) and may not be set by a plugin"
            ),
            Refusal::TooManyHeaders { count } => write!(
                f,
                "the response has {count} header fields, more than the {MAX_RESPONSE_HEADERS} \
                 a plugin may send"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Whether the host accepts `status` as a final answer: 200..=599, registered or not.
///
/// ```
/// assert!(wasmgate_abi::check_status(599).is_ok());
/// assert_eq!(wasmgate_abi::check_status(101), Err(wasmgate_abi::Refusal::Status(101)));
/// ```
pub fn check_status(status: u32) -> Result<(), Refusal> {
    if (200..=599).contains(&status) {
        Ok(())
    } else {
        Err(Refusal::Status(status))
    }
}

/// Whether the host sends header `name: value` (the `index`-th of the response) as given: the name
/// is a token and not host-owned, the value has no control character but HTAB.
///
/// ```
/// use wasmgate_abi::{Refusal, check_header};
///
/// assert!(check_header(0, b"Location", b"/new").is_ok());
/// assert!(matches!(check_header(0, b"Location", b"/a\r\nX: 1"), Err(Refusal::HeaderValue { .. })));
/// assert!(matches!(check_header(1, b"content-LENGTH", b"1"), Err(Refusal::HostOwnedHeader { .. })));
/// ```
pub fn check_header(index: u32, name: &[u8], value: &[u8]) -> Result<(), Refusal> {
    if !wasmgate_http::is_token(name) {
        return Err(Refusal::HeaderName {
            index,
            name: shown(name),
        });
    }
    if HOST_OWNED_HEADERS
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
    {
        return Err(Refusal::HostOwnedHeader { name: shown(name) });
    }
    if !wasmgate_http::is_field_value(value) {
        return Err(Refusal::HeaderValue { name: shown(name) });
    }
    Ok(())
}

impl RawResponse<'_> {
    /// The first rule this response breaks, in encoding order (status, the header count, then
    /// each header), or `None` when the host sends it as it is.
    pub fn refusal(&self) -> Option<Refusal> {
        if let Err(r) = check_status(self.status) {
            return Some(r);
        }
        if self.headers.len() > MAX_RESPONSE_HEADERS {
            return Some(Refusal::TooManyHeaders {
                count: self.headers.len(),
            });
        }
        (0u32..)
            .zip(&self.headers)
            .find_map(|(i, (name, value))| check_header(i, name, value).err())
    }
}

/// At most 64 bytes of `bytes`, lossily as text, for a message.
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned()
}
