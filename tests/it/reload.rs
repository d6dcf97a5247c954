//! Hot reload under load: plugin swaps, broken modules, config changes. Files live in a temporary
//! directory watched by the server, and are written the way editors and builds write them.
//! What a reload did is read where an operator reads it: `/metrics` (`wasmgate_plugin_reloads_total`,
//! `wasmgate_config_reloads_total`, `wasmgate_plugin_info`, `wasmgate_plugin_last_error_info`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::support::{
    ChildOptions, ChildServer, Site, TestServer, current_version, eventually, finish_load, get,
    metric, try_eventually, versioned_guest, versioned_load,
};

const RELOADS_OK: &str = r#"wasmgate_plugin_reloads_total{plugin="v",result="ok"}"#;
const RELOADS_REFUSED: &str = r#"wasmgate_plugin_reloads_total{plugin="v",result="refused"}"#;
const CONFIG_RELOADS_OK: &str = r#"wasmgate_config_reloads_total{result="ok"}"#;
const CONFIG_RELOADS_REFUSED: &str = r#"wasmgate_config_reloads_total{result="refused"}"#;

/// A reload site's config: watched (50 ms debounce), a module cache in the site, plugin `v`
/// (module `v.wat`) on `GET /v`, then `extra`.
fn config(extra: &str) -> String {
    format!(
        "[server]\nwatch = true\nwatch_debounce = \"50ms\"\n[runtime]\ncache_dir = \"cache\"\n\
         [plugins.v]\nwasm = \"v.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/v\"\nplugin = \"v\"\n{extra}"
    )
}

/// Writes `config(extra)` into `site` and serves it in-process.
fn start(site: &Site, extra: &str) -> anyhow::Result<TestServer> {
    site.replace("wasmgate.toml", config(extra))?;
    site.start()
}

#[test]
fn swapping_a_plugin_under_load_loses_nothing() -> anyhow::Result<()> {
    let _calm = crate::support::exclusive_network();
    let site = Site::new("reload-swap")?;
    site.replace("v.wat", versioned_guest(1))?;
    let server = start(&site, "")?;
    let addr = server.addr();
    assert_eq!(current_version(addr)?, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(addr, 4, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let swaps_began = Instant::now();
    let mut latencies = Vec::new();
    for swap in 0..24u8 {
        let version = 2 - swap % 2; // 2, 1, 2, 1, ...
        let written = Instant::now();
        if swap % 3 == 2 {
            site.write_slowly("v.wat", versioned_guest(version))?;
        } else {
            site.replace("v.wat", versioned_guest(version))?;
        }
        let swapped = try_eventually(Duration::from_secs(1), || {
            Ok(current_version(addr)? == version)
        })
        .with_context(|| format!("swap {swap}"))?;
        assert!(
            swapped,
            "swap {swap}: new requests see version {version} within a second\n{}",
            crate::support::logs()
        );
        latencies.push(written.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let samples = finish_load(clients)?;
    let (mut before, mut during): (Vec<_>, Vec<_>) =
        samples.iter().partition(|(at, _)| *at < swaps_began);
    let p = |v: &mut Vec<&(Instant, Duration)>, q: f64| {
        v.sort_by_key(|s| s.1);
        v[((v.len() as f64 * q) as usize).min(v.len() - 1)].1
    };
    latencies.sort();
    assert!(!before.is_empty(), "requests before the swaps");
    assert!(during.len() > 24);
    println!(
        "reload: 24 swaps under load, {} requests, all 200 and whole; file written -> first request on the new version: \
         median {:?}, max {:?}; request latency p50/p99 before swapping {:?}/{:?}, during swaps {:?}/{:?}",
        samples.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        p(&mut before, 0.5),
        p(&mut before, 0.99),
        p(&mut during, 0.5),
        p(&mut during, 0.99),
    );
    let ok = server.metric(RELOADS_OK);
    assert!(ok >= 24.0, "{ok} reloads");
    Ok(())
}

#[test]
fn a_broken_module_never_takes_the_route_down_and_a_fix_brings_the_new_version()
-> anyhow::Result<()> {
    let _calm = crate::support::exclusive_network();
    let site = Site::new("reload-broken")?;
    site.replace("v.wat", versioned_guest(1))?;
    let server = start(&site, "")?;
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(addr, 2, stop.clone());
    let refused = || server.metric(RELOADS_REFUSED);
    // A whole, valid module declaring an ABI version no host implements.
    let wrong_abi = versioned_guest(3).replace("(i32.const 1))", "(i32.const 99))");
    let truncated = versioned_guest(3)[..200].to_string();
    for (i, broken) in [
        b"\x00asm garbage bytes".to_vec(),
        wrong_abi.into_bytes(),
        truncated.into_bytes(),
    ]
    .into_iter()
    .enumerate()
    {
        let before = refused();
        site.replace("v.wat", &broken)?;
        assert!(
            eventually(Duration::from_secs(5), || refused() > before),
            "refusal {i} counted"
        );
        assert_eq!(current_version(addr)?, 1, "the old version keeps serving");
    }
    assert!(
        server
            .metrics()
            .contains("wasmgate_plugin_last_error_info{plugin=\"v\""),
        "{}",
        server.metrics()
    );
    site.replace("v.wat", versioned_guest(4))?;
    assert!(try_eventually(Duration::from_secs(5), || Ok(
        current_version(addr)? == 4
    ))?);
    stop.store(true, Ordering::Relaxed);
    finish_load(clients)?;
    Ok(())
}

#[test]
fn config_reload_adds_and_removes_routes_under_load_and_an_invalid_config_changes_nothing()
-> anyhow::Result<()> {
    let _calm = crate::support::exclusive_network();
    let site = Site::new("reload-config")?;
    site.replace("v.wat", versioned_guest(1))?;
    site.replace("w.wat", versioned_guest(7))?;
    let server = start(&site, "")?;
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(addr, 2, stop.clone());
    let get_w = || get(addr, "/w").map(|r| r.status);
    assert_eq!(get_w()?, 404);

    let extra = "[plugins.w]\nwasm = \"w.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/w\"\nplugin = \"w\"\n";
    site.replace("wasmgate.toml", config(extra))?;
    assert!(
        try_eventually(Duration::from_secs(5), || Ok(get_w()? == 200))?,
        "route added"
    );

    let refused_config = || {
        metric(&server.metrics(), CONFIG_RELOADS_REFUSED)
            .context("wasmgate_config_reloads_total{result=\"refused\"} is exported")
    };
    let refused_before = refused_config()?;
    site.replace(
        "wasmgate.toml",
        format!(
            "{}[[routes]]\nmethod = \"GET\"\npath = \"/w\"\nplugin = \"nope\"\n",
            config(extra)
        ),
    )?;
    assert!(try_eventually(Duration::from_secs(5), || Ok(
        refused_config()? > refused_before
    ))?);
    assert_eq!(get_w()?, 200, "an invalid config changes nothing");

    site.replace("wasmgate.toml", config(""))?;
    assert!(
        try_eventually(Duration::from_secs(5), || Ok(get_w()? == 404))?,
        "route removed"
    );
    stop.store(true, Ordering::Relaxed);
    let served = finish_load(clients)?.len();
    assert!(served > 0);
    Ok(())
}

/// Only content changes reload: reading the watched files (as an editor, `cat` or a build does)
/// reloads nothing, and one save reloads once.
#[test]
fn reading_watched_files_reloads_nothing_and_one_save_reloads_once() -> anyhow::Result<()> {
    let site = Site::new("reload-reads")?;
    site.replace("v.wat", versioned_guest(1))?;
    let server = start(&site, "")?;
    for _ in 0..5 {
        std::fs::read(site.path("v.wat"))?;
        std::fs::read(site.path("wasmgate.toml"))?;
        std::fs::read_dir(site.dir())?.count();
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        server.metric(CONFIG_RELOADS_OK),
        0.0,
        "reads are not changes"
    );
    site.replace("v.wat", versioned_guest(2))?;
    assert!(try_eventually(Duration::from_secs(5), || Ok(
        current_version(server.addr())? == 2
    ))?);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        server.metric(CONFIG_RELOADS_OK),
        1.0,
        "one save, one reload"
    );
    Ok(())
}

#[test]
fn sighup_reloads_without_watching() -> anyhow::Result<()> {
    let site = Site::new("reload-sighup")?;
    site.replace("v.wat", versioned_guest(1))?;
    site.replace(
        "wasmgate.toml",
        config("").replace("watch = true", "watch = false"),
    )?;
    let server = ChildServer::start(ChildOptions::serve(site.path("wasmgate.toml")))?;
    let addr = server.addr();
    assert_eq!(current_version(addr)?, 1);
    site.replace("v.wat", versioned_guest(2))?;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        current_version(addr)?,
        1,
        "not watching: nothing changes by itself"
    );
    server.signal(libc::SIGHUP)?;
    assert!(try_eventually(Duration::from_secs(3), || Ok(
        current_version(addr)? == 2
    ))?);
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    Ok(())
}

#[test]
fn unchanged_plugins_are_not_recompiled_and_restarts_hit_the_module_cache() -> anyhow::Result<()> {
    let site = Site::new("reload-cache")?;
    site.replace("v.wat", versioned_guest(1))?;
    let server = start(&site, "")?;
    let loaded_at = r#"wasmgate_plugin_loaded_timestamp_seconds{plugin="v"}"#;
    let hash_before = server.plugin_hash("v").context("v is loaded")?;
    let loaded_before = metric(&server.metrics(), loaded_at).context("v's load time")?;
    // Touch the config (no change to the plugin): the plugin is reused as it was.
    site.replace("wasmgate.toml", format!("{}\n# touched\n", config("")))?;
    assert!(eventually(Duration::from_secs(5), || server
        .metric(CONFIG_RELOADS_OK)
        >= 1.0));
    let metrics = server.metrics();
    assert_eq!(
        (
            metric(&metrics, RELOADS_OK),
            metric(&metrics, RELOADS_REFUSED)
        ),
        (Some(0.0), Some(0.0)),
        "not recompiled"
    );
    assert_eq!(server.plugin_hash("v"), Some(hash_before));
    assert_eq!(
        metric(&metrics, loaded_at),
        Some(loaded_before),
        "the same load"
    );
    drop(server);
    let entries = walk(&site.path("cache"));
    assert!(entries > 0, "compiled modules are cached on disk");
    Ok(())
}

/// How many files are under `dir`, recursively (0 if it does not exist).
fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A config reload that lowers `max_memory_bytes` below the initial memory of an unchanged module
/// does not keep it as it was: the module is loaded again and refused (`limits`, with both sizes
/// in the message).
#[test]
fn a_reload_lowering_max_memory_below_an_unchanged_modules_memory_refuses_it() -> anyhow::Result<()>
{
    let site = Site::new("reload-memory")?;
    site.replace("v.wat", versioned_guest(1))?;
    let server = start(&site, "[plugin_defaults]\nmax_memory_bytes = \"1MiB\"\n")?;
    assert_eq!(current_version(server.addr())?, 1);
    let refused = || server.metric(RELOADS_REFUSED);
    let before = refused();
    // versioned_guest's memory starts at one 64 KiB page.
    site.replace(
        "wasmgate.toml",
        config("[plugin_defaults]\nmax_memory_bytes = \"32KiB\"\n"),
    )?;
    assert!(
        eventually(Duration::from_secs(5), || refused() > before),
        "the unchanged module is refused under the lower limit\n{}",
        server.metrics()
    );
    assert!(
        server
            .metrics()
            .contains(r#"wasmgate_plugin_last_error_info{plugin="v",kind="limits""#),
        "{}",
        server.metrics()
    );
    Ok(())
}
