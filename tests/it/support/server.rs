//! Servers inside the test process, started exactly as the binary starts them.
//!
//! Owns [`TestServer`]: `wasmgate_server::Server::start` on a multi-threaded tokio runtime of the
//! server's own, with the config handled as `wasmgate serve --listen 127.0.0.1:0` handles it, and a
//! graceful stop on drop. Tests see what an operator sees (HTTP, `/metrics`, `/ready`, the stop
//! summary), never the server's internals. It must not install OS signal handlers: signals belong to
//! the whole test process (the real CLI, with its signals, is [`super::ChildServer`]).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use wasmgate_server::config::Config;
use wasmgate_server::{Readiness, ReloadError, Report, Running, Server, Summary};

use super::client::{self, RawClient, Response};
use super::{logs, metric, repo_root};

/// How long dropping a server waits for work the runtime cannot cancel (a plugin load blocked in a
/// read) before leaving it behind, so a failed test cannot hang the whole run.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(10);

/// A server running in this process, stopped gracefully on drop.
///
/// The runtime's worker threads run the server; the test thread only blocks on the runtime to start
/// the server, wait for its plugins, and stop it. So a test's own blocking client code never runs on
/// (or stalls) a server thread.
pub struct TestServer {
    addr: SocketAddr,
    /// Both `Some` until the server is stopped (by [`TestServer::stop`] or drop).
    running: Option<Running>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestServer {
    /// Starts a server from config text (relative paths resolve against the repository root) and
    /// waits for its first plugin load.
    pub fn start(toml: &str) -> anyhow::Result<TestServer> {
        let config = Config::parse(toml, Path::new("test.toml"), &repo_root())
            .context("the test's config")?;
        TestServer::start_config(config)
    }

    /// Starts a server from a config file (so it can reload and watch it), as `--config` does, and
    /// waits for its first plugin load.
    pub fn from_file(path: &Path) -> anyhow::Result<TestServer> {
        let config = Config::from_file(path).with_context(|| path.display().to_string())?;
        TestServer::start_config(config)
    }

    /// Starts a server from `config` and waits for its first plugin load, so that the test sees
    /// every plugin that can load loaded (and the others refused).
    pub fn start_config(config: Config) -> anyhow::Result<TestServer> {
        let server = TestServer::launch(config)?;
        server
            .plugins_loaded()
            .context("the first plugin load failed outright")?;
        Ok(server)
    }

    /// Starts a server from `config` without waiting for its plugins: it listens and answers probes
    /// at once while they load (what a test of readiness needs to see).
    pub fn launch(mut config: Config) -> anyhow::Result<TestServer> {
        logs::capture();
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-server")
            .enable_all()
            .build()
            .context("building the server's runtime")?;
        let running = runtime
            .block_on(Server::start(config))
            .context("starting the server")?;
        Ok(TestServer {
            addr: running.local_addr(),
            running: Some(running),
            runtime: Some(runtime),
        })
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("a running server")
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("a running server")
            .block_on(future)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits for the first plugin load: its report, or `None` if it failed outright or was already
    /// awaited.
    pub fn plugins_loaded(&self) -> Option<Report> {
        self.block_on(self.running().plugins_loaded())
    }

    /// Reloads now, as SIGHUP does (`Running::reload`: the config file and every plugin), and
    /// returns what the reload did.
    pub fn reload(&self) -> Result<Report, ReloadError> {
        self.block_on(self.running().reload())
    }

    /// What `/ready` reports now.
    pub fn readiness(&self) -> Readiness {
        self.running().readiness()
    }

    /// Begins a graceful shutdown without waiting for it (what SIGTERM does, minus the drain
    /// delay): `/ready` turns 503, accepting stops, in-flight requests finish.
    pub fn begin_shutdown(&self) {
        self.running().shutdown_handle().shutdown();
    }

    /// Stops gracefully and waits for the drain to finish.
    pub fn stop(mut self) -> Summary {
        let (running, runtime) = (self.running.take(), self.runtime.take());
        let (running, runtime) = running.zip(runtime).expect("a running server");
        let summary = runtime.block_on(running.stop());
        runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
        summary
    }

    /// The `/metrics` text, exactly as `GET /metrics` serves it.
    pub fn metrics(&self) -> String {
        self.running().metrics_text()
    }

    /// One sample (`name{labels}` exactly as exposed) of the current metrics; absent is 0, as a
    /// Prometheus counter that has not been created yet.
    pub fn metric(&self, sample: &str) -> f64 {
        metric(&self.metrics(), sample).unwrap_or(0.0)
    }

    /// The content hash `wasmgate_plugin_info` reports for the serving version of `plugin`.
    pub fn plugin_hash(&self, plugin: &str) -> Option<String> {
        super::plugin_hash(&self.metrics(), plugin)
    }

    pub fn connect(&self) -> io::Result<RawClient> {
        RawClient::connect(self.addr)
    }

    /// `GET target` on a fresh connection.
    pub fn get(&self, target: &str) -> io::Result<Response> {
        client::get(self.addr, target)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let (Some(running), Some(runtime)) = (self.running.take(), self.runtime.take()) {
            runtime.block_on(running.stop());
            runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
        }
    }
}
