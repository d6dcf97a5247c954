//! `wasmgate up --watch`: rebuild a plugin crate when its source changes.
//!
//! Owns watching each crate plugin's sources (`src/` and `Cargo.toml`) and running `wasmgate build`
//! for the one crate that changed. It never swaps anything itself: a successful build writes a new
//! `.wasm`, which the module watcher (`watch.rs`) sees and hot-swaps like any other change. A build
//! that fails prints cargo's errors in full and writes no module, so the last good version keeps
//! serving.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use wasmgate_server::config::{Config, PluginSource};

/// Watches the sources of every crate plugin in `config` and rebuilds the changed ones until the
/// returned watcher is dropped. `progress` is passed to the build (a terminal gets cargo's
/// progress; logs and CI get `--quiet`).
pub fn spawn(config: &Config, progress: bool) -> Option<notify::RecommendedWatcher> {
    let crates: Vec<(String, PathBuf)> = config
        .plugins
        .iter()
        .filter_map(|p| match &p.source {
            PluginSource::Crate { dir, .. } => Some((p.name.clone(), absolute(dir))),
            PluginSource::File(_) => None,
        })
        .collect();
    if crates.is_empty() {
        return None;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
        },
    ) {
        Ok(w) => w,
        Err(err) => {
            tracing::error!(error = %err, "cannot watch plugin sources; rebuild with `wasmgate build`");
            return None;
        }
    };
    for (name, dir) in &crates {
        for (path, mode) in [
            (dir.join("src"), RecursiveMode::Recursive),
            (dir.join("Cargo.toml"), RecursiveMode::NonRecursive),
        ] {
            if let Err(err) = watcher.watch(&path, mode) {
                tracing::warn!(plugin = %name, path = %path.display(), error = %err, "cannot watch; changes here need `wasmgate build`");
            }
        }
    }
    let root = config.base_dir.clone();
    let debounce = config.server.watch_debounce;
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut changed = vec![first];
            while let Ok(Some(path)) = tokio::time::timeout(debounce, rx.recv()).await {
                changed.push(path);
            }
            let dirty: BTreeSet<(String, PathBuf)> = crates
                .iter()
                .filter(|(_, dir)| changed.iter().any(|p| p.starts_with(dir)))
                .cloned()
                .collect();
            if dirty.is_empty() {
                continue;
            }
            let dirty: Vec<(String, PathBuf)> = dirty.into_iter().collect();
            let names: Vec<&str> = dirty.iter().map(|(n, _)| n.as_str()).collect();
            tracing::info!(plugins = ?names, "source changed; rebuilding");
            let root = root.clone();
            let built = tokio::task::spawn_blocking(move || {
                crate::builder::build_plugins(&root, &dirty, progress)
            })
            .await;
            match built {
                Ok(Ok(_)) => tracing::info!("rebuilt; the module watcher swaps the new version in"),
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "rebuild failed (cargo's errors above); the last good version keeps serving")
                }
                Err(err) => tracing::error!(error = %err, "rebuild task failed"),
            }
        }
    });
    Some(watcher)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
