//! Dispatch rules of [`Router`](super::Router): pattern and method, HEAD, `*`, 404, 405, and
//! recorded mistakes.

use super::*;
use crate::testing;

fn req(method: &str, route: &str) -> Request {
    Request::builder().method(method).route(route).build()
}

fn named(name: &'static str) -> impl Fn(Request) -> Response {
    move |req: Request| Response::text(200, format!("{name} {}", req.method()))
}

fn body(resp: &Response) -> &str {
    resp.body_text().unwrap()
}

#[test]
fn dispatches_on_the_exact_pattern_and_method() {
    let router = Router::new()
        .get("/users/:id", named("show"))
        .put("/users/:id", named("update"))
        .get("/users", named("index"))
        .post("/users", named("create"));
    assert_eq!(body(&router.handle(req("GET", "/users/:id"))), "show GET");
    assert_eq!(body(&router.handle(req("PUT", "/users/:id"))), "update PUT");
    assert_eq!(body(&router.handle(req("GET", "/users"))), "index GET");
    assert_eq!(body(&router.handle(req("POST", "/users"))), "create POST");
    // Patterns are strings, not matched against paths: "/users/7" is not a pattern here.
    assert_eq!(router.handle(req("GET", "/users/7")).status(), 404);
    // Methods are case-sensitive, as in HTTP.
    assert_eq!(router.handle(req("get", "/users")).status(), 405);
}

#[test]
fn head_uses_get_unless_head_is_registered() {
    let router = Router::new().get("/a", named("get"));
    assert_eq!(body(&router.handle(req("HEAD", "/a"))), "get HEAD");
    let router = router.route("HEAD", "/a", named("head"));
    assert_eq!(body(&router.handle(req("HEAD", "/a"))), "head HEAD");
}

#[test]
fn star_takes_any_method_after_exact_ones() {
    let router = Router::new()
        .route("*", "/any", named("star"))
        .post("/any", named("post"));
    assert_eq!(body(&router.handle(req("POST", "/any"))), "post POST");
    assert_eq!(body(&router.handle(req("DELETE", "/any"))), "star DELETE");
    assert_eq!(body(&router.handle(req("HEAD", "/any"))), "star HEAD");
}

#[test]
fn other_methods_get_405_with_a_sorted_allow() {
    let router = Router::new()
        .post("/a", named("p"))
        .get("/a", named("g"))
        .delete("/a", named("d"))
        .get("/b", named("b"));
    let resp = router.handle(req("PATCH", "/a"));
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.header_value("allow"), Some("DELETE, GET, HEAD, POST"));
    let v: serde_json::Value = resp.body_json().unwrap();
    assert_eq!(v["error"], "method_not_allowed");
    let resp = router.handle(req("HEAD", "/a"));
    assert_eq!(resp.status(), 200, "HEAD is served by GET");
}

#[test]
fn unknown_or_missing_patterns_get_404() {
    let router = Router::new().get("/a", named("a"));
    for request in [req("GET", "/b"), Request::builder().build()] {
        let resp = router.handle(request);
        assert_eq!(resp.status(), 404);
        assert_eq!(
            resp.body_text(),
            Some(r#"{"error":"not_found","message":"no route matches this path"}"#)
        );
    }
}

#[test]
fn handlers_may_return_results_and_capture() {
    let prefix = String::from("hi ");
    let router = Router::new()
        .get("/ok", move |req: Request| {
            Response::text(200, format!("{prefix}{}", req.param("n").unwrap_or("?")))
        })
        .get("/early", |_req: Request| -> Result<Response, Response> {
            Err(Response::error(409, "conflict", "taken"))
        })
        .get("/fail", |_req: Request| -> Result<Response, String> {
            Err("secret detail".into())
        });
    let ok = Request::builder().route("/ok").param("n", "ada").build();
    assert_eq!(body(&router.handle(ok)), "hi ada");
    assert_eq!(router.handle(req("GET", "/early")).status(), 409);
    let fail = router.handle(req("GET", "/fail"));
    assert_eq!(
        (fail.status(), body(&fail)),
        (500, "500 Internal Server Error\n")
    );
}

#[test]
fn mistakes_are_recorded_and_answered_with_an_explained_500() {
    let router = Router::new()
        .get("/a", named("a"))
        .route("BAD METHOD", "/b", named("b"))
        .get("/a", named("again"));
    assert_eq!(
        router.build_error(),
        Some(&RouterError::InvalidMethod("BAD METHOD".into())),
        "the first mistake is kept"
    );
    let resp = router.handle(req("GET", "/a"));
    assert_eq!(resp.status(), 500);
    assert!(
        body(&resp).contains("\"BAD METHOD\" is not an HTTP token"),
        "{}",
        body(&resp)
    );
    assert!(
        Router::new()
            .route("", "/", named("x"))
            .build_error()
            .is_some()
    );
}

#[test]
fn runs_as_a_plugin_entry_point() {
    let router = || {
        Router::new().get("/l/:code", |req: Request| {
            Response::found(format!("/to/{}", req.param("code").unwrap_or_default()))
        })
    };
    let request = Request::builder()
        .route("/l/:code")
        .param("code", "x")
        .build();
    let resp = testing::call(|req| router().handle(req), request);
    assert_eq!(
        (resp.status(), resp.header_value("location")),
        (302, Some("/to/x"))
    );
}

#[test]
fn debug_lists_the_routes() {
    let router = Router::new()
        .get("/a", named("a"))
        .route("*", "/b", named("b"));
    assert_eq!(
        format!("{router:?}"),
        r#"Router { routes: ["GET /a", "* /b"], error: None }"#
    );
}
