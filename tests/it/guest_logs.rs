//! What an operator reads in the log: when a guest prints, one line per guest line, as the guest
//! wrote it, tagged with the plugin and the request id, and nothing of the host's internals
//! (wasmtime-wasi opens a span around every WASI call, which must not show); when a plugin loads,
//! one line. Read from the real binary's stderr, because the log line is the behaviour under test.

use std::time::Duration;

use anyhow::Context as _;

use crate::support::{ChildOptions, ChildServer, Site, get, repo_root};

/// ok.wat, plus one `fd_write` of "hello from the guest\n" to stdout before answering.
fn printing_guest() -> anyhow::Result<String> {
    let ok = std::fs::read_to_string(repo_root().join("tests/guests/ok.wat"))?;
    let with_import = ok.replacen(
        "(module\n",
        "(module\n  (import \"wasi_snapshot_preview1\" \"fd_write\" \
         (func $fd_write (param i32 i32 i32 i32) (result i32)))\n  \
         (data (i32.const 512) \"\\00\\03\\00\\00\" \"\\15\\00\\00\\00\")\n  \
         (data (i32.const 768) \"hello from the guest\\n\")\n",
        1,
    );
    let printing = with_import.replace(
        "(i64.const 0x000000100000002f))",
        "(drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 600)))\n    \
         (i64.const 0x000000100000002f))",
    );
    anyhow::ensure!(printing != with_import, "ok.wat changed shape");
    Ok(printing)
}

fn serve_printing_guest(format: &str) -> anyhow::Result<(String, String)> {
    let site = Site::new(&format!("guest-logs-{format}"))?;
    site.replace("print.wat", printing_guest()?)?;
    site.replace(
        "wasmgate.toml",
        "[plugins.print]\nwasm = \"print.wat\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/print\"\nplugin = \"print\"\n",
    )?;
    let config = site.path("wasmgate.toml");
    let mut options = ChildOptions::serve(&config);
    options
        .args
        .extend(["--log-format".to_string(), format.to_string()]);
    let server = ChildServer::start(options)?;
    let resp = get(server.addr(), "/print")?;
    anyhow::ensure!(resp.status == 200, "{}", resp.text());
    let id = resp
        .header("x-request-id")
        .context("a request id header")?
        .to_string();
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    Ok((id, exited.stderr))
}

#[test]
fn a_guest_line_reads_as_written_with_plugin_and_request_id_only() -> anyhow::Result<()> {
    let (id, stderr) = serve_printing_guest("pretty")?;
    let line = stderr
        .lines()
        .find(|l| l.contains("hello from the guest"))
        .with_context(|| format!("the guest's line in:\n{stderr}"))?;
    assert!(
        line.contains("plugin=") && line.contains("print") && line.contains(&id),
        "{line}"
    );
    assert!(
        !line.contains("fd_write") && !line.contains("ciovs") && !line.contains("guest 0x"),
        "no WASI call span: {line}"
    );
    Ok(())
}

#[test]
fn a_guest_line_in_json_has_no_span_fields() -> anyhow::Result<()> {
    let (id, stderr) = serve_printing_guest("json")?;
    let line = stderr
        .lines()
        .find(|l| l.contains("hello from the guest"))
        .with_context(|| format!("the guest's line in:\n{stderr}"))?;
    let event: serde_json::Value = serde_json::from_str(line)?;
    assert_eq!(event["message"], "hello from the guest", "{line}");
    assert_eq!(event["plugin"], "print", "{line}");
    assert_eq!(event["request_id"], id.as_str(), "{line}");
    assert!(
        event.get("span").is_none() && event.get("spans").is_none(),
        "{line}"
    );
    Ok(())
}

#[test]
fn a_plugin_load_is_logged_once() -> anyhow::Result<()> {
    let (_, stderr) = serve_printing_guest("pretty")?;
    let loaded = stderr
        .lines()
        .filter(|l| l.contains("plugin loaded") && l.contains("print"))
        .count();
    assert_eq!(loaded, 1, "{stderr}");
    Ok(())
}
