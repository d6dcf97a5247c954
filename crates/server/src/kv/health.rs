//! A store's health and upkeep: whether it is up (what `/ready` and `wasmgate_kv_store_up`
//! follow), the health check that alone brings a store back, the one line logged when it goes
//! down or comes up, and the upkeep task that checks every store and sweeps expired entries.
//! Only a connectivity fault (or a Redis server's silence for its whole timeout) takes a store
//! down, through [`Store::down`]; deciding which failures are faults is the backends' `classify`
//! ([`super::Fault`]). It must not touch the operations, their limits or their bounds (`kv`'s
//! `Store::run` records each operation and calls in here), nor `/ready` itself (the server's).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Backend, KvError, Store, Stores};
use crate::metrics::{KvOp, KvOutcome};

impl Store {
    /// Whether the store is up: no connectivity fault since the last health check that passed.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The health check (what `/ready` follows, through the upkeep task): verifies the storage if
    /// it has not been since open or since the last connectivity fault, then pings the backend
    /// with what the store needs (SQLite: a write; Redis: `PING`). Passing brings the store up;
    /// a fault or silence takes it down; contention leaves it as it was. Whether it is up after.
    pub(crate) async fn check(&self) -> bool {
        // The verdict is the state; the error is for a caller that needs the reason.
        let _ = self.checked().await;
        self.is_up()
    }

    /// [`Store::check`], answering the failure that took the store down (`Ok` when it passed or
    /// met only contention, which is no verdict).
    pub(crate) async fn checked(&self) -> Result<(), KvError> {
        if self.verify.load(Ordering::Relaxed) {
            // Not bounded by the store's timeout: it reads the whole file, and runs on the upkeep
            // task or a reload, never on a request's path.
            let verified = match &self.backend {
                Backend::Sqlite(s) => s.verify().await,
                Backend::Redis(_) => Ok(()),
            };
            match verified {
                Ok(()) => self.verify.store(false, Ordering::Relaxed),
                // Contended: no verdict; verified at the next check.
                Err(KvError::Busy { .. }) => return Ok(()),
                Err(e) => {
                    self.down(&e);
                    return Err(e);
                }
            }
        }
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.ping().await,
                Backend::Redis(r) => r.ping().await,
            }
        };
        let deadline = Instant::now() + self.limits.timeout;
        match self
            .run(KvOp::Ping, deadline, work, |_| KvOutcome::Ok)
            .await
        {
            Ok(()) => self.up(),
            Err(KvError::Busy { .. }) => {}
            // A ping that does not answer within the bound is what a down store looks like.
            Err(e) => {
                self.down(&e);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether an operation that got no answer within the store's whole `timeout` (not merely
    /// by the request's deadline) shows the store down. Redis: yes, a server that answers in
    /// microseconds and holds no locks is hung or unreachable when silent that long. SQLite: no,
    /// its bound can pass waiting for one of its own pooled connections while others contend for
    /// the write lock; its health check (which waits for neither) decides.
    pub(super) fn silence_is_down(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Marks the store down (after a connectivity fault or a failed health check): one line in
    /// the log and the gauge when it changes, and its storage is verified again before it can
    /// come back.
    pub(super) fn down(&self, why: &KvError) {
        self.verify.store(true, Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            self.metrics.kv_store_up(&self.name, false);
            // The reason is the backend's error text, never the store's configuration (a Redis
            // URL may hold a password).
            tracing::warn!(store = %self.name, reason = %why, "store down");
        }
    }

    /// Marks the store up (after a health check passed): one line when it changes.
    pub(super) fn up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            self.metrics.kv_store_up(&self.name, true);
            tracing::info!(store = %self.name, "store up again");
        }
    }

    /// How many entries the backend stores, live or expired (SQLite: rows; Redis: index members,
    /// and members of the expiry set): what the tests of reclaiming count.
    #[cfg(test)]
    pub(crate) async fn stored_entries(&self) -> (u64, u64) {
        match &self.backend {
            Backend::Sqlite(s) => (s.stored_rows().await, 0),
            Backend::Redis(r) => r.stored_members().await,
        }
    }

    /// Deletes expired entries the writes' own sweeping has not reached yet (bounded work; the
    /// upkeep task calls it every tick). How many it deleted.
    pub(crate) async fn sweep(&self) -> Result<u64, KvError> {
        match &self.backend {
            Backend::Sqlite(s) => s.sweep(super::now_ms()).await,
            Backend::Redis(r) => r.sweep().await,
        }
    }
}

/// The stores' upkeep, every `every` until `stop` resolves: a health check of every store of the
/// set `current` answers at that tick (the set changes with reloads: a store added is checked from
/// its first tick, a removed one no longer), so `/ready` and `wasmgate_kv_store_up` follow an
/// outage and a recovery while no request touches the store; then a sweep of expired entries
/// (so a store whose plugin stops writing still gives back what expired). One task for all
/// stores, one store at a time.
pub(crate) fn upkeep(
    current: impl Fn() -> Arc<Stores> + Send + 'static,
    every: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        let mut stop = std::pin::pin!(stop);
        loop {
            let stores = current();
            for store in stores.all() {
                let up = tokio::select! {
                    up = store.check() => up,
                    _ = stop.as_mut() => return,
                };
                if up {
                    let swept = tokio::select! {
                        swept = store.sweep() => swept,
                        _ = stop.as_mut() => return,
                    };
                    if let Err(e) = swept {
                        tracing::debug!(store = store.name(), error = %e, "sweeping expired entries failed");
                    }
                }
            }
            // The set is not held across the sleep: a store a reload dropped closes now.
            drop(stores);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.as_mut() => return,
            }
        }
    });
}
