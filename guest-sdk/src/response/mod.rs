//! [`Response`]: the builder handlers answer with, and [`ResponseError`]: what the host would
//! refuse about it.
//!
//! This module owns building and inspecting responses, and the policy for invalid ones. The rules
//! themselves (the guest-side copy of docs/ABI.md's refusals) are in the `check` submodule, the
//! named shortcuts (redirects, JSON errors) in `shortcuts`.
//! Checking at the call that introduced the mistake turns a bare 502 into a message naming the
//! header. It must not encode bytes (`wire`) nor decide HTTP framing: the host owns
//! `Content-Length`, `Transfer-Encoding` and `Connection`, so the builder refuses them.
//!
//! The builder methods are infallible so handlers stay one expression long. The first mistake is
//! recorded (and the offending header is not added); [`Response::build_error`] reports it, and
//! when a handler returns such a response the SDK answers 500 with an explanatory body and
//! prints the reason to stderr (the host log). This was chosen over `Result`-returning builders
//! because a refused header is a programming error, found by the first test that looks at the
//! response.

mod check;
mod shortcuts;

pub use check::ResponseError;

use crate::wire::{EncodeError, RawResponse};
use check::{check_header, check_status};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An HTTP response: status, headers in order, body.
///
/// ```
/// use wasmgate_sdk::Response;
///
/// let resp = Response::ok()
///     .header("cache-control", "no-store")
///     .header("content-type", "text/csv")
///     .body("a,b\n1,2\n");
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.header_value("Cache-Control"), Some("no-store"));
/// assert_eq!(resp.body_bytes(), b"a,b\n1,2\n");
/// assert!(resp.build_error().is_none());
///
/// // A mistake is recorded, not added, and surfaces as a 500 with an explanation.
/// let bad = Response::ok().header("Content-Length", "3");
/// assert_eq!(bad.header_value("content-length"), None);
/// assert_eq!(
///     bad.build_error().unwrap().to_string(),
///     "header Content-Length is set by the host, not by plugins (it owns Content-Length, \
///      Transfer-Encoding and Connection)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    error: Option<ResponseError>,
}

impl Response {
    /// A response with `status` (200..=599), no headers and an empty body.
    ///
    /// ```
    /// use wasmgate_sdk::Response;
    ///
    /// assert_eq!(Response::new(204).status(), 204);
    /// assert!(Response::new(101).build_error().is_some());
    /// ```
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            error: check_status(status).err(),
        }
    }

    /// `200 OK`, empty.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Response::ok().status(), 200);
    /// ```
    pub fn ok() -> Self {
        Self::new(200)
    }

    /// A `text/plain; charset=utf-8` response.
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::text(404, "no such user\n");
    /// assert_eq!(resp.header_value("content-type"), Some("text/plain; charset=utf-8"));
    /// assert_eq!(resp.body_text(), Some("no such user\n"));
    /// ```
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status)
            .set_header("content-type", "text/plain; charset=utf-8")
            .body(body.into())
    }

    /// An `application/json` response with `value` serialized compactly. A value that cannot be
    /// serialized (a map with non-string keys, a failing `Serialize` impl) is recorded as an
    /// error, like a refused header.
    ///
    /// ```
    /// use wasmgate_sdk::Response;
    ///
    /// let resp = Response::json(201, &serde_json::json!({ "id": 7 }));
    /// assert_eq!(resp.status(), 201);
    /// assert_eq!(resp.header_value("content-type"), Some("application/json"));
    /// assert_eq!(resp.body_text(), Some(r#"{"id":7}"#));
    /// ```
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        let resp = Self::new(status).set_header("content-type", "application/json");
        match serde_json::to_vec(value) {
            Ok(body) => resp.body(body),
            Err(e) => resp.fail(ResponseError::Json(e.to_string())),
        }
    }

    /// Appends a header; repeated names are kept in order (e.g. several `set-cookie`). A name
    /// or value the host would refuse is recorded as [`Response::build_error`] and not added.
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::ok().header("set-cookie", "a=1").header("set-cookie", "b=2");
    /// assert_eq!(resp.headers().count(), 2);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if self.headers.len() >= wasmgate_abi::MAX_RESPONSE_HEADERS {
            return self.fail(ResponseError::TooManyHeaders);
        }
        match check_header(&name, &value) {
            Ok(()) => {
                self.headers.push((name, value));
                self
            }
            Err(e) => self.fail(e),
        }
    }

    /// Replaces every header named `name` (case-insensitively) with this one value.
    ///
    /// ```
    /// use wasmgate_sdk::Response;
    ///
    /// let resp = Response::json(200, &[1, 2]).set_header("Content-Type", "application/vnd.x+json");
    /// assert_eq!(resp.headers().collect::<Vec<_>>(), [("Content-Type", "application/vnd.x+json")]);
    /// ```
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.header(name, value)
    }

    /// Sets the body (bytes or text). It does not set `content-type`; use
    /// [`Response::text`] or [`Response::json`], or add the header yourself.
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::ok().body(vec![1u8, 2, 3]);
    /// assert_eq!(resp.body_bytes(), [1, 2, 3]);
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Response::new(418).status(), 418);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// All headers in order.
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::ok().header("a", "1").header("b", "2");
    /// assert_eq!(resp.headers().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The first value of header `name`, case-insensitively (named so it does not clash with
    /// the [`Response::header`] builder method).
    ///
    /// ```
    /// let resp = wasmgate_sdk::Response::ok().header("ETag", "\"v1\"");
    /// assert_eq!(resp.header_value("etag"), Some("\"v1\""));
    /// ```
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The body bytes.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Response::ok().body("x").body_bytes(), b"x");
    /// ```
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body as text, if it is UTF-8.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Response::ok().body(vec![0xff]).body_text(), None);
    /// ```
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The body parsed as JSON; handy in tests.
    ///
    /// ```
    /// use wasmgate_sdk::Response;
    ///
    /// let v: serde_json::Value = Response::json(200, &serde_json::json!({"a": [1]})).body_json()?;
    /// assert_eq!(v["a"][0], 1);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The first mistake made while building this response, if any: something the host would
    /// refuse, a JSON value that did not serialize, a redirect without a redirect status. (Named
    /// so it does not clash with the [`Response::error`] constructor.)
    ///
    /// ```
    /// use wasmgate_sdk::{Response, ResponseError};
    ///
    /// let resp = Response::ok().header("bad name", "x").header("Connection", "close");
    /// assert_eq!(resp.build_error(), Some(&ResponseError::InvalidHeaderName("bad name".into())));
    /// ```
    pub fn build_error(&self) -> Option<&ResponseError> {
        self.error.as_ref()
    }

    /// Records the first error only: later ones are usually consequences.
    fn fail(mut self, e: ResponseError) -> Self {
        self.error.get_or_insert(e);
        self
    }

    /// What actually goes to the host: `self`, or a 500 explaining the recorded error (also
    /// printed to stderr, i.e. the host log, because the client may not be the plugin's author).
    pub(crate) fn or_explained_500(self) -> Self {
        let Some(err) = self.error else { return self };
        eprintln!("wasmgate-sdk: the handler built an invalid response, answering 500: {err}");
        Response::text(
            500,
            format!("500 Internal Server Error\n\nthe plugin built an invalid response: {err}\n"),
        )
    }

    /// The ABI encoding of this response, as is (no validation: see `or_explained_500`).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        RawResponse {
            status: u32::from(self.status),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                .collect(),
            body: &self.body,
        }
        .encode()
    }

    /// Rebuilds a response from its encoding through the builder, so that whatever the host
    /// would refuse shows up in [`Response::build_error`]. Used by [`crate::testing::call`].
    pub(crate) fn from_raw(raw: &RawResponse<'_>) -> Self {
        let status = u16::try_from(raw.status).unwrap_or(u16::MAX);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let resp = raw
            .headers
            .iter()
            .fold(Self::new(status), |r, (n, v)| r.header(text(n), text(v)));
        resp.body(raw.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_response_becomes_an_explained_500() {
        let resp = Response::json(201, &[1])
            .header("Transfer-Encoding", "chunked")
            .or_explained_500();
        assert_eq!(resp.status(), 500);
        assert!(resp.build_error().is_none());
        let body = resp.body_text().unwrap();
        assert!(
            body.contains("header Transfer-Encoding is set by the host"),
            "{body}"
        );
        // A valid response passes through untouched.
        let ok = Response::text(200, "fine");
        assert_eq!(ok.clone().or_explained_500(), ok);
    }

    #[test]
    fn json_serialization_failures_are_recorded() {
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        let resp = Response::json(200, &map);
        assert!(matches!(resp.build_error(), Some(ResponseError::Json(_))));
    }

    #[test]
    fn from_raw_revalidates() {
        let raw = RawResponse {
            status: 700,
            headers: vec![(b"ok", b"1")],
            body: b"b",
        };
        let resp = Response::from_raw(&raw);
        assert_eq!(resp.build_error(), Some(&ResponseError::InvalidStatus(700)));
        assert_eq!(resp.header_value("ok"), Some("1"));
        let raw = RawResponse {
            status: 1 << 20,
            headers: vec![],
            body: b"",
        };
        assert_eq!(
            Response::from_raw(&raw).build_error(),
            Some(&ResponseError::InvalidStatus(u16::MAX))
        );
    }
}
