//! [`Response`]: the answer to an outbound request, as `http_send` returns it in the v1 response
//! layout ([`wire::RawResponse`]), and the builder tests use to make canned answers.
//!
//! It owns decoding that answer (keeping the host's buffer for the body, refusing a malformed
//! encoding as `protocol`) and reading it as text or JSON. It must not retry, follow redirects
//! or judge statuses: a 404 from the destination is an answer like any other.

use super::{first, text};
use crate::error::Error;
use crate::wire;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The answer to an outbound [`Request`](super::Request): status, headers, body. Header names
/// and values are shown as text (lossily, should a destination send non-UTF-8 bytes); the body
/// is bytes.
///
/// Tests build one with [`Response::new`] and the `with_*` methods to give to
/// [`testing::http_answer`](crate::testing::http_answer).
///
/// ```
/// use wasmgate_sdk::http::Response;
///
/// let resp = Response::new(404).with_header("Content-Type", "text/plain").with_body("nope");
/// assert_eq!(resp.status(), 404);
/// assert!(!resp.is_success());
/// assert_eq!(resp.header("content-type"), Some("text/plain"));
/// assert_eq!(resp.text()?, "nope");
/// # Ok::<(), wasmgate_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body is the tail of this buffer, from `body_start`: a decoded answer keeps the
    /// buffer the host wrote, so a large body is not copied.
    buf: Vec<u8>,
    body_start: usize,
}

impl Response {
    /// A response with `status`, no headers and an empty body (for tests).
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Response::new(204).status(), 204);
    /// ```
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            buf: Vec::new(),
            body_start: 0,
        }
    }

    /// Appends a header (for tests).
    ///
    /// ```
    /// let resp = wasmgate_sdk::http::Response::new(200).with_header("etag", "\"1\"");
    /// assert_eq!(resp.header("ETag"), Some("\"1\""));
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (for tests).
    ///
    /// ```
    /// let resp = wasmgate_sdk::http::Response::new(200).with_body("hi");
    /// assert_eq!(resp.body(), b"hi");
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.buf = body.into();
        self.body_start = 0;
        self
    }

    /// Sets a JSON body and a `content-type: application/json` header (for tests).
    ///
    /// # Panics
    /// If `value` cannot be serialized: in a test that is a bug in the test.
    ///
    /// ```
    /// let resp = wasmgate_sdk::http::Response::new(200).with_json(&[1, 2]);
    /// assert_eq!(resp.json::<Vec<u8>>()?, [1, 2]);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn with_json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body =
            serde_json::to_vec(value).expect("http::Response::with_json: value must serialize");
        self.with_header("content-type", "application/json")
            .with_body(body)
    }

    /// The status, e.g. 200.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Response::new(503).status(), 503);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    ///
    /// ```
    /// assert!(wasmgate_sdk::http::Response::new(201).is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// All headers in order, names as the destination sent them.
    ///
    /// ```
    /// use wasmgate_sdk::http::Response;
    ///
    /// let resp = Response::new(200).with_header("a", "1").with_header("a", "2");
    /// assert_eq!(resp.headers().collect::<Vec<_>>(), [("a", "1"), ("a", "2")]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The first value of header `name`, matched case-insensitively.
    ///
    /// ```
    /// let resp = wasmgate_sdk::http::Response::new(200).with_header("Content-Type", "text/csv");
    /// assert_eq!(resp.header("content-type"), Some("text/csv"));
    /// assert_eq!(resp.header("etag"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        first(&self.headers, name)
    }

    /// The body.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Response::new(200).with_body([1u8]).body(), [1]);
    /// ```
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.body_start..).unwrap_or_default()
    }

    /// Takes the body out without copying it.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Response::new(200).with_body("x").into_body(), b"x");
    /// ```
    pub fn into_body(mut self) -> Vec<u8> {
        self.buf.drain(..self.body_start.min(self.buf.len()));
        self.buf
    }

    /// The body as UTF-8 text; `protocol` when it is not (the destination answered something
    /// unusable, which [`Error::status`] turns into a 502).
    ///
    /// ```
    /// use wasmgate_sdk::{http::Response, wire::Errno};
    ///
    /// assert_eq!(Response::new(200).with_body("ok").text()?, "ok");
    /// let binary = Response::new(200).with_body([0xffu8]);
    /// assert_eq!(binary.text().unwrap_err().errno, Errno::Protocol);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(self.body())
            .map_err(|e| Error::protocol(format!("the response body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON into `T`; `protocol` when it does not parse.
    ///
    /// ```
    /// use wasmgate_sdk::http::Response;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Rate { eur: f64 }
    ///
    /// let rate: Rate = Response::new(200).with_body(r#"{"eur": 0.92}"#).json()?;
    /// assert_eq!(rate.eur, 0.92);
    /// assert!(Response::new(200).with_body("<html>").json::<Rate>().is_err());
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.body()).map_err(|e| {
            Error::protocol(format!("the response body is not the expected JSON: {e}"))
        })
    }

    /// Decodes `http_send`'s result, keeping its buffer for the body.
    pub(super) fn decode(buf: Vec<u8>) -> Result<Response, Error> {
        let raw = wire::RawResponse::decode(&buf).map_err(|e| {
            Error::protocol(format!("http_send returned a malformed response: {e}"))
        })?;
        let status = u16::try_from(raw.status)
            .map_err(|_| Error::protocol(format!("http_send returned status {}", raw.status)))?;
        let headers = raw
            .headers
            .iter()
            .map(|(n, v)| (text(n), text(v)))
            .collect();
        // The body is the last field of the layout, so it ends where the buffer ends.
        let body_start = buf.len() - raw.body.len();
        Ok(Response {
            status,
            headers,
            buf,
            body_start,
        })
    }

    /// The encoding `http_send` returns, for the stand-in of [`crate::testing`].
    pub(crate) fn encode(&self) -> Result<Vec<u8>, wire::EncodeError> {
        wire::RawResponse {
            status: u32::from(self.status),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                .collect(),
            body: self.body(),
        }
        .encode()
    }
}
