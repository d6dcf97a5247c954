//! The one way to start a server: [`Server::start`], used by the `wasmgate` binary and by every
//! integration test, and the [`Running`] handle it returns.
//!
//! Owns the wiring of a process: listener, wasm runtime, loader, admission guards, registry,
//! metrics, connection context, the first plugin load, the reload task, and (when asked) the OS
//! signals. The server listens and answers probes at once; plugins load off the request path
//! (`/ready` says `loading` until they have). It must not contain request logic: every component
//! it wires owns its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::guard::Guards;
use crate::kv::{self, Stores};
use crate::logsummary::LogSummary;
use crate::metrics::{Metrics, Sources};
use crate::native::{Probe, Readiness};
use crate::outbound::Outbound;
use crate::reload::{History, Loader, ReloadError, Report, Services};
use crate::runtime::{Runtime, RuntimeError};
use crate::server::shutdown::{self, Trigger};
use crate::server::{self, AcceptLimits, ConnLimits, Context, Summary};
use crate::watch::{self, Reloads};

/// How often every store's health is checked, so `/ready` follows it without traffic, and its
/// expired entries swept (docs/decisions/0005).
const STORE_UPKEEP_EVERY: Duration = Duration::from_secs(2);

/// Why the server cannot start at all.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listening socket could not be opened (address in use, no permission, ...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The wasm engine could not be set up.
    #[error("cannot start the wasm runtime: {0}")]
    Runtime(#[from] RuntimeError),
    /// A key-value store is configured in a way no retry can fix (an invalid Redis URL).
    #[error("cannot open a store: {0}")]
    Store(String),
    /// The outbound HTTP settings cannot be used (an unreadable `ca_file`).
    #[error("cannot set up outbound HTTP: {0}")]
    Outbound(String),
}

/// Starts servers. See [`Server::start`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds `config.server.listen`, starts serving at once, and loads the configured plugins in
    /// the background. Must be called inside a multi-threaded tokio runtime with I/O and time
    /// enabled. Nothing here handles OS signals: see [`Running::handle_os_signals`].
    pub async fn start(config: Config) -> Result<Running, StartError> {
        let addr = config.server.listen;
        let listener = server::bind(addr, config.server.reuse_port)
            .map_err(|source| StartError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let Parts {
            ctx,
            loader,
            metrics,
            probe,
            log,
        } = Parts::new(&config)?;
        let (trigger, signal) = shutdown::channel();
        let accept = tokio::spawn(server::run(
            listener,
            ctx,
            AcceptLimits {
                max_connections: config.server.max_connections,
                backoff_max: config.timeouts.accept_backoff_max,
                shutdown_grace: config.timeouts.shutdown_grace,
            },
            signal.clone(),
        ));
        let reloads = watch::spawn(loader.clone(), config.server.watch, signal.clone());
        let mut stopping = signal.clone();
        tokio::spawn(async move { log.run(async move { stopping.triggered().await }).await });
        let mut stopping = signal.clone();
        // The stores of the routing being served: a reload adds and removes stores.
        let serving = loader.clone();
        kv::upkeep(
            move || serving.current().services.stores.clone(),
            STORE_UPKEEP_EVERY,
            async move { stopping.triggered().await },
        );
        let first_load = {
            let loader = loader.clone();
            tokio::spawn(async move {
                let report = loader.load_all().await;
                if let Err(err) = &report {
                    tracing::error!(error = %err, "loading plugins failed");
                }
                report.ok()
            })
        };
        tracing::info!(addr = %local_addr, "listening");
        Ok(Running {
            addr: local_addr,
            trigger,
            accept,
            first_load: tokio::sync::Mutex::new(Some(first_load)),
            loader,
            metrics,
            probe,
            reloads,
            drain_delay: config.server.drain_delay,
        })
    }
}

/// The components of a server, wired: everything but the listener and the tasks.
pub(crate) struct Parts {
    /// What connections get.
    pub(crate) ctx: Arc<Context>,
    pub(crate) loader: Arc<Loader>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) probe: Arc<Probe>,
    /// Repeated warnings' counts, shared by the warning sites; its task logs the summaries.
    pub(crate) log: Arc<LogSummary>,
}

impl Parts {
    pub(crate) fn new(config: &Config) -> Result<Parts, StartError> {
        let runtime = Runtime::with_module_cache(&config.runtime, config.module_cache.as_deref())?;
        let registry = Arc::new(server::registry::Registry::default());
        let guards = Arc::new(Guards::default());
        let history = Arc::new(History::default());
        let metrics = Arc::new(Metrics::new(Sources {
            connections: Box::new({
                let registry = registry.clone();
                move || registry.state_counts()
            }),
            guards: Box::new({
                let guards = guards.clone();
                move || guards.readings()
            }),
            loads: Box::new({
                let history = history.clone();
                move || history.reading()
            }),
        }));
        let log = Arc::new(LogSummary::new(config.server.log_repeat_interval));
        let stores = Arc::new(
            Stores::open(&config.stores, &metrics, &log)
                .map_err(|e| StartError::Store(e.to_string()))?,
        );
        let probe = Arc::new(Probe::new(&stores));
        let outbound = Arc::new(
            Outbound::new(&config.outbound, metrics.clone())
                .map_err(|e| StartError::Outbound(e.to_string()))?,
        );
        let services = Services { stores, outbound };
        let loader = Arc::new(Loader::new(
            runtime,
            config.clone(),
            services,
            history,
            probe.clone(),
            metrics.clone(),
            log.clone(),
        ));
        let ctx = Arc::new(Context {
            limits: ConnLimits {
                http: config.http,
                timeouts: config.timeouts,
                max_requests_per_connection: config.server.max_requests_per_connection,
            },
            registry,
            metrics: metrics.clone(),
            dispatcher: Dispatcher {
                routing: loader.cell(),
                guards,
                metrics: metrics.clone(),
                probe: probe.clone(),
                trusted_proxies: config.server.trusted_proxies.clone(),
                log: log.clone(),
            },
            request_id_header: config.server.request_id_header.clone(),
        });
        Ok(Parts {
            ctx,
            loader,
            metrics,
            probe,
            log,
        })
    }
}

/// A started server: its address, its shutdown, its reloads, and its end.
pub struct Running {
    addr: SocketAddr,
    trigger: Trigger,
    accept: JoinHandle<Summary>,
    /// The first plugin load, until someone awaits it.
    first_load: tokio::sync::Mutex<Option<JoinHandle<Option<Report>>>>,
    loader: Arc<Loader>,
    metrics: Arc<Metrics>,
    probe: Arc<Probe>,
    reloads: Reloads,
    drain_delay: Duration,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The address the server listens on (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the server (gracefully: stop accepting, drain, force after the grace
    /// period) from anywhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            trigger: self.trigger.clone(),
            probe: self.probe.clone(),
        }
    }

    /// Waits for the first plugin load and returns its report (`None` if it failed outright, or
    /// if it was already awaited).
    pub async fn plugins_loaded(&self) -> Option<Report> {
        let first = self.first_load.lock().await.take();
        match first {
            Some(load) => load.await.ok().flatten(),
            None => {
                self.probe.first_load_done().await;
                None
            }
        }
    }

    /// Reloads the config file and the plugins now (what SIGHUP does) and reports what changed.
    pub async fn reload(&self) -> Result<Report, ReloadError> {
        self.loader.reload().await
    }

    /// What `/ready` reports now.
    pub fn readiness(&self) -> Readiness {
        self.probe.readiness()
    }

    /// The Prometheus text exposition `/metrics` serves.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Makes the process answer its OS signals as the binary does: SIGHUP reloads; the first
    /// SIGTERM or SIGINT turns `/ready` to 503, keeps serving for `drain_delay` (a second signal
    /// cuts it short), then stops the server gracefully. Errors only if a handler cannot be
    /// installed. Tests that run servers inside the test process do not call this: signals are
    /// per process.
    pub fn handle_os_signals(&self) -> std::io::Result<()> {
        self.reloads.on_sighup()?;
        let probe = self.probe.clone();
        let stop = shutdown::on_os_signals(self.trigger.clone(), self.drain_delay, move || {
            probe.draining()
        })?;
        tokio::spawn(stop);
        Ok(())
    }

    /// Waits until the server has stopped (after a shutdown) and returns what it did.
    pub async fn stopped(self) -> Summary {
        match self.accept.await {
            Ok(summary) => summary,
            // The accept loop never panics; if it did, the panic is the error to report.
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(self) -> Summary {
        self.shutdown_handle().shutdown();
        self.stopped().await
    }
}

/// Stops a server from anywhere: see [`Running::shutdown_handle`].
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    trigger: Trigger,
    probe: Arc<Probe>,
}

impl ShutdownHandle {
    /// Begins a graceful shutdown: `/ready` turns 503, accepting stops, in-flight requests finish
    /// (their answers carry `Connection: close`), the rest are closed after `shutdown_grace`.
    /// Idempotent.
    pub fn shutdown(&self) {
        self.probe.draining();
        self.trigger.trigger();
    }
}
