//! Hostile guests: what a plugin cannot reach (host files, the environment, sockets, another
//! request's memory), and every limit against a guest written to break it.
//!
//! The sandbox guest (`tests/guests/sandbox.wat`) reports the WASI errno of each attempt in its
//! body; each refusal is checked against a positive control (the same guest, granted a directory,
//! does read a file in it), so a broken probe cannot pass for a sandbox.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::support::{RawClient, Site, TestServer, logs_contain};

/// WASI preview 1 errnos.
const ESUCCESS: &str = "0";
const EBADF: &str = "8";
const ENOTCAPABLE: &str = "76";
const ENOTSOCK: &str = "57";
const EPERM: &str = "63";

/// A scratch directory with a file to read and symlinks pointing out of it, to grant a plugin.
fn granted_dir() -> anyhow::Result<Site> {
    let site = Site::new("sandbox")?;
    std::fs::create_dir_all(site.path("sub"))?;
    std::fs::write(site.path("sub/hello.txt"), "granted file\n")?;
    std::os::unix::fs::symlink("/etc/passwd", site.path("leak"))?;
    std::os::unix::fs::symlink("/etc", site.path("etc"))?;
    Ok(site)
}

/// The sandbox probe twice (`sandbox` with no grant, `granted` with `dir` as `/data`) and one
/// route per hostile guest, each under `/g/NAME`.
fn server(dir: &std::path::Path) -> anyhow::Result<TestServer> {
    let mut toml = format!(
        "[plugins.sandbox]\nwasm = \"tests/guests/sandbox.wat\"\n\
         [plugins.granted]\nwasm = \"tests/guests/sandbox.wat\"\n\
         dirs = [{{ host = \"{}\", guest = \"/data\" }}]\n",
        dir.display()
    );
    for (name, limits) in [
        ("secret_grow", ""),
        ("sleep", "deadline = \"200ms\"\n"),
        ("table_growth", ""),
        ("log_flood", "fuel = 100000000000\ndeadline = \"300ms\"\n"),
        ("out_of_bounds", ""),
        ("big_memory", "max_memory_bytes = \"2MiB\"\n"),
    ] {
        toml += &format!("[plugins.{name}]\nwasm = \"tests/guests/{name}.wat\"\n{limits}");
    }
    for name in [
        "sandbox",
        "granted",
        "secret_grow",
        "sleep",
        "table_growth",
        "log_flood",
        "out_of_bounds",
        "big_memory",
    ] {
        toml += &format!("[[routes]]\nmethod = \"*\"\npath = \"/g/{name}\"\nplugin = \"{name}\"\n");
    }
    TestServer::start(&toml)
}

/// The guest's `name=value` report (an error unless it answered 200).
fn report(server: &TestServer, target: &str) -> anyhow::Result<HashMap<String, String>> {
    let resp = server.get(target)?;
    ensure!(
        resp.status == 200,
        "{target}: {} {}",
        resp.status,
        resp.text()
    );
    Ok(resp
        .text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

#[test]
fn a_guest_cannot_open_host_files_read_the_environment_or_use_sockets() -> anyhow::Result<()> {
    let dir = granted_dir()?;
    let server = server(dir.dir())?;
    for path in [
        "/etc/passwd",
        "etc/passwd",
        "../../../../etc/passwd",
        "/proc/self/environ",
    ] {
        let r = report(&server, &format!("/g/sandbox?{path}"))?;
        assert_eq!(r["prestat3"], EBADF, "no pre-opened directory at all");
        assert_eq!(r["open"], EBADF, "{path}: nothing to open it relative to");
        assert_eq!((r["create"].as_str(), r["unlink"].as_str()), (EBADF, EBADF));
        assert!(!r.contains_key("data"), "{path}");
        assert_ne!(r["open_stdin"], ESUCCESS, "stdin is no directory");
        assert_eq!(r["environ"], "0/0", "the host's environment is invisible");
        assert_eq!(r["args"], "0");
        assert_eq!(r["accept3"], EBADF, "no pre-opened socket");
        for call in ["accept1", "recv0", "send1", "shutdown1"] {
            assert!(
                [EBADF, ENOTSOCK].contains(&r[call].as_str()),
                "{call} on stdio must fail, got errno {}",
                r[call]
            );
        }
    }
    // The test process's own environment is not empty: the guest really did not see it.
    assert!(std::env::vars().count() > 0);
    Ok(())
}

#[test]
fn a_granted_directory_is_read_only_and_cannot_be_escaped() -> anyhow::Result<()> {
    let site = granted_dir()?;
    let dir = site.dir();
    let server = server(dir)?;
    // The positive control: the probe does open and read a file the grant covers.
    let r = report(&server, "/g/granted?sub/hello.txt")?;
    assert_eq!(r["prestat3"], ESUCCESS);
    assert_eq!(r["open"], ESUCCESS);
    assert_eq!(r["data"], "granted file");
    // Read-only: nothing can be created or deleted in it, and the error is the one
    // docs/configuration.md names (EPERM, "Operation not permitted").
    assert_eq!(r["create"], EPERM, "create");
    assert_eq!(r["unlink"], EPERM, "unlink");
    assert!(!dir.join("wasmgate-created").exists());
    assert!(dir.join("sub/hello.txt").exists());
    // Out of it: by `..`, by absolute path, by symlinks to a file and to a directory outside.
    for path in [
        "../etc/passwd",
        "sub/../../etc/passwd",
        "/etc/passwd",
        "leak",
        "etc/passwd",
    ] {
        let r = report(&server, &format!("/g/granted?{path}"))?;
        assert!(
            [ENOTCAPABLE, EPERM].contains(&r["open"].as_str()),
            "{path}: escaped the grant (errno {})",
            r["open"]
        );
        assert!(!r.contains_key("data"), "{path}");
    }
    Ok(())
}

#[test]
fn a_secret_left_by_one_request_is_never_seen_by_another_even_concurrently() -> anyhow::Result<()> {
    let dir = granted_dir()?;
    let server = server(dir.dir())?;
    let addr = server.addr();
    // Concurrent and sequential requests share pool slots; grown pages, globals and the request
    // area must all come back clean every time.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut c = RawClient::connect(addr)?;
                for i in 0..50 {
                    let body = format!("secret-{i}");
                    let resp = c
                        .send(
                            format!(
                                "POST /g/secret_grow HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )?
                        .response()?;
                    ensure!(
                        (resp.status, resp.text().as_str()) == (200, "clean\n"),
                        "request {i}: {} {:?}",
                        resp.status,
                        resp.text()
                    );
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client thread")?;
    }
    Ok(())
}

#[test]
fn every_limit_holds_against_a_guest_written_to_break_it() -> anyhow::Result<()> {
    let dir = granted_dir()?;
    let server = server(dir.dir())?;
    // Deadline: asleep in a host call, burning no fuel at all.
    let t = Instant::now();
    let resp = server.get("/g/sleep")?;
    assert_eq!(
        (resp.status, resp.json()?["error"].as_str()),
        (504, Some("deadline"))
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(
        server.get("/g/sleep?10")?.status,
        200,
        "a short sleep is fine"
    );

    // Memory: declared up front rather than grown. Refused when it loads (naming both sizes),
    // so its route answers 503 instead of failing every request.
    let resp = server.get("/g/big_memory")?;
    assert_eq!(
        (resp.status, resp.json()?["error"].as_str()),
        (503, Some("not_loaded"))
    );
    let metrics = server.metrics();
    let refused = r#"wasmgate_plugin_last_error_info{plugin="big_memory",kind="limits",error="#;
    assert!(
        metrics.lines().any(|l| l.starts_with(refused)
            && l.contains("65536000 bytes (1000 pages")
            && l.contains("max_memory_bytes = 2097152")),
        "{metrics}"
    );

    // Tables: memory the memory cap does not count, bounded by the pool.
    let r = report(&server, "/g/table_growth")?;
    let size: u64 = r["table"].parse()?;
    assert!(
        size <= 20_000,
        "table grew to {size} entries (the pool allows 20,000)"
    );

    // Response: pointing past the end of memory reads nothing.
    let resp = server.get("/g/out_of_bounds")?;
    assert_eq!(
        (resp.status, resp.json()?["error"].as_str()),
        (502, Some("invalid_response"))
    );

    // Output: an endless flood of stdout/stderr is capped, and the deadline ends it.
    let t = Instant::now();
    let resp = server.get("/g/log_flood")?;
    assert_eq!(resp.status, 504, "{}", resp.text());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(logs_contain(&["plugin=log_flood", "dropped"]));

    // (Fuel, memory growth, stack depth and oversize responses: tests/it/boundaries.rs.)
    assert_eq!(server.get("/health")?.status, 200);
    Ok(())
}
