//! Building a [`Routing`] from a [`Config`], reusing what did not change, and recording each
//! plugin's load in the [`History`].
//!
//! Owns the rules of a (re)load: a plugin whose file hash and grants are unchanged is reused, not
//! recompiled; a plugin that fails to read, compile or validate keeps its previous version (or, if
//! it never loaded, stays absent so its routes answer 503); the result is one new `Routing` that
//! the caller swaps in whole. Compiling blocks, so callers run this off the request path. It must
//! not decide *when* to reload (that is `watch.rs`) nor touch connections.

use std::collections::HashMap;

use std::sync::{Arc, OnceLock};

use super::Services;
use super::history::History;
use super::{Routing, Served};
use crate::config::{Config, PluginConfig};
use crate::metrics::LoadErrorKind;
use crate::outbound::Bounds;
use crate::runtime::{HostEnv, LoadError, Plugin, Runtime, WarmPool, content_hash};

/// What a (re)load did, for the log line that closes it and for callers that wait on it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Plugins compiled and swapped in (new or changed).
    pub loaded: Vec<String>,
    /// Plugins whose file and grants did not change: reused as they were.
    pub unchanged: Vec<String>,
    /// Plugins refused (the previous version, if any, keeps serving).
    pub refused: Vec<Refused>,
}

/// One plugin a (re)load refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub plugin: String,
    /// The load error's kind, e.g. `compile` or `abi` (the `kind` of
    /// `wasmgate_plugin_last_error_info`).
    pub kind: &'static str,
    /// The whole message.
    pub message: String,
}

impl Refused {
    fn new(plugin: &str, err: &LoadError) -> Refused {
        let kind: LoadErrorKind = err.kind();
        Refused {
            plugin: plugin.to_string(),
            kind: crate::metrics::LabelValue::label(kind),
            message: err.to_string(),
        }
    }
}

/// Builds the routing for `config`, reusing plugins of `previous` whose module bytes and grants
/// are unchanged. Blocks while compiling.
pub(super) fn build(
    runtime: &Runtime,
    config: &Config,
    previous: Option<&Routing>,
    history: &History,
    services: &Services,
) -> (Routing, Report) {
    let routes = super::route_table(config);
    let mut plugins = HashMap::new();
    let mut report = Report::default();
    for plugin in &config.plugins {
        let old = previous.and_then(|p| p.plugins.get(&plugin.name));
        // Services are bound afresh from this configuration whether or not the module changed:
        // a reload re-reads variables and secrets without recompiling anything.
        let kv = plugin
            .grants
            .kv
            .iter()
            .filter_map(|name| services.stores.get(name).cloned())
            .collect::<Vec<_>>();
        let outbound = services.outbound.client(
            &plugin.name,
            &plugin.grants.outbound,
            Bounds::of(&plugin.limits),
        );
        let served = |p: Plugin| Served {
            warm: warm_pool(plugin, &p),
            plugin: p,
            env: Arc::new(HostEnv::new(
                plugin.vars.clone(),
                kv.clone(),
                outbound.clone(),
            )),
            guard: OnceLock::new(),
        };
        match load_one(runtime, plugin, old.map(|s| &s.plugin)) {
            Ok(Loaded::Unchanged(p)) => {
                report.unchanged.push(plugin.name.clone());
                plugins.insert(plugin.name.clone(), served(p));
            }
            Ok(Loaded::New(p)) => {
                tracing::info!(plugin = %plugin.name, hash = p.hash(), abi = %p.abi_version(), preinitialized = %p.preinit(), replaced = old.is_some(), "plugin loaded");
                history.loaded(&plugin.name, &p, old.is_some());
                report.loaded.push(plugin.name.clone());
                plugins.insert(plugin.name.clone(), served(p));
            }
            Err(err) => {
                let path = plugin.source.module_path().display();
                match old {
                    Some(old) => {
                        tracing::error!(plugin = %plugin.name, %path, error = %err, kept_hash = old.plugin.hash(), "plugin refused; the previous version keeps serving");
                        plugins.insert(plugin.name.clone(), served(old.plugin.clone()));
                    }
                    None => {
                        tracing::error!(plugin = %plugin.name, %path, error = %err, "plugin not loaded; its routes answer 503")
                    }
                }
                history.refused(&plugin.name, &err);
                report.refused.push(Refused::new(&plugin.name, &err));
            }
        }
    }
    (
        Routing {
            config: config.clone(),
            routes,
            plugins,
            loading: false,
        },
        report,
    )
}

/// The warm pool of `plugin` (loaded as `loaded`) when both sides opted in to reuse; a warning
/// when only the operator did, since the module then gets a fresh instance per request.
fn warm_pool(plugin: &PluginConfig, loaded: &Plugin) -> Option<Arc<WarmPool>> {
    let reuse = plugin.reuse?;
    let pool = loaded.warm_pool(reuse, plugin.limits.max_concurrency);
    if pool.is_none() {
        tracing::warn!(
            plugin = %plugin.name,
            "reuse is configured but the module does not declare `wasmgate_reusable` (ABI v2): \
             every request gets a fresh instance"
        );
    }
    pool
}

enum Loaded {
    Unchanged(Plugin),
    New(Plugin),
}

fn load_one(
    runtime: &Runtime,
    config: &PluginConfig,
    old: Option<&Plugin>,
) -> Result<Loaded, LoadError> {
    let path = config.source.module_path();
    let bytes = std::fs::read(path).map_err(|cause| LoadError::Io {
        plugin: config.name.clone(),
        path: path.to_path_buf(),
        cause,
    })?;
    if let Some(old) = old
        && old.hash() == content_hash(&bytes)
        && old.grants() == &config.grants
        && old.preinit().honours(config.preinitialize)
        // The only load check a limit decides: a reload that lowers `max_memory_bytes` below the
        // served module's initial memory must load it again, and be refused.
        && old.initial_memory_bytes() <= config.limits.max_memory_bytes
    {
        return Ok(Loaded::Unchanged(old.clone()));
    }
    // A first compile can take seconds: say so on a terminal (logs and CI get the log event only).
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = std::time::Instant::now();
    if progress {
        eprint!(
            "  compiling plugin `{}` ({} KiB)... ",
            config.name,
            bytes.len() / 1024
        );
    }
    let loaded = runtime.load_file_bytes(
        &config.name,
        path,
        &bytes,
        &config.grants,
        &config.limits,
        config.preinitialize,
    );
    if progress {
        let outcome = if loaded.is_ok() { "done" } else { "failed" };
        eprintln!("{outcome} in {} ms", started.elapsed().as_millis());
    }
    loaded.map(Loaded::New)
}
