//! `POST /submit` → `201 {"received": <body length in bytes>, "echo": "<body, lossy UTF-8>"}`.

use wasmgate_sdk::{Request, Response, serde_json::json};

fn submit(req: Request) -> Response {
    let echo = req.text_lossy();
    Response::json(201, &json!({ "received": req.body().len(), "echo": echo }))
}

wasmgate_sdk::handler!(submit);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgate_sdk::serde_json::Value;

    #[test]
    fn counts_bytes_and_echoes_lossily() {
        let resp = submit(
            Request::builder()
                .method("POST")
                .body(b"h\xc3\xa9\xff".to_vec())
                .build(),
        );
        assert_eq!(resp.status(), 201);
        let v: Value = resp.body_json().unwrap();
        assert_eq!(v["received"], 4);
        assert_eq!(v["echo"], "hé\u{FFFD}");
    }

    #[test]
    fn empty_body() {
        let v: Value = submit(Request::builder().method("POST").build())
            .body_json()
            .unwrap();
        assert_eq!(
            v,
            wasmgate_sdk::serde_json::json!({ "received": 0, "echo": "" })
        );
    }
}
