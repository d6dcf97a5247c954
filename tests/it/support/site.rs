//! A scratch directory a test serves from: its config file, its modules, its cache, removed on drop.
//!
//! Owns where a test's files live and how they are written: whole (a temporary file renamed into
//! place, the way editors and builds write, so a watcher never sees half a file) or deliberately
//! slowly. It must not know what the files say: configs and modules are each test's own.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{ChildOptions, ChildServer, TestServer, repo_root};

/// A fresh directory under the system temp dir, unique to this process and this `Site`.
pub struct Site {
    dir: PathBuf,
}

impl Site {
    /// Creates `wasmgate-NAME-PID-N` (emptied first, should an earlier run have left it behind).
    pub fn new(name: &str) -> io::Result<Site> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wasmgate-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Site { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` whole: a temporary file renamed into place.
    pub fn replace(&self, name: &str, contents: impl AsRef<[u8]>) -> io::Result<()> {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, contents)?;
        std::fs::rename(&tmp, self.path(name))
    }

    /// Writes `name` in place, in two halves with a pause between: a slow writer, whose half-written
    /// file a watcher may see.
    pub fn write_slowly(&self, name: &str, contents: impl AsRef<[u8]>) -> io::Result<()> {
        let contents = contents.as_ref();
        let mut f = std::fs::File::create(self.path(name))?;
        let half = contents.len() / 2;
        f.write_all(&contents[..half])?;
        f.flush()?;
        std::thread::sleep(Duration::from_millis(20));
        f.write_all(&contents[half..])
    }

    /// Replaces `name` with a copy of `tests/guests/GUEST.wat`.
    pub fn copy_guest(&self, guest: &str, name: &str) -> io::Result<()> {
        let wat = std::fs::read(repo_root().join(format!("tests/guests/{guest}.wat")))?;
        self.replace(name, wat)
    }

    /// An in-process server from this site's `wasmgate.toml` (so it can watch and reload it).
    pub fn start(&self) -> anyhow::Result<TestServer> {
        TestServer::from_file(&self.path("wasmgate.toml"))
    }

    /// The real CLI serving this site's `wasmgate.toml` on 127.0.0.1:0, once ready.
    pub fn serve(&self) -> anyhow::Result<ChildServer> {
        ChildServer::start(ChildOptions::serve(self.path("wasmgate.toml")))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
