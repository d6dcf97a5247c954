//! The shared state of a running server: settings, the live routing, the runtime, metrics and the
//! connection registry.
//!
//! Owns what every connection task reads. The route table and the loaded plugins travel together in
//! one [`Routing`] value behind one pointer, so a request takes one consistent snapshot of both and
//! a reload replaces both in a single step. Settings fixed at start (listener, timeouts, HTTP limits)
//! are read straight from the [`Config`] given at start.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::routes::{RouteError, RouteTable};
use crate::runtime::{LoadError, Plugin, Runtime, RuntimeError};
use crate::server::registry::Registry;

/// Routes and the plugins they point at, as one snapshot.
#[derive(Debug, Default)]
pub struct Routing {
    pub routes: RouteTable,
    /// Loaded plugins by name. A configured plugin that failed to load is absent: its routes
    /// answer 503 until it loads.
    pub plugins: HashMap<String, Plugin>,
}

/// Everything shared by the server's tasks.
pub struct App {
    config: Config,
    routing: RwLock<Arc<Routing>>,
    pub runtime: Runtime,
    pub metrics: Metrics,
    pub registry: Arc<Registry>,
    /// When the server started, for `/health`'s uptime.
    pub started: Instant,
}

/// Why the server cannot start at all.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the wasm runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("invalid route table: {0}")]
    Routes(#[from] RouteError),
}

impl App {
    /// Builds the runtime and loads every configured plugin. A plugin that fails to load is logged
    /// and left out (its routes answer 503); the server still starts.
    pub fn new(config: Config) -> Result<App, StartError> {
        let runtime = Runtime::new(&config.runtime)?;
        let registry = Arc::new(Registry::default());
        let mut metrics = Metrics::new();
        metrics.register_collector(Box::new(registry.clone()));
        let app = App {
            routing: RwLock::new(Arc::new(Routing::default())),
            runtime,
            metrics,
            registry,
            started: Instant::now(),
            config,
        };
        let routing = app.build_routing(&app.config)?;
        *app.routing.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(routing);
        Ok(app)
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

    fn build_routing(&self, config: &Config) -> Result<Routing, StartError> {
        let routes = RouteTable::from_config(&config.routes, &config.plugins)?;
        let mut plugins = HashMap::new();
        for plugin in &config.plugins {
            let path = plugin.source.module_path();
            match self.load(&plugin.name, path, &plugin.grants) {
                Ok(loaded) => {
                    tracing::info!(plugin = %plugin.name, path = %path.display(), hash = loaded.hash(), "plugin loaded");
                    plugins.insert(plugin.name.clone(), loaded);
                }
                Err(err) => {
                    tracing::error!(plugin = %plugin.name, path = %path.display(), error = %err, "plugin not loaded; its routes answer 503");
                }
            }
        }
        Ok(Routing { routes, plugins })
    }

    fn load(
        &self,
        name: &str,
        path: &std::path::Path,
        grants: &crate::config::PluginGrants,
    ) -> Result<Plugin, LoadError> {
        self.runtime.load(name, path, grants)
    }
}
