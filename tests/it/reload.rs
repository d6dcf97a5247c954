//! Hot reload under load: plugin swaps, broken modules, config changes. Files live in a temporary
//! directory watched by the server, and are written the way editors and builds write them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{
    TestServer, eventually, exchange, version_of, versioned_guest, versioned_load,
};

/// A temporary directory with a config file, removed on drop.
struct Site {
    dir: PathBuf,
}

impl Site {
    fn new(name: &str) -> Site {
        let dir =
            std::env::temp_dir().join(format!("wasmgate-reload-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Site { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` the way editors and builds do: a temporary file renamed into place.
    fn replace(&self, name: &str, contents: &[u8]) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    /// Writes `name` in place, in two halves with a pause between: a slow writer.
    fn write_slowly(&self, name: &str, contents: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path(name)).unwrap();
        let half = contents.len() / 2;
        f.write_all(&contents[..half]).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        f.write_all(&contents[half..]).unwrap();
    }

    fn config(&self, extra: &str) -> String {
        format!(
            "[server]\nwatch = true\nwatch_debounce = \"50ms\"\n[runtime]\ncache_dir = \"cache\"\n\
             [plugins.v]\nwasm = \"v.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/v\"\nplugin = \"v\"\n{extra}"
        )
    }

    fn start(&self, extra: &str) -> TestServer {
        self.replace("wasmgate.toml", self.config(extra).as_bytes());
        let config = wasmgate::config::Config::from_file(&self.path("wasmgate.toml")).unwrap();
        TestServer::start_config(config)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn current_version(addr: std::net::SocketAddr) -> u8 {
    version_of(&exchange(addr, b"GET /v HTTP/1.1\r\nHost: x\r\n\r\n"))
}

#[test]
fn swapping_a_plugin_under_load_loses_nothing() {
    let _calm = crate::support::exclusive_network();
    let site = Site::new("swap");
    site.replace("v.wat", versioned_guest(1).as_bytes());
    let server = site.start("");
    assert_eq!(current_version(server.addr), 1);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(server.addr, 4, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let swaps_began = Instant::now();
    let mut latencies = Vec::new();
    for swap in 0..24u8 {
        let version = 2 - swap % 2; // 2, 1, 2, 1, ...
        let written = Instant::now();
        if swap % 3 == 2 {
            site.write_slowly("v.wat", versioned_guest(version).as_bytes());
        } else {
            site.replace("v.wat", versioned_guest(version).as_bytes());
        }
        assert!(
            eventually(Duration::from_secs(1), || current_version(server.addr)
                == version),
            "swap {swap}: new requests see version {version} within a second\n{}",
            crate::support::logs()
        );
        latencies.push(written.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let samples: Vec<(Instant, Duration)> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("no failed request"))
        .collect();
    let (mut before, mut during): (Vec<_>, Vec<_>) =
        samples.iter().partition(|(at, _)| *at < swaps_began);
    let p = |v: &mut Vec<&(Instant, Duration)>, q: f64| {
        v.sort_by_key(|s| s.1);
        v[((v.len() as f64 * q) as usize).min(v.len() - 1)].1
    };
    latencies.sort();
    println!(
        "reload: 24 swaps under load, {} requests, all 200 and whole; file written -> first request on the new version: \
         median {:?}, max {:?}; request latency p50/p99 before swapping {:?}/{:?}, during swaps {:?}/{:?}",
        samples.len(),
        latencies[latencies.len() / 2],
        latencies.last().unwrap(),
        p(&mut before, 0.5),
        p(&mut before, 0.99),
        p(&mut during, 0.5),
        p(&mut during, 0.99),
    );
    assert!(during.len() > 24);
    let (ok, _) = server.app.history.reload_counts("v");
    assert!(ok >= 24, "{ok} reloads");
}

#[test]
fn a_broken_module_never_takes_the_route_down_and_a_fix_brings_the_new_version() {
    let _calm = crate::support::exclusive_network();
    let site = Site::new("broken");
    site.replace("v.wat", versioned_guest(1).as_bytes());
    let server = site.start("");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(server.addr, 2, stop.clone());
    let refused = || server.app.history.reload_counts("v").1;
    let wrong_abi = versioned_guest(3).replace("(i32.const 1))", "(i32.const 2))");
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
        site.replace("v.wat", &broken);
        assert!(
            eventually(Duration::from_secs(5), || refused() > before),
            "refusal {i} counted"
        );
        assert_eq!(
            current_version(server.addr),
            1,
            "the old version keeps serving"
        );
    }
    assert!(
        server
            .metrics()
            .contains("wasmgate_plugin_last_error_info{plugin=\"v\""),
        "{}",
        server.metrics()
    );
    site.replace("v.wat", versioned_guest(4).as_bytes());
    assert!(eventually(Duration::from_secs(5), || current_version(
        server.addr
    ) == 4));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("no failed request");
    }
}

#[test]
fn config_reload_adds_and_removes_routes_under_load_and_an_invalid_config_changes_nothing() {
    let _calm = crate::support::exclusive_network();
    let site = Site::new("config");
    site.replace("v.wat", versioned_guest(1).as_bytes());
    site.replace("w.wat", versioned_guest(7).as_bytes());
    let server = site.start("");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(server.addr, 2, stop.clone());
    let get_w = || exchange(server.addr, b"GET /w HTTP/1.1\r\nHost: x\r\n\r\n").status;
    assert_eq!(get_w(), 404);

    let extra = "[plugins.w]\nwasm = \"w.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/w\"\nplugin = \"w\"\n";
    site.replace("wasmgate.toml", site.config(extra).as_bytes());
    assert!(
        eventually(Duration::from_secs(5), || get_w() == 200),
        "route added"
    );

    let refused_before = crate::support::metric(
        &server.metrics(),
        r#"wasmgate_config_reloads_total{result="refused"}"#,
    )
    .unwrap();
    site.replace(
        "wasmgate.toml",
        format!(
            "{}[[routes]]\nmethod = \"GET\"\npath = \"/w\"\nplugin = \"nope\"\n",
            site.config(extra)
        )
        .as_bytes(),
    );
    assert!(eventually(Duration::from_secs(5), || {
        crate::support::metric(
            &server.metrics(),
            r#"wasmgate_config_reloads_total{result="refused"}"#,
        )
        .unwrap()
            > refused_before
    }));
    assert_eq!(get_w(), 200, "an invalid config changes nothing");

    site.replace("wasmgate.toml", site.config("").as_bytes());
    assert!(
        eventually(Duration::from_secs(5), || get_w() == 404),
        "route removed"
    );
    stop.store(true, Ordering::Relaxed);
    let served: usize = clients
        .into_iter()
        .map(|c| c.join().expect("no failed request").len())
        .sum();
    assert!(served > 0);
}

#[test]
fn sighup_reloads_without_watching() {
    let site = Site::new("sighup");
    site.replace("v.wat", versioned_guest(1).as_bytes());
    site.replace(
        "wasmgate.toml",
        site.config("")
            .replace("watch = true", "watch = false")
            .as_bytes(),
    );
    let server = crate::support::ChildServer::spawn(
        &[
            "serve",
            "--config",
            site.path("wasmgate.toml").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        None,
        true,
    );
    assert_eq!(current_version(server.addr()), 1);
    site.replace("v.wat", versioned_guest(2).as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        current_version(server.addr()),
        1,
        "not watching: nothing changes by itself"
    );
    server.signal(libc::SIGHUP);
    assert!(eventually(Duration::from_secs(3), || current_version(
        server.addr()
    ) == 2));
    server.signal(libc::SIGTERM);
    let (code, _) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0));
}

#[test]
fn unchanged_plugins_are_not_recompiled_and_restarts_hit_the_module_cache() {
    let site = Site::new("cache");
    site.replace("v.wat", versioned_guest(1).as_bytes());
    let server = site.start("");
    let hash = |s: &TestServer| s.app.routing().plugins["v"].hash().to_string();
    let before = hash(&server);
    // Touch the config (no change to the plugin): the plugin is reused as it was.
    site.replace(
        "wasmgate.toml",
        format!("{}\n# touched\n", site.config("")).as_bytes(),
    );
    assert!(eventually(Duration::from_secs(5), || {
        crate::support::metric(
            &server.metrics(),
            r#"wasmgate_config_reloads_total{result="ok"}"#,
        ) >= Some(1.0)
    }));
    assert_eq!(
        server.app.history.reload_counts("v"),
        (0, 0),
        "not recompiled"
    );
    assert_eq!(hash(&server), before);
    drop(server);
    let entries = walk(&site.path("cache"));
    assert!(entries > 0, "compiled modules are cached on disk");
}

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
