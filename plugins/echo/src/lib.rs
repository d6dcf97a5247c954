//! Any method on `/echo/*rest` → `200` and the request as the plugin saw it, as JSON:
//!
//! ```json
//! {"method": "GET", "target": "/echo/a?x=1&x=2", "path": "/echo/a", "version": "HTTP/1.1",
//!  "query_string": "x=1&x=2", "query": {"x": ["1", "2"]},
//!  "headers": [["Host", "localhost"]], "params": {"rest": "a"}, "param_bytes": {"rest": [97]},
//!  "peer": "127.0.0.1:50000", "client": "127.0.0.1", "route": "/echo/*rest",
//!  "id": "9f3c000000000001", "body": "", "body_len": 0}
//! ```
//!
//! `params` shows each route param as lossy UTF-8 and `param_bytes` its exact bytes (the host
//! decodes `%FF` to the byte 255); `peer`, `client`, `route` and `id` are ABI v2's request
//! metadata (`null` when the host did not send one); `body` is the body as lossy UTF-8 and
//! `body_len` its exact length in bytes. The integration tests use this plugin to check what the
//! host encodes, so it reports everything unchanged.

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
    let param_bytes: Map<String, Value> = req
        .params()
        .map(|(n, _)| (n.into(), req.param_bytes(n).unwrap_or_default().into()))
        .collect();
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
            "param_bytes": param_bytes,
            "peer": req.peer_addr(),
            "client": req.client_addr(),
            "route": req.route(),
            "id": req.id(),
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
            .peer_addr("[::1]:50000")
            .client_addr("::1")
            .route("/echo/*rest")
            .id("r1")
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
                "param_bytes": { "rest": [97, 32, 98, 47, 99] },
                "peer": "[::1]:50000",
                "client": "::1",
                "route": "/echo/*rest",
                "id": "r1",
                "body": "hi",
                "body_len": 2,
            })
        );
    }

    #[test]
    fn params_keep_their_exact_bytes() {
        let req = Request::builder()
            .param_bytes("rest", vec![b'a', 0xff])
            .build();
        let v: Value = wasmgate_sdk::testing::call(echo, req).body_json().unwrap();
        assert_eq!(v["params"], json!({ "rest": "a\u{FFFD}" }));
        assert_eq!(v["param_bytes"], json!({ "rest": [97, 255] }));
        assert_eq!(
            (v["peer"].clone(), v["route"].clone()),
            (Value::Null, Value::Null)
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
