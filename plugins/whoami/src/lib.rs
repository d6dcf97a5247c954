//! Three routes in one plugin, dispatched by the SDK's [`Router`] on the pattern the host
//! matched; a tour of ABI v2's request metadata and configuration variables:
//!
//! - `GET /whoami` → `200 {"client": "203.0.113.7", "peer": "127.0.0.1:50000",
//!   "route": "/whoami", "id": "<request id>"}` (a field the host did not send is `null`);
//! - `GET /whoami/greeting` → `200 {"greeting": "<the variable greeting>"}`, or `404
//!   {"error": "not_found", "message": ...}` when the variable is not set;
//! - `GET /whoami/:name` → `200 {"message": "<greeting>, <name>!"}`, the greeting defaulting to
//!   `Hello`.
//!
//! Configuration (`wasmgate.toml`): the three routes to this plugin, and a
//! `[plugins.whoami.vars]` table (it may be empty; `greeting = "Hi"` sets the greeting). The
//! plugin imports `var_get`, so the host refuses to load it without that table.

use wasmgate_sdk::serde_json::json;
use wasmgate_sdk::{Request, Response, Router};

/// The plugin's routes; the patterns are those of `wasmgate.toml`, compared exactly.
fn routes() -> Router {
    Router::new()
        .get("/whoami", whoami)
        .get("/whoami/greeting", greeting)
        .get("/whoami/:name", greet)
}

wasmgate_sdk::handler!(|req| routes().handle(req));

/// Who the host says is asking, and how the request was routed.
fn whoami(req: Request) -> Response {
    Response::json(
        200,
        &json!({
            "client": req.client_addr(),
            "peer": req.peer_addr(),
            "route": req.route(),
            "id": req.id(),
        }),
    )
}

/// The configured greeting. A host failure (not the variable's absence) is the host's problem
/// and answers 500 through `From<Error> for Response`, rather than a misleading 404.
fn greeting(_req: Request) -> Result<Response, Response> {
    match wasmgate_sdk::try_var("greeting")? {
        Some(greeting) => Ok(Response::json(200, &json!({ "greeting": greeting }))),
        None => Err(Response::error(
            404,
            "not_found",
            "the variable `greeting` is not set in [plugins.whoami.vars]",
        )),
    }
}

/// `<greeting>, <name>!`; the name is the route param, percent-decoded by the host.
fn greet(req: Request) -> Response {
    let greeting = wasmgate_sdk::var("greeting").unwrap_or_else(|| "Hello".to_owned());
    let name = req.param("name").unwrap_or_default();
    Response::json(200, &json!({ "message": format!("{greeting}, {name}!") }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgate_sdk::serde_json::Value;
    use wasmgate_sdk::testing;

    /// Runs the plugin's entry point exactly as `handler!` does, through the wire encoding.
    fn call(req: Request) -> Response {
        testing::call(|req| routes().handle(req), req)
    }

    fn get(route: &str) -> wasmgate_sdk::RequestBuilder {
        Request::builder().route(route)
    }

    fn json(resp: &Response) -> Value {
        resp.body_json().unwrap()
    }

    #[test]
    fn whoami_reports_the_hosts_metadata() {
        let req = get("/whoami")
            .path("/whoami")
            .peer_addr("127.0.0.1:50000")
            .client_addr("203.0.113.7")
            .id("9f3c000000000001")
            .build();
        let resp = call(req);
        assert_eq!(resp.status(), 200);
        assert_eq!(
            json(&resp),
            json!({"client": "203.0.113.7", "peer": "127.0.0.1:50000",
                   "route": "/whoami", "id": "9f3c000000000001"})
        );
    }

    #[test]
    fn whoami_shows_missing_metadata_as_null() {
        let v = json(&call(get("/whoami").build()));
        assert_eq!(
            v,
            json!({"client": null, "peer": null, "route": "/whoami", "id": null})
        );
    }

    #[test]
    fn greeting_is_the_variable_or_a_404() {
        let resp = call(get("/whoami/greeting").build());
        assert_eq!(resp.status(), 404);
        assert_eq!(json(&resp)["error"], "not_found");

        testing::set_var("greeting", "Hi");
        let resp = call(get("/whoami/greeting").build());
        assert_eq!(
            (resp.status(), json(&resp)),
            (200, json!({"greeting": "Hi"}))
        );
    }

    #[test]
    fn greets_by_name_with_the_configured_or_default_greeting() {
        let named = || {
            get("/whoami/:name")
                .path("/whoami/J%C3%BCrgen")
                .param("name", "Jürgen")
        };
        assert_eq!(
            json(&call(named().build())),
            json!({"message": "Hello, Jürgen!"})
        );
        testing::set_var("greeting", "Servus");
        assert_eq!(
            json(&call(named().build())),
            json!({"message": "Servus, Jürgen!"})
        );
    }

    #[test]
    fn head_is_served_and_other_methods_get_405() {
        let head = call(get("/whoami").method("HEAD").build());
        assert_eq!(head.status(), 200);
        let post = call(
            get("/whoami/:name")
                .method("POST")
                .param("name", "x")
                .build(),
        );
        assert_eq!(post.status(), 405);
        assert_eq!(post.header_value("allow"), Some("GET, HEAD"));
    }

    #[test]
    fn an_unknown_route_is_a_404() {
        let resp = call(get("/elsewhere").build());
        assert_eq!(resp.status(), 404);
        assert_eq!(json(&resp)["error"], "not_found");
    }
}
