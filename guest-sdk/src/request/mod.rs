//! [`Request`]: the decoded request a handler receives, with the lookups handlers actually need.
//!
//! This module owns the presentation of a request: which fields are text, how headers are
//! matched (ASCII case-insensitively, every value kept in order), how the query is parsed (once,
//! eagerly, via `url`), what the v2 metadata is called (peer, client, route, id), and where the
//! body lives. The conversion from and to the ABI encoding is the `codec` submodule. It must not
//! know about pointers or exports (`sys`).
//!
//! Text fields that are not valid UTF-8 are converted lossily (U+FFFD). The ABI does not promise
//! UTF-8, but in practice the host has already checked methods, targets and header names against
//! HTTP's ASCII grammar; the realistic non-UTF-8 text is an obs-text header value or a param
//! with a `%FF` escape, and a `&str` API serves most handlers better. Params also keep their
//! exact bytes ([`Request::param_bytes`]). The body is never converted: it is bytes until the
//! handler asks for [`Request::text`] or [`Request::json`].

mod builder;
mod codec;

pub use builder::RequestBuilder;

use crate::body::BodyError;
use serde::Deserialize;
use std::borrow::Cow;
use std::ops::Range;

/// An HTTP request as the host routed it: method, target, headers, route params, body, and the
/// host's metadata about it (peer and client address, matched route, request id).
///
/// Build one in tests with [`Request::builder`]; in a plugin the SDK decodes it for you.
///
/// ```
/// use wasmgate_sdk::Request;
///
/// let req = Request::builder()
///     .method("POST")
///     .target("/users/7?fields=name&fields=email")
///     .header("Content-Type", "application/json")
///     .param("id", "7")
///     .body(r#"{"name":"Ada"}"#)
///     .build();
/// assert_eq!(req.method(), "POST");
/// assert_eq!(req.path(), "/users/7");
/// assert_eq!(req.query("fields"), Some("name"));
/// assert_eq!(req.header("content-type"), Some("application/json"));
/// assert_eq!(req.param("id"), Some("7"));
/// assert_eq!(req.text()?, r#"{"name":"Ada"}"#);
/// # Ok::<(), wasmgate_sdk::BodyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) path: String,
    pub(crate) query_string: String,
    pub(crate) version: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) params: Vec<Param>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) meta: Meta,
    /// The body is `buf[body]`. Decoding reuses the buffer the host wrote into, so a large body
    /// is never copied (it would count twice against the memory cap).
    pub(crate) buf: Vec<u8>,
    pub(crate) body: Range<usize>,
}

/// One route parameter: its exact bytes (the host percent-decodes them, so `%FF` is the byte
/// 0xff) and their lossy text, computed once so that [`Request::param`] can lend a `&str`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) bytes: Vec<u8>,
}

impl Param {
    pub(crate) fn new(name: String, bytes: Vec<u8>) -> Self {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Param { name, text, bytes }
    }
}

/// The v2 request fields this SDK knows (docs/ABI.md, "v2 request fields").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) peer_addr: Option<String>,
    pub(crate) client_addr: Option<String>,
    pub(crate) route: Option<String>,
    pub(crate) id: Option<String>,
}

impl Request {
    /// Starts a [`RequestBuilder`] for tests: `GET /`, `HTTP/1.1`, no headers, empty body.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().build();
    /// assert_eq!((req.method(), req.target(), req.version()), ("GET", "/", "HTTP/1.1"));
    /// ```
    pub fn builder() -> RequestBuilder {
        RequestBuilder::new()
    }

    /// The method, case as received (`GET`, `POST`, …). HTTP methods are case-sensitive.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().method("DELETE").build();
    /// assert_eq!(req.method(), "DELETE");
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The raw request-target as the client sent it, e.g. `/echo/a%20b?x=1`.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().target("/a%20b?x=1").build();
    /// assert_eq!(req.target(), "/a%20b?x=1");
    /// ```
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, still percent-encoded (so `%2F` differs from `/`); see
    /// [`percent_decode`](crate::percent_decode). Route params are already decoded.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().target("/a%20b?x=1").build();
    /// assert_eq!(req.path(), "/a%20b");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string: what follows the first `?` of the target, without it; empty if none.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().target("/s?q=a+b&x").build();
    /// assert_eq!(req.query_string(), "q=a+b&x");
    /// ```
    pub fn query_string(&self) -> &str {
        &self.query_string
    }

    /// The first value of query parameter `name`, decoded (`+` is a space, `%XX` a byte).
    /// Names are compared exactly; a parameter without `=` has the value `""`.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().target("/s?q=a+b%21&q=2&flag").build();
    /// assert_eq!(req.query("q"), Some("a b!"));
    /// assert_eq!(req.query("flag"), Some(""));
    /// assert_eq!(req.query("Q"), None);
    /// ```
    pub fn query(&self, name: &str) -> Option<&str> {
        first(&self.query, name, false)
    }

    /// Every value of query parameter `name`, in order.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().target("/s?tag=a&x=1&tag=b").build();
    /// assert_eq!(req.query_all("tag").collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn query_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        lookup(&self.query, name, false)
    }

    /// All decoded query parameters in order, repeated names included.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().target("/s?b=1&a=2").build();
    /// assert_eq!(req.query_pairs().collect::<Vec<_>>(), [("b", "1"), ("a", "2")]);
    /// ```
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The protocol version, `HTTP/1.0` or `HTTP/1.1`.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().version("HTTP/1.0").build();
    /// assert_eq!(req.version(), "HTTP/1.0");
    /// ```
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The first value of header `name`, matched ASCII case-insensitively as HTTP requires.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().header("X-Token", "abc").build();
    /// assert_eq!(req.header("x-token"), Some("abc"));
    /// assert_eq!(req.header("x-other"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        first(&self.headers, name, true)
    }

    /// The token of an `Authorization: Bearer <token>` header (RFC 6750: the scheme in any
    /// case, a token of letters, digits and `-._~+/=`), or `None` when there is no such header
    /// or it is malformed. Compare it with a secret through
    /// [`auth::constant_time_eq`](crate::auth::constant_time_eq), or let
    /// [`auth::check_bearer`](crate::auth::check_bearer) do both.
    ///
    /// ```
    /// use wasmgate_sdk::Request;
    ///
    /// let req = Request::builder().header("Authorization", "Bearer abc.def").build();
    /// assert_eq!(req.bearer_token(), Some("abc.def"));
    /// let basic = Request::builder().header("Authorization", "Basic YWxhZGRpbg==").build();
    /// assert_eq!(basic.bearer_token(), None);
    /// ```
    pub fn bearer_token(&self) -> Option<&str> {
        self.header("authorization").and_then(bearer_token)
    }

    /// Every value of header `name` (case-insensitive), in received order. Values are not split
    /// on commas: `Accept: a, b` is one value, as received.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder()
    ///     .header("Accept", "text/html")
    ///     .header("accept", "application/json")
    ///     .build();
    /// assert_eq!(req.header_all("ACCEPT").collect::<Vec<_>>(), ["text/html", "application/json"]);
    /// ```
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        lookup(&self.headers, name, true)
    }

    /// All headers in received order, names with the case the client used.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().header("Host", "h").header("X-A", "1").build();
    /// assert_eq!(req.headers().collect::<Vec<_>>(), [("Host", "h"), ("X-A", "1")]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The route parameter `name` (`:name` or `*name` in the route pattern) as text. The host
    /// percent-decodes params to bytes (`%20` is a space, `%2F` a slash, `%FF` the byte 0xff);
    /// bytes that are not UTF-8 show as U+FFFD here, so this is always safe to display or
    /// compare. Use [`Request::param_bytes`] when the exact bytes matter. A `*rest` wildcard
    /// holds the remaining path without its leading `/`.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder()
    ///     .param("name", "Ada Lovelace")
    ///     .param_bytes("raw", b"caf\xe9".to_vec())
    ///     .build();
    /// assert_eq!(req.param("name"), Some("Ada Lovelace"));
    /// assert_eq!(req.param("raw"), Some("caf\u{FFFD}"));
    /// assert_eq!(req.param("other"), None);
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.find_param(name).map(|p| p.text.as_str())
    }

    /// The route parameter `name` as the exact bytes the host decoded: `%FF` is the byte 0xff
    /// and `%2F` a `/` inside one segment. Prefer it to [`Request::param`] for keys, ids and
    /// anything compared byte for byte.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().param_bytes("key", vec![b'a', 0xff]).build();
    /// assert_eq!(req.param_bytes("key"), Some(&[b'a', 0xff][..]));
    /// assert_eq!(req.param_bytes("other"), None);
    /// ```
    pub fn param_bytes(&self, name: &str) -> Option<&[u8]> {
        self.find_param(name).map(|p| p.bytes.as_slice())
    }

    fn find_param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// All route parameters in pattern order, as text (see [`Request::param`]).
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().param("a", "1").param("rest", "x/y").build();
    /// assert_eq!(req.params().collect::<Vec<_>>(), [("a", "1"), ("rest", "x/y")]);
    /// ```
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .iter()
            .map(|p| (p.name.as_str(), p.text.as_str()))
    }

    /// The TCP peer the request came from, `ip:port` (`[ip]:port` for IPv6): the client, or
    /// the proxy in front of wasmgate. `None` when the host did not say.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().peer_addr("127.0.0.1:50000").build();
    /// assert_eq!(req.peer_addr(), Some("127.0.0.1:50000"));
    /// ```
    pub fn peer_addr(&self) -> Option<&str> {
        self.meta.peer_addr.as_deref()
    }

    /// The client's IP address (no port): the forwarded client (`Forwarded` /
    /// `X-Forwarded-For`) when the peer is one of the host's `trusted_proxies`, otherwise the
    /// peer's IP. Use it, not the headers, for rate limits and logs: the host ignores forwarding
    /// headers from peers it does not trust.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().client_addr("203.0.113.7").build();
    /// assert_eq!(req.client_addr(), Some("203.0.113.7"));
    /// ```
    pub fn client_addr(&self) -> Option<&str> {
        self.meta.client_addr.as_deref()
    }

    /// The route pattern that matched, exactly as written in `wasmgate.toml` (e.g.
    /// `/l/:code`): what a [`Router`](crate::Router) dispatches on.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().route("/l/:code").path("/l/abc").build();
    /// assert_eq!(req.route(), Some("/l/:code"));
    /// ```
    pub fn route(&self) -> Option<&str> {
        self.meta.route.as_deref()
    }

    /// The request id: the same id as the host's log lines and its `x-request-id` response
    /// header, so a plugin's own logs and answers can refer to it.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().id("9f3c000000000001").build();
    /// assert_eq!(req.id(), Some("9f3c000000000001"));
    /// ```
    pub fn id(&self) -> Option<&str> {
        self.meta.id.as_deref()
    }

    /// The body as bytes; empty if the request had none.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().body(vec![0, 159, 146, 150]).build();
    /// assert_eq!(req.body(), [0, 159, 146, 150]);
    /// ```
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.body.clone()).unwrap_or_default()
    }

    /// Takes the body out of the request without copying it when possible.
    ///
    /// ```
    /// let req = wasmgate_sdk::Request::builder().body("abc").build();
    /// assert_eq!(req.into_body(), b"abc");
    /// ```
    pub fn into_body(mut self) -> Vec<u8> {
        let Range { start, end } = self.body;
        if end > self.buf.len() || start > end {
            return Vec::new();
        }
        self.buf.truncate(end);
        self.buf.drain(..start);
        self.buf
    }

    /// The body as UTF-8 text; an error (400 when turned into a response) if it is not.
    ///
    /// ```
    /// use wasmgate_sdk::Request;
    ///
    /// assert_eq!(Request::builder().body("héllo").build().text()?, "héllo");
    /// let err = Request::builder().body(vec![0xff]).build().text().unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// # Ok::<(), wasmgate_sdk::BodyError>(())
    /// ```
    pub fn text(&self) -> Result<&str, BodyError> {
        std::str::from_utf8(self.body()).map_err(BodyError::NotUtf8)
    }

    /// The body as text, with invalid UTF-8 sequences replaced by U+FFFD; borrows when the body
    /// is valid UTF-8. Faster than `String::from_utf8_lossy` on large valid bodies, which it only
    /// falls back to when needed (std's strict check skips ASCII a word at a time).
    ///
    /// ```
    /// use wasmgate_sdk::Request;
    ///
    /// assert_eq!(Request::builder().body("ok").build().text_lossy(), "ok");
    /// assert_eq!(Request::builder().body(b"a\xffb".to_vec()).build().text_lossy(), "a\u{FFFD}b");
    /// ```
    pub fn text_lossy(&self) -> Cow<'_, str> {
        match std::str::from_utf8(self.body()) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(self.body()),
        }
    }

    /// The body parsed as JSON into `T`. Errors say what is wrong and where, and carry a
    /// status (400 for unreadable JSON, 422 for JSON of the wrong shape) so that
    /// `req.json()?` in a handler returning `Result<Response, Response>` answers the client
    /// properly.
    ///
    /// ```
    /// use wasmgate_sdk::Request;
    ///
    /// #[derive(serde::Deserialize, Debug)]
    /// struct Point { x: i32, y: i32 }
    ///
    /// let p: Point = Request::builder().body(r#"{"x":1,"y":2}"#).build().json()?;
    /// assert_eq!((p.x, p.y), (1, 2));
    ///
    /// let err = Request::builder().body(r#"{"x":1}"#).build().json::<Point>().unwrap_err();
    /// assert_eq!(err.status(), 422);
    /// assert_eq!(err.to_string(), "request body has the wrong shape: missing field `y` at line 1 column 7");
    /// # Ok::<(), wasmgate_sdk::BodyError>(())
    /// ```
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T, BodyError> {
        if self.body().iter().all(u8::is_ascii_whitespace) {
            return Err(BodyError::Empty);
        }
        serde_json::from_slice(self.body()).map_err(BodyError::Json)
    }
}

/// Values whose name matches, in order. Headers compare ASCII case-insensitively (RFC 9110);
/// params and query names exactly, because they are the application's own vocabulary.
fn lookup<'a>(
    pairs: &'a [(String, String)],
    name: &'a str,
    ignore_case: bool,
) -> impl Iterator<Item = &'a str> + 'a {
    pairs
        .iter()
        .filter(move |(n, _)| same_name(n, name, ignore_case))
        .map(|(_, v)| v.as_str())
}

/// The first value of `name`; separate from [`lookup`] so the name need not outlive the result.
fn first<'a>(pairs: &'a [(String, String)], name: &str, ignore_case: bool) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| same_name(n, name, ignore_case))
        .map(|(_, v)| v.as_str())
}

fn same_name(candidate: &str, name: &str, ignore_case: bool) -> bool {
    if ignore_case {
        candidate.eq_ignore_ascii_case(name)
    } else {
        candidate == name
    }
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750, section 2.1): the scheme
/// matched case-insensitively, then one or more spaces, then a non-empty token of the `b64token`
/// characters (letters, digits, `-._~+/`, then `=` padding). Anything else is no token.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    (!body.is_empty() && body.bytes().all(b64)).then_some(token)
}

#[cfg(test)]
mod tests;
