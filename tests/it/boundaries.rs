//! Every error boundary, through HTTP, with a hand-written adversarial guest each: the status, the
//! metric, the log event, and that the server and the same route carry on.

use crate::support::{TestServer, logs_contain, plugin_hash};

/// One route per guest in tests/guests, with limits low enough to hit quickly.
fn server() -> anyhow::Result<TestServer> {
    let guests = [
        ("ok", ""),
        ("echo", ""),
        ("infinite_loop", "fuel = 2000000\n"),
        ("spin", "fuel = 100000000000\ndeadline = \"100ms\"\n"),
        ("memory_growth", "max_memory_bytes = \"2MiB\"\n"),
        ("deep_recursion", ""),
        ("unreachable", ""),
        ("malformed_response", ""),
        ("crlf_header", ""),
        ("oversize_response", ""),
        ("bad_status", ""),
        ("missing_export", ""),
        ("wrong_abi_version", ""),
        ("bad_import", ""),
        ("secret", ""),
    ];
    let mut toml = String::new();
    for (name, limits) in guests {
        toml += &format!(
            "[plugins.{name}]\nwasm = \"tests/guests/{name}.wat\"\n{limits}\n[[routes]]\nmethod = \"*\"\npath = \"/g/{name}\"\nplugin = \"{name}\"\n\n"
        );
    }
    TestServer::start(&toml)
}

/// One error boundary hit once: its status and error kind on the wire, its outcome counted once,
/// its structured log event, and the server (and the same route) carrying on.
#[track_caller]
fn assert_boundary(
    server: &TestServer,
    guest: &str,
    status: u16,
    kind: &str,
) -> anyhow::Result<()> {
    let resp = server.get(&format!("/g/{guest}"))?;
    assert_eq!(resp.status, status, "{guest}: {}", resp.text());
    assert_eq!(resp.json()?["error"], kind, "{guest}");
    let sample = format!(r#"wasmgate_plugin_calls_total{{plugin="{guest}",outcome="{kind}"}}"#);
    assert_eq!(server.metric(&sample), 1.0, "{guest}: {sample}");
    // The event an operator reads next to the metric: the plugin and the kind, as fields.
    assert!(
        logs_contain(&[&format!(" plugin={guest} "), &format!(" kind=\"{kind}\"")]),
        "{guest}: one structured log event with plugin={guest} and kind=\"{kind}\""
    );
    // The server carries on, and so does the same route.
    assert_eq!(server.get("/health")?.status, 200);
    assert_eq!(server.get("/g/ok")?.status, 200);
    if kind == "not_loaded" {
        // It never loaded: /metrics says why.
        assert!(
            server.metrics().contains(&format!(
                "wasmgate_plugin_last_error_info{{plugin=\"{guest}\",kind="
            )),
            "{guest}: its load error is exported\n{}",
            server.metrics()
        );
    } else {
        let again = server.get(&format!("/g/{guest}?ok"))?;
        assert_eq!(
            (again.status, again.text().as_str()),
            (200, "ok\n"),
            "{guest}: the next request works"
        );
    }
    Ok(())
}

#[test]
fn a_hand_written_wat_guest_following_the_abi_works() -> anyhow::Result<()> {
    let server = server()?;
    let resp = server.get("/g/ok")?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-guest"), Some("ok"));
    assert_eq!(resp.text(), "hello from ok.wat\n");
    let resp = server
        .connect()?
        .send(b"PUT /g/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")?
        .response()?;
    assert_eq!(
        (resp.status, resp.header("x-method"), resp.text().as_str()),
        (200, Some("PUT"), "hello")
    );
    Ok(())
}

#[test]
fn each_boundary_has_its_status_metric_and_log_and_the_server_carries_on() -> anyhow::Result<()> {
    let server = server()?;
    assert_boundary(&server, "infinite_loop", 504, "fuel_exhausted")?;
    assert_boundary(&server, "spin", 504, "deadline")?;
    assert_boundary(&server, "memory_growth", 500, "memory_limit")?;
    assert_boundary(&server, "deep_recursion", 500, "trap")?;
    assert_boundary(&server, "unreachable", 500, "trap")?;
    assert_boundary(&server, "malformed_response", 502, "invalid_response")?;
    assert_boundary(&server, "crlf_header", 502, "invalid_response")?;
    assert_boundary(&server, "oversize_response", 502, "invalid_response")?;
    assert_boundary(&server, "bad_status", 502, "invalid_response")?;
    assert_boundary(&server, "missing_export", 503, "not_loaded")?;
    assert_boundary(&server, "wrong_abi_version", 503, "not_loaded")?;
    assert_boundary(&server, "bad_import", 503, "not_loaded")?;
    Ok(())
}

#[test]
fn a_panic_message_reaches_the_log_and_not_the_client() -> anyhow::Result<()> {
    let server = server()?;
    let resp = server.get("/g/unreachable")?;
    assert_eq!(resp.status, 500);
    assert!(
        !resp.text().contains("boom"),
        "guest internals stay out of the response"
    );
    assert!(
        logs_contain(&["plugin=unreachable", "boom!!"]),
        "the guest's stderr is logged"
    );
    Ok(())
}

#[test]
fn load_errors_name_what_is_wrong() -> anyhow::Result<()> {
    let server = server()?;
    // Where an operator looks first: the load error in the log...
    assert!(logs_contain(&["plugin=missing_export", "wasmgate_handle"]));
    assert!(logs_contain(&["plugin=wrong_abi_version", "returned 3"]));
    assert!(logs_contain(&["plugin=bad_import", "env"]));
    // ...and the same error, with its kind, in /metrics.
    let metrics = server.metrics();
    for (plugin, needle) in [
        ("missing_export", "wasmgate_handle"),
        ("wrong_abi_version", "returned 3"),
        ("bad_import", "env"),
    ] {
        let prefix = format!("wasmgate_plugin_last_error_info{{plugin=\"{plugin}\",kind=\"");
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no load error exported for {plugin}:\n{metrics}"));
        assert!(line.contains(needle), "{plugin}: {line}");
        assert!(
            plugin_hash(&metrics, plugin).is_none(),
            "{plugin} never loaded"
        );
    }
    Ok(())
}

#[test]
fn no_state_survives_from_one_request_to_the_next() -> anyhow::Result<()> {
    let server = server()?;
    for _ in 0..5 {
        let resp = server.get("/g/secret")?;
        assert_eq!((resp.status, resp.text().as_str()), (200, "clean\n"));
    }
    Ok(())
}

#[test]
fn fuel_used_is_recorded() -> anyhow::Result<()> {
    let server = server()?;
    assert_eq!(server.get("/g/ok")?.status, 200);
    assert!(server.metric(r#"wasmgate_plugin_fuel_used_total{plugin="ok"}"#) > 0.0);
    Ok(())
}
