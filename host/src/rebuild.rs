//! `wasmgate up --watch`: rebuild a plugin crate when its source changes.
//!
//! Owns watching each crate plugin's sources (`src/` and `Cargo.toml`) and running `wasmgate build`
//! for the crates that changed. It never swaps anything itself: a successful build writes a new
//! `.wasm`, which the module watcher (`watch.rs`) sees and hot-swaps like any other change. A build
//! that fails prints cargo's errors in full and writes no module, so the last good version keeps
//! serving. Only events that can change content count (`is_content_change`): a build reads the
//! sources it builds, so a watcher that counted reads would rebuild forever.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use wasmgate_server::config::{Config, PluginSource};
use wasmgate_server::is_content_change;

/// A plugin crate to watch: its name and its directory.
type Crate = (String, PathBuf);

/// Watches the sources of every crate plugin in `config` and rebuilds the changed ones until the
/// returned watcher is dropped. `progress` is passed to the build (a terminal gets cargo's
/// progress; logs and CI get `--quiet`).
pub fn spawn(config: &Config, progress: bool) -> Option<notify::RecommendedWatcher> {
    let crates: Vec<Crate> = config
        .plugins
        .iter()
        .filter_map(|p| match &p.source {
            PluginSource::Crate { dir, .. } => Some((p.name.clone(), absolute(dir))),
            PluginSource::File(_) => None,
        })
        .collect();
    let root = config.base_dir.clone();
    let build = move |dirty: Vec<Crate>| {
        crate::builder::build_plugins(&root, &dirty, progress)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    watch(crates, config.server.watch_debounce, build)
}

/// Watches `crates` and calls `build` (on a blocking thread) with the ones whose sources changed,
/// once per burst of events (`debounce` of quiet ends a burst), one build at a time.
fn watch(
    crates: Vec<Crate>,
    debounce: Duration,
    build: impl Fn(Vec<Crate>) -> Result<(), String> + Send + Sync + 'static,
) -> Option<notify::RecommendedWatcher> {
    if crates.is_empty() {
        return None;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && is_content_change(&event.kind)
            {
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
    let build = Arc::new(build);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut changed = vec![first];
            while let Ok(Some(path)) = tokio::time::timeout(debounce, rx.recv()).await {
                changed.push(path);
            }
            let dirty: BTreeSet<Crate> = crates
                .iter()
                .filter(|(_, dir)| changed.iter().any(|p| p.starts_with(dir)))
                .cloned()
                .collect();
            if dirty.is_empty() {
                continue;
            }
            let dirty: Vec<Crate> = dirty.into_iter().collect();
            let names: Vec<&str> = dirty.iter().map(|(n, _)| n.as_str()).collect();
            tracing::info!(plugins = ?names, "source changed; rebuilding");
            let build = build.clone();
            match tokio::task::spawn_blocking(move || build(dirty)).await {
                Ok(Ok(())) => {
                    tracing::info!("rebuilt; the module watcher swaps the new version in")
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Two plugin crates on disk, watched with a build that only records what it was asked to
    /// build.
    struct Fixture {
        dir: PathBuf,
        builds: Arc<Mutex<Vec<Vec<String>>>>,
        _watcher: notify::RecommendedWatcher,
    }

    const DEBOUNCE: Duration = Duration::from_millis(50);

    fn fixture(name: &str) -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("wasmgate-rebuild-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut crates = Vec::new();
        for plugin in ["one", "two"] {
            let root = dir.join(plugin);
            std::fs::create_dir_all(root.join("src")).unwrap();
            std::fs::write(root.join("Cargo.toml"), "[package]\n").unwrap();
            std::fs::write(root.join("src/lib.rs"), "// v1\n").unwrap();
            crates.push((plugin.to_string(), root));
        }
        let builds: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let record = builds.clone();
        let watcher = watch(crates, DEBOUNCE, move |dirty| {
            // Like cargo: a build reads the sources it builds.
            for (_, dir) in &dirty {
                std::fs::read(dir.join("Cargo.toml")).unwrap();
                std::fs::read(dir.join("src/lib.rs")).unwrap();
            }
            record
                .lock()
                .unwrap()
                .push(dirty.into_iter().map(|(n, _)| n).collect());
            Ok(())
        })
        .expect("a watcher");
        Fixture {
            dir,
            builds,
            _watcher: watcher,
        }
    }

    /// Long enough for any event and its debounce to have been handled.
    async fn settle() {
        tokio::time::sleep(DEBOUNCE * 20).await;
    }

    #[tokio::test]
    async fn reading_sources_builds_nothing_and_a_save_builds_that_plugin_once() {
        let f = fixture("reads");
        for plugin in ["one", "two"] {
            std::fs::read(f.dir.join(plugin).join("Cargo.toml")).unwrap();
            std::fs::read_to_string(f.dir.join(plugin).join("src/lib.rs")).unwrap();
            std::fs::read_dir(f.dir.join(plugin).join("src"))
                .unwrap()
                .count();
        }
        settle().await;
        assert!(f.builds.lock().unwrap().is_empty(), "reads are not changes");

        std::fs::write(f.dir.join("two/src/lib.rs"), "// v2\n").unwrap();
        settle().await;
        assert_eq!(
            *f.builds.lock().unwrap(),
            [["two"]],
            "one save, one build of that plugin, and the build's own reads start nothing"
        );
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[tokio::test]
    async fn permission_changes_build_nothing_and_new_files_and_manifests_do() {
        let f = fixture("kinds");
        let lib = f.dir.join("one/src/lib.rs");
        let mut perms = std::fs::metadata(&lib).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&lib, perms).unwrap();
        settle().await;
        assert!(f.builds.lock().unwrap().is_empty(), "chmod is not a change");

        std::fs::write(f.dir.join("one/src/extra.rs"), "// new\n").unwrap();
        settle().await;
        std::fs::write(f.dir.join("two/Cargo.toml"), "[package]\n# edited\n").unwrap();
        settle().await;
        assert_eq!(*f.builds.lock().unwrap(), [["one"], ["two"]]);
        let _ = std::fs::remove_dir_all(&f.dir);
    }
}
