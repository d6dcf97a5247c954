//! Every plugin's load history: which version serves, since when, how many reloads were swapped
//! in or refused, and the last load error; and how many config reloads were accepted or refused.
//!
//! Owned by the loader (it is written only while a (re)load holds the reload lock) and read by
//! `/metrics` through [`History::reading`]. It must not decide anything: it records.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::metrics::{LoadErrorKind, LoadReading, PluginLoadReading, ReloadResult};
use crate::runtime::{LoadError, Plugin};

/// The most of an error message kept as a metric label.
const MAX_ERROR_LABEL: usize = 200;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct History {
    plugins: Mutex<HashMap<String, PluginHistory>>,
    /// Config reloads `(accepted, refused)`.
    config_reloads: Mutex<(u64, u64)>,
}

#[derive(Debug, Default, Clone)]
struct PluginHistory {
    hash: Option<String>,
    loaded_at: Option<SystemTime>,
    reloads_ok: u64,
    reloads_refused: u64,
    last_error: Option<(LoadErrorKind, String)>,
}

impl History {
    fn with<R>(&self, plugin: &str, f: impl FnOnce(&mut PluginHistory) -> R) -> R {
        let mut map = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(plugin.to_string()).or_default())
    }

    /// `loaded` now serves as `plugin`; `replaced` when it took over from an earlier version.
    pub(crate) fn loaded(&self, plugin: &str, loaded: &Plugin, replaced: bool) {
        self.with(plugin, |h| {
            h.hash = Some(loaded.hash().to_string());
            h.loaded_at = Some(loaded.loaded_at());
            h.reloads_ok += u64::from(replaced);
        });
    }

    /// `plugin` failed to load with `error` (its previous version, if any, keeps serving).
    pub(crate) fn refused(&self, plugin: &str, error: &LoadError) {
        let mut label: String = error
            .to_string()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if let Some((cut, _)) = label.char_indices().nth(MAX_ERROR_LABEL) {
            label.truncate(cut);
        }
        self.with(plugin, |h| {
            h.reloads_refused += 1;
            h.last_error = Some((error.kind(), label));
        });
    }

    /// Counts a config reload: accepted or refused whole.
    pub(crate) fn config_reload(&self, accepted: bool) {
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

    /// Everything, as `/metrics` shows it.
    pub(crate) fn reading(&self) -> LoadReading {
        let plugins = self
            .plugins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, h)| PluginLoadReading {
                plugin: name.clone(),
                hash: h.hash.clone(),
                loaded_at: h.loaded_at,
                reloads: vec![
                    (ReloadResult::Ok, h.reloads_ok),
                    (ReloadResult::Refused, h.reloads_refused),
                ],
                last_error: h.last_error.clone(),
            })
            .collect();
        let (ok, refused) = *self
            .config_reloads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        LoadReading {
            plugins,
            config_reloads: vec![(ReloadResult::Ok, ok), (ReloadResult::Refused, refused)],
        }
    }
}
