//! What the in-process servers log, kept for the few tests whose behaviour under test is a log line
//! (guest output tagged with its plugin, a warning that names a directory, a load error that says
//! what is wrong).
//!
//! Owns the test process's one global `tracing` subscriber. Counts and kinds are asserted through
//! `/metrics`, never here: a log line is prose for a person, a metric is the contract. Child
//! processes log to their own stderr ([`super::ChildServer::wait`] returns it); nothing here reads
//! that.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Everything the in-process servers logged, shared by every test of this binary (the subscriber
/// is per process, so lines of tests running in parallel interleave: match on what identifies
/// yours, such as a plugin name).
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Installs (once) a global subscriber that keeps every log line as plain text with `key=value`
/// fields (string values are quoted: `kind="trap"`).
pub fn capture() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged so far (for failure messages).
pub fn logs() -> String {
    LOGS.get()
        .map(|l| String::from_utf8_lossy(&l.lock().unwrap_or_else(|e| e.into_inner())).into_owned())
        .unwrap_or_default()
}

/// Is there a log line containing every one of `needles`? Waits up to two seconds: events are
/// written by the servers' threads, possibly just after the response that caused them.
pub fn logs_contain(needles: &[&str]) -> bool {
    super::eventually(Duration::from_secs(2), || {
        logs()
            .lines()
            .any(|line| needles.iter().all(|n| line.contains(n)))
    })
}
