//! Warm instances: one plugin's instances kept between requests when both the operator
//! (`[plugins.NAME] reuse`) and the module (`wasmgate_reusable`) opted in.
//!
//! Owns when an instance may serve again: only after a request it answered (any failure — a trap,
//! a limit, a refused response — throws it away, so a broken state never reaches the next
//! request), at most `max_requests` times, and not after `idle_timeout` unused. It holds its pool
//! slot while warm, and a reaper frees the slots of idle instances even when no request comes.
//! A pool belongs to one loaded routing of one plugin (`reload::Served`), so a reload starts
//! empty pools and an instance never serves another plugin or another version. Idle instances
//! never starve fresh ones: a call that finds every instance slot taken first evicts idle warm
//! instances, any plugin's ([`WarmPools::evict_one`]). It must not run guests: preparing a store
//! for its next request and calling it are `plugin`'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Instance, Store};

use super::store::StoreData;
use crate::config::ReuseSettings;

/// Shortest pause of the reaper between two sweeps (a tiny `idle_timeout` must not make it spin).
const MIN_SWEEP: Duration = Duration::from_millis(50);

/// An instance between two requests. Field order is drop order: the instance (its store) goes
/// before its slot is given back, or the next waiter could find the pool still full.
pub(crate) struct Warm {
    pub(crate) store: Store<StoreData>,
    pub(crate) instance: Instance,
    pub(crate) slot: OwnedSemaphorePermit,
    /// Requests it has answered.
    pub(crate) served: u32,
    idle_since: Instant,
}

impl Warm {
    /// An instance that has just answered its `served`-th request.
    pub(crate) fn new(
        store: Store<StoreData>,
        instance: Instance,
        slot: OwnedSemaphorePermit,
        served: u32,
    ) -> Warm {
        Warm {
            store,
            instance,
            slot,
            served,
            idle_since: Instant::now(),
        }
    }
}

/// One plugin's warm instances, most recently used last.
pub struct WarmPool {
    settings: ReuseSettings,
    /// Most instances kept idle (the plugin's `max_concurrency`: more could never be busy at once).
    max_idle: usize,
    idle: Mutex<Vec<Warm>>,
    /// Whether a reaper task is running for this pool.
    reaping: AtomicBool,
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("settings", &self.settings)
            .field("idle", &self.lock().len())
            .finish()
    }
}

impl WarmPool {
    /// A pool not yet known to any runtime's [`WarmPools`]: `Plugin::warm_pool` registers it.
    pub(crate) fn new(settings: ReuseSettings, max_idle: usize) -> Arc<WarmPool> {
        Arc::new(WarmPool {
            settings,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
            reaping: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used instance that has not idled past its timeout; older expired ones
    /// are dropped on the way (outside the lock).
    pub(crate) fn take(&self) -> Option<Warm> {
        let now = Instant::now();
        let mut expired = Vec::new();
        let found = {
            let mut idle = self.lock();
            let mut found = None;
            while let Some(w) = idle.pop() {
                if now.duration_since(w.idle_since) < self.settings.idle_timeout {
                    found = Some(w);
                    break;
                }
                expired.push(w);
            }
            found
        };
        drop(expired);
        found
    }

    /// The least recently used idle instance, whatever its age (for eviction).
    fn take_oldest(&self) -> Option<Warm> {
        let mut idle = self.lock();
        (!idle.is_empty()).then(|| idle.remove(0))
    }

    /// Keeps `warm`, which just answered a request, for the next one, unless it has served
    /// `max_requests` or the pool is full.
    pub(crate) fn give_back(self: &Arc<Self>, mut warm: Warm) {
        if warm.served >= self.settings.max_requests {
            return;
        }
        warm.idle_since = Instant::now();
        {
            let mut idle = self.lock();
            if idle.len() >= self.max_idle {
                return;
            }
            idle.push(warm);
        }
        if !self.reaping.swap(true, Ordering::AcqRel) {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }

    /// How many instances wait for a request.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.lock().len()
    }
}

/// Every live warm pool of one runtime, so that a call finding no free instance slot can take
/// one back from an idle warm instance rather than wait (up to its deadline) for an idle timeout.
#[derive(Default)]
pub(crate) struct WarmPools {
    pools: Mutex<Vec<Weak<WarmPool>>>,
}

impl WarmPools {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<WarmPool>>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers `pool` (and forgets pools that are gone).
    pub(crate) fn register(&self, pool: &Arc<WarmPool>) {
        let mut pools = self.lock();
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }

    /// Drops one idle instance, the least recently used of the first pool that has one, which
    /// frees its slot; whether there was one.
    pub(crate) fn evict_one(&self) -> bool {
        let pools: Vec<Arc<WarmPool>> = self.lock().iter().filter_map(Weak::upgrade).collect();
        pools.iter().any(|p| p.take_oldest().is_some())
    }
}

/// Drops instances idle past the timeout, so their slots come back even with no traffic; ends
/// when the pool is empty (the next `give_back` starts another) or gone.
async fn reap(pool: Weak<WarmPool>) {
    loop {
        let every = match pool.upgrade() {
            Some(p) => (p.settings.idle_timeout / 2).max(MIN_SWEEP),
            None => return,
        };
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else { return };
        let now = Instant::now();
        let expired: Vec<Warm> = {
            let mut idle = pool.lock();
            let (keep, expired): (Vec<Warm>, Vec<Warm>) = idle
                .drain(..)
                .partition(|w| now.duration_since(w.idle_since) < pool.settings.idle_timeout);
            *idle = keep;
            if idle.is_empty() {
                // Under the lock, so a concurrent `give_back` either sees this and starts a new
                // reaper, or pushed before it and is swept here.
                pool.reaping.store(false, Ordering::Release);
                drop(idle);
                drop(expired);
                return;
            }
            expired
        };
        drop(expired);
    }
}
