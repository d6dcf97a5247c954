//! Building a [`Routing`] from a [`Config`], reusing what did not change, and keeping each
//! plugin's load history for `/metrics`.
//!
//! Owns the rules of a (re)load: a plugin whose file hash and grants are unchanged is reused, not
//! recompiled; a plugin that fails to read, compile or validate keeps its previous version (or, if
//! it never loaded, stays absent so its routes answer 503); the result is one new `Routing` that
//! the caller swaps in whole. Compiling blocks, so callers run this off the request path. It must
//! not decide *when* to reload (that is `watch.rs`) nor touch connections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::app::Routing;
use crate::config::{Config, PluginConfig};
use crate::routes::RouteTable;
use crate::runtime::{Plugin, Runtime, content_hash};

/// The most of an error message kept as a metric label.
const MAX_ERROR_LABEL: usize = 200;

/// What a (re)load did, for the log line that closes it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Plugins compiled and swapped in (new or changed).
    pub loaded: Vec<String>,
    /// Plugins whose file and grants did not change: reused as they were.
    pub unchanged: Vec<String>,
    /// Plugins refused, with the reason (the previous version, if any, keeps serving).
    pub refused: Vec<(String, String)>,
}

/// Builds the routing for `config`, reusing plugins of `previous` whose module bytes and grants
/// are unchanged. Blocks while compiling.
pub fn build(
    runtime: &Runtime,
    config: &Config,
    previous: Option<&Routing>,
    history: &History,
) -> (Routing, Report) {
    let routes = RouteTable::from_config(&config.routes, &config.plugins)
        .expect("a validated Config always builds its route table");
    let mut plugins = HashMap::new();
    let mut report = Report::default();
    for plugin in &config.plugins {
        let old = previous.and_then(|p| p.plugins.get(&plugin.name));
        match load_one(runtime, plugin, old) {
            Ok(Loaded::Unchanged(p)) => {
                report.unchanged.push(plugin.name.clone());
                plugins.insert(plugin.name.clone(), p);
            }
            Ok(Loaded::New(p)) => {
                tracing::info!(plugin = %plugin.name, hash = p.hash(), replaced = old.is_some(), "plugin loaded");
                history.loaded(&plugin.name, &p, old.is_some());
                report.loaded.push(plugin.name.clone());
                plugins.insert(plugin.name.clone(), p);
            }
            Err(err) => {
                let path = plugin.source.module_path().display();
                match old {
                    Some(old) => {
                        tracing::error!(plugin = %plugin.name, %path, error = %err, kept_hash = old.hash(), "plugin refused; the previous version keeps serving");
                        plugins.insert(plugin.name.clone(), old.clone());
                    }
                    None => {
                        tracing::error!(plugin = %plugin.name, %path, error = %err, "plugin not loaded; its routes answer 503")
                    }
                }
                history.refused(&plugin.name, &err);
                report.refused.push((plugin.name.clone(), err));
            }
        }
    }
    (
        Routing {
            config: config.clone(),
            routes,
            plugins,
        },
        report,
    )
}

enum Loaded {
    Unchanged(Plugin),
    New(Plugin),
}

fn load_one(
    runtime: &Runtime,
    config: &PluginConfig,
    old: Option<&Plugin>,
) -> Result<Loaded, String> {
    let path = config.source.module_path();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Some(old) = old
        && old.hash() == content_hash(&bytes)
        && old.grants() == &config.grants
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
    let loaded = runtime.load_file_bytes(&config.name, path, &bytes, &config.grants);
    if progress {
        let outcome = if loaded.is_ok() { "done" } else { "failed" };
        eprintln!("{outcome} in {} ms", started.elapsed().as_millis());
    }
    loaded.map(Loaded::New).map_err(|e| e.to_string())
}

/// Every plugin's load history: what is loaded, since when, how many reloads succeeded or were
/// refused, and the last error. Exposed on `/metrics`.
#[derive(Debug, Default)]
pub struct History {
    plugins: Mutex<HashMap<String, PluginHistory>>,
    config_reloads: Mutex<(u64, u64)>,
}

#[derive(Debug, Default, Clone)]
struct PluginHistory {
    hash: Option<String>,
    loaded_at: Option<SystemTime>,
    reloads_ok: u64,
    reloads_refused: u64,
    last_error: Option<String>,
}

impl History {
    fn with<R>(&self, plugin: &str, f: impl FnOnce(&mut PluginHistory) -> R) -> R {
        let mut map = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(plugin.to_string()).or_default())
    }

    fn loaded(&self, plugin: &str, loaded: &Plugin, replaced: bool) {
        self.with(plugin, |h| {
            h.hash = Some(loaded.hash().to_string());
            h.loaded_at = Some(loaded.loaded_at());
            h.reloads_ok += u64::from(replaced);
        });
    }

    fn refused(&self, plugin: &str, error: &str) {
        let mut label: String = error
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if let Some((cut, _)) = label.char_indices().nth(MAX_ERROR_LABEL) {
            label.truncate(cut);
        }
        self.with(plugin, |h| {
            h.reloads_refused += 1;
            h.last_error = Some(label);
        });
    }

    /// Counts a config reload: accepted or refused whole.
    pub fn config_reload(&self, accepted: bool) {
        let mut counts = self
            .config_reloads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if accepted {
            counts.0 += 1
        } else {
            counts.1 += 1
        }
    }

    /// `(reloads succeeded, reloads refused)` of one plugin.
    pub fn reload_counts(&self, plugin: &str) -> (u64, u64) {
        self.with(plugin, |h| (h.reloads_ok, h.reloads_refused))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    plugin: String,
    hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    plugin: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    plugin: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

impl Collector for History {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let plugins: Vec<(String, PluginHistory)> = {
            let map = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let mut family = encoder.encode_descriptor(
            "plugin_info",
            "The loaded version of each plugin (content SHA-256)",
            None,
            MetricType::Gauge,
        )?;
        for (name, h) in &plugins {
            if let Some(hash) = &h.hash {
                ConstGauge::new(1).encode(family.encode_family(&InfoLabels {
                    plugin: name.clone(),
                    hash: hash.clone(),
                })?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "plugin_loaded_timestamp_seconds",
            "When the serving version of each plugin was loaded (Unix time)",
            None,
            MetricType::Gauge,
        )?;
        for (name, h) in &plugins {
            if let Some(at) = h.loaded_at {
                let secs = at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                ConstGauge::new(secs).encode(family.encode_family(&PluginLabel {
                    plugin: name.clone(),
                })?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "plugin_reloads",
            "Plugin reloads by result (ok: swapped in; refused: old version kept)",
            None,
            MetricType::Counter,
        )?;
        for (name, h) in &plugins {
            for (result, n) in [("ok", h.reloads_ok), ("refused", h.reloads_refused)] {
                ConstCounter::new(n).encode(family.encode_family(&ResultLabels {
                    plugin: name.clone(),
                    result,
                })?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "plugin_last_error_info",
            "The last load error of each plugin",
            None,
            MetricType::Gauge,
        )?;
        for (name, h) in &plugins {
            if let Some(error) = &h.last_error {
                ConstGauge::new(1).encode(family.encode_family(&ErrorLabels {
                    plugin: name.clone(),
                    error: error.clone(),
                })?)?;
            }
        }
        let (ok, refused) = *self
            .config_reloads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut family = encoder.encode_descriptor(
            "config_reloads",
            "Config reloads by result (refused: invalid, old config kept)",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [("ok", ok), ("refused", refused)] {
            ConstCounter::new(n).encode(family.encode_family(&Outcome { result })?)?;
        }
        Ok(())
    }
}
