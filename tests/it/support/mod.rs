//! Test support: servers on 127.0.0.1:0 (in-process through `Server::start`, or the real CLI as a
//! child process), the raw client, scratch sites, versioned guests, metric lookups, log capture,
//! a scripted upstream for plugins' outbound calls, and a real `redis-server` for the key-value
//! stores.
//!
//! This module owns what every test shares: where the repository is, the sample plugins' build,
//! polling, the lock that keeps connection floods away from tests that must see every request
//! succeed, and reading a Prometheus exposition. Tests see a server only as an operator does
//! (HTTP, `/metrics`, `/ready`, logs, exit codes): nothing here may reach into
//! `wasmgate-server`'s internals. The test crate's only `unsafe` is in `sys`.

mod child;
mod client;
mod guests;
mod logs;
mod redis;
mod server;
mod site;
#[allow(unsafe_code)]
mod sys;
mod upstream;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use wasmgate_server::config::Config;

pub use child::{ChildOptions, ChildServer, apply_env};
pub use client::{RawClient, Response, answers_200, exchange, get, scrape};
pub use guests::{Samples, current_version, finish_load, versioned_guest, versioned_load};
pub use logs::{logs, logs_contain};
pub use redis::RedisServer;
pub use server::TestServer;
pub use site::Site;
pub use sys::{make_fifo, reset, signal};
pub use upstream::{Answer, TestCa, Upstream, header_of};

/// The repository root (where `wasmgate.toml`, `plugins/` and `tests/guests/` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Sample plugins no configuration of the repository serves, built for the tests that do
/// (plugins/fetch: outbound HTTP, tests/it/outbound.rs).
const TEST_ONLY_PLUGINS: [&str; 1] = ["fetch"];

/// Builds the sample plugins (those of the embedded `wasmgate.toml`, and [`TEST_ONLY_PLUGINS`])
/// once per test run (into `plugins/target`, never cargo's own target directory, so this cannot
/// wait on the build lock of the `cargo test` that runs us).
pub fn sample_plugins_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let config = Config::embedded(&repo_root()).expect("the embedded wasmgate.toml is valid");
        let mut crates = config.plugin_crates();
        crates.extend(
            TEST_ONLY_PLUGINS
                .iter()
                .map(|name| (name.to_string(), repo_root().join("plugins").join(name))),
        );
        wasmgate::builder::build_plugins(&repo_root(), &crates, false)
            .expect("building the sample plugins");
    });
}

/// Polls `cond` every 10 ms until it holds or `within` passes; whether it held.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// As [`eventually`], for a condition that can fail: the first error ends the wait and is returned
/// (a wrong answer while waiting for the right one is a failure, not a reason to keep polling).
pub fn try_eventually(
    within: Duration,
    mut cond: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if cond()? {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Tests that flood the machine with connections (storms, a thousand tricklers, 100,000 traps) and
/// tests that must see every request succeed under load (hot reload, the balancer, fairness) take
/// this lock, so the former never run beside the latter.
pub fn exclusive_network() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (tests that hold a thousand
/// connections in-process need more than the usual 1024); returns the new soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    sys::raise_nofile_to_hard_limit()
}

/// The value of one sample line (`name{labels}` exactly as exposed) of a Prometheus text
/// exposition.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The `hash` label of `wasmgate_plugin_info{plugin="PLUGIN",hash="..."}`: which version of a
/// plugin serves, as an operator compares it with `sha256sum`.
pub fn plugin_hash(text: &str, plugin: &str) -> Option<String> {
    let prefix = format!("wasmgate_plugin_info{{plugin=\"{plugin}\",hash=\"");
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(&prefix)?;
        Some(rest[..rest.find('"')?].to_string())
    })
}
