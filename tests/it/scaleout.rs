//! Running several processes: readiness separate from liveness, the drain delay, SO_REUSEPORT.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmgate::app::{App, Readiness};
use wasmgate::config::Config;

use crate::support::{ChildServer, eventually, exchange, repo_root};

const GET_READY: &[u8] = b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

/// A config file in a temporary directory (paths in it resolve against the repository).
fn config_file(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmgate-scaleout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let root = repo_root();
    let body = body.replace("{root}", root.to_str().unwrap());
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn readiness_is_loading_then_ready_then_draining_while_liveness_stays_ok() {
    let text = "[plugins.ok]\nwasm = \"tests/guests/ok.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/ok\"\nplugin = \"ok\"\n";
    let config = Config::parse(text, std::path::Path::new("t.toml"), &repo_root()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = Arc::new(App::starting(config).unwrap());
    assert_eq!(app.readiness(), Readiness::Loading);
    let answer = |route| wasmgate::native::answer(route, &app).status;
    use wasmgate::routes::NativeRoute::{Health, Ready};
    assert_eq!(
        (answer(Ready), answer(Health)),
        (503, 200),
        "alive but not ready while loading"
    );
    assert!(
        app.routing().plugins.is_empty(),
        "plugin routes answer 503 until loaded"
    );
    rt.block_on(app.load_plugins()).unwrap();
    assert_eq!(app.readiness(), Readiness::Ready);
    assert_eq!(answer(Ready), 200);
    app.begin_draining();
    assert_eq!(
        (answer(Ready), answer(Health)),
        (503, 200),
        "draining: not ready, still alive"
    );
}

#[test]
fn sigterm_turns_ready_off_first_and_stops_accepting_after_the_drain_delay() {
    let path = config_file(
        "drain.toml",
        "[server]\ndrain_delay = \"700ms\"\n[timeouts]\nshutdown_grace = \"500ms\"\n",
    );
    let server = ChildServer::spawn(
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        None,
        true,
    );
    let addr = server.addr();
    assert_eq!(exchange(addr, GET_READY).status, 200);
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    assert!(
        eventually(Duration::from_millis(300), || exchange(addr, GET_READY)
            .status
            == 503),
        "not ready at once"
    );
    let resp = exchange(addr, GET_READY);
    assert_eq!(resp.json()["status"], "draining");
    assert_eq!(
        exchange(addr, GET_HEALTH).status,
        200,
        "new connections are still served during the delay"
    );
    assert!(signalled.elapsed() < Duration::from_millis(700));
    assert!(
        eventually(Duration::from_secs(3), || std::net::TcpStream::connect(
            addr
        )
        .is_err()),
        "then stops accepting"
    );
    assert!(
        signalled.elapsed() >= Duration::from_millis(650),
        "not before the delay"
    );
    let (code, stderr) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn reuse_port_lets_processes_share_an_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let shared = config_file("shared.toml", "[server]\nreuse_port = true\n");
    let alone = config_file("alone.toml", "");
    let serve_shared = || {
        ChildServer::spawn(
            &[
                "serve",
                "--config",
                shared.to_str().unwrap(),
                "--listen",
                &listen,
            ],
            None,
            true,
        )
    };
    let (a, b) = (serve_shared(), serve_shared());
    assert_eq!(a.addr(), b.addr());
    for _ in 0..20 {
        assert_eq!(exchange(a.addr(), GET_HEALTH).status, 200);
    }
    // Without reuse_port the address is taken.
    let c = ChildServer::spawn(
        &[
            "serve",
            "--config",
            alone.to_str().unwrap(),
            "--listen",
            &listen,
        ],
        None,
        false,
    );
    let (code, stderr) = c.wait(Duration::from_secs(10));
    assert_eq!(code, Some(1), "{stderr}");
    // One process goes away; the other keeps the address served.
    a.signal(libc::SIGTERM);
    assert_eq!(a.wait(Duration::from_secs(10)).0, Some(0));
    for _ in 0..20 {
        assert_eq!(exchange(b.addr(), GET_HEALTH).status, 200);
    }
}
