//! [`ResponseError`]: the host's refusal rules for responses (docs/ABI.md, "What the host
//! refuses"), as a plugin author meets them, plus a JSON body that could not be serialized.
//!
//! The rules themselves are `wasmgate-abi`'s, the very functions the host applies (status
//! 200..=599, header names are RFC 9110 tokens, header values have no control character but tab,
//! `Content-Length`, `Transfer-Encoding` and `Connection` are the host's); this module only names
//! a broken rule in the SDK's terms. It must not build or encode responses;
//! [`Response`](crate::Response) calls it.

use std::fmt;

/// Something in a [`Response`](crate::Response) the host would refuse with 502 (docs/ABI.md).
///
/// ```
/// use wasmgate_sdk::{Response, ResponseError};
///
/// let resp = Response::new(302).header("Location", "/new\r\nX-Evil: 1");
/// assert!(matches!(resp.build_error(), Some(ResponseError::InvalidHeaderValue { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The status is outside 200..=599.
    InvalidStatus(u16),
    /// The header name is not an RFC 9110 token (it is empty or has spaces, `:`, etc.).
    InvalidHeaderName(String),
    /// The header value contains CR, LF, NUL or another control character other than tab.
    InvalidHeaderValue {
        /// The header's name.
        name: String,
        /// The refused value.
        value: String,
    },
    /// `Content-Length`, `Transfer-Encoding` or `Connection`: framing belongs to the host.
    HostOwnedHeader(String),
    /// The value given to [`Response::json`](crate::Response::json) could not be serialized.
    Json(String),
    /// [`Response::redirect`](crate::Response::redirect) was given a status that is not a
    /// redirect with a `Location` (301, 302, 303, 307, 308).
    InvalidRedirect(u16),
    /// More header fields than the host sends (`wasmgate_abi::MAX_RESPONSE_HEADERS`).
    TooManyHeaders,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidStatus(s) => write!(
                f,
                "status {s} is outside 200..=599 (1xx are interim responses, not a final answer)"
            ),
            Self::InvalidHeaderName(n) => write!(
                f,
                "header name {n:?} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)"
            ),
            Self::InvalidHeaderValue { name, value } => write!(
                f,
                "value of header {name} is {value:?}: CR, LF, NUL and other control characters \
                 (except tab) are not allowed"
            ),
            Self::HostOwnedHeader(n) => write!(
                f,
                "header {n} is set by the host, not by plugins (it owns Content-Length, \
                 Transfer-Encoding and Connection)"
            ),
            Self::Json(e) => write!(f, "could not serialize the JSON body: {e}"),
            Self::InvalidRedirect(s) => write!(
                f,
                "status {s} is not a redirect (Response::redirect takes 301, 302, 303, 307 or 308)"
            ),
            Self::TooManyHeaders => write!(
                f,
                "more than {} header fields (the most the host sends)",
                wasmgate_abi::MAX_RESPONSE_HEADERS
            ),
        }
    }
}

impl std::error::Error for ResponseError {}

/// Whether the host accepts `status` as a final answer (the ABI crate's rule).
pub(crate) fn check_status(status: u16) -> Result<(), ResponseError> {
    wasmgate_abi::check_status(u32::from(status)).map_err(|_| ResponseError::InvalidStatus(status))
}

/// The host's header rules (the ABI crate's, so the SDK and the host cannot disagree): the name
/// is a token and not a framing header; the value has no control character but tab (bytes
/// >= 0x80, i.e. any non-ASCII UTF-8, are allowed).
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), ResponseError> {
    use wasmgate_abi::Refusal;
    match wasmgate_abi::check_header(0, name.as_bytes(), value.as_bytes()) {
        Ok(()) => Ok(()),
        Err(Refusal::HeaderName { .. }) => Err(ResponseError::InvalidHeaderName(name.to_owned())),
        Err(Refusal::HostOwnedHeader { .. }) => {
            Err(ResponseError::HostOwnedHeader(name.to_owned()))
        }
        Err(Refusal::HeaderValue { .. } | Refusal::Status(_)) => {
            let (name, value) = (name.to_owned(), value.to_owned());
            Err(ResponseError::InvalidHeaderValue { name, value })
        }
        // One header is checked here; the count is checked where headers are added.
        Err(Refusal::TooManyHeaders { .. }) => Err(ResponseError::TooManyHeaders),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Response;

    #[test]
    fn status_range_is_the_hosts() {
        for ok in [200, 204, 302, 404, 599] {
            assert!(Response::new(ok).build_error().is_none(), "{ok}");
        }
        for bad in [0, 100, 101, 199, 600, 999] {
            assert_eq!(
                Response::new(bad).build_error(),
                Some(&ResponseError::InvalidStatus(bad))
            );
        }
    }

    #[test]
    fn the_hosts_header_count_is_reached_and_not_passed() {
        let mut resp = Response::ok();
        for i in 0..wasmgate_abi::MAX_RESPONSE_HEADERS {
            resp = resp.header("set-cookie", format!("c{i}=1"));
        }
        assert!(resp.build_error().is_none());
        let resp = resp.header("set-cookie", "one=more");
        assert_eq!(resp.build_error(), Some(&ResponseError::TooManyHeaders));
        assert_eq!(resp.headers().count(), wasmgate_abi::MAX_RESPONSE_HEADERS);
    }

    #[test]
    fn header_names_must_be_tokens() {
        for ok in ["x", "X-Custom_1", "!#$%&'*+-.^_`|~", "WWW-Authenticate"] {
            assert!(
                Response::ok().header(ok, "v").build_error().is_none(),
                "{ok}"
            );
        }
        for bad in ["", "a b", "a:b", "a\tb", "é", "a\"b", "(x)", "a/b", "a\r\n"] {
            let resp = Response::ok().header(bad, "v");
            assert_eq!(
                resp.build_error(),
                Some(&ResponseError::InvalidHeaderName(bad.into())),
                "{bad:?}"
            );
            assert_eq!(resp.headers().count(), 0);
        }
    }

    #[test]
    fn header_values_refuse_controls_but_tab_and_allow_non_ascii() {
        for ok in ["", "a b", "a\tb", "café ✓", "\"quoted\"", "x=1; Path=/"] {
            assert!(
                Response::ok().header("v", ok).build_error().is_none(),
                "{ok:?}"
            );
        }
        for bad in [
            "a\rb",
            "a\nb",
            "a\0b",
            "\x01",
            "\x1f",
            "\x7f",
            "x\r\nSet-Cookie: a=1",
        ] {
            let resp = Response::ok().header("v", bad);
            assert!(
                matches!(
                    resp.build_error(),
                    Some(ResponseError::InvalidHeaderValue { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn framing_headers_are_refused_in_any_case() {
        for owned in [
            "Content-Length",
            "content-length",
            "TRANSFER-ENCODING",
            "Connection",
        ] {
            let resp = Response::ok().header(owned, "x");
            assert_eq!(
                resp.build_error(),
                Some(&ResponseError::HostOwnedHeader(owned.into()))
            );
        }
        assert!(
            Response::ok()
                .header("Content-Type", "x")
                .header("Keep-Alive", "5")
                .build_error()
                .is_none()
        );
    }
}
