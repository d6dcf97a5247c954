//! The sample plugins, built with the SDK for wasm32-wasip1, through a real HTTP client.

use serde_json::{Value, json};

use crate::support::{TestServer, repo_root, sample_plugins_built};

/// The repository's own `wasmgate.toml` (the sample plugins), served in-process.
fn server() -> anyhow::Result<TestServer> {
    sample_plugins_built();
    let text = std::fs::read_to_string(repo_root().join("wasmgate.toml"))?;
    TestServer::start(&text)
}

fn json_of(resp: ureq::Response) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&resp.into_string()?)?)
}

/// Sends `req` (with `body`, if any): the status and the JSON body, whatever the status.
fn call(req: ureq::Request, body: Option<&str>) -> anyhow::Result<(u16, Value)> {
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    match result {
        Ok(resp) => Ok((resp.status(), json_of(resp)?)),
        Err(ureq::Error::Status(code, resp)) => Ok((code, json_of(resp)?)),
        Err(e) => Err(e.into()),
    }
}

#[test]
fn submit_counts_and_echoes_the_body() -> anyhow::Result<()> {
    let server = server()?;
    let (status, body) = call(ureq::post(&server.url("/submit")), Some("héllo"))?;
    assert_eq!(status, 201);
    assert_eq!(body, json!({ "received": 6, "echo": "héllo" }));
    let (status, _) = call(ureq::get(&server.url("/submit")), None)?;
    assert_eq!(status, 405);
    Ok(())
}

#[test]
fn hello_greets_the_decoded_name() -> anyhow::Result<()> {
    let server = server()?;
    let (status, body) = call(ureq::get(&server.url("/hello/J%C3%BCrgen")), None)?;
    assert_eq!(
        (status, body),
        (200, json!({ "message": "Hello, Jürgen!" }))
    );
    let head = ureq::head(&server.url("/hello/x")).call()?;
    assert_eq!(head.status(), 200);
    assert!(head.into_string()?.is_empty());
    Ok(())
}

#[test]
fn echo_sees_the_request_as_sent() -> anyhow::Result<()> {
    let server = server()?;
    let req =
        ureq::request("PATCH", &server.url("/echo/a/b%20c?x=1&x=2&y=%C3%A9")).set("X-Test", "yes");
    let (status, body) = call(req, Some("payload"))?;
    assert_eq!(status, 200);
    assert_eq!(body["method"], "PATCH");
    assert_eq!(body["path"], "/echo/a/b%20c");
    assert_eq!(body["target"], "/echo/a/b%20c?x=1&x=2&y=%C3%A9");
    assert_eq!(body["version"], "HTTP/1.1");
    assert_eq!(body["query"]["x"], json!(["1", "2"]));
    assert_eq!(body["query"]["y"], json!(["é"]));
    assert_eq!(body["params"], json!({ "rest": "a/b c" }));
    assert_eq!(
        (body["body"].clone(), body["body_len"].clone()),
        (json!("payload"), json!(7))
    );
    let headers = body["headers"]
        .as_array()
        .expect("the echo lists the headers");
    assert!(
        headers.contains(&json!(["X-Test", "yes"])) || headers.contains(&json!(["x-test", "yes"])),
        "{headers:?}"
    );
    Ok(())
}

#[test]
fn validate_answers_every_problem_or_creates() -> anyhow::Result<()> {
    let server = server()?;
    let (status, body) = call(
        ureq::post(&server.url("/api/users")).set("content-type", "application/json"),
        Some(r#"{"name": ""}"#),
    )?;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("email"), "{body}");
    let valid = r#"{"name": "Ada Lovelace", "email": "ada@example.com", "age": 36}"#;
    let (status, body) = call(
        ureq::post(&server.url("/api/users")).set("content-type", "application/json"),
        Some(valid),
    )?;
    assert_eq!(status, 201, "{body}");
    assert!(body.to_string().contains("ada@example.com"), "{body}");
    Ok(())
}

#[test]
fn plugins_serve_many_requests_on_one_connection() -> anyhow::Result<()> {
    let server = server()?;
    let agent = ureq::AgentBuilder::new().build();
    for i in 0..50 {
        let resp = agent.get(&server.url(&format!("/hello/n{i}"))).call()?;
        assert_eq!(json_of(resp)?["message"], format!("Hello, n{i}!"));
    }
    assert_eq!(server.metric("wasmgate_connections_accepted_total"), 1.0);
    assert_eq!(
        server.metric(r#"wasmgate_plugin_calls_total{plugin="hello",outcome="ok"}"#),
        50.0
    );
    Ok(())
}

/// The plugins' own unit tests (handler logic, run natively) are part of "every test": run them
/// here, in plugins/ with its own target directory so this cannot wait on our cargo's build lock.
#[test]
fn the_plugins_own_unit_tests_pass() -> anyhow::Result<()> {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["test-native", "--quiet"])
        .current_dir(repo_root().join("plugins"))
        .env("CARGO_TARGET_DIR", repo_root().join("plugins/target"))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("test result: ok"), "{stdout}");
    Ok(())
}
