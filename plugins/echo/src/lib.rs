//! Any method on `/echo/*rest` → `200` and the request as the plugin saw it, as JSON:
//!
//! ```json
//! {"method": "GET", "target": "/echo/a?x=1&x=2", "path": "/echo/a", "version": "HTTP/1.1",
//!  "query_string": "x=1&x=2", "query": {"x": ["1", "2"]},
//!  "headers": [["Host", "localhost"]], "params": {"rest": "a"},
//!  "body": "", "body_len": 0}
//! ```
//!
//! `body` is the body as lossy UTF-8; `body_len` is its exact length in bytes. The integration
//! tests use this plugin to check what the host encodes, so it reports everything unchanged.

use wasmgate_sdk::serde_json::{Map, Value, json};
use wasmgate_sdk::{Request, Response};

fn echo(req: Request) -> Response {
    let mut query = Map::new();
    for (name, value) in req.query_pairs() {
        let values = query
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = values {
            values.push(value.into());
        }
    }
    let headers: Vec<[&str; 2]> = req.headers().map(|(n, v)| [n, v]).collect();
    let params: Map<String, Value> = req.params().map(|(n, v)| (n.into(), v.into())).collect();
    Response::json(
        200,
        &json!({
            "method": req.method(),
            "target": req.target(),
            "path": req.path(),
            "version": req.version(),
            "query_string": req.query_string(),
            "query": query,
            "headers": headers,
            "params": params,
            "body": req.text_lossy(),
            "body_len": req.body().len(),
        }),
    )
}

wasmgate_sdk::handler!(echo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_request_as_seen() {
        let req = Request::builder()
            .method("PUT")
            .target("/echo/a%20b/c?x=1&y=two+words&x=%32")
            .header("Host", "localhost")
            .header("X-Dup", "1")
            .header("x-dup", "2")
            .param("rest", "a b/c")
            .body("hi")
            .build();
        let v: Value = wasmgate_sdk::testing::call(echo, req).body_json().unwrap();
        assert_eq!(
            v,
            json!({
                "method": "PUT",
                "target": "/echo/a%20b/c?x=1&y=two+words&x=%32",
                "path": "/echo/a%20b/c",
                "version": "HTTP/1.1",
                "query_string": "x=1&y=two+words&x=%32",
                "query": { "x": ["1", "2"], "y": ["two words"] },
                "headers": [["Host", "localhost"], ["X-Dup", "1"], ["x-dup", "2"]],
                "params": { "rest": "a b/c" },
                "body": "hi",
                "body_len": 2,
            })
        );
    }

    #[test]
    fn binary_bodies_keep_their_length() {
        let req = Request::builder().body(vec![0xff, 0, 0xfe]).build();
        let v: Value = echo(req).body_json().unwrap();
        assert_eq!(v["body_len"], 3);
        assert_eq!(v["body"], "\u{FFFD}\u{0}\u{FFFD}");
    }
}
