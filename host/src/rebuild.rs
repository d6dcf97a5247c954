//! `wasmgate up --watch`: rebuild a plugin crate when its source changes.
//!
//! Owns watching each crate plugin's sources (`src/` and `Cargo.toml`) and running `wasmgate build`
//! for the crates that changed. It never swaps anything itself: a successful build writes a new
//! `.wasm`, which the module watcher (`watch.rs`) sees and hot-swaps like any other change. A build
//! that fails prints cargo's errors in full and writes no module, so the last good version keeps
//! serving. Only events that can change content count (`is_content_change`): a build reads the
//! sources it builds, so a watcher that counted reads would rebuild forever.
//!
//! It also follows the config file: a crate plugin added while it runs (`wasmgate new`, or an
//! edit) is watched from then on and built at once, so the server's reload finds its module; a
//! removed one is no longer watched. The config is re-read here only for its crate list: whether
//! a config is valid and what it serves stays the server's business.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use wasmgate_server::config::{Config, Values};
use wasmgate_server::is_content_change;

/// A plugin crate to watch: its name and its directory.
type Crate = (String, PathBuf);

/// Keeps the rebuilds going while held; dropping it stops watching (and ends the rebuild task).
pub struct Rebuilder {
    _watcher: Arc<Mutex<notify::RecommendedWatcher>>,
}

/// Watches the sources of every crate plugin in `config` (and the crate list of its file, when it
/// has one) and rebuilds the changed ones until the returned handle is dropped. `progress` is
/// passed to the build (a terminal gets cargo's progress; logs and CI get `--quiet`).
pub fn spawn(config: &Config, progress: bool) -> Option<Rebuilder> {
    let root = config.base_dir.clone();
    let build = move |dirty: Vec<Crate>| {
        crate::builder::build_plugins(&root, &dirty, progress)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let follow = config.file().map(|file| {
        let file = absolute(file);
        let reread = {
            let file = file.clone();
            move || {
                Config::from_file_with(&file, Values::Declared)
                    .ok()
                    .map(|c| crates_of(&c))
            }
        };
        (file, reread)
    });
    watch(
        crates_of(config),
        follow,
        config.server.watch_debounce,
        build,
    )
}

/// The crate plugins of `config`, with absolute directories.
fn crates_of(config: &Config) -> Vec<Crate> {
    config
        .plugin_crates()
        .into_iter()
        .map(|(name, dir)| (name, absolute(&dir)))
        .collect()
}

/// Watches `crates` and calls `build` (on a blocking thread) with the ones whose sources changed,
/// once per burst of events (`debounce` of quiet ends a burst), one build at a time. With
/// `follow` (a config file and how to read its crate list), a change of that file updates the
/// watched set, and crates new to it are built in the same burst. An invalid config (`None`)
/// changes nothing: the server refuses it too.
fn watch<R>(
    crates: Vec<Crate>,
    follow: Option<(PathBuf, R)>,
    debounce: Duration,
    build: impl Fn(Vec<Crate>) -> Result<(), String> + Send + Sync + 'static,
) -> Option<Rebuilder>
where
    R: Fn() -> Option<Vec<Crate>> + Send + 'static,
{
    if crates.is_empty() && follow.is_none() {
        return None;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && is_content_change(&event.kind)
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    }) {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(err) => {
            tracing::error!(error = %err, "cannot watch plugin sources; rebuild with `wasmgate build`");
            return None;
        }
    };
    let mut pending = add_watches(&watcher, &crates);
    if let Some((file, _)) = &follow {
        // The directory, not the file: an editor's rename-into-place replaces the file.
        let dir = file.parent().unwrap_or(Path::new("/"));
        if let Err(err) = lock(&watcher).watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(path = %dir.display(), error = %err, "cannot watch the config; plugins added to it need `wasmgate build`");
        }
    }
    let handle = Rebuilder {
        _watcher: watcher.clone(),
    };
    // The task must not keep the watcher (and so its own event channel) alive.
    let watcher = Arc::downgrade(&watcher);
    let build = Arc::new(build);
    tokio::spawn(async move {
        let mut crates = crates;
        while let Some(first) = rx.recv().await {
            let mut changed = vec![first];
            while let Ok(Some(path)) = tokio::time::timeout(debounce, rx.recv()).await {
                changed.push(path);
            }
            let mut dirty: BTreeSet<Crate> = BTreeSet::new();
            if let Some((file, reread)) = &follow
                && changed.iter().any(|p| &absolute(p) == file)
                && let Some(now) = reread()
            {
                let added: Vec<Crate> = now
                    .iter()
                    .filter(|c| !crates.contains(c))
                    .cloned()
                    .collect();
                let removed: Vec<Crate> = crates
                    .iter()
                    .filter(|c| !now.contains(c))
                    .cloned()
                    .collect();
                let Some(w) = watcher.upgrade() else { return };
                remove_watches(&w, &removed);
                pending.retain(|c| !removed.contains(c));
                let missing = add_watches(&w, &added);
                let ready: Vec<Crate> =
                    added.into_iter().filter(|c| !missing.contains(c)).collect();
                if !ready.is_empty() {
                    let names: Vec<&str> = ready.iter().map(|(n, _)| n.as_str()).collect();
                    tracing::info!(plugins = ?names, "new plugin crates in the config; building them");
                }
                dirty.extend(ready);
                pending.extend(missing);
                crates = now;
            }
            // A configured crate created after the fact (`wasmgate new NAME` for a plugin the
            // config already names): watched and built once its manifest exists.
            if !pending.is_empty()
                && let Some(w) = watcher.upgrade()
            {
                let created: Vec<Crate> = pending
                    .iter()
                    .filter(|(_, dir)| dir.join("Cargo.toml").is_file())
                    .cloned()
                    .collect();
                pending.retain(|c| !created.contains(c));
                add_watches(&w, &created);
                dirty.extend(created);
            }
            dirty.extend(
                crates
                    .iter()
                    .filter(|(_, dir)| changed.iter().any(|p| p.starts_with(dir)))
                    .cloned(),
            );
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
    Some(handle)
}

fn lock(
    watcher: &Mutex<notify::RecommendedWatcher>,
) -> std::sync::MutexGuard<'_, notify::RecommendedWatcher> {
    watcher.lock().unwrap_or_else(|e| e.into_inner())
}

/// The paths watched for `krate`: its sources, recursively, and its manifest.
fn sources(dir: &Path) -> [(PathBuf, RecursiveMode); 2] {
    [
        (dir.join("src"), RecursiveMode::Recursive),
        (dir.join("Cargo.toml"), RecursiveMode::NonRecursive),
    ]
}

/// Watches the sources of `crates`; returns those that have no manifest yet, whose parent
/// directory is watched instead so that their creation is seen.
fn add_watches(watcher: &Mutex<notify::RecommendedWatcher>, crates: &[Crate]) -> Vec<Crate> {
    let mut watcher = lock(watcher);
    let mut missing = Vec::new();
    for (name, dir) in crates {
        if !dir.join("Cargo.toml").is_file() {
            let parent = dir.parent().unwrap_or(Path::new("/"));
            // Not recursive (plugins/ holds target/): the directory's creation is an event
            // here, and `new` writes the workspace manifest beside it last, another one.
            if let Err(err) = watcher.watch(parent, RecursiveMode::NonRecursive) {
                tracing::warn!(plugin = %name, path = %parent.display(), error = %err, "cannot watch; create the crate, then run `wasmgate build`");
            }
            tracing::info!(plugin = %name, dir = %dir.display(), "no crate there yet; it is built once it exists (`wasmgate new` creates it)");
            missing.push((name.clone(), dir.clone()));
            continue;
        }
        for (path, mode) in sources(dir) {
            if let Err(err) = watcher.watch(&path, mode) {
                tracing::warn!(plugin = %name, path = %path.display(), error = %err, "cannot watch; changes here need `wasmgate build`");
            }
        }
    }
    missing
}

fn remove_watches(watcher: &Mutex<notify::RecommendedWatcher>, crates: &[Crate]) {
    let mut watcher = lock(watcher);
    for (_, dir) in crates {
        for (path, _) in sources(dir) {
            // Already gone (the crate was deleted): nothing left to stop.
            let _ = watcher.unwatch(&path);
        }
    }
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
        _watcher: Rebuilder,
    }

    const DEBOUNCE: Duration = Duration::from_millis(50);

    fn make_crate(dir: &Path, plugin: &str) -> Crate {
        let root = dir.join(plugin);
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[package]\n").unwrap();
        std::fs::write(root.join("src/lib.rs"), "// v1\n").unwrap();
        (plugin.to_string(), absolute(&root))
    }

    /// The crates named by the lines of `list` (a stand-in for a config file's crate plugins);
    /// `None` for an empty file, as for an invalid config.
    fn crates_listed(list: &Path) -> Option<Vec<Crate>> {
        let text = std::fs::read_to_string(list).ok()?;
        let dir = list.parent().unwrap();
        let crates: Vec<Crate> = text
            .lines()
            .map(|n| (n.to_string(), absolute(&dir.join("plugins").join(n))))
            .collect();
        (!crates.is_empty()).then_some(crates)
    }

    fn fixture(name: &str) -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("wasmgate-rebuild-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let crates: Vec<Crate> = ["one", "two"]
            .iter()
            .map(|p| make_crate(&dir.join("plugins"), p))
            .collect();
        let list = absolute(&dir.join("crates.list"));
        std::fs::write(&list, "one\ntwo\n").unwrap();
        let follow = {
            let list = list.clone();
            Some((list.clone(), move || crates_listed(&list)))
        };
        let builds: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let record = builds.clone();
        let watcher = watch(crates, follow, DEBOUNCE, move |dirty| {
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
            std::fs::read(f.dir.join("plugins").join(plugin).join("Cargo.toml")).unwrap();
            std::fs::read_to_string(f.dir.join("plugins").join(plugin).join("src/lib.rs")).unwrap();
            std::fs::read_dir(f.dir.join("plugins").join(plugin).join("src"))
                .unwrap()
                .count();
        }
        settle().await;
        assert!(f.builds.lock().unwrap().is_empty(), "reads are not changes");

        std::fs::write(f.dir.join("plugins/two/src/lib.rs"), "// v2\n").unwrap();
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
        let lib = f.dir.join("plugins/one/src/lib.rs");
        let mut perms = std::fs::metadata(&lib).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&lib, perms).unwrap();
        settle().await;
        assert!(f.builds.lock().unwrap().is_empty(), "chmod is not a change");

        std::fs::write(f.dir.join("plugins/one/src/extra.rs"), "// new\n").unwrap();
        settle().await;
        std::fs::write(
            f.dir.join("plugins/two/Cargo.toml"),
            "[package]\n# edited\n",
        )
        .unwrap();
        settle().await;
        assert_eq!(*f.builds.lock().unwrap(), [["one"], ["two"]]);
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[tokio::test]
    async fn a_crate_added_to_the_config_is_built_at_once_and_watched_and_a_removed_one_is_not() {
        let f = fixture("follow");
        let list = f.dir.join("crates.list");
        make_crate(&f.dir.join("plugins"), "three");
        // An invalid config changes nothing.
        std::fs::write(&list, "").unwrap();
        settle().await;
        assert!(f.builds.lock().unwrap().is_empty(), "{:?}", f.builds);
        // Written like an editor does: a new file renamed over the old one.
        std::fs::write(f.dir.join("crates.tmp"), "one\nthree\n").unwrap();
        std::fs::rename(f.dir.join("crates.tmp"), &list).unwrap();
        settle().await;
        assert_eq!(
            *f.builds.lock().unwrap(),
            [["three"]],
            "added: built at once"
        );
        std::fs::write(f.dir.join("plugins/three/src/lib.rs"), "// v2\n").unwrap();
        settle().await;
        std::fs::write(f.dir.join("plugins/two/src/lib.rs"), "// v2\n").unwrap();
        settle().await;
        assert_eq!(
            *f.builds.lock().unwrap(),
            [["three"], ["three"]],
            "the added crate is watched; the removed one is not"
        );
        let _ = std::fs::remove_dir_all(&f.dir);
    }

    #[tokio::test]
    async fn a_configured_crate_created_later_is_built_once_it_exists_and_watched() {
        let f = fixture("later");
        std::fs::write(f.dir.join("crates.list"), "one\ntwo\nfour\n").unwrap();
        settle().await;
        assert!(f.builds.lock().unwrap().is_empty(), "nothing to build yet");
        // As `wasmgate new four` does for a plugin the config already names.
        make_crate(&f.dir.join("plugins"), "four");
        settle().await;
        assert_eq!(
            *f.builds.lock().unwrap(),
            [["four"]],
            "built once it exists"
        );
        std::fs::write(f.dir.join("plugins/four/src/lib.rs"), "// v2\n").unwrap();
        settle().await;
        assert_eq!(
            *f.builds.lock().unwrap(),
            [["four"], ["four"]],
            "then watched"
        );
        let _ = std::fs::remove_dir_all(&f.dir);
    }
}
