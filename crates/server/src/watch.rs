//! When to reload: file events (with `watch`) and SIGHUP (when the process handles OS signals),
//! debounced into one reload at a time.
//!
//! Owns the file watcher and the reload task. It watches *directories* (the config file's and
//! each plugin module's), not files, so an editor's or a build's rename-into-place is seen, and it
//! waits for a quiet period (`watch_debounce`) after the last event so a file still being written
//! is read once, whole. What a reload does is the [`Loader`]'s business.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::reload::Loader;
use crate::server::shutdown::Signal;

/// Events buffered between the watcher thread and the reload task; when full, further events
/// are dropped, which loses nothing: one pending reload re-reads everything anyway.
const EVENT_QUEUE: usize = 64;

/// Whether a file event can mean new content: a create, a data change, a rename, a remove, or a
/// close after writing. Opening, reading, a read-only close and a metadata change (`touch`,
/// `chmod`) cannot, and must not start work: a build reads its own sources, so counting reads
/// as changes makes a rebuild start the next one forever. Unknown kinds count, to miss nothing.
/// The one rule for every watcher (this module's and `wasmgate up --watch`'s).
pub fn is_content_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => true,
    }
}

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Files,
    Sighup,
}

/// Where reload requests go: held by whoever may ask for one (the SIGHUP listener).
#[derive(Debug, Clone)]
pub(crate) struct Reloads {
    tx: mpsc::Sender<Cause>,
}

impl Reloads {
    /// Reloads on every SIGHUP until the reload task ends. Errors only if the handler cannot be
    /// installed.
    pub(crate) fn on_sighup(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if tx.send(Cause::Sighup).await.is_err() {
                    return;
                }
            }
        });
        Ok(())
    }
}

/// Starts the reload task, and the file watcher when `watch_files`. Ends at shutdown.
pub(crate) fn spawn(loader: Arc<Loader>, watch_files: bool, mut shutdown: Signal) -> Reloads {
    let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
    let reloads = Reloads { tx: tx.clone() };
    // Watching starts before this returns, so a change made right after start is not missed.
    let mut watcher = if watch_files {
        FileWatcher::start(&loader, tx)
    } else {
        None
    };
    tokio::spawn(async move {
        let debounce = loader.current().config.server.watch_debounce;
        loop {
            let cause = tokio::select! {
                cause = rx.recv() => match cause { Some(c) => c, None => return },
                _ = shutdown.triggered() => return,
            };
            if cause == Cause::Files {
                // Quiet period: every further event restarts it.
                while let Ok(Some(_)) = tokio::time::timeout(debounce, rx.recv()).await {}
            }
            tracing::info!(cause = ?cause, "reloading");
            if loader.reload().await.is_ok()
                && let Some(w) = watcher.as_mut()
            {
                // The new config may name new files: watch their directories too.
                w.update(&loader);
            }
        }
    });
    reloads
}

/// A directory watcher for the config file and every plugin module.
struct FileWatcher {
    watcher: RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
    /// The files whose events matter, shared with the watcher's callback.
    files: Arc<std::sync::RwLock<BTreeSet<PathBuf>>>,
}

impl FileWatcher {
    fn start(loader: &Loader, tx: mpsc::Sender<Cause>) -> Option<FileWatcher> {
        let files: Arc<std::sync::RwLock<BTreeSet<PathBuf>>> = Arc::default();
        let watched = files.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if !is_content_change(&event.kind) {
                return;
            }
            let files = watched.read().unwrap_or_else(|e| e.into_inner());
            if event.paths.iter().any(|p| files.contains(&absolute(p))) {
                // Full queue: a reload is already pending and will see this change too.
                let _ = tx.try_send(Cause::Files);
            }
        };
        match notify::recommended_watcher(handler) {
            Ok(watcher) => {
                let mut w = FileWatcher {
                    watcher,
                    dirs: BTreeSet::new(),
                    files,
                };
                w.update(loader);
                Some(w)
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot watch files; reload with SIGHUP instead");
                None
            }
        }
    }

    /// Watches the directories of the current config's files (adding new ones; old ones stay
    /// watched, which costs nothing but an ignored event).
    fn update(&mut self, loader: &Loader) {
        let routing = loader.current();
        let config = &routing.config;
        let mut files: BTreeSet<PathBuf> = config
            .plugins
            .iter()
            .map(|p| absolute(p.source.module_path()))
            .collect();
        files.extend(config.file().map(absolute));
        for dir in files.iter().filter_map(|f| f.parent()) {
            if self.dirs.contains(dir) {
                continue;
            }
            match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "watching for changes");
                    self.dirs.insert(dir.to_path_buf());
                }
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), error = %err, "cannot watch this directory; changes there need SIGHUP")
                }
            }
        }
        *self.files.write().unwrap_or_else(|e| e.into_inner()) = files;
    }
}

/// `path` made absolute (events carry absolute paths; config paths may be relative).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};

    #[test]
    fn only_events_that_can_change_content_count() {
        let counts = [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Any,
        ];
        let ignored = [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
        ];
        for kind in counts {
            assert!(is_content_change(&kind), "{kind:?}");
        }
        for kind in ignored {
            assert!(!is_content_change(&kind), "{kind:?}");
        }
    }
}
