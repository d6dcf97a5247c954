//! The live routing and everything that changes it: the routing cell requests read, the loader
//! that (re)builds and swaps it, the one-at-a-time reload lock, and the load history.
//!
//! The route table and the loaded plugins travel together in one [`Routing`] value behind one
//! pointer ([`RoutingCell`]), so a request takes one consistent snapshot of both and a reload
//! replaces both in a single step: requests already running finish on the snapshot they took,
//! every request that starts after the swap sees the new one, none sees a mix. Only the
//! [`Loader`] can swap, and only while it holds its reload lock; connections get the cell's read
//! side and nothing else. What a (re)load does with each plugin is `build`'s business; *when* to
//! reload is `watch`'s; which services (stores, outbound) the next routing binds is `services`'s.

mod build;
mod history;
mod services;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

pub use build::{Refused, Report};
pub(crate) use history::History;
pub(crate) use services::Services;

use crate::config::{Config, ConfigError, PluginLimits};
use crate::guard::Guard;
use crate::logsummary::LogSummary;
use crate::metrics::Metrics;
use crate::native::Probe;
use crate::routes::{NativeRoute, RouteTable};
use crate::runtime::{HostEnv, Plugin, Runtime, WarmPool};

/// What a route of the live table leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Answered by the host itself.
    Native(NativeRoute),
    /// Answered by a plugin's fresh instance, under these limits.
    Plugin {
        plugin: Arc<str>,
        limits: PluginLimits,
    },
}

/// The route table of `config`: the native routes, then every configured route leading to its
/// plugin with the plugin's limits.
fn route_table(config: &Config) -> RouteTable<Target> {
    let mut table = RouteTable::with_native_routes(Target::Native);
    for route in &config.routes {
        let limits = config
            .plugin(&route.plugin)
            .map(|p| p.limits)
            .expect("a validated Config's routes name its plugins");
        let target = Target::Plugin {
            plugin: route.plugin.as_str().into(),
            limits,
        };
        table
            .insert(&route.methods, &route.pattern, target)
            .expect("a validated Config always builds its route table");
    }
    table
}

/// The config, the routes built from it and the plugins they point at, as one snapshot.
#[derive(Debug)]
pub(crate) struct Routing {
    /// The configuration this routing was built from (what a reload compares against).
    pub(crate) config: Config,
    pub(crate) routes: RouteTable<Target>,
    /// Loaded plugins by name. A configured plugin that never loaded is absent: its routes answer
    /// 503 until it loads.
    pub(crate) plugins: HashMap<String, Served>,
    /// The stores and outbound service its plugins are bound to. Invariant: every grant of a
    /// served plugin names a service of this set (`build` refuses a plugin whose grant it cannot
    /// bind, and keeps here the stores a refused plugin's running version still uses).
    pub(crate) services: Services,
    /// This is the routing served while the first load runs (no plugin loaded yet): a request for
    /// a plugin waits for that load instead of failing (`Dispatcher::routing_for`).
    pub(crate) loading: bool,
}

/// A loaded plugin and the host services it is bound to in this routing: a reload that changes
/// only its variables binds new ones to the same compiled module.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub(crate) plugin: Plugin,
    pub(crate) env: Arc<HostEnv>,
    /// The plugin's admission guard, looked up by name on its first request after a load and
    /// kept here, so a request does not search the guards' map under its lock.
    pub(crate) guard: OnceLock<Arc<Guard>>,
    /// Its warm instances, when reuse is on (operator and module both opted in). Per routing:
    /// a reload starts with none, so no instance outlives the configuration it was made for.
    pub(crate) warm: Option<Arc<WarmPool>>,
}

impl Routing {
    /// The routes of `config` with no plugin loaded yet: what the server serves while the first
    /// load runs (a plugin route waits for the load, `/ready` says `loading`).
    fn unloaded(config: Config, services: Services) -> Routing {
        Routing {
            routes: route_table(&config),
            plugins: HashMap::new(),
            config,
            services,
            loading: true,
        }
    }
}

/// The current [`Routing`], read by every request and replaced whole by the [`Loader`]. An
/// `ArcSwap`, not a lock: every request reads it and a reload writes it a few times a day, so a
/// read is one atomic reference count, with no lock word bouncing between cores.
#[derive(Debug)]
pub(crate) struct RoutingCell {
    current: ArcSwap<Routing>,
}

impl RoutingCell {
    /// The current routes and plugins: one consistent snapshot for one request.
    pub(crate) fn current(&self) -> Arc<Routing> {
        self.current.load_full()
    }

    fn replace(&self, routing: Routing) {
        self.current.store(Arc::new(routing));
    }
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config file is invalid: refused whole, the running config stays.
    #[error("config refused, keeping the running one: {0}")]
    Config(#[from] ConfigError),
    /// The blocking task that compiles plugins panicked or was cancelled.
    #[error("reload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Builds and swaps the routing: the first load, and every reload after it.
pub(crate) struct Loader {
    runtime: Runtime,
    cell: Arc<RoutingCell>,
    /// One (re)load at a time: SIGHUP, file events and the first load may race.
    lock: tokio::sync::Mutex<()>,
    history: Arc<History>,
    /// The configuration the process started with: listener, timeouts, HTTP limits and engine
    /// settings are fixed for the process's life, and a reload that changes them says so.
    fixed: Config,
    probe: Arc<Probe>,
    /// Where stores and the outbound service a reload sets up report.
    metrics: Arc<Metrics>,
    log: Arc<LogSummary>,
}

impl Loader {
    /// A loader serving `config`'s routes with no plugin loaded yet, bound to `services` (opened
    /// from `config` at start); [`Loader::load_all`] loads them.
    pub(crate) fn new(
        runtime: Runtime,
        config: Config,
        services: Services,
        history: Arc<History>,
        probe: Arc<Probe>,
        metrics: Arc<Metrics>,
        log: Arc<LogSummary>,
    ) -> Loader {
        Loader {
            runtime,
            cell: Arc::new(RoutingCell {
                current: ArcSwap::from_pointee(Routing::unloaded(config.clone(), services)),
            }),
            lock: tokio::sync::Mutex::new(()),
            history,
            fixed: config,
            probe,
            metrics,
            log,
        }
    }

    /// The read side, for connections.
    pub(crate) fn cell(&self) -> Arc<RoutingCell> {
        self.cell.clone()
    }

    /// The current routing (the watcher reads which files it names).
    pub(crate) fn current(&self) -> Arc<Routing> {
        self.cell.current()
    }

    /// Loads every configured plugin on a blocking thread, swaps them in, and becomes ready
    /// (unless shutdown began meanwhile).
    pub(crate) async fn load_all(self: &Arc<Self>) -> Result<Report, ReloadError> {
        let _one_at_a_time = self.lock.lock().await;
        let config = self.current().config.clone();
        let report = self.build_and_swap(config, false).await?;
        self.probe.loaded();
        tracing::info!(
            loaded = report.loaded.len(),
            refused = report.refused.len(),
            "plugins loaded; ready"
        );
        Ok(report)
    }

    /// Re-reads the config file (when the server runs from one) and every plugin file, compiles
    /// what changed off the request path, and swaps the result in at once. An invalid config is
    /// refused whole; a plugin that fails keeps its previous version.
    pub(crate) async fn reload(self: &Arc<Self>) -> Result<Report, ReloadError> {
        let _one_at_a_time = self.lock.lock().await;
        let current = self.current();
        let config = match current.config.file() {
            Some(path) => match Config::from_file(path) {
                Ok(mut config) => {
                    self.history.config_reload(true);
                    // `--listen` and `--watch` override the file for the process's life.
                    config.server.listen = self.fixed.server.listen;
                    config.server.watch = self.fixed.server.watch;
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
        self.warn_about_restart_only_changes(&current.config, &config);
        let report = self.build_and_swap(config, true).await?;
        tracing::info!(
            loaded = ?report.loaded,
            refused = report.refused.len(),
            unchanged = report.unchanged.len(),
            variables_changed = ?report.vars_changed,
            stores_opened = ?report.stores_opened,
            stores_closed = ?report.stores_closed,
            "{}",
            report.summary()
        );
        Ok(report)
    }

    /// Sets up the services of `config` (on a reload: the changed stores opened and checked, the
    /// outbound service rebuilt if its settings changed), builds the routing on a blocking thread
    /// (reusing the current plugins when `reuse`) and swaps it in. Callers hold the reload lock.
    async fn build_and_swap(
        self: &Arc<Self>,
        config: Config,
        reuse: bool,
    ) -> Result<Report, ReloadError> {
        let current = self.current();
        let next = if reuse {
            services::Next::of(&config, &current.services, &self.metrics, &self.log).await
        } else {
            services::Next::same(&current.services)
        };
        let this = self.clone();
        let previous = current.clone();
        let (routing, mut report) = tokio::task::spawn_blocking(move || {
            build::build(
                &this.runtime,
                &config,
                reuse.then_some(&*previous),
                &this.history,
                next,
            )
        })
        .await?;
        let services = routing.services.clone();
        self.cell.replace(routing);
        report.stores_closed =
            services::retire(&current.services, &services, &self.metrics, &self.probe);
        Ok(report)
    }

    /// Listener, timeouts, HTTP limits and engine settings are fixed for the process's life: a
    /// reload whose configuration changes them says they take effect at the next restart, once
    /// per distinct change (a section that differs from the one the process started with *and*
    /// from the running configuration's, so later reloads do not repeat it). Stores, outbound
    /// settings, plugins, routes and variables all apply on reload, so they are not listed.
    fn warn_about_restart_only_changes(&self, running: &Config, new: &Config) {
        for section in restart_only_changes(&self.fixed, running, new) {
            tracing::warn!(
                section,
                "changes to this section take effect at the next restart"
            );
        }
    }
}

/// The restart-only sections in which `new` differs both from the configuration the process
/// started with (`fixed`) and from the running one (`running`, the last accepted): a change not
/// yet reported. (`reload` has already carried `--listen` and `--watch` over into `new`.)
fn restart_only_changes(fixed: &Config, running: &Config, new: &Config) -> Vec<&'static str> {
    restart_only_sections()
        .into_iter()
        .filter(|(_, differs)| differs(fixed, new) && differs(running, new))
        .map(|(section, _)| section)
        .collect()
}

/// A section fixed for the process's life, and whether two configurations differ in it.
type RestartOnly = (&'static str, fn(&Config, &Config) -> bool);

/// The sections a reload cannot apply (see [`Loader::warn_about_restart_only_changes`]).
fn restart_only_sections() -> [RestartOnly; 4] {
    [
        ("server", |a, b| a.server != b.server),
        ("timeouts", |a, b| a.timeouts != b.timeouts),
        ("http", |a, b| a.http != b.http),
        ("runtime", |a, b| {
            a.runtime != b.runtime || a.module_cache != b.module_cache
        }),
    ]
}
