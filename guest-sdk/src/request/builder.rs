//! [`RequestBuilder`]: requests for tests, made without a host.
//!
//! It owns the defaults (`GET /`, `HTTP/1.1`) and the consistency rules between target, path
//! and query that the host guarantees. It must not produce anything a host could not send: the
//! result is an ordinary [`Request`], indistinguishable from a decoded one.

use super::{Meta, Param, Request};
use crate::url::parse_query;
use serde::Serialize;

/// Builds a [`Request`] for tests. Start from [`Request::builder`]; defaults are
/// `GET /` over `HTTP/1.1` with no headers, params or body.
///
/// The target and its parts stay consistent the way the host makes them: [`target`] splits into
/// path and query; [`path`] and [`query`] rebuild the target. Route params and the matched
/// [`route`] are not derived from the path (there is no host router here): set them as the host
/// would have, with [`param`] and [`route`]. The v2 metadata is absent unless set.
///
/// [`target`]: RequestBuilder::target
/// [`path`]: RequestBuilder::path
/// [`query`]: RequestBuilder::query
/// [`param`]: RequestBuilder::param
/// [`route`]: RequestBuilder::route
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
    params: Vec<Param>,
    meta: Meta,
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
            meta: Meta::default(),
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

    /// Appends a route param, as the host's router would after matching (already decoded).
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Request::builder().param("id", "7").build().param("id"), Some("7"));
    /// ```
    pub fn param(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.param_bytes(name, value.into())
    }

    /// Appends a route param given as the exact bytes the host decoded, e.g. `%FF` as 0xff.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().param_bytes("k", vec![0xff]).build();
    /// assert_eq!(req.param_bytes("k"), Some(&[0xff][..]));
    /// ```
    pub fn param_bytes(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.params.push(Param::new(name.into(), value.into()));
        self
    }

    /// Sets the TCP peer address, `ip:port`, as the host reports it.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().peer_addr("10.0.0.1:443").build();
    /// assert_eq!(req.peer_addr(), Some("10.0.0.1:443"));
    /// ```
    pub fn peer_addr(mut self, addr: impl Into<String>) -> Self {
        self.meta.peer_addr = Some(addr.into());
        self
    }

    /// Sets the client IP address, as the host reports it.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().client_addr("192.0.2.1").build();
    /// assert_eq!(req.client_addr(), Some("192.0.2.1"));
    /// ```
    pub fn client_addr(mut self, addr: impl Into<String>) -> Self {
        self.meta.client_addr = Some(addr.into());
        self
    }

    /// Sets the matched route pattern, as written in `wasmgate.toml` (e.g. `/l/:code`).
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().route("/users/:id").build();
    /// assert_eq!(req.route(), Some("/users/:id"));
    /// ```
    pub fn route(mut self, pattern: impl Into<String>) -> Self {
        self.meta.route = Some(pattern.into());
        self
    }

    /// Sets the request id.
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::Request::builder().id("abc").build().id(), Some("abc"));
    /// ```
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.meta.id = Some(id.into());
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
            meta: self.meta,
            body: 0..self.body.len(),
            buf: self.body,
        }
    }
}
