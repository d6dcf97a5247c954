//! The guest's WASI preview 1 world: which capabilities a plugin gets, and where its stdout and
//! stderr go.
//!
//! Default sandbox: stdout/stderr captured into `tracing` events (target `wasmgate::guest`, one
//! event per line, fields `plugin`, `request_id`, `stream`), clocks and random on; no arguments,
//! no environment, no files, no sockets. `PluginGrants` adds named env vars (values read once at
//! load) and read-only preopened directories. Must not touch wasmtime stores or the ABI.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::config::PluginGrants;
use crate::request_id::RequestId;
use tracing::field::display;

/// A request id in a log field, or `-` for the load check (which serves no request).
struct OptionalId(Option<RequestId>);

impl std::fmt::Display for OptionalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => id.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Guest output kept per stream per request; past it the rest is dropped (with one note in the
/// log), so a chatty or hostile guest cannot flood the log or our memory.
pub(crate) const MAX_CAPTURED_BYTES: usize = 64 * 1024;
/// How much of the end of stderr a failure carries (enough for a Rust panic message + location).
pub(crate) const STDERR_TAIL_BYTES: usize = 2 * 1024;
/// Longest line emitted as one event; longer lines are split.
const MAX_LINE_BYTES: usize = 4 * 1024;

/// A grant of the configuration that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// A granted directory does not exist or is not a directory.
    #[error("directory {} (granted as `{guest}`) is not a readable directory", host.display())]
    NotADirectory {
        host: std::path::PathBuf,
        guest: String,
    },
    /// A granted directory could not be opened for a request.
    #[error("cannot open {}: {message}", host.display())]
    Open {
        host: std::path::PathBuf,
        message: String,
    },
}

/// Grants resolved at load time, so a request only copies them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResolvedGrants {
    env: Vec<(String, String)>,
    dirs: Vec<(std::path::PathBuf, String)>,
}

impl ResolvedGrants {
    /// Reads the granted env vars' host values now (unset ones are skipped with a warning) and
    /// checks that every granted directory opens.
    pub(crate) fn resolve(
        plugin: &str,
        grants: &PluginGrants,
    ) -> Result<ResolvedGrants, GrantError> {
        let mut env = Vec::new();
        for name in &grants.env {
            match std::env::var(name) {
                Ok(v) => env.push((name.clone(), v)),
                Err(e) => tracing::warn!(
                    plugin, var = %name, "granted environment variable not passed: {e}"
                ),
            }
        }
        let mut dirs = Vec::new();
        for d in &grants.dirs {
            if !d.host.is_dir() {
                return Err(GrantError::NotADirectory {
                    host: d.host.clone(),
                    guest: d.guest.clone(),
                });
            }
            dirs.push((d.host.clone(), d.guest.clone()));
        }
        Ok(ResolvedGrants { env, dirs })
    }

    /// A builder with the parts of the context that cannot fail: captured stdout and stderr,
    /// the granted environment.
    fn builder(&self, capture: &Capture) -> WasiCtxBuilder {
        let mut b = WasiCtxBuilder::new();
        b.stdout(capture.stream(Stream::Stdout));
        b.stderr(capture.stream(Stream::Stderr));
        if !self.env.is_empty() {
            b.envs(&self.env);
        }
        b
    }

    /// Adds the granted directories (each costs an `open` of the directory).
    fn preopen(&self, b: &mut WasiCtxBuilder) -> Result<(), GrantError> {
        for (host, guest) in &self.dirs {
            b.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(|e| GrantError::Open {
                    host: host.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        Ok(())
    }
}

/// One store's WASI world, built when the guest first calls a WASI function.
///
/// Many requests never do (a handler that computes its answer from the request writes nothing,
/// reads no clock, asks for no randomness), and for them the context, its random generators,
/// clocks, descriptor table and the output capture are pure cost. So the context is created on
/// first use, from the plugin's resolved grants; only granted directories are opened up front,
/// because opening one can fail and that failure belongs to the start of the call, not to a WASI
/// call in the middle of it.
pub(crate) struct GuestWasi {
    ctx: Option<WasiP1Ctx>,
    /// The output capture of `ctx`, kept to flush it and to read stderr's tail after the call.
    capture: Option<Capture>,
    plugin: Arc<str>,
    request_id: Option<RequestId>,
    grants: Arc<ResolvedGrants>,
}

impl GuestWasi {
    /// The WASI world of one store of `plugin`; builds it now when directories are granted.
    pub(crate) fn new(
        plugin: Arc<str>,
        request_id: Option<RequestId>,
        grants: Arc<ResolvedGrants>,
    ) -> Result<GuestWasi, GrantError> {
        let mut wasi = GuestWasi {
            ctx: None,
            capture: None,
            plugin,
            request_id,
            grants,
        };
        if !wasi.grants.dirs.is_empty() {
            let capture = Capture::new(wasi.plugin.clone(), wasi.request_id);
            let mut b = wasi.grants.builder(&capture);
            wasi.grants.preopen(&mut b)?;
            wasi.ctx = Some(b.build_p1());
            wasi.capture = Some(capture);
        }
        Ok(wasi)
    }

    /// The context, built on first use (what the WASI host functions are given).
    pub(crate) fn ctx(&mut self) -> &mut WasiP1Ctx {
        if self.ctx.is_none() {
            let capture = Capture::new(self.plugin.clone(), self.request_id);
            self.ctx = Some(self.grants.builder(&capture).build_p1());
            self.capture = Some(capture);
        }
        match &mut self.ctx {
            Some(ctx) => ctx,
            None => unreachable!("built just above"),
        }
    }

    /// A world with no grants, for stores that only look at the linker (no guest runs in them).
    pub(crate) fn empty() -> GuestWasi {
        GuestWasi {
            ctx: None,
            capture: None,
            plugin: Arc::from(""),
            request_id: None,
            grants: Arc::default(),
        }
    }

    /// Points this (warm) instance's output at the next request: its lines carry that request's
    /// id, and the output cap and stderr tail start over.
    pub(crate) fn next_request(&mut self, request_id: Option<RequestId>) {
        self.request_id = request_id;
        if let Some(capture) = &self.capture {
            capture.restart(request_id);
        }
    }

    /// Whether the guest used WASI in this store.
    #[cfg(test)]
    pub(crate) fn used(&self) -> bool {
        self.ctx.is_some()
    }

    /// Emits what is left of unterminated output lines (see [`Capture::finish`]).
    pub(crate) fn finish(&self) {
        if let Some(capture) = &self.capture {
            capture.finish();
        }
    }

    /// The end of what the guest wrote to stderr (empty if it never did).
    pub(crate) fn stderr_tail(&self) -> String {
        self.capture
            .as_ref()
            .map(Capture::stderr_tail)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One request's captured guest output. Lines are emitted as they complete (so stdout and
/// stderr interleave in the log as the guest wrote them); `finish` flushes partial lines.
#[derive(Clone)]
pub(crate) struct Capture {
    inner: Arc<Mutex<CaptureState>>,
}

struct CaptureState {
    plugin: Arc<str>,
    request_id: Option<RequestId>,
    out: StreamState,
    err: StreamState,
    /// The last `STDERR_TAIL_BYTES` of stderr, for the error of a failed call.
    stderr_tail: Vec<u8>,
}

#[derive(Default)]
struct StreamState {
    pending: Vec<u8>,
    kept: usize,
    dropped: usize,
}

impl Capture {
    pub(crate) fn new(plugin: Arc<str>, request_id: Option<RequestId>) -> Capture {
        Capture {
            inner: Arc::new(Mutex::new(CaptureState {
                plugin,
                request_id,
                out: StreamState::default(),
                err: StreamState::default(),
                stderr_tail: Vec::new(),
            })),
        }
    }

    fn stream(&self, which: Stream) -> CaptureStream {
        CaptureStream {
            capture: self.clone(),
            which,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        // A panic while holding this lock can only come from tracing; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, which: Stream, bytes: &[u8]) {
        let mut st = self.lock();
        let st = &mut *st;
        if which == Stream::Stderr {
            st.stderr_tail.extend_from_slice(bytes);
            let excess = st.stderr_tail.len().saturating_sub(STDERR_TAIL_BYTES);
            st.stderr_tail.drain(..excess);
        }
        let s = match which {
            Stream::Stdout => &mut st.out,
            Stream::Stderr => &mut st.err,
        };
        let room = MAX_CAPTURED_BYTES - s.kept;
        let take = bytes.len().min(room);
        s.kept += take;
        s.dropped += bytes.len() - take;
        s.pending.extend_from_slice(&bytes[..take]);
        while let Some(line) = next_line(&mut s.pending) {
            emit(&st.plugin, st.request_id, which, &line);
        }
    }

    /// Starts over for another request of the same instance (after [`Capture::finish`]).
    fn restart(&self, request_id: Option<RequestId>) {
        let mut st = self.lock();
        st.request_id = request_id;
        st.out = StreamState::default();
        st.err = StreamState::default();
        st.stderr_tail.clear();
    }

    /// Emits what is left of unterminated lines and a note about dropped output.
    pub(crate) fn finish(&self) {
        let mut st = self.lock();
        let st = &mut *st;
        for (which, s) in [(Stream::Stdout, &mut st.out), (Stream::Stderr, &mut st.err)] {
            if !s.pending.is_empty() {
                let rest = std::mem::take(&mut s.pending);
                emit(&st.plugin, st.request_id, which, &rest);
            }
            if s.dropped > 0 {
                tracing::warn!(
                    target: "wasmgate::guest",
                    plugin = %st.plugin,
                    request_id = display(OptionalId(st.request_id)),
                    stream = which.name(),
                    dropped_bytes = s.dropped,
                    "guest output past {MAX_CAPTURED_BYTES} bytes was dropped"
                );
                s.dropped = 0;
            }
        }
    }

    /// The end of what the guest wrote to stderr, lossily decoded.
    pub(crate) fn stderr_tail(&self) -> String {
        let st = self.lock();
        String::from_utf8_lossy(&st.stderr_tail)
            .trim_end()
            .to_owned()
    }
}

/// Takes the next complete line (without its `\n` / `\r\n`) out of `pending`, or a
/// `MAX_LINE_BYTES` piece of an overlong one.
fn next_line(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = match pending.iter().position(|&b| b == b'\n') {
        Some(i) if i <= MAX_LINE_BYTES => i + 1,
        _ if pending.len() >= MAX_LINE_BYTES => MAX_LINE_BYTES,
        _ => return None,
    };
    let mut line: Vec<u8> = pending.drain(..end).collect();
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Some(line)
}

fn emit(plugin: &str, request_id: Option<RequestId>, which: Stream, line: &[u8]) {
    let line = String::from_utf8_lossy(line);
    let request_id = display(OptionalId(request_id));
    match which {
        Stream::Stdout => tracing::info!(
            target: "wasmgate::guest", plugin, request_id, stream = "stdout", "{line}"
        ),
        Stream::Stderr => tracing::warn!(
            target: "wasmgate::guest", plugin, request_id, stream = "stderr", "{line}"
        ),
    }
}

/// The WASI side of one captured stream. Writes never fail and never block: past the cap bytes
/// are counted and dropped, so a guest's `println!` cannot panic because the log is full.
struct CaptureStream {
    capture: Capture,
    which: Stream,
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CaptureStream {
            capture: self.capture.clone(),
            which: self.which,
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(CaptureStream {
            capture: self.capture.clone(),
            which: self.which,
        })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.capture.write(self.which, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_CAPTURED_BYTES)
    }
}

impl tokio::io::AsyncWrite for CaptureStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.capture.write(self.which, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_strips_crlf() {
        let mut p = b"a\r\nb\nc".to_vec();
        assert_eq!(next_line(&mut p), Some(b"a".to_vec()));
        assert_eq!(next_line(&mut p), Some(b"b".to_vec()));
        assert_eq!(next_line(&mut p), None);
        assert_eq!(p, b"c");
    }

    #[test]
    fn splits_overlong_lines() {
        let mut p = vec![b'x'; MAX_LINE_BYTES + 10];
        assert_eq!(next_line(&mut p).map(|l| l.len()), Some(MAX_LINE_BYTES));
        assert_eq!(next_line(&mut p), None);
    }

    #[test]
    fn the_context_is_built_on_first_use_unless_directories_are_granted() {
        let plain = Arc::new(ResolvedGrants::default());
        let mut wasi = GuestWasi::new("p".into(), None, plain).unwrap();
        assert!(
            !wasi.used(),
            "nothing built for a guest that never calls WASI"
        );
        assert_eq!(wasi.stderr_tail(), "");
        wasi.ctx();
        assert!(wasi.used());

        let dir = std::env::temp_dir();
        let granted = Arc::new(ResolvedGrants {
            env: Vec::new(),
            dirs: vec![(dir.clone(), "/d".into())],
        });
        let eager = GuestWasi::new("p".into(), None, granted).unwrap();
        assert!(
            eager.used(),
            "preopens are opened, and can fail, at the start of the call"
        );
        let missing = Arc::new(ResolvedGrants {
            env: Vec::new(),
            dirs: vec![(dir.join("wasmgate-no-such-dir"), "/d".into())],
        });
        assert!(matches!(
            GuestWasi::new("p".into(), None, missing),
            Err(GrantError::Open { .. })
        ));
    }

    #[test]
    fn caps_output_and_keeps_stderr_tail() {
        let c = Capture::new("t".into(), None);
        let big = vec![b'y'; MAX_CAPTURED_BYTES + 100];
        c.write(Stream::Stdout, &big);
        c.write(Stream::Stderr, b"panicked at src/lib.rs:1:1:\nboom\n");
        {
            let st = c.lock();
            assert_eq!(st.out.kept, MAX_CAPTURED_BYTES);
            assert_eq!(st.out.dropped, 100);
        }
        c.finish();
        assert_eq!(c.stderr_tail(), "panicked at src/lib.rs:1:1:\nboom");
    }
}
