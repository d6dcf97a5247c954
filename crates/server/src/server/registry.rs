//! The connection registry: every live connection, its state, and the totals `/metrics` shows.
//!
//! Owns connection ids, request ids, per-connection state (reading head, reading body,
//! dispatching, writing, idle) and request counts. A connection updates its own slot with relaxed atomics, so
//! the hot path never takes the registry lock; only opening and closing a connection do. It must not
//! own sockets or decide anything about them: it observes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::{ConnState, LabelValue};
use crate::request_id::{RequestId, RequestIds};

/// One live connection as the registry sees it.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    pub(crate) id: u64,
    state: AtomicU8,
    requests: AtomicU64,
}

impl ConnSlot {
    pub(crate) fn state(&self) -> ConnState {
        // Only `set_state` writes it, with a valid index.
        ConnState::ALL
            .get(usize::from(self.state.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(ConnState::Idle)
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// All live connections and lifetime totals.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    next_conn_id: AtomicU64,
    request_ids: RequestIds,
    requests_served: AtomicU64,
    live: Mutex<HashMap<u64, Arc<ConnSlot>>>,
}

impl Registry {
    /// Registers a new connection; it leaves the registry when the handle drops.
    pub(crate) fn open(self: &Arc<Self>) -> ConnHandle {
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Arc::new(ConnSlot {
            id,
            state: AtomicU8::new(ConnState::ReadingHead as u8),
            requests: AtomicU64::new(0),
        });
        self.lock().insert(id, slot.clone());
        ConnHandle {
            slot,
            registry: self.clone(),
        }
    }

    /// A new request's id (logs, plugin stdout tagging, the plugin's `request_id` field, the
    /// response header).
    pub(crate) fn next_request_id(&self) -> RequestId {
        self.request_ids.next()
    }

    /// Requests answered since start.
    pub(crate) fn requests_served(&self) -> u64 {
        self.requests_served.load(Ordering::Relaxed)
    }

    /// Live connections now.
    #[cfg(test)]
    pub(crate) fn active(&self) -> usize {
        self.lock().len()
    }

    /// A copy of every live connection's slot.
    pub(crate) fn snapshot(&self) -> Vec<Arc<ConnSlot>> {
        self.lock().values().cloned().collect()
    }

    /// Live connections per state, for `wasmgate_connections{state}`.
    pub(crate) fn state_counts(&self) -> Vec<(ConnState, i64)> {
        let mut counts: Vec<(ConnState, i64)> = ConnState::ALL.iter().map(|&s| (s, 0)).collect();
        for slot in self.snapshot() {
            counts[slot.state() as usize].1 += 1;
        }
        counts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnSlot>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still good to use.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection's membership in the registry; dropping it (however the task ends, even aborted)
/// removes the connection.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    slot: Arc<ConnSlot>,
    registry: Arc<Registry>,
}

impl ConnHandle {
    pub(crate) fn id(&self) -> u64 {
        self.slot.id
    }

    pub(crate) fn set_state(&self, state: ConnState) {
        self.slot.state.store(state as u8, Ordering::Relaxed);
    }

    /// Requests this connection has answered so far.
    pub(crate) fn requests(&self) -> u64 {
        self.slot.requests()
    }

    /// Counts one answered request on this connection; returns how many it has served.
    pub(crate) fn request_served(&self) -> u64 {
        self.registry
            .requests_served
            .fetch_add(1, Ordering::Relaxed);
        self.slot.requests.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.slot.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_track_state_and_leave_on_drop() {
        let reg = Arc::new(Registry::default());
        let a = reg.open();
        let b = reg.open();
        assert_ne!(a.id(), b.id());
        b.set_state(ConnState::Dispatching);
        assert_eq!(b.request_served(), 1);
        assert_eq!(reg.active(), 2);
        assert_eq!(reg.requests_served(), 1);
        let states: Vec<_> = reg.snapshot().iter().map(|s| s.state()).collect();
        assert!(
            states.contains(&ConnState::Dispatching) && states.contains(&ConnState::ReadingHead)
        );
        drop(a);
        assert_eq!(reg.active(), 1);
    }
}
