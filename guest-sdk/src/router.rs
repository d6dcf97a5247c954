//! [`Router`]: several routes in one plugin, dispatched on the route pattern the host matched
//! and the method.
//!
//! The host does the path matching (it has the routing table of `wasmgate.toml`, params
//! included) and tells the plugin which pattern matched ([`Request::route`]); this module only
//! picks the handler registered for that exact pattern string and the request's method, with
//! the host's conventions: `HEAD` is served by a `GET` handler, a pattern registered only for
//! other methods answers 405 with an `Allow` header, an unknown pattern 404, both with the
//! host's JSON error body. It must not parse paths or patterns: a second router that could
//! disagree with the host's is exactly what it avoids.
//!
//! Like [`Response`], the builder is infallible: a mistake (a duplicate route, a method that is
//! not an HTTP token) is recorded, [`Router::build_error`] reports it, and every request then
//! gets an explained 500, so the first test that calls the router finds it.

use crate::handler::IntoResponse;
use crate::request::Request;
use crate::response::Response;
use std::fmt;

/// A handler stored by the router: the user's function with its return value converted.
type Handler = Box<dyn Fn(Request) -> Response>;

/// The method that matches every method in [`Router::route`].
const ANY: &str = "*";

struct Route {
    method: String,
    pattern: String,
    handler: Handler,
}

/// Dispatches a request to the handler registered for its route pattern and method.
///
/// Patterns are the strings of `wasmgate.toml`'s `[[routes]] path`, compared exactly; each of
/// them must also be routed to this plugin there. Handlers have the shapes [`handler!`]
/// accepts: `fn(Request) -> R` or closures, with `R:` [`IntoResponse`].
///
/// [`handler!`]: crate::handler!
///
/// ```
/// use wasmgate_sdk::{Request, Response, Router};
///
/// fn redirect(req: Request) -> Response {
///     Response::found(format!("https://example.org/{}", req.param("code").unwrap_or("")))
/// }
/// fn create(_req: Request) -> Result<Response, Response> {
///     Ok(Response::new(201))
/// }
///
/// fn router() -> Router {
///     Router::new().get("/l/:code", redirect).post("/links", create)
/// }
///
/// let get = Request::builder().route("/l/:code").param("code", "abc").build();
/// assert_eq!(router().handle(get).header_value("location"), Some("https://example.org/abc"));
/// let head = Request::builder().method("HEAD").route("/l/:code").build();
/// assert_eq!(router().handle(head).status(), 302);
/// let put = Request::builder().method("PUT").route("/links").build();
/// let resp = router().handle(put);
/// assert_eq!((resp.status(), resp.header_value("allow")), (405, Some("POST")));
/// assert_eq!(router().handle(Request::builder().route("/other").build()).status(), 404);
///
/// // In the plugin: one handler! for all routes.
/// // wasmgate_sdk::handler!(|req| router().handle(req));
/// ```
#[derive(Default)]
#[must_use = "a router does nothing until .handle(req) is called"]
pub struct Router {
    routes: Vec<Route>,
    error: Option<RouterError>,
}

/// A mistake in building a [`Router`].
///
/// ```
/// use wasmgate_sdk::{Request, Response, Router, RouterError};
///
/// let ok = |_req: Request| Response::ok();
/// let router = Router::new().get("/a", ok).get("/a", ok);
/// let duplicate = RouterError::Duplicate { method: "GET".into(), pattern: "/a".into() };
/// assert_eq!(router.build_error(), Some(&duplicate));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouterError {
    /// The same method and pattern were registered twice.
    Duplicate {
        /// The method (or `*`).
        method: String,
        /// The pattern.
        pattern: String,
    },
    /// The method is neither an HTTP token nor `*`.
    InvalidMethod(String),
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate { method, pattern } => {
                write!(f, "route {method} {pattern} is registered twice")
            }
            Self::InvalidMethod(m) => write!(
                f,
                "method {m:?} is not an HTTP token (e.g. GET) nor \"*\" (any method)"
            ),
        }
    }
}

impl std::error::Error for RouterError {}

impl Router {
    /// An empty router: every request gets 404.
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Router};
    ///
    /// let resp = Router::new().handle(Request::builder().route("/").build());
    /// assert_eq!(resp.status(), 404);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `method` (case-sensitive, as HTTP methods are; `"*"` for any
    /// method) on the route `pattern`.
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Response, Router};
    ///
    /// let router = Router::new()
    ///     .route("PURGE", "/cache/*key", |_req: Request| Response::no_content())
    ///     .route("*", "/echo", |req: Request| Response::text(200, req.method().to_owned()));
    /// let req = Request::builder().method("DELETE").route("/echo").build();
    /// assert_eq!(router.handle(req).body_text(), Some("DELETE"));
    /// ```
    pub fn route<R: IntoResponse>(
        mut self,
        method: &str,
        pattern: &str,
        handler: impl Fn(Request) -> R + 'static,
    ) -> Self {
        if method != ANY && !wasmgate_http::is_token(method.as_bytes()) {
            self.fail(RouterError::InvalidMethod(method.to_owned()));
            return self;
        }
        if self
            .routes
            .iter()
            .any(|r| r.method == method && r.pattern == pattern)
        {
            self.fail(RouterError::Duplicate {
                method: method.to_owned(),
                pattern: pattern.to_owned(),
            });
            return self;
        }
        self.routes.push(Route {
            method: method.to_owned(),
            pattern: pattern.to_owned(),
            handler: Box::new(move |req| handler(req).into_response()),
        });
        self
    }

    /// Registers `handler` for `GET` (and so `HEAD`) on `pattern`.
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Response, Router};
    /// let router = Router::new().get("/", |_req: Request| Response::text(200, "home"));
    /// assert_eq!(router.handle(Request::builder().route("/").build()).body_text(), Some("home"));
    /// ```
    pub fn get<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(Request) -> R + 'static,
    ) -> Self {
        self.route("GET", pattern, handler)
    }

    /// Registers `handler` for `POST` on `pattern`.
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Response, Router};
    /// let router = Router::new().post("/links", |_req: Request| Response::new(201));
    /// let req = Request::builder().method("POST").route("/links").build();
    /// assert_eq!(router.handle(req).status(), 201);
    /// ```
    pub fn post<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(Request) -> R + 'static,
    ) -> Self {
        self.route("POST", pattern, handler)
    }

    /// Registers `handler` for `PUT` on `pattern`.
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Response, Router};
    /// let router = Router::new().put("/links/:code", |_req: Request| Response::no_content());
    /// let req = Request::builder().method("PUT").route("/links/:code").build();
    /// assert_eq!(router.handle(req).status(), 204);
    /// ```
    pub fn put<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(Request) -> R + 'static,
    ) -> Self {
        self.route("PUT", pattern, handler)
    }

    /// Registers `handler` for `PATCH` on `pattern`.
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Response, Router};
    /// let router = Router::new().patch("/links/:code", |_req: Request| Response::ok());
    /// let req = Request::builder().method("PATCH").route("/links/:code").build();
    /// assert_eq!(router.handle(req).status(), 200);
    /// ```
    pub fn patch<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(Request) -> R + 'static,
    ) -> Self {
        self.route("PATCH", pattern, handler)
    }

    /// Registers `handler` for `DELETE` on `pattern`.
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Response, Router};
    /// let router = Router::new().delete("/links/:code", |_req: Request| Response::no_content());
    /// let req = Request::builder().method("DELETE").route("/links/:code").build();
    /// assert_eq!(router.handle(req).status(), 204);
    /// ```
    pub fn delete<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(Request) -> R + 'static,
    ) -> Self {
        self.route("DELETE", pattern, handler)
    }

    /// The first mistake made while building this router, if any (then every request gets a
    /// 500 explaining it).
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Response, Router};
    ///
    /// let router = Router::new().route("GE T", "/", |_req: Request| Response::ok());
    /// assert!(router.build_error().is_some());
    /// assert_eq!(router.handle(Request::builder().route("/").build()).status(), 500);
    /// ```
    pub fn build_error(&self) -> Option<&RouterError> {
        self.error.as_ref()
    }

    /// Answers `req` with the handler for its route pattern and method: the exact method, else
    /// a `GET` handler for `HEAD`, else a `*` handler. A pattern with handlers for other methods
    /// only gets `405` with `Allow` (sorted, `HEAD` included with `GET`), and a request whose
    /// pattern has no handler, or that carries no pattern, `404` — both with the host's JSON
    /// error body.
    ///
    /// ```
    /// use wasmgate_sdk::{Request, Response, Router};
    ///
    /// let router = Router::new().get("/a", |_req: Request| Response::ok());
    /// let resp = router.handle(Request::builder().method("POST").route("/a").build());
    /// assert_eq!(resp.status(), 405);
    /// assert_eq!(resp.header_value("allow"), Some("GET, HEAD"));
    /// let body: serde_json::Value = resp.body_json()?;
    /// assert_eq!(body["error"], "method_not_allowed");
    /// assert_eq!(body["message"], "this path does not accept this method");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn handle(&self, req: Request) -> Response {
        if let Some(err) = &self.error {
            eprintln!("wasmgate-sdk: the plugin's router is misconfigured, answering 500: {err}");
            return Response::text(
                500,
                format!(
                    "500 Internal Server Error\n\nthe plugin's router is misconfigured: {err}\n"
                ),
            );
        }
        let routes: Vec<&Route> = match req.route() {
            Some(pattern) => self
                .routes
                .iter()
                .filter(|r| r.pattern == pattern)
                .collect(),
            None => Vec::new(),
        };
        if routes.is_empty() {
            return Response::error(404, "not_found", "no route matches this path");
        }
        let method = req.method();
        let chosen = [method, if method == "HEAD" { "GET" } else { ANY }, ANY]
            .into_iter()
            .find_map(|m| routes.iter().find(|r| r.method == m));
        match chosen {
            Some(route) => (route.handler)(req),
            None => Response::error(
                405,
                "method_not_allowed",
                "this path does not accept this method",
            )
            .header("allow", allow(&routes)),
        }
    }

    /// Records the first error only: later ones are usually consequences.
    fn fail(&mut self, e: RouterError) {
        self.error.get_or_insert(e);
    }
}

/// The `Allow` value for a pattern's routes: their methods, plus `HEAD` when `GET` is there,
/// sorted and deduplicated as the host writes it.
fn allow(routes: &[&Route]) -> String {
    let mut methods: Vec<&str> = routes.iter().map(|r| r.method.as_str()).collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.sort_unstable();
    methods.dedup();
    methods.join(", ")
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.pattern))
            .collect();
        f.debug_struct("Router")
            .field("routes", &routes)
            .field("error", &self.error)
            .finish()
    }
}

#[cfg(test)]
mod tests;
