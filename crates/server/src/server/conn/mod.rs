//! One connection: read a head, read its body, dispatch, write, and again while keep-alive holds.
//!
//! Owns the connection's byte stream (any [`Transport`]), its one read buffer and one write
//! buffer, and every per-connection timeout. Parsing is the sans-IO parser's; choosing a response
//! is the [`Dispatcher`](crate::dispatch::Dispatcher)'s; statuses for failures come from
//! [`RequestError`]. Every response, a handler's or an error's, leaves through [`Connection::respond`]
//! (encode, count, write), so there is one way a response is framed and recorded.
//!
//! An exchange walks the states of [`ConnState`]: idle (waiting for a first byte, holding no
//! buffer), reading the head, reading the body, dispatching, writing; then keep-alive (back to
//! idle) or close, with a reason ([`CloseReason`]). The buffer is bounded: it holds at most the
//! current head (itself bounded by `max_header_bytes`) plus one read's worth, because body bytes
//! are decoded out of it as they arrive.

#[cfg(test)]
mod tests;
mod transport;

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::SystemTime;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};
use tracing::Instrument;
use wasmgate_http::encode::{self, CONTINUE_100, Response};
use wasmgate_http::{BodyDecoder, BodyStatus, Framing as BodyFraming, Parser, Status, Version};

pub(crate) use transport::Transport;

use super::Context;
use super::registry::ConnHandle;
use super::shutdown::Signal;
use super::timer::Timer;
use crate::dispatch::Origin;
use crate::error::RequestError;
use crate::metrics::{CloseReason, ConnState, NO_ROUTE, TimeoutKind, method_label};
use crate::request_id::RequestId;
use crate::routes::Match;

/// Most bytes read from the socket at once. Also the slack the read buffer may hold beyond the head
/// limit, so it bounds per-connection memory together with `max_header_bytes`.
const READ_CHUNK: usize = 8 * 1024;
/// Most bytes read and discarded during a lingering close.
const LINGER_MAX_BYTES: usize = 64 * 1024;
/// Read buffer kept for a lingering close (on the heap, not in the connection's future).
const LINGER_CHUNK: usize = 4 * 1024;

/// Serves one accepted connection to its end.
pub(crate) async fn serve<T: Transport>(
    stream: T,
    peer: SocketAddr,
    ctx: Arc<Context>,
    handle: ConnHandle,
    shutdown: Signal,
) {
    let span = tracing::debug_span!("conn", id = handle.id());
    async move {
        let parser = Parser::new(ctx.limits.http);
        // Armed for the first head's deadline, which `read_head` asks for first.
        let timer = Timer::new(Instant::now() + ctx.limits.timeouts.header_read);
        let mut stopping = shutdown.clone();
        let mut conn = Connection {
            stream,
            peer,
            request_id: None,
            timer,
            stopping: Box::pin(async move { stopping.triggered().await }),
            buf: Vec::new(),
            out: Vec::new(),
            parser,
            closed: CloseGuard {
                ctx: ctx.clone(),
                reason: None,
            },
            ctx,
            handle,
            shutdown,
        };
        let reason = conn.run().await;
        conn.closed.reason = Some(reason);
        tracing::debug!(reason = ?reason, "connection closed");
    }
    .instrument(span)
    .await
}

/// Counts the connection as closed exactly once, however its task ends: a task aborted at the end
/// of the shutdown grace period never reaches its last line, so it counts as `forced` here.
struct CloseGuard {
    ctx: Arc<Context>,
    reason: Option<CloseReason>,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        self.ctx
            .metrics
            .connection_closed(self.reason.unwrap_or(CloseReason::Forced));
    }
}

struct Connection<T> {
    stream: T,
    /// Who is at the other end (for the plugins' `peer_addr` and `client_addr`).
    peer: SocketAddr,
    /// The id of the request being served, once its head is complete: its log lines, its
    /// response header, a refusal's header too.
    request_id: Option<RequestId>,
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
    ctx: Arc<Context>,
    handle: ConnHandle,
    shutdown: Signal,
    closed: CloseGuard,
}

/// What stops the current exchange: an error to answer (then close), or a plain close.
enum Stop {
    Answer(RequestError, CloseReason),
    Close(CloseReason),
}

impl From<CloseReason> for Stop {
    fn from(c: CloseReason) -> Stop {
        Stop::Close(c)
    }
}

/// How a response is framed and counted: what [`Connection::respond`] needs besides the response.
struct Reply<'a> {
    /// The `route` label: the pattern that matched, or `none`.
    route: &'a str,
    /// The `method` label (a standard method or `OTHER`).
    method: &'static str,
    framing: encode::Framing,
    /// When the head was complete (latency is measured from there).
    started: Instant,
}

impl Reply<'_> {
    /// A refusal: it closes the connection (no keep-alive), HTTP/1.1 framing, no HEAD rule.
    fn closing(started: Instant) -> Reply<'static> {
        Reply {
            route: NO_ROUTE,
            method: "OTHER",
            framing: encode::Framing {
                head_request: false,
                keep_alive: false,
                http10: false,
            },
            started,
        }
    }
}

impl<T: Transport> Connection<T> {
    /// Serves exchanges until one ends the connection; returns why it ended.
    async fn run(&mut self) -> CloseReason {
        let mut first = true;
        loop {
            match self.exchange(first).await {
                Ok(()) => first = false,
                Err(Stop::Close(reason)) => return reason,
                Err(Stop::Answer(err, reason)) => {
                    self.refuse(err).await;
                    return reason;
                }
            }
        }
    }

    /// One request and its response; `Ok` means the connection stays open for the next.
    async fn exchange(&mut self, first: bool) -> Result<(), Stop> {
        self.request_id = None;
        self.read_head(first).await?;
        let started = Instant::now();
        let request_id = self.ctx.registry.next_request_id();
        self.request_id = Some(request_id);
        let head = self.parser.head();
        let (head_len, framing, version) = (head.head_len, head.framing, head.version);
        let (wants_keep_alive, expect_continue) = (head.keep_alive, head.expect_continue);
        let view = head.view(&self.buf);
        let routing = self
            .ctx
            .dispatcher
            .routing_for(view.method(), view.path())
            .await;
        let span = tracing::debug_span!(
            "request",
            id = %request_id,
            method = view.method(),
            target = view.target()
        );
        let matched = routing.routes.matches(view.method(), view.path());

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
                    return Err(Stop::Answer(err, CloseReason::BadRequest));
                }
                self.write(CONTINUE_100).await?;
            }
            self.handle.set_state(ConnState::ReadingBody);
            body = self.read_body(framing, head_len).await?;
        }

        self.handle.set_state(ConnState::Dispatching);
        let view = self.parser.head().view(&self.buf);
        let answer = self
            .ctx
            .dispatcher
            .dispatch(
                &routing,
                matched,
                &view,
                &body,
                Origin {
                    peer: self.peer,
                    id: request_id,
                },
            )
            .instrument(span)
            .await;
        let served = self.handle.requests() + 1;
        let keep_alive = wants_keep_alive
            && !self.shutdown.is_triggered()
            && served < self.ctx.limits.max_requests_per_connection;
        let reply = Reply {
            route: answer.route,
            method: method_label(view.method()),
            framing: encode::Framing {
                head_request: view.method() == "HEAD",
                keep_alive,
                http10: version == Version::Http10,
            },
            started,
        };
        self.respond(&answer.response, reply).await?;
        self.handle.request_served();
        self.buf.drain(..head_len);
        self.parser.reset();
        if keep_alive {
            return Ok(());
        }
        self.linger().await;
        Err(Stop::Close(if !wants_keep_alive {
            CloseReason::Requested
        } else if self.shutdown.is_triggered() {
            CloseReason::Shutdown
        } else {
            CloseReason::MaxRequests
        }))
    }

    /// THE way out for every response: encode it with its framing and the server's own headers
    /// (the request id), count it, write it.
    async fn respond(&mut self, response: &Response, reply: Reply<'_>) -> Result<(), CloseReason> {
        self.out.clear();
        let id = self.request_id.map(RequestId::to_text);
        let header = self.ctx.request_id_header.as_deref();
        let extra: &[(&str, &[u8])] = match (header, &id) {
            (Some(name), Some(id)) => &[(name, id.as_bytes())],
            _ => &[],
        };
        with_http_date(|date| encode::encode(response, reply.framing, date, extra, &mut self.out));
        self.ctx.metrics.request(
            reply.route,
            reply.method,
            response.status,
            reply.started.elapsed(),
        );
        self.handle.set_state(ConnState::Writing);
        let out = std::mem::take(&mut self.out);
        let written = self.write(&out).await;
        self.out = out;
        written
    }

    /// Answers `err` with `Connection: close`, then closes gracefully.
    async fn refuse(&mut self, err: RequestError) {
        if let RequestError::Parse(e) = &err {
            self.ctx.metrics.parse_error(e.kind());
        } else if let RequestError::Body(e) = &err {
            self.ctx.metrics.parse_error(e.kind());
        }
        tracing::debug!(kind = err.kind(), error = %err, "refusing request");
        // A refusal is counted under no route and no method: its head may never have parsed.
        if self
            .respond(&err.response(), Reply::closing(Instant::now()))
            .await
            .is_ok()
        {
            self.linger().await;
        }
    }

    /// Reads until the parser has a complete head.
    async fn read_head(&mut self, first: bool) -> Result<(), Stop> {
        let timeouts = self.ctx.limits.timeouts;
        // The slowloris bound: one deadline for the whole head, from its first byte (or from accept
        // for a connection's first request, so connecting and sending nothing is bounded too).
        let mut deadline = first.then(|| Instant::now() + timeouts.header_read);
        loop {
            if !self.buf.is_empty() {
                self.handle.set_state(ConnState::ReadingHead);
                match self.parser.parse(&self.buf) {
                    Ok(Status::Complete) => return Ok(()),
                    Ok(Status::Partial) => {}
                    Err(err) => return Err(Stop::Answer(err.into(), CloseReason::BadRequest)),
                }
                let deadline =
                    *deadline.get_or_insert_with(|| Instant::now() + timeouts.header_read);
                let Connection {
                    stream,
                    buf,
                    ctx,
                    timer,
                    ..
                } = self;
                tokio::select! {
                    read = read_more(stream, buf, ctx) => match read? {
                        0 => return Err(CloseReason::ClientClosed.into()),
                        _ => continue,
                    },
                    _ = timer.at(deadline) => {
                        self.ctx.metrics.timeout(TimeoutKind::HeaderRead);
                        return Err(Stop::Answer(RequestError::HeaderTimeout, CloseReason::HeaderTimeout));
                    }
                }
            }
            // No byte of the next request yet: the connection is idle.
            self.handle.set_state(ConnState::Idle);
            let (wait_until, on_timeout, kind) = match deadline {
                Some(d) => (d, CloseReason::HeaderTimeout, TimeoutKind::HeaderRead),
                None => (
                    Instant::now() + timeouts.idle,
                    CloseReason::IdleTimeout,
                    TimeoutKind::Idle,
                ),
            };
            match self.wait_first_byte(wait_until).await? {
                Some(0) => return Err(CloseReason::ClientClosed.into()),
                Some(_) => {}
                None => {
                    self.ctx.metrics.timeout(kind);
                    return Err(on_timeout.into());
                }
            }
        }
    }

    /// Waits for the first byte of a request without holding a buffer: an idle connection costs
    /// its socket and task only. `Ok(None)` on timeout; shutdown closes an idle connection at once.
    async fn wait_first_byte(&mut self, until: Instant) -> Result<Option<usize>, CloseReason> {
        // The next request is often already here (pipelining, a fast client): read it without
        // waiting, into the buffer the last request left.
        if let Some(read) = now(self.stream.read_buf(&mut self.buf)).await {
            let n = read.map_err(|e| io_close(&e))?;
            return Ok(Some(received(&self.ctx, n)));
        }
        self.buf = Vec::new();
        tokio::select! {
            ready = self.stream.readable() => ready.map_err(|e| io_close(&e))?,
            _ = self.timer.at(until) => return Ok(None),
            _ = self.stopping.as_mut() => return Err(CloseReason::Shutdown),
        }
        // Bytes are there (at once for a TCP socket). A transport that cannot wait without
        // reading waits here, under the same deadline and shutdown.
        let Connection {
            stream,
            buf,
            ctx,
            timer,
            stopping,
            ..
        } = self;
        tokio::select! {
            read = read_more(stream, buf, ctx) => read.map(Some),
            _ = timer.at(until) => Ok(None),
            _ = stopping.as_mut() => Err(CloseReason::Shutdown),
        }
    }

    /// Decodes the body that follows the head at `head_len`, removing body bytes from the buffer
    /// as they are decoded so the head stays in place for dispatch.
    async fn read_body(&mut self, framing: BodyFraming, head_len: usize) -> Result<Vec<u8>, Stop> {
        let limits = self.ctx.limits.http;
        let timeouts = self.ctx.limits.timeouts;
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
                .map_err(|e| Stop::Answer(e.into(), CloseReason::BadRequest))?;
            self.buf.drain(head_len..head_len + used);
            if status == BodyStatus::Complete {
                return Ok(body);
            }
            let stall_until = (Instant::now() + timeouts.body_read).min(deadline);
            let read = read_more(&mut self.stream, &mut self.buf, &self.ctx);
            match tokio::time::timeout_at(stall_until, read).await {
                Ok(read) if read? == 0 => return Err(CloseReason::ClientClosed.into()),
                Ok(_) => {}
                Err(_) => {
                    let kind = if Instant::now() >= deadline {
                        TimeoutKind::BodyTotal
                    } else {
                        TimeoutKind::BodyRead
                    };
                    self.ctx.metrics.timeout(kind);
                    return Err(Stop::Answer(
                        RequestError::BodyTimeout,
                        CloseReason::BodyTimeout,
                    ));
                }
            }
        }
    }

    /// Writes all of `bytes`, closing if the client stops reading for longer than the write timeout.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), CloseReason> {
        let stall = self.ctx.limits.timeouts.write;
        let mut rest = bytes;
        while !rest.is_empty() {
            // Most responses fit the socket buffer: try without arming the write timeout first.
            let written = match now(self.stream.write(rest)).await {
                Some(written) => written,
                None => match timeout(stall, self.stream.write(rest)).await {
                    Ok(written) => written,
                    Err(_) => {
                        self.ctx.metrics.timeout(TimeoutKind::Write);
                        return Err(CloseReason::WriteTimeout);
                    }
                },
            };
            match written {
                Ok(0) => return Err(CloseReason::ClientClosed),
                Ok(n) => rest = &rest[n..],
                Err(e) => return Err(io_close(&e)),
            }
        }
        self.ctx.metrics.bytes(0, bytes.len() as u64);
        Ok(())
    }

    /// Half-closes, then reads and discards what the client still sends for a bounded time, so
    /// that our answer is not destroyed by a reset (RFC 9112 §9.6).
    async fn linger(&mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = Instant::now() + self.ctx.limits.timeouts.linger;
        // On the heap, not in this future: an array here would be part of every connection task's
        // state for its whole life, idle keep-alive connections included.
        let mut sink = vec![0u8; LINGER_CHUNK];
        let mut drained = 0;
        while drained < LINGER_MAX_BYTES {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            }
        }
    }
}

/// Polls `fut` once: `Some` of its output when it is ready without waiting, `None` when it would
/// wait (it is then dropped, which for reads and writes of a stream loses nothing).
async fn now<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Reads one chunk into the buffer; `Ok(0)` is end of stream.
async fn read_more<T: Transport>(
    stream: &mut T,
    buf: &mut Vec<u8>,
    ctx: &Context,
) -> Result<usize, CloseReason> {
    buf.reserve(READ_CHUNK);
    let n = stream.read_buf(buf).await.map_err(|e| io_close(&e))?;
    Ok(received(ctx, n))
}

fn received(ctx: &Context, n: usize) -> usize {
    ctx.metrics.bytes(n as u64, 0);
    n
}

fn io_close(err: &io::Error) -> CloseReason {
    match err.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => CloseReason::ClientClosed,
        _ => CloseReason::Io,
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
