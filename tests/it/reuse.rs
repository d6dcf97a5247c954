//! Opt-in instance reuse (`[plugins.NAME] reuse = { ... }` plus the guest's `wasmgate_reusable`
//! export), seen from outside: whether an instance carried state from an earlier request is what
//! `tests/guests/counter_v2.wat` answers (its request counter), and how many calls a warm instance
//! answered is `wasmgate_plugin_reused_instance_calls_total`. The isolation promises of
//! docs/security.md are checked here: a trap never leaks into the next request, and a warm
//! instance never serves another plugin, or another version of its own after a swap.

use std::time::Duration;

use crate::support::{Site, TestServer, eventually, exchange, get};

/// Plugins `a` and `b` (both `counter.wat`, on `/a` and `/b`, any method), watched; `reuse` is
/// each plugin's reuse table (`""`: none).
fn config(reuse_a: &str, reuse_b: &str) -> String {
    let plugin = |name: &str, reuse: &str| {
        let reuse = if reuse.is_empty() {
            String::new()
        } else {
            format!("reuse = {reuse}\n")
        };
        format!(
            "[plugins.{name}]\nwasm = \"counter.wat\"\n{reuse}\
             [[routes]]\nmethod = \"*\"\npath = \"/{name}\"\nplugin = \"{name}\"\n"
        )
    };
    format!(
        "[server]\nwatch = true\nwatch_debounce = \"50ms\"\n{}{}",
        plugin("a", reuse_a),
        plugin("b", reuse_b)
    )
}

fn start(site: &Site, reuse_a: &str, reuse_b: &str) -> anyhow::Result<TestServer> {
    site.copy_guest("counter_v2", "counter.wat")?;
    site.replace("wasmgate.toml", config(reuse_a, reuse_b))?;
    site.start()
}

/// The counter the instance that answered `GET path` had reached (1: a fresh instance).
fn count(server: &TestServer, path: &str) -> anyhow::Result<u32> {
    let resp = get(server.addr(), path)?;
    anyhow::ensure!(resp.status == 200, "GET {path}: {}", resp.status);
    let body: [u8; 4] = resp.body.as_slice().try_into()?;
    Ok(u32::from_le_bytes(body))
}

fn counts(server: &TestServer, path: &str, n: usize) -> anyhow::Result<Vec<u32>> {
    (0..n).map(|_| count(server, path)).collect()
}

fn reused(server: &TestServer, plugin: &str) -> f64 {
    server.metric(&format!(
        "wasmgate_plugin_reused_instance_calls_total{{plugin=\"{plugin}\"}}"
    ))
}

const REUSE: &str = "{ max_requests = 1000 }";

#[test]
fn only_a_plugin_whose_operator_opted_in_reuses_instances() -> anyhow::Result<()> {
    let site = Site::new("reuse-opt-in")?;
    let server = start(&site, REUSE, "")?;
    assert_eq!(counts(&server, "/a", 4)?, [1, 2, 3, 4]);
    assert_eq!(
        counts(&server, "/b", 3)?,
        [1, 1, 1],
        "b: a fresh instance each time"
    );
    assert_eq!(reused(&server, "a"), 3.0);
    assert_eq!(reused(&server, "b"), 0.0);
    Ok(())
}

#[test]
fn a_warm_instance_never_serves_another_plugin_of_the_same_module() -> anyhow::Result<()> {
    let site = Site::new("reuse-two-plugins")?;
    let server = start(&site, REUSE, REUSE)?;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push((count(&server, "/a")?, count(&server, "/b")?));
    }
    assert_eq!(
        seen,
        [(1, 1), (2, 2), (3, 3)],
        "each plugin has its own instances"
    );
    Ok(())
}

#[test]
fn a_trap_throws_the_instance_away_and_the_next_request_starts_fresh() -> anyhow::Result<()> {
    let site = Site::new("reuse-trap")?;
    let server = start(&site, REUSE, "")?;
    assert_eq!(counts(&server, "/a", 2)?, [1, 2]);
    let trapped = exchange(server.addr(), b"DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n")?;
    assert_eq!(trapped.status, 500, "{}", trapped.text());
    assert_eq!(
        counts(&server, "/a", 2)?,
        [1, 2],
        "the trapped instance (at 3) is gone"
    );
    Ok(())
}

#[test]
fn an_instance_is_retired_after_max_requests() -> anyhow::Result<()> {
    let site = Site::new("reuse-max")?;
    let server = start(&site, "{ max_requests = 3 }", "")?;
    assert_eq!(counts(&server, "/a", 7)?, [1, 2, 3, 1, 2, 3, 1]);
    Ok(())
}

#[test]
fn an_instance_idle_past_its_timeout_is_dropped() -> anyhow::Result<()> {
    let site = Site::new("reuse-idle")?;
    let server = start(
        &site,
        "{ max_requests = 100, idle_timeout = \"200ms\" }",
        "",
    )?;
    assert_eq!(counts(&server, "/a", 2)?, [1, 2]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        count(&server, "/a")?,
        1,
        "idle past 200 ms: a fresh instance"
    );
    Ok(())
}

#[test]
fn after_a_swap_no_request_is_served_by_an_instance_of_the_old_version() -> anyhow::Result<()> {
    let site = Site::new("reuse-swap")?;
    let server = start(&site, REUSE, "")?;
    assert_eq!(counts(&server, "/a", 3)?, [1, 2, 3]);
    // Version 2 counts from 1000: a response below it came from an instance of version 1.
    let v1 = std::fs::read_to_string(site.path("counter.wat"))?;
    let v2 = v1.replace(
        "(global $count (mut i32) (i32.const 0))",
        "(global $count (mut i32) (i32.const 1000))",
    );
    anyhow::ensure!(
        v1 != v2,
        "counter_v2.wat's global is where this test expects it"
    );
    site.replace("counter.wat", v2)?;
    // Until the swap, requests are the old version's (its warm instance counts on); the first
    // answer of the new version comes from a fresh instance of it, and no answer after that
    // comes from an old instance.
    let mut first_new = None;
    let swapped = eventually(Duration::from_secs(5), || match count(&server, "/a") {
        Ok(n) if n > 1000 => {
            first_new = Some(n);
            true
        }
        _ => false,
    });
    assert!(swapped, "the new version serves within 5 s");
    assert_eq!(first_new, Some(1001), "a fresh instance of the new version");
    assert_eq!(counts(&server, "/a", 3)?, [1002, 1003, 1004]);
    Ok(())
}

#[test]
fn a_config_reload_that_turns_reuse_off_stops_reusing_at_once() -> anyhow::Result<()> {
    let site = Site::new("reuse-off")?;
    let server = start(&site, REUSE, "")?;
    assert_eq!(counts(&server, "/a", 2)?, [1, 2]);
    site.replace("wasmgate.toml", config("", ""))?;
    assert!(
        eventually(Duration::from_secs(5), || count(&server, "/a").ok()
            == Some(1)),
        "reuse off after the reload"
    );
    assert_eq!(counts(&server, "/a", 3)?, [1, 1, 1]);
    Ok(())
}
