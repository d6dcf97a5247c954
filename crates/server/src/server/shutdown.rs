//! Shutdown as a value: a trigger, and signals every task can wait on or poll.
//!
//! Owns the "we are stopping" fact and the OS signals that set it (SIGTERM, SIGINT). It must not
//! decide what stopping means for a connection (that is `conn.rs`) or how long to wait (that is the
//! accept loop's grace period). No globals: the trigger is created in `main` (or a test) and passed
//! down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Sets the shutdown; held by whoever may stop the server.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    tx: Arc<watch::Sender<bool>>,
    flag: Arc<AtomicBool>,
}

/// Observes the shutdown; every connection task holds a clone.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    rx: watch::Receiver<bool>,
    /// The same fact as `rx`'s value, for [`Signal::is_triggered`]: every response asks, and a
    /// load of a flag that is written once is cheaper than the channel's read lock.
    flag: Arc<AtomicBool>,
}

/// A new, untriggered shutdown.
pub(crate) fn channel() -> (Trigger, Signal) {
    let (tx, rx) = watch::channel(false);
    let flag = Arc::new(AtomicBool::new(false));
    (
        Trigger {
            tx: Arc::new(tx),
            flag: flag.clone(),
        },
        Signal { rx, flag },
    )
}

impl Trigger {
    /// Begins shutdown. Idempotent.
    pub(crate) fn trigger(&self) {
        // The flag first: whoever is woken by the channel must already see it set.
        self.flag.store(true, Ordering::Release);
        self.tx.send_replace(true);
    }
}

impl Signal {
    /// Has shutdown begun?
    pub(crate) fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Completes once shutdown has begun (at once if it already has).
    pub(crate) async fn triggered(&mut self) {
        // An error means every trigger is gone: nobody can stop us any more, so wait forever.
        if self.rx.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Installs SIGTERM and SIGINT handlers now, and returns the future that acts on them: on the
/// first signal it calls `not_ready` (so `/ready` turns 503), keeps serving for `drain_delay`
/// (time for a load balancer to stop sending; a second signal cuts it short), then triggers
/// `trigger`. Errors only if the handlers cannot be installed.
pub(crate) fn on_os_signals(
    trigger: Trigger,
    drain_delay: std::time::Duration,
    not_ready: impl FnOnce() + Send + 'static,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        not_ready();
        if !drain_delay.is_zero() {
            tracing::info!(
                signal = name,
                delay_ms = drain_delay.as_millis() as u64,
                "shutdown requested: not ready; still serving during the drain delay"
            );
            tokio::select! {
                _ = tokio::time::sleep(drain_delay) => {}
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        tracing::info!(
            signal = name,
            "shutdown requested: no longer accepting, draining in-flight requests"
        );
        trigger.trigger();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signal_sees_the_trigger() {
        let (trigger, mut signal) = channel();
        assert!(!signal.is_triggered());
        let mut other = signal.clone();
        trigger.trigger();
        trigger.trigger();
        signal.triggered().await;
        other.triggered().await;
        assert!(other.is_triggered());
    }
}
