//! One connection: read a head, read its body, dispatch, write, and again while keep-alive holds.
//!
//! Owns the socket, the connection's one read buffer and one write buffer, and every per-connection
//! timeout. Parsing is the sans-IO parser's (`http::parse`); choosing a response is `dispatch`'s;
//! statuses for failures come from `error::RequestError`. The buffer is bounded: it holds at most the
//! current head (itself bounded by `max_header_bytes`) plus one read's worth, because body bytes
//! are decoded out of it as they arrive. An idle keep-alive connection gives its buffer back.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout};
use tracing::Instrument;

use super::registry::{ConnHandle, ConnState};
use super::shutdown::Signal;
use super::timer::Timer;
use crate::app::App;
use crate::dispatch::dispatch;
use crate::error::RequestError;
use crate::http::encode::{self, CONTINUE_100, Response};
use crate::http::{BodyDecoder, BodyStatus, Framing as BodyFraming, Parser, Status, Version};
use crate::metrics::NO_ROUTE;
use crate::routes::Match;

/// Most bytes read from the socket at once. Also the slack the read buffer may hold beyond the head
/// limit, so it bounds per-connection memory together with `max_header_bytes`.
const READ_CHUNK: usize = 8 * 1024;
/// Most bytes read and discarded during a lingering close.
const LINGER_MAX_BYTES: usize = 64 * 1024;

/// Why a connection ended: the `reason` label of `wasmgate_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// The client closed (or reset) between requests, or mid-request.
    ClientClosed,
    /// The request asked for it (`Connection: close`, or HTTP/1.0 without keep-alive).
    Requested,
    IdleTimeout,
    HeaderTimeout,
    BodyTimeout,
    WriteTimeout,
    /// A request the server refused (parse/framing errors close the connection).
    BadRequest,
    Io,
    Shutdown,
    MaxRequests,
}

impl Close {
    fn label(self) -> &'static str {
        match self {
            Close::ClientClosed => "client_closed",
            Close::Requested => "requested",
            Close::IdleTimeout => "idle_timeout",
            Close::HeaderTimeout => "header_timeout",
            Close::BodyTimeout => "body_timeout",
            Close::WriteTimeout => "write_timeout",
            Close::BadRequest => "bad_request",
            Close::Io => "io_error",
            Close::Shutdown => "shutdown",
            Close::MaxRequests => "max_requests",
        }
    }
}

/// Serves one accepted connection to its end. The permit is the connection's place under
/// `max_connections`, released when this returns (or the task is aborted).
pub(super) async fn serve(
    stream: TcpStream,
    handle: ConnHandle,
    app: Arc<App>,
    shutdown: Signal,
    _permit: OwnedSemaphorePermit,
) {
    let span = tracing::debug_span!("conn", id = handle.id());
    async move {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let parser = Parser::new(app.settings().http);
        // Armed for the first head's deadline, which `read_head` asks for first.
        let timer = Timer::new(Instant::now() + app.settings().timeouts.header_read);
        let mut stopping = shutdown.clone();
        let mut conn = Connection {
            stream,
            timer,
            stopping: Box::pin(async move { stopping.triggered().await }),
            buf: Vec::new(),
            out: Vec::new(),
            parser,
            closed: CloseGuard {
                app: app.clone(),
                reason: None,
            },
            app,
            handle,
            shutdown,
        };
        let reason = conn.run().await;
        conn.closed.reason = Some(reason.label());
        tracing::debug!(reason = reason.label(), "connection closed");
    }
    .instrument(span)
    .await
}

/// Counts the connection as closed exactly once, however its task ends: a task aborted at the end
/// of the shutdown grace period never reaches its last line, so it counts as `forced` here.
struct CloseGuard {
    app: Arc<App>,
    reason: Option<&'static str>,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        self.app
            .metrics
            .connection_closed(self.reason.unwrap_or("forced"));
    }
}

struct Connection {
    stream: TcpStream,
    /// The one timer behind the head and idle deadlines (see `timer.rs` for why only one).
    timer: Timer,
    /// Completes when shutdown begins; what an idle wait selects on. Made once per connection, so
    /// that a wait re-polls a registered waiter instead of registering (and removing) one per
    /// request. Never polled again once complete: the connection closes then.
    stopping: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Bytes received and not yet consumed: the current head, then unread body or pipelined bytes.
    buf: Vec<u8>,
    /// The encoded response, reused across requests.
    out: Vec<u8>,
    parser: Parser,
    app: Arc<App>,
    handle: ConnHandle,
    shutdown: Signal,
    closed: CloseGuard,
}

/// What stops the current request: an error to answer (then close), or a plain close.
enum Stop {
    Answer(RequestError, Close),
    Close(Close),
}

impl From<Close> for Stop {
    fn from(c: Close) -> Stop {
        Stop::Close(c)
    }
}

impl Connection {
    async fn run(&mut self) -> Close {
        let mut first = true;
        loop {
            match self.serve_one(first).await {
                Ok(()) => first = false,
                Err(Stop::Close(reason)) => return reason,
                Err(Stop::Answer(err, reason)) => {
                    self.answer_error(err).await;
                    return reason;
                }
            }
        }
    }

    /// Serves one request; `Ok` means the connection stays open for the next.
    async fn serve_one(&mut self, first: bool) -> Result<(), Stop> {
        self.read_head(first).await?;
        let started = Instant::now();
        let request_id = self.app.registry.next_request_id();
        let head = self.parser.head();
        let (head_len, framing, version) = (head.head_len, head.framing, head.version);
        let (wants_keep_alive, expect_continue) = (head.keep_alive, head.expect_continue);
        let routing = self.app.routing();
        let (matched, span) = {
            let view = head.view(&self.buf);
            let span = tracing::debug_span!(
                "request",
                id = request_id,
                method = view.method(),
                target = view.target()
            );
            (routing.routes.matches(view.method(), view.path()), span)
        };

        let mut body = Vec::new();
        if !matches!(framing, BodyFraming::None) {
            if expect_continue {
                if !matches!(matched, Match::Found { .. }) {
                    // Refuse before the client sends the body; it was never read, so close after.
                    let err = match matched {
                        Match::MethodNotAllowed { allow } => {
                            RequestError::MethodNotAllowed { allow }
                        }
                        _ => RequestError::NotFound,
                    };
                    return Err(Stop::Answer(err, Close::BadRequest));
                }
                self.write(CONTINUE_100).await?;
            }
            self.handle.set_state(ConnState::ReadingBody);
            body = self.read_body(framing, head_len).await?;
        }

        self.handle.set_state(ConnState::Dispatching);
        let view = self.parser.head().view(&self.buf);
        let answer = dispatch(&self.app, &routing, matched, &view, &body, request_id)
            .instrument(span)
            .await;
        let method_is_head = view.method() == "HEAD";
        let served = self.handle.requests() + 1;
        let keep_alive = wants_keep_alive
            && !self.shutdown.is_triggered()
            && served < self.app.settings().server.max_requests_per_connection;
        let framing = encode::Framing {
            head_request: method_is_head,
            keep_alive,
            http10: version == Version::Http10,
        };
        self.out.clear();
        with_http_date(|date| encode::encode(&answer.response, framing, date, &mut self.out));
        self.app.metrics.request(
            answer.route,
            view.method(),
            answer.response.status,
            started.elapsed(),
        );

        self.handle.set_state(ConnState::Writing);
        let out = std::mem::take(&mut self.out);
        let written = self.write(&out).await;
        self.out = out;
        written?;
        self.handle.request_served();
        self.buf.drain(..head_len);
        self.parser.reset();
        if keep_alive {
            return Ok(());
        }
        self.linger().await;
        Err(Stop::Close(if !wants_keep_alive {
            Close::Requested
        } else if self.shutdown.is_triggered() {
            Close::Shutdown
        } else {
            Close::MaxRequests
        }))
    }

    /// Reads until the parser has a complete head.
    async fn read_head(&mut self, first: bool) -> Result<(), Stop> {
        let timeouts = self.app.settings().timeouts;
        // The slowloris bound: one deadline for the whole head, from its first byte (or from accept
        // for a connection's first request, so connecting and sending nothing is bounded too).
        let mut deadline = first.then(|| Instant::now() + timeouts.header_read);
        loop {
            if !self.buf.is_empty() {
                self.handle.set_state(ConnState::ReadingHead);
                match self.parser.parse(&self.buf) {
                    Ok(Status::Complete) => return Ok(()),
                    Ok(Status::Partial) => {}
                    Err(err) => return Err(Stop::Answer(err.into(), Close::BadRequest)),
                }
                let deadline =
                    *deadline.get_or_insert_with(|| Instant::now() + timeouts.header_read);
                let Connection {
                    stream,
                    buf,
                    app,
                    timer,
                    ..
                } = self;
                tokio::select! {
                    read = read_more(stream, buf, app) => match read? {
                        0 => return Err(Close::ClientClosed.into()),
                        _ => continue,
                    },
                    _ = timer.at(deadline) => {
                        self.app.metrics.timeout("header_read");
                        return Err(Stop::Answer(RequestError::HeaderTimeout, Close::HeaderTimeout));
                    }
                }
            }
            // No byte of the next request yet: the connection is idle.
            self.handle.set_state(ConnState::Idle);
            let (wait_until, on_timeout, kind) = match deadline {
                Some(d) => (d, Close::HeaderTimeout, "header_read"),
                None => (Instant::now() + timeouts.idle, Close::IdleTimeout, "idle"),
            };
            match self.wait_first_byte(wait_until).await? {
                Some(0) => return Err(Close::ClientClosed.into()),
                Some(_) => {}
                None => {
                    self.app.metrics.timeout(kind);
                    return Err(on_timeout.into());
                }
            }
        }
    }

    /// Waits for the first byte of a request without holding a buffer: an idle connection costs
    /// its socket and task only. `Ok(None)` on timeout; shutdown closes an idle connection at once.
    async fn wait_first_byte(&mut self, until: Instant) -> Result<Option<usize>, Close> {
        match self.stream.try_read_buf(&mut self.buf) {
            Ok(n) => return received(&self.app, n).map(Some),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_close(&e)),
        }
        self.buf = Vec::new();
        tokio::select! {
            ready = self.stream.readable() => ready.map_err(|e| io_close(&e))?,
            _ = self.timer.at(until) => return Ok(None),
            _ = self.stopping.as_mut() => return Err(Close::Shutdown),
        }
        self.read_more().await.map(Some)
    }

    /// Reads one chunk into the buffer; `Ok(0)` is end of stream.
    async fn read_more(&mut self) -> Result<usize, Close> {
        read_more(&mut self.stream, &mut self.buf, &self.app).await
    }

    /// Decodes the body that follows the head at `head_len`, removing body bytes from the buffer
    /// as they are decoded so the head stays in place for dispatch.
    async fn read_body(&mut self, framing: BodyFraming, head_len: usize) -> Result<Vec<u8>, Stop> {
        let limits = self.app.settings().http;
        let timeouts = self.app.settings().timeouts;
        // Two bounds: no byte for `body_read` (a stall), and the whole body within `body_total`
        // (a client dripping one byte per stall period would otherwise hold the connection for
        // `max_body_bytes` stall periods).
        let deadline = Instant::now() + timeouts.body_total;
        let mut decoder = BodyDecoder::new(framing, &limits);
        let mut body = Vec::new();
        if let BodyFraming::Length(n) = framing {
            // Declared and already checked against max_body_bytes by the parser.
            body.reserve(usize::try_from(n).unwrap_or(0));
        }
        loop {
            let (used, status) = decoder
                .decode(&self.buf[head_len..], &mut body)
                .map_err(|e| Stop::Answer(e.into(), Close::BadRequest))?;
            self.buf.drain(head_len..head_len + used);
            if status == BodyStatus::Complete {
                return Ok(body);
            }
            let stall_until = (Instant::now() + timeouts.body_read).min(deadline);
            match tokio::time::timeout_at(stall_until, self.read_more()).await {
                Ok(read) if read? == 0 => return Err(Close::ClientClosed.into()),
                Ok(_) => {}
                Err(_) => {
                    let kind = if Instant::now() >= deadline {
                        "body_total"
                    } else {
                        "body_read"
                    };
                    self.app.metrics.timeout(kind);
                    return Err(Stop::Answer(RequestError::BodyTimeout, Close::BodyTimeout));
                }
            }
        }
    }

    /// Writes all of `bytes`, closing if the client stops reading for longer than the write timeout.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), Close> {
        let stall = self.app.settings().timeouts.write;
        let mut rest = bytes;
        while !rest.is_empty() {
            // Most responses fit the socket buffer: try without arming the write timeout first.
            let written = match self.stream.try_write(rest) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match timeout(stall, self.stream.write(rest)).await {
                        Ok(written) => written,
                        Err(_) => {
                            self.app.metrics.timeout("write");
                            return Err(Close::WriteTimeout);
                        }
                    }
                }
                written => written,
            };
            match written {
                Ok(0) => return Err(Close::ClientClosed),
                Ok(n) => rest = &rest[n..],
                Err(e) => return Err(io_close(&e)),
            }
        }
        self.app.metrics.bytes(0, bytes.len() as u64);
        Ok(())
    }

    /// Answers `err` with `Connection: close`, then closes gracefully.
    async fn answer_error(&mut self, err: RequestError) {
        if let RequestError::Parse(e) = &err {
            self.app.metrics.parse_error(e.kind());
        } else if let RequestError::Body(e) = &err {
            self.app.metrics.parse_error(e.kind());
        }
        tracing::debug!(kind = err.kind(), error = %err, "refusing request");
        let response: Response = err.response();
        let framing = encode::Framing {
            head_request: false,
            keep_alive: false,
            http10: false,
        };
        let mut out = Vec::new();
        with_http_date(|date| encode::encode(&response, framing, date, &mut out));
        self.app
            .metrics
            .request(NO_ROUTE, "OTHER", response.status, Duration::ZERO);
        if self.write(&out).await.is_ok() {
            self.linger().await;
        }
    }

    /// Half-closes, then reads and discards what the client still sends for a bounded time, so
    /// that our answer is not destroyed by a reset (RFC 9112 §9.6).
    async fn linger(&mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = Instant::now() + self.app.settings().timeouts.linger;
        // On the heap, not in this future: a 4 KiB array here would be part of every connection
        // task's state for its whole life, idle keep-alive connections included.
        let mut sink = vec![0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_MAX_BYTES {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            }
        }
    }
}

/// [`Connection::read_more`] on borrowed parts, for waits that also need the connection's timer.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, app: &App) -> Result<usize, Close> {
    buf.reserve(READ_CHUNK);
    let n = stream.read_buf(buf).await.map_err(|e| io_close(&e))?;
    received(app, n)
}

fn received(app: &App, n: usize) -> Result<usize, Close> {
    app.metrics.bytes(n as u64, 0);
    Ok(n)
}

fn io_close(err: &io::Error) -> Close {
    match err.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Close::ClientClosed,
        _ => Close::Io,
    }
}

/// Runs `f` with the `Date` header value for now (RFC 9110 §6.6.1: one-second resolution). Each
/// worker thread formats it once per second and reuses it for every response in that second.
fn with_http_date<R>(f: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const {
            std::cell::RefCell::new((0, String::new()))
        };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != second || text.is_empty() {
            *text = httpdate::fmt_http_date(now);
            *at = second;
        }
        f(text)
    })
}
