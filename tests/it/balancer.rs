//! Three wasmgate processes behind a real nginx on loopback, under continuous load: restart each
//! process in turn, then roll a new plugin version across all three with
//! `deploy/rolling-update.sh`. Zero failed requests in both runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, ensure};

use crate::support::{
    ChildOptions, ChildServer, Samples, Site, eventually, finish_load, get, repo_root,
    versioned_guest, versioned_load,
};

fn nginx_binary() -> anyhow::Result<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context(
            "nginx is not installed: run `apt-get install -y nginx` (./test.sh and .ci/run do)",
        )
}

/// A loopback port nothing listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    /// Starts nginx with `deploy/nginx.conf`'s proxy settings, pointed at `upstreams`.
    fn start(dir: &Path, upstreams: &[u16]) -> anyhow::Result<Nginx> {
        let port = free_port()?;
        let servers: String = upstreams
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p} max_fails=0;\n"))
            .collect();
        let shipped = std::fs::read_to_string(repo_root().join("deploy/nginx.conf"))?;
        let conf = shipped
            .replace(
                "        server 127.0.0.1:8081 max_fails=0;\n        server 127.0.0.1:8082 max_fails=0;\n        server 127.0.0.1:8083 max_fails=0;\n",
                &servers,
            )
            .replace("listen 127.0.0.1:8080;", &format!("listen 127.0.0.1:{port};"))
            .replace("/tmp/wasmgate-nginx", &dir.to_string_lossy());
        ensure!(
            conf.contains(&format!("127.0.0.1:{}", upstreams[0])),
            "deploy/nginx.conf layout changed"
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let child = Command::new(nginx_binary()?)
            .arg("-p")
            .arg(dir)
            .args(["-c", "nginx.conf", "-e", "error.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nginx")?;
        let nginx = Nginx { child, port };
        ensure!(
            eventually(Duration::from_secs(10), || std::net::TcpStream::connect(
                nginx.addr()
            )
            .is_ok()),
            "nginx listening"
        );
        Ok(nginx)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Nginx {
    /// SIGTERM is nginx's fast shutdown: the master stops its workers, then exits. SIGKILL would
    /// take only the master and leave the workers behind, still holding the port.
    fn drop(&mut self) {
        let _ = crate::support::signal(self.child.id(), libc::SIGTERM);
        let stopped = eventually(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Instance {
    dir: PathBuf,
    port: u16,
    server: Option<ChildServer>,
}

impl Instance {
    fn start(&mut self) -> anyhow::Result<()> {
        let config = self
            .dir
            .join("wasmgate.toml")
            .to_string_lossy()
            .into_owned();
        let listen = format!("127.0.0.1:{}", self.port);
        self.server = Some(ChildServer::start(ChildOptions::new(&[
            "serve", "--config", &config, "--listen", &listen,
        ]))?);
        Ok(())
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let server = self.server.take().context("the instance is running")?;
        server.signal(libc::SIGTERM)?;
        let exited = server.wait(Duration::from_secs(15))?;
        assert_eq!(exited.code, Some(0), "{}", exited.stderr);
        Ok(())
    }
}

/// Joins the load, prints its latencies, and returns how many requests it made: all succeeded, or
/// the first failure is the error.
fn report(what: &str, clients: Vec<JoinHandle<anyhow::Result<Samples>>>) -> anyhow::Result<usize> {
    let mut samples: Vec<Duration> = finish_load(clients)?.into_iter().map(|s| s.1).collect();
    ensure!(!samples.is_empty(), "{what}: no request was made");
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "balancer: {what}: {} requests, 0 failed, p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    Ok(samples.len())
}

#[test]
fn nginx_in_front_of_three_processes_loses_nothing_through_restarts_and_a_plugin_roll()
-> anyhow::Result<()> {
    let _calm = crate::support::exclusive_network();
    let root = Site::new("balancer")?;
    let mut instances = Vec::new();
    for i in 0..3 {
        let dir = root.path(&format!("instance{i}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("v.wat"), versioned_guest(1))?;
        std::fs::write(
            dir.join("wasmgate.toml"),
            "[server]\nwatch = true\nwatch_debounce = \"50ms\"\n[timeouts]\nshutdown_grace = \"2s\"\nlinger = \"200ms\"\n\
             [plugins.v]\nwasm = \"v.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/v\"\nplugin = \"v\"\n",
        )?;
        instances.push(Instance {
            dir,
            port: free_port()?,
            server: None,
        });
    }
    for instance in &mut instances {
        instance.start()?;
    }
    let nginx_dir = root.path("nginx");
    std::fs::create_dir_all(&nginx_dir)?;
    let nginx = Nginx::start(
        &nginx_dir,
        &instances.iter().map(|i| i.port).collect::<Vec<_>>(),
    )?;
    let through_nginx = nginx.addr();
    assert_eq!(get(through_nginx, "/v")?.status, 200);

    // 1. Restart each process in turn under load.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(through_nginx, 4, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    for instance in &mut instances {
        instance.stop()?;
        std::thread::sleep(Duration::from_millis(200));
        instance.start()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let restarted = report("rolling restart of 3 processes", clients)?;

    // 2. Roll plugin version 2 across all three with the committed script.
    let module = root.path("v2.wat");
    std::fs::write(&module, versioned_guest(2))?;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(through_nginx, 4, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let targets: Vec<String> = instances
        .iter()
        .map(|i| format!("{}@127.0.0.1:{}", i.dir.join("v.wat").display(), i.port))
        .collect();
    let out = Command::new(repo_root().join("deploy/rolling-update.sh"))
        .arg("v")
        .arg(&module)
        .args(&targets)
        .output()
        .context("running deploy/rolling-update.sh")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("serves v").count(), 3, "{stdout}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let rolled = report("plugin roll v1 -> v2 across 3 processes", clients)?;
    for instance in &instances {
        let resp = get(SocketAddr::from(([127, 0, 0, 1], instance.port)), "/v")?;
        assert_eq!(resp.header("x-version"), Some("2"));
    }
    assert!(
        restarted > 100 && rolled > 100,
        "load really ran ({restarted}, {rolled})"
    );
    drop(nginx);
    drop(instances);
    Ok(())
}
