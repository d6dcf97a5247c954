//! The shared state of a running server: settings, the live routing, the runtime, metrics and the
//! connection registry.
//!
//! Owns what every connection task reads. The route table and the loaded plugins travel together in
//! one [`Routing`] value behind one pointer, so a request takes one consistent snapshot of both and
//! a reload replaces both in a single step: requests already running finish on the snapshot they
//! took, every request that starts after the swap sees the new one, none sees a mix. Settings fixed
//! at start (listener, timeouts, HTTP limits, engine) are read from the [`Config`] given at start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::config::{Config, ConfigError, ServerSettings};
use crate::metrics::Metrics;
use crate::reload::{self, History, Report};
use crate::routes::RouteTable;
use crate::runtime::{Plugin, Runtime, RuntimeError};
use crate::server::registry::Registry;

/// The config, the routes built from it and the plugins they point at, as one snapshot.
#[derive(Debug)]
pub struct Routing {
    /// The configuration this routing was built from (what a reload compares against).
    pub config: Config,
    pub routes: RouteTable,
    /// Loaded plugins by name. A configured plugin that never loaded is absent: its routes answer
    /// 503 until it loads.
    pub plugins: HashMap<String, Plugin>,
}

/// Everything shared by the server's tasks.
pub struct App {
    config: Config,
    routing: RwLock<Arc<Routing>>,
    /// One reload at a time: SIGHUP and file events may race.
    reloading: tokio::sync::Mutex<()>,
    pub runtime: Runtime,
    pub metrics: Metrics,
    pub registry: Arc<Registry>,
    /// Every plugin's load history, for `/metrics`.
    pub history: Arc<History>,
    /// Every plugin's concurrency cap, queue and circuit breaker (kept across reloads).
    pub guards: Arc<crate::guard::Guards>,
    /// When the server started, for `/health`'s uptime.
    pub started: Instant,
    /// A [`Readiness`], for `/ready`.
    readiness: AtomicU8,
}

/// What `/ready` reports: whether a load balancer should send traffic here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Readiness {
    /// Plugins are still loading (their routes answer 503).
    Loading = 0,
    Ready = 1,
    /// Shutdown has begun: finish what is in flight, take nothing new.
    Draining = 2,
}

impl Readiness {
    pub fn label(self) -> &'static str {
        match self {
            Readiness::Loading => "loading",
            Readiness::Ready => "ready",
            Readiness::Draining => "draining",
        }
    }
}

/// Why the server cannot start at all.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the wasm runtime: {0}")]
    Runtime(#[from] RuntimeError),
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config file is invalid: refused whole, the running config stays.
    #[error("config refused, keeping the running one: {0}")]
    Config(#[from] ConfigError),
    #[error("reload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl App {
    /// Builds the runtime and loads every configured plugin, blocking while compiling: ready when
    /// it returns. A plugin that fails to load is logged and left out (its routes answer 503).
    pub fn new(config: Config) -> Result<App, StartError> {
        let app = App::starting(config)?;
        let (routing, _) = reload::build(&app.runtime, &app.config, None, &app.history);
        app.swap(routing);
        app.set_readiness(Readiness::Ready);
        Ok(app)
    }

    /// Builds the runtime and the configured routes with no plugin loaded yet (their routes
    /// answer 503, `/ready` says `loading`), so the server can listen and answer probes at once;
    /// [`App::load_plugins`] then loads them off the request path.
    pub fn starting(config: Config) -> Result<App, StartError> {
        let runtime = Runtime::with_module_cache(&config.runtime, config.module_cache.as_deref())?;
        let registry = Arc::new(Registry::default());
        let history = Arc::new(History::default());
        let mut metrics = Metrics::new();
        metrics.register_collector(Box::new(registry.clone()));
        metrics.register_collector(Box::new(history.clone()));
        let guards = Arc::new(crate::guard::Guards::default());
        metrics.register_collector(Box::new(guards.clone()));
        let routing = Routing {
            routes: RouteTable::from_config(&config.routes, &config.plugins)
                .expect("a validated Config always builds its route table"),
            plugins: HashMap::new(),
            config: config.clone(),
        };
        Ok(App {
            routing: RwLock::new(Arc::new(routing)),
            reloading: tokio::sync::Mutex::new(()),
            runtime,
            metrics,
            registry,
            history,
            guards,
            started: Instant::now(),
            readiness: AtomicU8::new(Readiness::Loading as u8),
            config,
        })
    }

    /// Loads every configured plugin on a blocking thread, swaps them in, and becomes ready
    /// (unless shutdown began meanwhile).
    pub async fn load_plugins(self: &Arc<Self>) -> Result<Report, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let app = self.clone();
        let (routing, report) = tokio::task::spawn_blocking(move || {
            let config = app.routing().config.clone();
            reload::build(&app.runtime, &config, None, &app.history)
        })
        .await?;
        self.swap(routing);
        let _ = self.readiness.compare_exchange(
            Readiness::Loading as u8,
            Readiness::Ready as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        tracing::info!(
            loaded = report.loaded.len(),
            refused = report.refused.len(),
            "plugins loaded; ready"
        );
        Ok(report)
    }

    /// What `/ready` reports.
    pub fn readiness(&self) -> Readiness {
        match self.readiness.load(Ordering::Acquire) {
            0 => Readiness::Loading,
            1 => Readiness::Ready,
            _ => Readiness::Draining,
        }
    }

    /// Marks the server not ready because shutdown began: `/ready` answers 503 from now on.
    pub fn begin_draining(&self) {
        self.set_readiness(Readiness::Draining);
    }

    fn set_readiness(&self, readiness: Readiness) {
        self.readiness.store(readiness as u8, Ordering::Release);
    }

    fn swap(&self, routing: Routing) {
        *self.routing.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(routing);
    }

    /// The settings fixed at start.
    pub fn settings(&self) -> &Config {
        &self.config
    }

    /// The current routes and plugins: one consistent snapshot for one request.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the config file (when the server runs from one) and every plugin file, compiles
    /// what changed off the request path, and swaps the result in at once. An invalid config is
    /// refused whole; a plugin that fails keeps its previous version.
    pub async fn reload(self: &Arc<Self>) -> Result<Report, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.routing();
        let config = match current.config.file() {
            Some(path) => match Config::from_file(path) {
                Ok(config) => {
                    self.history.config_reload(true);
                    config
                }
                Err(err) => {
                    self.history.config_reload(false);
                    tracing::error!(error = %err, "config reload refused; the running config stays");
                    return Err(err.into());
                }
            },
            None => current.config.clone(),
        };
        self.warn_about_restart_only_changes(&config);
        let app = self.clone();
        let (routing, report) = tokio::task::spawn_blocking(move || {
            reload::build(&app.runtime, &config, Some(&current), &app.history)
        })
        .await?;
        self.swap(routing);
        tracing::info!(loaded = ?report.loaded, refused = report.refused.len(), unchanged = report.unchanged.len(), "reload done");
        Ok(report)
    }

    /// Listener, timeouts, HTTP limits and engine settings are fixed for the process's life.
    fn warn_about_restart_only_changes(&self, new: &Config) {
        let old = &self.config;
        for (section, changed) in [
            // `--listen` and `--watch` override the file: a difference there is not a change.
            (
                "server",
                old.server
                    != ServerSettings {
                        listen: old.server.listen,
                        watch: old.server.watch,
                        ..new.server
                    },
            ),
            ("timeouts", old.timeouts != new.timeouts),
            ("http", old.http != new.http),
            (
                "runtime",
                old.runtime != new.runtime || old.module_cache != new.module_cache,
            ),
        ] {
            if changed {
                tracing::warn!(
                    section,
                    "changes to this section take effect at the next restart"
                );
            }
        }
    }
}
