//! The connection registry: every live connection, its state, and the totals `/metrics` shows.
//!
//! Owns connection ids, per-connection state (reading head, reading body, dispatching, writing,
//! idle), start time and request counts. A connection updates its own slot with relaxed atomics, so
//! the hot path never takes the registry lock; only opening and closing a connection do. It must not
//! own sockets or decide anything about them: it observes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    /// Receiving a request head.
    ReadingHead = 0,
    /// Receiving a request body.
    ReadingBody = 1,
    /// A handler (native or plugin) is producing the response.
    Dispatching = 2,
    /// Writing the response.
    Writing = 3,
    /// Keep-alive, waiting for the next request's first byte.
    Idle = 4,
}

impl ConnState {
    const ALL: [ConnState; 5] = [
        ConnState::ReadingHead,
        ConnState::ReadingBody,
        ConnState::Dispatching,
        ConnState::Writing,
        ConnState::Idle,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ConnState::ReadingHead => "reading_head",
            ConnState::ReadingBody => "reading_body",
            ConnState::Dispatching => "dispatching",
            ConnState::Writing => "writing",
            ConnState::Idle => "idle",
        }
    }

    fn from_u8(v: u8) -> ConnState {
        ConnState::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(ConnState::Idle)
    }
}

/// One live connection as the registry sees it.
#[derive(Debug)]
pub struct ConnSlot {
    pub id: u64,
    pub peer: SocketAddr,
    pub started: Instant,
    state: AtomicU8,
    requests: AtomicU64,
}

impl ConnSlot {
    pub fn state(&self) -> ConnState {
        ConnState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// All live connections and lifetime totals.
#[derive(Debug, Default)]
pub struct Registry {
    next_conn_id: AtomicU64,
    next_request_id: AtomicU64,
    requests_served: AtomicU64,
    live: Mutex<HashMap<u64, Arc<ConnSlot>>>,
}

impl Registry {
    /// Registers a new connection; it leaves the registry when the handle drops.
    pub fn open(self: &Arc<Self>, peer: SocketAddr) -> ConnHandle {
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Arc::new(ConnSlot {
            id,
            peer,
            started: Instant::now(),
            state: AtomicU8::new(ConnState::ReadingHead as u8),
            requests: AtomicU64::new(0),
        });
        self.lock().insert(id, slot.clone());
        ConnHandle {
            slot,
            registry: self.clone(),
        }
    }

    /// A process-unique id for a new request (logs, plugin stdout tagging).
    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Requests answered since start.
    pub fn requests_served(&self) -> u64 {
        self.requests_served.load(Ordering::Relaxed)
    }

    /// Live connections now.
    pub fn active(&self) -> usize {
        self.lock().len()
    }

    /// A copy of every live connection's slot.
    pub fn snapshot(&self) -> Vec<Arc<ConnSlot>> {
        self.lock().values().cloned().collect()
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
pub struct ConnHandle {
    slot: Arc<ConnSlot>,
    registry: Arc<Registry>,
}

impl ConnHandle {
    pub fn id(&self) -> u64 {
        self.slot.id
    }

    pub fn set_state(&self, state: ConnState) {
        self.slot.state.store(state as u8, Ordering::Relaxed);
    }

    pub fn state(&self) -> ConnState {
        self.slot.state()
    }

    /// Requests this connection has answered so far.
    pub fn requests(&self) -> u64 {
        self.slot.requests()
    }

    /// Counts one answered request on this connection; returns how many it has served.
    pub fn request_served(&self) -> u64 {
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// `wasmgate_connections{state=...}`: live connections by state, read at scrape time.
impl Collector for Registry {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut counts = [0i64; ConnState::ALL.len()];
        for slot in self.snapshot() {
            counts[slot.state() as usize] += 1;
        }
        let mut family = encoder.encode_descriptor(
            "connections",
            "Live connections by state",
            None,
            MetricType::Gauge,
        )?;
        for state in ConnState::ALL {
            let gauge = ConstGauge::new(counts[state as usize]);
            gauge.encode(family.encode_family(&StateLabel {
                state: state.label(),
            })?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_track_state_and_leave_on_drop() {
        let reg = Arc::new(Registry::default());
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a = reg.open(peer);
        let b = reg.open(peer);
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
