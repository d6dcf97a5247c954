//! Three wasmgate processes behind a real nginx on loopback, under continuous load: restart each
//! process in turn, then roll a new plugin version across all three with
//! `deploy/rolling-update.sh`. Zero failed requests in both runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::{
    ChildServer, Samples, eventually, exchange, repo_root, versioned_guest, versioned_load,
};

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is not installed: run `apt-get install -y nginx` (./test.sh and .ci/run do)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    /// Starts nginx with `deploy/nginx.conf`'s proxy settings, pointed at `upstreams`.
    fn start(dir: &Path, upstreams: &[u16]) -> Nginx {
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p} max_fails=0;\n"))
            .collect();
        let shipped = std::fs::read_to_string(repo_root().join("deploy/nginx.conf")).unwrap();
        let conf = shipped
            .replace(
                "        server 127.0.0.1:8081 max_fails=0;\n        server 127.0.0.1:8082 max_fails=0;\n        server 127.0.0.1:8083 max_fails=0;\n",
                &servers,
            )
            .replace("listen 127.0.0.1:8080;", &format!("listen 127.0.0.1:{port};"))
            .replace("/tmp/wasmgate-nginx", dir.to_str().unwrap());
        assert!(
            conf.contains(&format!("127.0.0.1:{}", upstreams[0])),
            "deploy/nginx.conf layout changed"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx_binary())
            .args([
                "-p",
                dir.to_str().unwrap(),
                "-c",
                "nginx.conf",
                "-e",
                "error.log",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(
            eventually(Duration::from_secs(10), || std::net::TcpStream::connect(
                addr
            )
            .is_ok()),
            "nginx listening"
        );
        Nginx { child, port }
    }
}

impl Drop for Nginx {
    /// SIGTERM is nginx's fast shutdown: the master stops its workers, then exits. SIGKILL would
    /// take only the master and leave the workers behind, still holding the port.
    fn drop(&mut self) {
        crate::support::signal_pid(self.child.id(), libc::SIGTERM);
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
    fn start(&mut self) {
        let config = self.dir.join("wasmgate.toml");
        let listen = format!("127.0.0.1:{}", self.port);
        self.server = Some(ChildServer::spawn(
            &[
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &listen,
            ],
            None,
            true,
        ));
    }

    fn stop(&mut self) {
        let server = self.server.take().unwrap();
        server.signal(libc::SIGTERM);
        let (code, stderr) = server.wait(Duration::from_secs(15));
        assert_eq!(code, Some(0), "{stderr}");
    }
}

fn report(what: &str, clients: Vec<std::thread::JoinHandle<Samples>>) -> usize {
    let mut samples: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("a request failed"))
        .map(|s| s.1)
        .collect();
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "balancer: {what}: {} requests, 0 failed, p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    samples.len()
}

#[test]
fn nginx_in_front_of_three_processes_loses_nothing_through_restarts_and_a_plugin_roll() {
    let _calm = crate::support::exclusive_network();
    let root = std::env::temp_dir().join(format!("wasmgate-balancer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut instances: Vec<Instance> = (0..3)
        .map(|i| {
            let dir = root.join(format!("instance{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("v.wat"), versioned_guest(1)).unwrap();
            std::fs::write(
                dir.join("wasmgate.toml"),
                "[server]\nwatch = true\nwatch_debounce = \"50ms\"\n[timeouts]\nshutdown_grace = \"2s\"\nlinger = \"200ms\"\n\
                 [plugins.v]\nwasm = \"v.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/v\"\nplugin = \"v\"\n",
            )
            .unwrap();
            Instance { dir, port: free_port(), server: None }
        })
        .collect();
    for instance in &mut instances {
        instance.start();
    }
    let nginx_dir = root.join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let nginx = Nginx::start(
        &nginx_dir,
        &instances.iter().map(|i| i.port).collect::<Vec<_>>(),
    );
    let through_nginx: std::net::SocketAddr = format!("127.0.0.1:{}", nginx.port).parse().unwrap();
    assert_eq!(
        exchange(through_nginx, b"GET /v HTTP/1.1\r\nHost: x\r\n\r\n").status,
        200
    );

    // 1. Restart each process in turn under load.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = versioned_load(through_nginx, 4, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    for instance in &mut instances {
        instance.stop();
        std::thread::sleep(Duration::from_millis(200));
        instance.start();
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let restarted = report("rolling restart of 3 processes", clients);

    // 2. Roll plugin version 2 across all three with the committed script.
    let module = root.join("v2.wat");
    std::fs::write(&module, versioned_guest(2)).unwrap();
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
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("serves v").count(), 3, "{stdout}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let rolled = report("plugin roll v1 -> v2 across 3 processes", clients);
    for instance in &instances {
        let resp = exchange(
            format!("127.0.0.1:{}", instance.port).parse().unwrap(),
            b"GET /v HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(resp.header("x-version"), Some("2"));
    }
    assert!(
        restarted > 100 && rolled > 100,
        "load really ran ({restarted}, {rolled})"
    );
    drop(nginx);
    drop(instances);
    let _ = std::fs::remove_dir_all(&root);
}
