//! Native testing support: [`RequestBuilder`] to make requests without a host, and [`call`] to
//! run a handler through the same encode → handle → decode path the host uses.
//!
//! This module owns test conveniences only; nothing in a plugin's production path depends on it
//! (the builder merely produces an ordinary [`Request`]). It must not bypass the real code paths:
//! [`call`] goes through `handler::serve` and the wire encoding, so what a test sees is what the
//! host would see, refused responses included.
//!
//! ```
//! use wasmgate_sdk::{testing, Request, Response};
//!
//! fn handle(req: Request) -> Response {
//!     Response::text(200, req.query("q").unwrap_or("none").to_owned())
//! }
//!
//! let resp = testing::call(handle, Request::builder().target("/search?q=rust").build());
//! assert_eq!(resp.body_text(), Some("rust"));
//! ```

use crate::handler::{self, IntoResponse};
use crate::request::Request;
use crate::response::Response;
use crate::url::parse_query;
use crate::wire::RawResponse;
use serde::Serialize;

/// Builds a [`Request`] for tests. Start from [`Request::builder`]; defaults are
/// `GET /` over `HTTP/1.1` with no headers, params or body.
///
/// The target and its parts stay consistent the way the host makes them: [`target`] splits into
/// path and query; [`path`] and [`query`] rebuild the target. Route params are not derived from
/// the path (there is no router here): add them with [`param`].
///
/// [`target`]: RequestBuilder::target
/// [`path`]: RequestBuilder::path
/// [`query`]: RequestBuilder::query
/// [`param`]: RequestBuilder::param
///
/// ```
/// use wasmgate_sdk::Request;
///
/// let req = Request::builder().path("/a b").query("x=1").build();
/// assert_eq!(req.target(), "/a b?x=1");
/// let req = Request::builder().target("/p?q").build();
/// assert_eq!((req.path(), req.query_string()), ("/p", "q"));
/// ```
#[derive(Debug, Clone)]
#[must_use = "call .build() to get the Request"]
pub struct RequestBuilder {
    method: String,
    path: String,
    query: String,
    version: String,
    headers: Vec<(String, String)>,
    params: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RequestBuilder {
    pub(crate) fn new() -> Self {
        RequestBuilder {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            version: "HTTP/1.1".into(),
            headers: Vec::new(),
            params: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Sets the method (default `GET`).
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Request::builder().method("PATCH").build().method(), "PATCH");
    /// ```
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// Sets the request-target, splitting it at the first `?` into path and query as the host
    /// does.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().target("/a?b=1?c").build();
    /// assert_eq!((req.path(), req.query_string()), ("/a", "b=1?c"));
    /// ```
    pub fn target(mut self, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        (self.path, self.query) = (path.into(), query.into());
        self
    }

    /// Sets the path (still percent-encoded, as the host passes it), keeping the query.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Request::builder().path("/x").build().target(), "/x");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the raw query string (without `?`), keeping the path.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().query("a=1&a=2").build();
    /// assert_eq!(req.query_all("a").collect::<Vec<_>>(), ["1", "2"]);
    /// ```
    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = query.into();
        self
    }

    /// Sets the version (default `HTTP/1.1`).
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Request::builder().version("HTTP/1.0").build().version(), "HTTP/1.0");
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Appends a header (repeats allowed, order kept).
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().header("Accept", "a").header("Accept", "b").build();
    /// assert_eq!(req.header_all("accept").count(), 2);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Appends a route param, as the router would after matching (already decoded).
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Request::builder().param("id", "7").build().param("id"), Some("7"));
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Sets the body (bytes or text). No header is added; see [`RequestBuilder::json`].
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Request::builder().body("hi").build().body(), b"hi");
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and a `content-type: application/json` header.
    ///
    /// # Panics
    /// If `value` cannot be serialized: in a test that is a bug in the test.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().json(&serde_json::json!({"a": 1})).build();
    /// assert_eq!(req.header("content-type"), Some("application/json"));
    /// assert_eq!(req.text()?, r#"{"a":1}"#);
    /// # Ok::<(), wasmgate_sdk::BodyError>(())
    /// ```
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("RequestBuilder::json: value must serialize");
        self.header("content-type", "application/json").body(body)
    }

    /// Finishes the request. The target is `path` plus `?query` when the query is non-empty.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().path("/p").build();
    /// assert_eq!(req.target(), "/p");
    /// ```
    pub fn build(self) -> Request {
        let target = if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        Request {
            method: self.method,
            target,
            path: self.path,
            query: parse_query(&self.query),
            query_string: self.query,
            version: self.version,
            headers: self.headers,
            params: self.params,
            buf: self.body,
            body_start: 0,
        }
    }
}

/// Runs `handler` on `request` exactly as a plugin does: encode the request, decode it, call the
/// handler, apply the SDK's policies (`Err` → 500, refused response → explained 500), encode
/// the response, and decode it back. Prefer it over calling the handler directly when the test
/// is about what the client receives.
///
/// # Panics
/// If the request cannot be encoded (over 4 GiB).
///
/// ```
/// use wasmgate_sdk::{testing, Request, Response};
///
/// // A handler that sets a host-owned header: the client would get an explained 500.
/// let resp = testing::call(|_req: Request| Response::ok().header("Connection", "close"),
///                          Request::builder().build());
/// assert_eq!(resp.status(), 500);
/// assert!(resp.body_text().unwrap().contains("header Connection is set by the host"));
/// ```
pub fn call<R: IntoResponse>(handler: impl FnOnce(Request) -> R, request: Request) -> Response {
    let input = request
        .encode()
        .expect("testing::call: request too large to encode");
    let output = handler::serve(input, handler);
    let raw = RawResponse::decode(&output).expect("serve always produces a valid encoding");
    Response::from_raw(&raw)
}
