//! The accept loop: connection cap, accept back-off, graceful drain.
//!
//! Owns the listening socket and the set of connection tasks. At `max_connections` it stops
//! calling `accept` (clients wait in the kernel backlog) rather than accepting and dropping; accept
//! errors that mean resource exhaustion (EMFILE, ENFILE, ...) back off exponentially instead of
//! spinning or exiting. On shutdown it stops accepting, lets connections finish, and aborts what is
//! left after the grace period. What happens on a connection is `conn.rs`'s business.

mod conn;
pub mod registry;
pub mod shutdown;
mod timer;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::app::App;
use crate::sys;

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
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: shutdown::Signal) -> Summary {
    let limits = app.settings();
    let permits = Arc::new(Semaphore::new(limits.server.max_connections));
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
                app.metrics.connection_opened();
                let handle = app.registry.open(peer);
                tasks.spawn(conn::serve(
                    stream,
                    handle,
                    app.clone(),
                    shutdown.clone(),
                    permit,
                ));
            }
            Err(err) => {
                let kind = sys::accept_error_kind(&err);
                app.metrics.accept_error(kind);
                if sys::is_resource_exhaustion(&err) {
                    tracing::warn!(error = %err, kind, backoff_ms = backoff.as_millis() as u64, "accept failed: out of resources, backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.triggered() => break,
                    }
                    backoff = (backoff * 2).min(limits.timeouts.accept_backoff_max);
                } else {
                    tracing::debug!(error = %err, kind, "accept failed for one connection");
                }
            }
        }
    }
    drop(listener);
    drain(tasks, &app, limits.timeouts.shutdown_grace).await
}

/// Waits for connection tasks to end by themselves for up to `grace`, then aborts the rest.
async fn drain(mut tasks: JoinSet<()>, app: &App, grace: Duration) -> Summary {
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
        served: app.registry.requests_served(),
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
