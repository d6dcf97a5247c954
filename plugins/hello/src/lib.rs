//! `GET /hello/:name` → `200 {"message": "Hello, <name>!"}`. The benchmark plugin: keep it tiny.
//! It keeps nothing between requests, so it declares itself reusable: with `reuse` in its
//! `[plugins.hello]` table, warm instances serve it (docs/configuration.md).

use wasmgate_sdk::{Request, Response, serde_json::json};

fn hello(req: Request) -> Response {
    let name = req.param("name").unwrap_or("world");
    Response::json(200, &json!({ "message": format!("Hello, {name}!") }))
}

wasmgate_sdk::handler!(hello);
wasmgate_sdk::reusable!();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_the_decoded_name() {
        let req = Request::builder()
            .path("/hello/J%C3%BCrgen")
            .param("name", "Jürgen")
            .build();
        let resp = hello(req);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.header_value("content-type"), Some("application/json"));
        assert_eq!(resp.body_text(), Some(r#"{"message":"Hello, Jürgen!"}"#));
    }

    #[test]
    fn quotes_are_escaped() {
        let resp = hello(Request::builder().param("name", "\"x\"").build());
        assert_eq!(resp.body_text(), Some(r#"{"message":"Hello, \"x\"!"}"#));
    }
}
