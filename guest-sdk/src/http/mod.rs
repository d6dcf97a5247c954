//! Outbound HTTP: [`Request`] to build and send a request through the host (`http_send`, or
//! `http_send_timeout` with the request's own [`Request::timeout`]; docs/ABI.md), and the
//! [`Response`] it answers with.
//!
//! This module owns the builder, the encoding of a request as a [`wire::OutboundRequest`] and
//! the decoding of the answer, which travels in the v1 response layout ([`wire::RawResponse`]).
//! The connection itself (DNS, TLS, redirects, the time bound, the `allowed_outbound_hosts`
//! check and the SSRF guard) is entirely the host's (a request's own timeout can only shorten
//! the host's bound); its failures arrive as an [`Error`] (`denied`,
//! `dns`, `connect`, `timeout`, ...). Natively, answers come from the table of
//! [`testing::http_answer`](crate::testing::http_answer), so tests need no network. It must not
//! be confused with the plugin's own request and response ([`crate::Request`],
//! [`crate::Response`]), which it never touches.
//!
//! ```
//! use wasmgate_sdk::{http, testing};
//!
//! testing::http_answer("GET", "https://api.example.com/v1/user/7",
//!                      http::Response::new(200).with_json(&serde_json::json!({"name": "Ada"})));
//!
//! let resp = http::Request::get("https://api.example.com/v1/user/7")
//!     .header("accept", "application/json")
//!     .send()?;
//! assert_eq!(resp.status(), 200);
//! let user: serde_json::Value = resp.json()?;
//! assert_eq!(user["name"], "Ada");
//! # Ok::<(), wasmgate_sdk::Error>(())
//! ```

mod response;

pub use response::Response;

use crate::error::Error;
use crate::host;
use crate::wire::{self, Errno};
use serde::Serialize;
use std::time::Duration;

/// An outbound request: method, absolute `http`/`https` URL, headers in order, body.
///
/// Building never fails; a JSON body that cannot be serialized is reported by [`send`]
/// (as `invalid`), without a host call. What the host accepts (the URL against
/// `allowed_outbound_hosts`, header syntax) it checks itself, and refuses with an [`Error`].
///
/// [`send`]: Request::send
///
/// ```
/// use wasmgate_sdk::http::Request;
///
/// let req = Request::post("https://api.example.com/v1/things")
///     .header("authorization", "Bearer t0ken")
///     .json(&serde_json::json!({"name": "thing"}));
/// assert_eq!(req.method(), "POST");
/// assert_eq!(req.header_value("content-type"), Some("application/json"));
/// assert_eq!(req.body_bytes(), br#"{"name":"thing"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a request does nothing until .send() is called"]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The call's own bound ([`Request::timeout`]), if any.
    timeout: Option<Duration>,
    /// Why the body could not be built, reported by `send`.
    error: Option<String>,
}

impl Request {
    /// A request with any method, e.g. `Request::new("OPTIONS", url)`.
    ///
    /// ```
    /// let req = wasmgate_sdk::http::Request::new("PURGE", "https://cdn.example.com/a");
    /// assert_eq!((req.method(), req.url()), ("PURGE", "https://cdn.example.com/a"));
    /// ```
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            error: None,
        }
    }

    /// A `GET` request.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Request::get("https://a.example/").method(), "GET");
    /// ```
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Request::post("https://a.example/").method(), "POST");
    /// ```
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// A `PUT` request.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Request::put("https://a.example/").method(), "PUT");
    /// ```
    pub fn put(url: impl Into<String>) -> Self {
        Self::new("PUT", url)
    }

    /// A `DELETE` request.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Request::delete("https://a.example/").method(), "DELETE");
    /// ```
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new("DELETE", url)
    }

    /// Appends a header (repeats allowed, order kept).
    ///
    /// ```
    /// let req = wasmgate_sdk::http::Request::get("https://a.example/").header("x-a", "1");
    /// assert_eq!(req.headers().collect::<Vec<_>>(), [("x-a", "1")]);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (bytes or text). No header is added; see [`Request::json`].
    ///
    /// ```
    /// let req = wasmgate_sdk::http::Request::post("https://a.example/").body("a=1");
    /// assert_eq!(req.body_bytes(), b"a=1");
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and replaces any `content-type` with `application/json`.
    ///
    /// ```
    /// let req = wasmgate_sdk::http::Request::post("https://a.example/")
    ///     .header("Content-Type", "text/plain")
    ///     .json(&[1, 2]);
    /// assert_eq!(req.headers().collect::<Vec<_>>(), [("content-type", "application/json")]);
    /// assert_eq!(req.body_bytes(), b"[1,2]");
    /// ```
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body = body,
            Err(e) => self.error = Some(format!("the JSON body does not serialize: {e}")),
        }
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.header("content-type", "application/json")
    }

    /// The method.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::http::Request::put("https://a.example/").method(), "PUT");
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL, as given.
    ///
    /// ```
    /// let req = wasmgate_sdk::http::Request::get("https://a.example/x");
    /// assert_eq!(req.url(), "https://a.example/x");
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers, in order.
    ///
    /// ```
    /// use wasmgate_sdk::http::Request;
    ///
    /// let req = Request::get("https://a.example/").header("a", "1").header("b", "2");
    /// assert_eq!(req.headers().count(), 2);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The first value of header `name`, matched case-insensitively.
    ///
    /// ```
    /// use wasmgate_sdk::http::Request;
    ///
    /// let req = Request::get("https://a.example/").header("Accept", "text/html");
    /// assert_eq!(req.header_value("accept"), Some("text/html"));
    /// ```
    pub fn header_value(&self, name: &str) -> Option<&str> {
        first(&self.headers, name)
    }

    /// The body.
    ///
    /// ```
    /// assert!(wasmgate_sdk::http::Request::get("https://a.example/").body_bytes().is_empty());
    /// ```
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Bounds this call by `timeout`: with no whole answer by then, [`send`](Request::send)
    /// fails with `timeout`. It can only shorten the host's own bounds (the plugin's
    /// `outbound_timeout`, and the request's `deadline` less `outbound_reserve`), never lengthen
    /// them; it is rounded up to whole milliseconds, and a zero timeout means none of the call's
    /// own. A request with a timeout is sent with `http_send_timeout`, one without it with
    /// `http_send` (docs/ABI.md).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmgate_sdk::http::Request;
    ///
    /// let req = Request::get("https://a.example/").timeout(Duration::from_millis(250));
    /// assert_eq!(req.timeout_value(), Some(Duration::from_millis(250)));
    /// assert_eq!(Request::get("https://a.example/").timeout_value(), None);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout).filter(|t| !t.is_zero());
        self
    }

    /// The call's own bound, as set by [`Request::timeout`].
    pub fn timeout_value(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sends the request through the host and waits for the whole response (the host bounds
    /// the wait by the request's deadline, and by [`Request::timeout`] when set). Any status is `Ok`: a 404 or 500 from the
    /// destination is an answer, not a failure. `Err` means no answer: not granted (`denied`,
    /// naming the `allowed_outbound_hosts` entry to add), `dns`, `connect`, `timeout`,
    /// `address_blocked`, `too_large`, `busy`, `limit_reached`, `protocol`, ...
    ///
    /// ```
    /// use wasmgate_sdk::{http, wire::Errno};
    ///
    /// // Natively, a URL without a testing::http_answer is refused like an ungranted host.
    /// let err = http::Request::get("https://unknown.example/").send().unwrap_err();
    /// assert_eq!(err.errno, Errno::Denied);
    /// ```
    pub fn send(self) -> Result<Response, Error> {
        if let Some(message) = self.error {
            return Err(Error::new(Errno::Invalid, message));
        }
        let encoded = self
            .as_wire()
            .encode()
            .map_err(|e| Error::new(Errno::TooLarge, e.to_string()))?;
        let answer = match self.timeout {
            None => host::http_send(&encoded)?,
            Some(t) => host::http_send_timeout(&encoded, crate::time::abi_millis(t))?,
        };
        Response::decode(answer)
    }

    /// The request as `http_send` takes it.
    fn as_wire(&self) -> wire::OutboundRequest<'_> {
        wire::OutboundRequest {
            method: self.method.as_bytes(),
            url: self.url.as_bytes(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                .collect(),
            body: &self.body,
        }
    }

    /// The request a host (or the stand-in) decoded, for
    /// [`testing::http_requests`](crate::testing::http_requests).
    pub(crate) fn from_wire(raw: &wire::OutboundRequest<'_>) -> Self {
        let headers = raw
            .headers
            .iter()
            .map(|(n, v)| (text(n), text(v)))
            .collect();
        Request {
            method: text(raw.method),
            url: text(raw.url),
            headers,
            body: raw.body.to_vec(),
            timeout: None,
            error: None,
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn first<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn the_request_travels_encoded_and_the_answer_decoded() {
        testing::http_answer(
            "POST",
            "https://api.example.com/things",
            Response::new(201)
                .with_header("Location", "/things/1")
                .with_body(vec![0, 0xff]),
        );
        let resp = Request::post("https://api.example.com/things")
            .header("X-Key", "k")
            .json(&serde_json::json!({"a": 1}))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.header("location"), Some("/things/1"));
        assert_eq!(resp.into_body(), [0, 0xff]);

        let sent = testing::http_requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].header_value("x-key"), Some("k"));
        assert_eq!(sent[0].body_bytes(), br#"{"a":1}"#);
    }

    #[test]
    fn unmatched_urls_methods_and_malformed_urls_fail_as_values() {
        testing::http_answer("GET", "https://a.example/x", Response::new(200));
        let denied = Request::post("https://a.example/x").send().unwrap_err();
        assert_eq!(denied.errno, Errno::Denied);
        assert!(denied.message.contains("testing::http_answer"), "{denied}");
        let invalid = Request::get("ftp://a.example/x").send().unwrap_err();
        assert_eq!(invalid.errno, Errno::Invalid);
        let invalid = Request::get("/relative").send().unwrap_err();
        assert_eq!(invalid.errno, Errno::Invalid);
    }

    #[test]
    fn an_unserializable_body_is_refused_before_the_host_is_called() {
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        let err = Request::post("https://a.example/")
            .json(&map)
            .send()
            .unwrap_err();
        assert_eq!(err.errno, Errno::Invalid);
        assert!(testing::http_requests().is_empty());
    }

    #[test]
    fn malformed_host_answers_are_protocol_errors() {
        assert_eq!(
            Response::decode(vec![1, 2]).unwrap_err().errno,
            Errno::Protocol
        );
        let big = wire::RawResponse {
            status: 70_000,
            ..Default::default()
        };
        let err = Response::decode(big.encode().unwrap()).unwrap_err();
        assert_eq!(err.errno, Errno::Protocol);
    }
}
