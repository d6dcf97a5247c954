//! The accept loop: connection cap, accept back-off, graceful drain.
//!
//! Owns the listening socket and the set of connection tasks. At `max_connections` it stops
//! calling `accept` (clients wait in the kernel backlog) rather than accepting and dropping; accept
//! errors that mean resource exhaustion (EMFILE, ENFILE, ...) back off exponentially instead of
//! spinning or exiting. On shutdown it stops accepting, lets connections finish, and aborts what is
//! left after the grace period. What happens on a connection is `conn.rs`'s business.

mod conn;
pub(crate) mod registry;
pub(crate) mod shutdown;
mod timer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{HttpLimits, Timeouts};
use crate::dispatch::Dispatcher;
use crate::metrics::{AcceptErrorKind, Metrics};
use crate::sys;
use registry::Registry;

/// Most connections the kernel queues for us while we are not accepting (at `max_connections`,
/// or backing off after EMFILE): the accept backlog.
pub(crate) const LISTEN_BACKLOG: u32 = 1024;

/// What every connection needs, and nothing else: its limits, the registry it reports to, the
/// metrics it records, and the dispatcher that answers its requests.
pub(crate) struct Context {
    pub(crate) limits: ConnLimits,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) dispatcher: Dispatcher,
    /// The response header carrying each request's id (`[server] request_id_header`).
    pub(crate) request_id_header: Option<String>,
}

/// The limits a connection enforces, fixed at start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) http: HttpLimits,
    pub(crate) timeouts: Timeouts,
    pub(crate) max_requests_per_connection: u64,
}

/// What the accept loop enforces, fixed at start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcceptLimits {
    pub(crate) max_connections: usize,
    /// Ceiling of the back-off after accept errors.
    pub(crate) backoff_max: Duration,
    /// How long the drain waits before closing connections by force.
    pub(crate) shutdown_grace: Duration,
}

/// Binds a listening socket with `SO_REUSEADDR` (so a restart does not wait out TIME_WAIT) and,
/// with `reuse_port`, `SO_REUSEPORT` (so several processes share the address and the kernel
/// spreads connections between them).
pub(crate) fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// First back-off after an accept error; doubles up to `timeouts.accept_backoff_max`.
const ACCEPT_BACKOFF_START: Duration = Duration::from_millis(5);

/// What a finished server did, for the closing log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Requests answered over the server's life.
    pub served: u64,
    /// Connections open when shutdown began that closed by themselves within the grace period.
    pub drained: usize,
    /// Connections still open at the end of the grace period, closed by force.
    pub forced: usize,
}

/// Serves `listener` until `shutdown` triggers, then drains. Never returns an error: accept errors
/// are logged, counted and backed off from.
pub(crate) async fn run(
    listener: TcpListener,
    ctx: Arc<Context>,
    limits: AcceptLimits,
    shutdown: shutdown::Signal,
) -> Summary {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut tasks = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_START;
    let mut stop = shutdown.clone();

    loop {
        while tasks.try_join_next().is_some() {}
        // At the cap we wait here, not in accept: new clients queue in the kernel backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stop.triggered() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.triggered() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_START;
                ctx.metrics.connection_opened();
                let handle = ctx.registry.open();
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(error = %err, "cannot set TCP_NODELAY");
                }
                let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
                tasks.spawn(async move {
                    // The connection's place under `max_connections`, released when it ends (or
                    // its task is aborted).
                    let _permit = permit;
                    conn::serve(stream, peer, ctx, handle, shutdown).await
                });
            }
            Err(err) => {
                let kind = accept_error_kind(&err);
                ctx.metrics.accept_error(kind);
                if sys::is_resource_exhaustion(&err) {
                    tracing::warn!(error = %err, ?kind, backoff_ms = backoff.as_millis() as u64, "accept failed: out of resources, backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.triggered() => break,
                    }
                    backoff = (backoff * 2).min(limits.backoff_max);
                } else {
                    tracing::debug!(error = %err, ?kind, "accept failed for one connection");
                }
            }
        }
    }
    drop(listener);
    drain(tasks, &ctx.registry, limits.shutdown_grace).await
}

/// Waits for connection tasks to end by themselves for up to `grace`, then aborts the rest.
async fn drain(mut tasks: JoinSet<()>, registry: &Registry, grace: Duration) -> Summary {
    while tasks.try_join_next().is_some() {}
    let open = tasks.len();
    tracing::info!(
        open,
        grace_ms = grace.as_millis() as u64,
        "draining connections"
    );
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    let forced = loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break 0 },
            _ = &mut deadline => {
                let forced = tasks.len();
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break forced;
            }
        }
    };
    let summary = Summary {
        served: registry.requests_served(),
        drained: open - forced,
        forced,
    };
    tracing::info!(
        served = summary.served,
        drained = summary.drained,
        forced = summary.forced,
        "server stopped"
    );
    summary
}

/// What an accept error was, for metrics.
fn accept_error_kind(err: &std::io::Error) -> AcceptErrorKind {
    match err.raw_os_error() {
        Some(libc::EMFILE) => AcceptErrorKind::Emfile,
        Some(libc::ENFILE) => AcceptErrorKind::Enfile,
        Some(libc::ENOBUFS | libc::ENOMEM) => AcceptErrorKind::NoMem,
        Some(libc::ECONNABORTED) => AcceptErrorKind::Aborted,
        _ => AcceptErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_classified_by_errno() {
        let kind = |errno| accept_error_kind(&std::io::Error::from_raw_os_error(errno));
        assert_eq!(kind(libc::EMFILE), AcceptErrorKind::Emfile);
        assert_eq!(kind(libc::ENFILE), AcceptErrorKind::Enfile);
        assert_eq!(kind(libc::ENOBUFS), AcceptErrorKind::NoMem);
        assert_eq!(kind(libc::ECONNABORTED), AcceptErrorKind::Aborted);
        assert_eq!(kind(libc::EINVAL), AcceptErrorKind::Other);
    }
}
