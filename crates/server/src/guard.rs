//! Per-plugin admission: a concurrency cap with a bounded queue, and a circuit breaker.
//!
//! Owns the decision "may this request call its plugin now?" and the state behind it, kept per
//! plugin name so that it survives hot reload (limits are read from the route target of each
//! request, so a reload that changes them takes effect at the next request; a reload that changes
//! the plugin's module gives the new version a closed breaker). A call first needs a place under
//! `max_concurrency`; past it, it waits in a FIFO queue of at most `max_queue`, and past that it is
//! refused at once (`overloaded`). Consecutive broken calls (`trap`, `memory_limit`,
//! `invalid_response`) open the breaker: the plugin is `quarantined` for `breaker_backoff`, then one
//! probe call is let through; a success closes the breaker, a failure re-opens it for twice as long
//! (up to `breaker_backoff_max`). Slow calls (`fuel_exhausted`, `deadline`) and host-side failures
//! (`instantiate`, and `overloaded` from an empty host pool) never count: the cap is what bounds
//! a slow plugin's cost, and a breaker tripped by a loaded machine would turn overload into an
//! outage. It must not build responses (refusals
//! are [`Rejection`]s that `dispatch` turns into `RequestError`s) nor know about sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::PluginLimits;
use crate::metrics::{GuardReading, RejectReason};
use crate::runtime::CallError;

/// `Retry-After` for a full queue: calls are bounded by the plugin's deadline (1 s by default), so
/// a place is expected to free up within about that long.
const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(1);
/// `Retry-After` while the probe call of a half-open breaker runs.
const PROBING_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a request may not call its plugin now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// `max_concurrency` calls running and `max_queue` waiting.
    Overloaded { retry_after: Duration },
    /// The circuit breaker is open (or half-open with its probe running).
    Quarantined { retry_after: Duration },
}

/// How a call ended, as far as the breaker is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The plugin answered (any status: a 500 it chose to send is an answer).
    Answered,
    /// The plugin is broken: it trapped, hit its memory cap, or answered bytes the host refuses.
    Broken,
    /// Neither: too slow (fuel, deadline), or the host could not instantiate or run it (its
    /// own failure or overload).
    Neutral,
}

impl Outcome {
    /// Classifies a call's result.
    pub(crate) fn of<T>(result: &Result<T, CallError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Answered,
            Err(
                CallError::Trap { .. }
                | CallError::MemoryLimit { .. }
                | CallError::InvalidResponse { .. },
            ) => Outcome::Broken,
            Err(
                CallError::FuelExhausted { .. }
                | CallError::Deadline { .. }
                | CallError::Instantiate { .. }
                | CallError::Overloaded { .. },
            ) => Outcome::Neutral,
        }
    }
}

/// Every plugin's guard, by plugin name. Created on a plugin's first request.
#[derive(Debug, Default)]
pub(crate) struct Guards {
    plugins: Mutex<HashMap<String, Arc<Guard>>>,
}

impl Guards {
    /// `plugin`'s guard, created on first use. Callers keep it (the routing caches it per loaded
    /// plugin), so the map's lock is taken once per plugin and reload, not once per request.
    pub(crate) fn guard(&self, plugin: &str) -> Arc<Guard> {
        let mut map = lock(&self.plugins);
        if let Some(g) = map.get(plugin) {
            return g.clone();
        }
        let g = Arc::new(Guard {
            plugin: plugin.to_string(),
            ..Guard::default()
        });
        map.insert(plugin.to_string(), g.clone());
        g
    }

    /// Every plugin's guard as `/metrics` shows it, by plugin name.
    pub(crate) fn readings(&self) -> Vec<GuardReading> {
        let map = lock(&self.plugins);
        let mut v: Vec<_> = map.values().map(|g| g.reading()).collect();
        v.sort_by(|a, b| a.plugin.cmp(&b.plugin));
        v
    }
}

/// One plugin's admission state.
///
/// The common case takes no lock: the gate is read through an `ArcSwap`, and while the breaker is
/// closed with no failure in a row (`healthy`), a call is admitted and its answer recorded with
/// atomics only. The breaker's mutex is taken only when something is wrong (a failure, a
/// quarantine, a probe) or a new module version appears.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    plugin: String,
    /// The semaphore of the current `max_concurrency`; replaced when the limit changes (calls
    /// holding a permit of the old one finish under it).
    gate: ArcSwapOption<Gate>,
    breaker: Mutex<Breaker>,
    /// The version (see [`version`]) whose breaker is closed with no broken call in a row; 0 when
    /// none is, and the breaker's lock decides.
    healthy: AtomicU64,
    in_flight: AtomicUsize,
    queued: AtomicUsize,
    rejected_overloaded: AtomicU64,
    rejected_quarantined: AtomicU64,
}

/// A semaphore with the `max_concurrency` it was made for.
#[derive(Debug)]
struct Gate {
    max: usize,
    semaphore: Arc<Semaphore>,
}

/// A module version's short, non-zero fingerprint (FNV-1a of its content hash), so that "is this
/// version healthy?" is one atomic comparison.
fn version(hash: &str) -> u64 {
    let fnv = hash.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    fnv | 1
}

impl Guard {
    /// Waits for a place to call the plugin (whose loaded module has content hash `hash`) under
    /// `limits`, or says why not. Hold the permit for the whole call and give it the outcome.
    pub(crate) async fn admit(
        self: Arc<Self>,
        hash: &str,
        limits: &PluginLimits,
    ) -> Result<Permit, Rejection> {
        let version = version(hash);
        let healthy = self.healthy.load(Ordering::Acquire) == version;
        // Refuse a quarantined plugin before queueing: a 503 now beats one after a wait.
        if !healthy {
            lock(&self.breaker)
                .check(hash, Instant::now())
                .map_err(|e| self.rejected(e))?;
        }
        let semaphore = self.semaphore(limits.max_concurrency);
        let place = match semaphore.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                let waiting = Waiting::enter(&self.queued);
                if waiting.ahead >= limits.max_queue {
                    return Err(self.rejected(Rejection::Overloaded {
                        retry_after: OVERLOADED_RETRY_AFTER,
                    }));
                }
                let place = semaphore
                    .acquire_owned()
                    .await
                    .expect("a guard's semaphore is never closed");
                drop(waiting);
                place
            }
        };
        // The breaker may have opened while this call waited, or be due for its probe.
        let probe = if self.healthy.load(Ordering::Acquire) == version {
            false
        } else {
            lock(&self.breaker)
                .admit(hash, Instant::now())
                .map_err(|e| self.rejected(e))?
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Permit {
            guard: self,
            _place: place,
            probe,
            version,
            limits: *limits,
            finished: false,
        })
    }

    fn semaphore(&self, max: usize) -> Arc<Semaphore> {
        if let Some(gate) = &*self.gate.load()
            && gate.max == max
        {
            return gate.semaphore.clone();
        }
        // First call, or `max_concurrency` changed: one new gate, even if several calls race.
        self.gate.rcu(|current| match current {
            Some(gate) if gate.max == max => Some(gate.clone()),
            _ => Some(Arc::new(Gate {
                max,
                semaphore: Arc::new(Semaphore::new(max.max(1))),
            })),
        });
        match &*self.gate.load() {
            Some(gate) => gate.semaphore.clone(),
            None => unreachable!("the gate was just set"),
        }
    }

    /// Records a finished call of module version `of` under the breaker's lock, and whether it
    /// is healthy after it. A call of a version the breaker no longer follows (a reload swapped
    /// the module while it ran) is not the new version's business: ignored.
    fn record(
        &self,
        outcome: Outcome,
        probe: bool,
        of: u64,
        limits: &PluginLimits,
    ) -> Option<Duration> {
        let mut breaker = lock(&self.breaker);
        if version(&breaker.hash) != of {
            return None;
        }
        let opened = breaker.record(outcome, probe, Instant::now(), limits);
        let healthy = if breaker.is_healthy() {
            version(&breaker.hash)
        } else {
            0
        };
        self.healthy.store(healthy, Ordering::Release);
        opened
    }

    fn rejected(&self, r: Rejection) -> Rejection {
        let counter = match r {
            Rejection::Overloaded { .. } => &self.rejected_overloaded,
            Rejection::Quarantined { .. } => &self.rejected_quarantined,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    fn reading(&self) -> GuardReading {
        let b = lock(&self.breaker);
        let count = |n: &AtomicUsize| i64::try_from(n.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        GuardReading {
            plugin: self.plugin.clone(),
            in_flight: count(&self.in_flight),
            queued: count(&self.queued),
            rejected: vec![
                (
                    RejectReason::Overloaded,
                    self.rejected_overloaded.load(Ordering::Relaxed),
                ),
                (
                    RejectReason::Quarantined,
                    self.rejected_quarantined.load(Ordering::Relaxed),
                ),
            ],
            breaker_state: b.state_code(Instant::now()),
            consecutive_failures: b.consecutive,
            breaker_opened: b.opened,
        }
    }
}

/// A queue place: counted while held, so a waiter whose request is cancelled leaves the queue.
struct Waiting<'a> {
    queued: &'a AtomicUsize,
    /// How many were already waiting when this one arrived.
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn enter(queued: &'a AtomicUsize) -> Waiting<'a> {
        let ahead = queued.fetch_add(1, Ordering::Relaxed);
        Waiting { queued, ahead }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The right to run one call. Report how it ended with [`Permit::finish`]; a permit dropped
/// without it (the request was cancelled) counts as nothing, and frees the probe if it was one.
#[derive(Debug)]
pub(crate) struct Permit {
    guard: Arc<Guard>,
    _place: OwnedSemaphorePermit,
    probe: bool,
    /// The module version the call ran.
    version: u64,
    limits: PluginLimits,
    finished: bool,
}

impl Permit {
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        // The common case changes nothing: an answer (or a slow call) of a healthy version.
        let unchanged = !self.probe
            && match outcome {
                Outcome::Answered => self.guard.healthy.load(Ordering::Acquire) == self.version,
                Outcome::Neutral => true,
                Outcome::Broken => false,
            };
        if unchanged {
            return;
        }
        let opened = self
            .guard
            .record(outcome, self.probe, self.version, &self.limits);
        if let Some(period) = opened {
            tracing::warn!(
                plugin = %self.guard.plugin,
                quarantine_ms = period.as_millis() as u64,
                threshold = self.limits.breaker_threshold,
                "plugin quarantined after consecutive failures"
            );
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.guard.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.finished && self.probe {
            self.guard
                .record(Outcome::Neutral, true, self.version, &self.limits);
        }
    }
}

/// The circuit breaker of one plugin: a pure state machine over explicit instants.
#[derive(Debug, Clone, Default)]
struct Breaker {
    /// The module version this state is about; a new version starts closed.
    hash: String,
    state: BreakerState,
    /// Broken calls in a row (any answer resets it).
    consecutive: u32,
    /// The current quarantine period (doubles on each failed probe).
    period: Duration,
    /// How many times the breaker opened from closed.
    opened: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum BreakerState {
    #[default]
    Closed,
    /// Quarantined until then; the first request after it becomes the probe.
    Open { until: Instant },
    /// The probe call is running; everyone else is still refused.
    Probing,
}

impl Breaker {
    /// Refuses while quarantined; never claims the probe (see [`Breaker::admit`]).
    fn check(&mut self, hash: &str, now: Instant) -> Result<(), Rejection> {
        self.version(hash);
        match self.state {
            BreakerState::Open { until } if now < until => Err(Rejection::Quarantined {
                retry_after: until - now,
            }),
            BreakerState::Probing => Err(Rejection::Quarantined {
                retry_after: PROBING_RETRY_AFTER,
            }),
            _ => Ok(()),
        }
    }

    /// Lets a call through (`Ok(true)` when it is the probe of a half-open breaker) or refuses it.
    fn admit(&mut self, hash: &str, now: Instant) -> Result<bool, Rejection> {
        self.check(hash, now)?;
        if let BreakerState::Open { .. } = self.state {
            self.state = BreakerState::Probing;
            return Ok(true);
        }
        Ok(false)
    }

    /// Records a finished call. Returns the quarantine period when this call opened the breaker.
    fn record(
        &mut self,
        outcome: Outcome,
        probe: bool,
        now: Instant,
        limits: &PluginLimits,
    ) -> Option<Duration> {
        let max = limits.breaker_backoff_max.max(limits.breaker_backoff);
        match outcome {
            Outcome::Answered => {
                self.consecutive = 0;
                self.state = BreakerState::Closed;
                self.period = Duration::ZERO;
                None
            }
            Outcome::Broken => {
                self.consecutive = self.consecutive.saturating_add(1);
                let period = if probe {
                    (self.period * 2).clamp(limits.breaker_backoff, max)
                } else if self.state == BreakerState::Closed
                    && self.consecutive >= limits.breaker_threshold
                {
                    self.opened += 1;
                    limits.breaker_backoff.min(max)
                } else {
                    return None;
                };
                self.period = period;
                self.state = BreakerState::Open {
                    until: now + period,
                };
                Some(period)
            }
            // A probe that proved nothing: the next request probes again.
            Outcome::Neutral if probe => {
                self.state = BreakerState::Open { until: now };
                None
            }
            Outcome::Neutral => None,
        }
    }

    /// Closed with no broken call in a row: nothing for the next call to decide under the lock.
    fn is_healthy(&self) -> bool {
        self.state == BreakerState::Closed && self.consecutive == 0 && !self.hash.is_empty()
    }

    /// A different module (hot reload) starts with a closed breaker.
    fn version(&mut self, hash: &str) {
        if self.hash != hash {
            let opened = self.opened;
            *self = Breaker {
                hash: hash.to_string(),
                opened,
                ..Breaker::default()
            };
        }
    }

    /// 0 closed, 1 open (quarantined), 2 half-open (due for, or running, its probe).
    fn state_code(&self, now: Instant) -> i64 {
        match self.state {
            BreakerState::Closed => 0,
            BreakerState::Open { until } if now < until => 1,
            BreakerState::Open { .. } | BreakerState::Probing => 2,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrency: usize, queue: usize, threshold: u32) -> PluginLimits {
        PluginLimits {
            max_concurrency: concurrency,
            max_queue: queue,
            breaker_threshold: threshold,
            breaker_backoff: Duration::from_secs(1),
            breaker_backoff_max: Duration::from_secs(3),
            ..PluginLimits::default()
        }
    }

    #[test]
    fn the_hosts_own_overload_never_counts_against_a_plugin() {
        let overloaded: Result<(), CallError> = Err(CallError::Overloaded {
            message: "maximum concurrent limit of 4 for fibers reached".into(),
            fuel_used: 0,
        });
        assert_eq!(Outcome::of(&overloaded), Outcome::Neutral);
        let trap: Result<(), CallError> = Err(CallError::Trap {
            message: "unreachable".into(),
            backtrace: String::new(),
            stderr_tail: String::new(),
            fuel_used: 0,
        });
        assert_eq!(Outcome::of(&trap), Outcome::Broken);
    }

    #[test]
    fn the_breaker_opens_after_threshold_broken_calls_in_a_row() {
        let l = limits(1, 1, 3);
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..2 {
            assert_eq!(b.admit("h", t0), Ok(false));
            assert_eq!(b.record(Outcome::Broken, false, t0, &l), None);
        }
        // An answer in between resets the count; slow calls do not count either way.
        assert_eq!(b.record(Outcome::Answered, false, t0, &l), None);
        for _ in 0..2 {
            b.record(Outcome::Broken, false, t0, &l);
            b.record(Outcome::Neutral, false, t0, &l);
        }
        assert_eq!(b.admit("h", t0), Ok(false));
        assert_eq!(
            b.record(Outcome::Broken, false, t0, &l),
            Some(Duration::from_secs(1))
        );
        assert_eq!(b.opened, 1);
        let half = t0 + Duration::from_millis(400);
        assert_eq!(
            b.admit("h", half),
            Err(Rejection::Quarantined {
                retry_after: Duration::from_millis(600)
            })
        );
        assert_eq!(b.state_code(half), 1);
    }

    #[test]
    fn after_the_backoff_one_probe_goes_through_and_failures_double_it_up_to_the_max() {
        let l = limits(1, 1, 1);
        let mut now = Instant::now();
        let mut b = Breaker::default();
        b.admit("h", now).unwrap();
        assert_eq!(
            b.record(Outcome::Broken, false, now, &l),
            Some(Duration::from_secs(1))
        );
        for want in [2, 3, 3] {
            now += b.period;
            assert_eq!(b.state_code(now), 2);
            assert_eq!(b.admit("h", now), Ok(true), "the probe");
            assert!(
                matches!(b.admit("h", now), Err(Rejection::Quarantined { .. })),
                "one probe at a time"
            );
            assert_eq!(
                b.record(Outcome::Broken, true, now, &l),
                Some(Duration::from_secs(want))
            );
        }
        assert_eq!(
            b.opened, 1,
            "a failed probe re-opens, it does not count as a trip"
        );
        now += b.period;
        assert_eq!(b.admit("h", now), Ok(true));
        assert_eq!(b.record(Outcome::Answered, true, now, &l), None);
        assert_eq!((b.state_code(now), b.consecutive), (0, 0));
        assert_eq!(b.admit("h", now), Ok(false));
    }

    #[test]
    fn a_probe_that_proves_nothing_lets_the_next_request_probe() {
        let l = limits(1, 1, 1);
        let now = Instant::now();
        let mut b = Breaker::default();
        b.admit("h", now).unwrap();
        b.record(Outcome::Broken, false, now, &l);
        let later = now + Duration::from_secs(1);
        assert_eq!(b.admit("h", later), Ok(true));
        assert_eq!(b.record(Outcome::Neutral, true, later, &l), None);
        assert_eq!(b.admit("h", later), Ok(true));
    }

    #[test]
    fn a_new_module_version_starts_closed() {
        let l = limits(1, 1, 1);
        let now = Instant::now();
        let mut b = Breaker::default();
        b.admit("v1", now).unwrap();
        b.record(Outcome::Broken, false, now, &l);
        assert!(b.admit("v1", now).is_err());
        assert_eq!(b.admit("v2", now), Ok(false));
        assert_eq!(
            b.opened, 1,
            "the trip count is the plugin's, across versions"
        );
    }

    #[tokio::test]
    async fn the_queue_is_bounded_fifo_and_cancelled_waiters_leave_it() {
        let guards = Arc::new(Guards::default());
        let l = limits(1, 2, 100);
        let first = guards.guard("p").admit("h", &l).await.unwrap();
        let waiter = |g: Arc<Guards>| async move { g.guard("p").admit("h", &l).await };
        let a = tokio::spawn(waiter(guards.clone()));
        let b = tokio::spawn(waiter(guards.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let s = &guards.readings()[0];
        assert_eq!((s.in_flight, s.queued), (1, 2));
        assert_eq!(
            guards.guard("p").admit("h", &l).await.unwrap_err(),
            Rejection::Overloaded {
                retry_after: OVERLOADED_RETRY_AFTER
            }
        );
        b.abort();
        let _ = b.await;
        assert_eq!(guards.readings()[0].queued, 1, "a cancelled waiter leaves");
        first.finish(Outcome::Answered);
        let second = a.await.unwrap().unwrap();
        let s = &guards.readings()[0];
        assert_eq!((s.in_flight, s.queued), (1, 0));
        assert_eq!(s.rejected[0], (RejectReason::Overloaded, 1));
        drop(second);
        assert_eq!(guards.readings()[0].in_flight, 0);
        // Other plugins have their own places.
        let other = guards.guard("q").admit("h", &l).await.unwrap();
        drop(other);
    }

    #[tokio::test]
    async fn a_cancelled_probe_frees_the_probe_slot() {
        let guards = Guards::default();
        let l = PluginLimits {
            breaker_backoff: Duration::from_millis(1),
            ..limits(4, 4, 1)
        };
        guards
            .guard("p")
            .admit("h", &l)
            .await
            .unwrap()
            .finish(Outcome::Broken);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let probe = guards.guard("p").admit("h", &l).await.unwrap();
        assert!(probe.probe);
        assert!(guards.guard("p").admit("h", &l).await.is_err());
        drop(probe);
        assert!(guards.guard("p").admit("h", &l).await.unwrap().probe);
    }

    #[tokio::test]
    async fn a_healthy_version_takes_the_fast_path_and_a_failure_leaves_it() {
        let guards = Guards::default();
        let l = limits(4, 4, 2);
        let g = guards.guard("p");
        assert_eq!(
            g.healthy.load(Ordering::Relaxed),
            0,
            "unknown until a call answers"
        );
        g.clone()
            .admit("h1", &l)
            .await
            .unwrap()
            .finish(Outcome::Answered);
        assert_eq!(g.healthy.load(Ordering::Relaxed), version("h1"));
        g.clone()
            .admit("h1", &l)
            .await
            .unwrap()
            .finish(Outcome::Broken);
        assert_eq!(g.healthy.load(Ordering::Relaxed), 0, "a failure in a row");
        g.clone()
            .admit("h1", &l)
            .await
            .unwrap()
            .finish(Outcome::Broken);
        assert!(
            matches!(
                g.clone().admit("h1", &l).await,
                Err(Rejection::Quarantined { .. })
            ),
            "two in a row open the breaker, seen on the slow path"
        );
        // A new version starts closed, and is healthy once it answers.
        g.clone()
            .admit("h2", &l)
            .await
            .unwrap()
            .finish(Outcome::Answered);
        assert_eq!(g.healthy.load(Ordering::Relaxed), version("h2"));
        assert_ne!(version("h1"), version("h2"));
    }

    /// A call admitted under one module version that finishes after a reload swapped in another
    /// counts for neither: it can neither quarantine nor release the new version.
    #[tokio::test]
    async fn a_call_of_a_replaced_version_does_not_touch_the_new_versions_breaker() {
        let guards = Guards::default();
        let l = limits(4, 4, 1);
        let g = guards.guard("p");
        let old = g.clone().admit("h1", &l).await.unwrap();
        let new = g.clone().admit("h2", &l).await.unwrap();
        new.finish(Outcome::Broken);
        assert!(
            matches!(
                g.clone().admit("h2", &l).await,
                Err(Rejection::Quarantined { .. })
            ),
            "h2 is quarantined"
        );
        old.finish(Outcome::Answered);
        assert!(
            matches!(
                g.clone().admit("h2", &l).await,
                Err(Rejection::Quarantined { .. })
            ),
            "an answer of h1 does not release h2"
        );
        let old = g.clone().admit("h1", &l).await.unwrap();
        old.finish(Outcome::Broken);
        assert_eq!(
            lock(&g.breaker).hash,
            "h1",
            "h1 admitted again: the breaker follows it"
        );
    }

    #[test]
    fn readings_name_every_plugin_in_order() {
        let guards = Guards::default();
        guards.guard("q");
        guards.guard("p");
        let readings = guards.readings();
        let names: Vec<&str> = readings.iter().map(|r| r.plugin.as_str()).collect();
        assert_eq!(names, ["p", "q"]);
        assert_eq!(
            (
                readings[0].in_flight,
                readings[0].queued,
                readings[0].breaker_state
            ),
            (0, 0, 0)
        );
    }
}
