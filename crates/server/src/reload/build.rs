//! Building a [`Routing`] from a [`Config`], reusing what did not change, and recording each
//! plugin's load in the [`History`].
//!
//! Owns the rules of a (re)load: a plugin whose file hash and grants are unchanged is reused, not
//! recompiled; a plugin that fails to read, compile or validate, or whose grant names a service
//! the reload could not set up, keeps its previous version (or, if it never loaded, stays absent
//! so its routes answer 503); every plugin is bound to the services of the routing it is served
//! from, so no plugin runs with a grant it cannot use; the result is one new `Routing` that the
//! caller swaps in whole. Compiling blocks, so callers run this off the request path. It must
//! not decide *when* to reload (that is `watch.rs`) nor touch connections.

use std::collections::HashMap;

use std::sync::{Arc, OnceLock};

use super::history::History;
use super::services::{Next, Services, Unavailable};
use super::{Routing, Served};
use crate::config::{Config, PluginConfig, PluginSource};
use crate::kv::Stores;
use crate::metrics::LoadErrorKind;
use crate::outbound::{Bounds, Outbound};
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
    /// Plugins now served with variable or secret values that differ from the previous routing's
    /// (a literal, an environment variable or a secret file changed), whether or not their module
    /// did: the values apply from the swap on.
    pub vars_changed: Vec<String>,
    /// Stores opened by this reload (added, or redefined: path, URL, limits).
    pub stores_opened: Vec<String>,
    /// Stores no longer served (removed from the configuration): each closes when the last
    /// request using it ends.
    pub stores_closed: Vec<String>,
}

impl Report {
    /// The reload's log message: "reload done", and what changed besides modules, so an operator
    /// sees a reload that only changed values did something.
    pub fn summary(&self) -> String {
        let mut changes = Vec::new();
        if !self.vars_changed.is_empty() {
            changes.push(format!(
                "variables changed for {}",
                self.vars_changed.join(", ")
            ));
        }
        if !self.stores_opened.is_empty() {
            changes.push(format!("stores opened: {}", self.stores_opened.join(", ")));
        }
        if !self.stores_closed.is_empty() {
            changes.push(format!("stores closed: {}", self.stores_closed.join(", ")));
        }
        if changes.is_empty() {
            "reload done".to_string()
        } else {
            format!("reload done; {}", changes.join("; "))
        }
    }
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

/// Builds the routing for `config`, bound to the services of `next`, reusing plugins of
/// `previous` whose module bytes and grants are unchanged. Blocks while compiling.
pub(super) fn build(
    runtime: &Runtime,
    config: &Config,
    previous: Option<&Routing>,
    history: &History,
    next: Next,
) -> (Routing, Report) {
    let routes = super::route_table(config);
    let Next {
        mut stores,
        outbound,
        unavailable,
        opened,
    } = next;
    let mut plugins = HashMap::new();
    let mut report = Report {
        stores_opened: opened,
        ..Report::default()
    };
    for plugin in &config.plugins {
        let old = previous.and_then(|p| p.plugins.get(&plugin.name));
        // Services are bound afresh from this configuration whether or not the module changed:
        // a reload re-reads variables and secrets without recompiling anything.
        let loaded = bind(plugin, &stores, &outbound, &unavailable)
            .and_then(|env| Ok((load_one(runtime, plugin, old.map(|s| &s.plugin))?, env)));
        let served = |p: Plugin, env: Arc<HostEnv>| Served {
            warm: warm_pool(plugin, &p),
            plugin: p,
            env,
            guard: OnceLock::new(),
        };
        let kept = match loaded {
            Ok((Loaded::Unchanged(p), env)) => {
                report.unchanged.push(plugin.name.clone());
                served(p, env)
            }
            Ok((Loaded::New(p), env)) => {
                tracing::info!(plugin = %plugin.name, hash = p.hash(), abi = %p.abi_version(), preinitialized = %p.preinit(), replaced = old.is_some(), "plugin loaded");
                history.loaded(&plugin.name, &p, old.is_some());
                report.loaded.push(plugin.name.clone());
                served(p, env)
            }
            Err(err) => {
                let path = plugin.source.module_path().display();
                history.refused(&plugin.name, &err);
                report.refused.push(Refused::new(&plugin.name, &err));
                let Some(old) = old else {
                    tracing::error!(plugin = %plugin.name, %path, error = %err, "plugin not loaded; its routes answer 503");
                    continue;
                };
                tracing::error!(plugin = %plugin.name, %path, error = %err, kept_hash = old.plugin.hash(), "plugin refused; the previous version keeps serving");
                keep(old, plugin, &mut stores, &outbound, &unavailable)
            }
        };
        if old.is_some_and(|old| old.env.vars != kept.env.vars) {
            report.vars_changed.push(plugin.name.clone());
        }
        plugins.insert(plugin.name.clone(), kept);
    }
    (
        Routing {
            config: config.clone(),
            routes,
            plugins,
            services: Services {
                stores: Arc::new(stores),
                outbound,
            },
            loading: false,
        },
        report,
    )
}

/// The services of `plugin`'s grants in this routing, or the error that refuses it: a store of
/// its `kv` that the reload could not open (or that the set lacks), or `[outbound]` settings that
/// could not be applied while it is allowed outbound hosts. Never a partial binding: a grant
/// without its service is what made a loaded plugin answer `denied` (issue 21).
fn bind(
    plugin: &PluginConfig,
    stores: &Stores,
    outbound: &Outbound,
    unavailable: &Unavailable,
) -> Result<Arc<HostEnv>, LoadError> {
    let refuse = |grant: String, cause: String| LoadError::Service {
        plugin: plugin.name.clone(),
        grant,
        cause,
    };
    let mut kv = Vec::with_capacity(plugin.grants.kv.len());
    for name in &plugin.grants.kv {
        let grant = || format!("kv = [\"{name}\"]");
        if let Some(cause) = unavailable.stores.get(name) {
            return Err(refuse(
                grant(),
                format!("store `{name}` cannot be opened: {cause}"),
            ));
        }
        match stores.get(name) {
            Some(store) => kv.push(store.clone()),
            None => return Err(refuse(grant(), format!("store `{name}` is not open"))),
        }
    }
    if !plugin.grants.outbound.is_empty()
        && let Some(cause) = &unavailable.outbound
    {
        return Err(refuse(
            "allowed_outbound_hosts".to_string(),
            format!("the [outbound] settings cannot be applied: {cause}"),
        ));
    }
    let client = outbound.client(
        &plugin.name,
        &plugin.grants.outbound,
        Bounds::of(&plugin.limits),
    );
    Ok(Arc::new(HostEnv::new(plugin.vars.clone(), kv, client)))
}

/// What serves a refused `plugin` whose running version is `old`. When every service the
/// running module's grants name is bound in this routing, the module is bound afresh (so new
/// variable values, and a redefined store, apply even while a new module is refused); otherwise
/// (a store it is granted was removed, or could not be reopened) it keeps its services as they
/// were, and the stores among them stay in `stores`, so the routing holds every service its
/// plugins are bound to.
fn keep(
    old: &Served,
    plugin: &PluginConfig,
    stores: &mut Stores,
    outbound: &Outbound,
    unavailable: &Unavailable,
) -> Served {
    let mut as_running = plugin.clone();
    as_running.grants = old.plugin.grants().clone();
    if let Ok(env) = bind(&as_running, stores, outbound, unavailable) {
        return Served {
            warm: warm_pool(plugin, &old.plugin),
            plugin: old.plugin.clone(),
            env,
            guard: OnceLock::new(),
        };
    }
    for store in &old.env.kv {
        if stores.insert_if_absent(store) {
            tracing::info!(store = store.name(), plugin = %plugin.name, "store kept for the running version of a refused plugin");
        }
    }
    old.clone()
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
    let bytes = std::fs::read(path).map_err(|cause| match (&config.source, cause.kind()) {
        (PluginSource::Crate { .. }, std::io::ErrorKind::NotFound) => LoadError::NotBuilt {
            plugin: config.name.clone(),
            path: path.to_path_buf(),
        },
        _ => LoadError::Io {
            plugin: config.name.clone(),
            path: path.to_path_buf(),
            cause,
        },
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
