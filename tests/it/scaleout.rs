//! Running several processes: readiness separate from liveness, the drain delay, SO_REUSEPORT.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmgate_server::Readiness;
use wasmgate_server::config::Config;

use crate::support::{
    ChildOptions, ChildServer, RawClient, Site, TestServer, eventually, get, make_fifo, repo_root,
    try_eventually,
};

/// A site with the config file `name` (its relative paths resolve against the site).
fn site_with_config(name: &str, body: &str) -> anyhow::Result<Site> {
    let site = Site::new("scaleout")?;
    site.replace(name, body)?;
    Ok(site)
}

/// Sends `GET path` with a `Content-Length: 2` body of which only the first byte arrives: once the
/// server has read the head, a request in flight, until the test sends the second byte.
fn in_flight(server: &TestServer, path: &str) -> anyhow::Result<RawClient> {
    let mut c = server.connect()?;
    c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na").as_bytes())?;
    Ok(c)
}

#[test]
fn readiness_is_loading_then_ready_then_draining_while_liveness_stays_ok() -> anyhow::Result<()> {
    // The plugin's module is a FIFO: the first load blocks reading it until the test writes the
    // module into it, so "loading" lasts exactly as long as the test looks at it.
    let site = Site::new("scaleout-readiness")?;
    let module = site.path("ok.wat");
    make_fifo(&module)?;
    let text = "[plugins.ok]\nwasm = \"ok.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/ok\"\nplugin = \"ok\"\n";
    let config = Config::parse(text, &site.path("t.toml"), site.dir())?;
    let server = TestServer::launch(config)?;

    assert_eq!(server.readiness(), Readiness::Loading);
    let ready = server.get("/ready")?;
    assert_eq!(
        (ready.status, server.get("/health")?.status),
        (503, 200),
        "alive but not ready while loading"
    );
    assert_eq!(ready.json()?["status"], "loading");
    // A request for the plugin while it loads waits for the load instead of failing.
    let mut early = server.connect()?;
    early.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")?;

    // Opening the FIFO for writing waits for the loader's read end; closing it ends the module.
    let wat = std::fs::read(repo_root().join("tests/guests/ok.wat"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&module)?
        .write_all(&wat)?;
    assert_eq!(
        early.response()?.status,
        200,
        "the request sent during the load is answered once the plugin is loaded"
    );
    let report = server.plugins_loaded().context("the first load finished")?;
    assert_eq!(report.loaded, ["ok"], "{report:?}");
    assert_eq!(server.readiness(), Readiness::Ready);
    assert_eq!(server.get("/ready")?.status, 200);
    assert_eq!(server.get("/ok")?.status, 200);

    // Draining: two requests in flight when shutdown begins are still answered, and say that the
    // server is not ready but alive.
    let mut ready = in_flight(&server, "/ready")?;
    let mut health = in_flight(&server, "/health")?;
    let reading_bodies = r#"wasmgate_connections{state="reading_body"}"#;
    assert!(
        eventually(Duration::from_secs(5), || server.metric(reading_bodies)
            == 2.0),
        "{}",
        server.metrics()
    );
    server.begin_shutdown();
    assert_eq!(server.readiness(), Readiness::Draining);
    let (ready, health) = (
        ready.send(b"b")?.response()?,
        health.send(b"b")?.response()?,
    );
    assert_eq!(
        (ready.status, health.status),
        (503, 200),
        "draining: not ready, still alive"
    );
    assert_eq!(ready.json()?["status"], "draining");
    Ok(())
}

/// The wait for a loading plugin is bounded by the plugin's deadline: past it, the request gets
/// the 503 `not_loaded` it would get for a plugin that failed to load.
#[test]
fn a_request_waits_for_a_loading_plugin_no_longer_than_its_deadline() -> anyhow::Result<()> {
    let site = Site::new("scaleout-load-wait")?;
    let module = site.path("ok.wat");
    make_fifo(&module)?;
    let text = "[plugins.ok]\nwasm = \"ok.wat\"\ndeadline = \"300ms\"\n\
                [[routes]]\nmethod = \"GET\"\npath = \"/ok\"\nplugin = \"ok\"\n";
    let config = Config::parse(text, &site.path("t.toml"), site.dir())?;
    let server = TestServer::launch(config)?;
    let asked = Instant::now();
    let plugin = server.get("/ok")?;
    let waited = asked.elapsed();
    assert_eq!(
        (plugin.status, plugin.json()?["error"].as_str()),
        (503, Some("not_loaded")),
        "still loading after the deadline"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "waited {waited:?}, bounded by the 300 ms deadline"
    );
    assert_eq!(server.get("/health")?.status, 200, "never waits");
    // Let the load finish so the server stops cleanly.
    let wat = std::fs::read(repo_root().join("tests/guests/ok.wat"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&module)?
        .write_all(&wat)?;
    server.plugins_loaded().context("the first load finished")?;
    assert_eq!(server.get("/ok")?.status, 200);
    Ok(())
}

#[test]
fn sigterm_turns_ready_off_first_and_stops_accepting_after_the_drain_delay() -> anyhow::Result<()> {
    let site = site_with_config(
        "drain.toml",
        "[server]\ndrain_delay = \"700ms\"\n[timeouts]\nshutdown_grace = \"500ms\"\n",
    )?;
    let server = ChildServer::start(ChildOptions::serve(site.path("drain.toml")))?;
    let addr = server.addr();
    assert_eq!(get(addr, "/ready")?.status, 200);
    let signalled = Instant::now();
    server.signal(libc::SIGTERM)?;
    assert!(
        try_eventually(Duration::from_millis(300), || Ok(get(addr, "/ready")?
            .status
            == 503))?,
        "not ready at once"
    );
    let resp = get(addr, "/ready")?;
    assert_eq!(resp.json()?["status"], "draining");
    assert_eq!(
        get(addr, "/health")?.status,
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
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    Ok(())
}

#[test]
fn reuse_port_lets_processes_share_an_address() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let site = site_with_config("shared.toml", "[server]\nreuse_port = true\n")?;
    site.replace("alone.toml", "")?;
    let serve = |config: &str| {
        let config = site.path(config).to_string_lossy().into_owned();
        ChildOptions::new(&["serve", "--config", &config, "--listen", &listen])
    };
    let (a, b) = (
        ChildServer::start(serve("shared.toml"))?,
        ChildServer::start(serve("shared.toml"))?,
    );
    assert_eq!(a.addr(), b.addr());
    for _ in 0..20 {
        assert_eq!(get(a.addr(), "/health")?.status, 200);
    }
    // Without reuse_port the address is taken.
    let c = ChildServer::start(ChildOptions {
        wait_ready: false,
        ..serve("alone.toml")
    })?;
    let exited = c.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(1), "{}", exited.stderr);
    // One process goes away; the other keeps the address served.
    a.signal(libc::SIGTERM)?;
    assert_eq!(a.wait(Duration::from_secs(10))?.code, Some(0));
    for _ in 0..20 {
        assert_eq!(get(b.addr(), "/health")?.status, 200);
    }
    Ok(())
}
