//! Shutdown as a value: a trigger, and signals every task can wait on or poll.
//!
//! Owns the "we are stopping" fact and the OS signals that set it (SIGTERM, SIGINT). It must not
//! decide what stopping means for a connection (that is `conn.rs`) or how long to wait (that is the
//! accept loop's grace period). No globals: the trigger is created in `main` (or a test) and passed
//! down.

use tokio::sync::watch;

/// Sets the shutdown; held by whoever may stop the server.
#[derive(Debug, Clone)]
pub struct Trigger {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

/// Observes the shutdown; every connection task holds a clone.
#[derive(Debug, Clone)]
pub struct Signal {
    rx: watch::Receiver<bool>,
}

/// A new, untriggered shutdown.
pub fn channel() -> (Trigger, Signal) {
    let (tx, rx) = watch::channel(false);
    (
        Trigger {
            tx: std::sync::Arc::new(tx),
        },
        Signal { rx },
    )
}

impl Trigger {
    /// Begins shutdown. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Signal {
    /// Has shutdown begun?
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once shutdown has begun (at once if it already has).
    pub async fn triggered(&mut self) {
        // An error means every trigger is gone: nobody can stop us any more, so wait forever.
        if self.rx.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// On the first SIGTERM or SIGINT: calls `not_ready` (so `/ready` turns 503), keeps serving for
/// `drain_delay` (time for a load balancer to stop sending; a second signal cuts it short), then
/// triggers `trigger`. Errors only if the signal handlers cannot be installed.
pub async fn on_os_signals(
    trigger: Trigger,
    drain_delay: std::time::Duration,
    not_ready: impl FnOnce(),
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
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
    Ok(())
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
