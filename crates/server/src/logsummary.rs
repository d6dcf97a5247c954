//! Repeated per-request warnings, summarised: the first of a kind is logged at once, the ones
//! after it within `[server] log_repeat_interval` only counted, and one line per interval says
//! how many there were ("N more like this").
//!
//! Owns the counting and the summary lines. A warning site asks [`LogSummary::note`] whether to
//! log its event; [`LogSummary::run`] (one task, started with the server) logs the summaries.
//! Keys are a closed set: a [`Repeat`] site, a `&'static str` kind, and a configured plugin or
//! store name, never a client's or a guest's string; their number is capped besides
//! ([`MAX_KEYS`]). It must not decide what is logged at a site (fields, level): only whether.
//! Metrics still count every event: this only thins the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most distinct keys counted at once: plugin and store names come from the configuration, but a
/// long-lived process reloaded with ever new names must not grow without bound. Past it, events
/// of new keys are counted under one overflow line.
pub(crate) const MAX_KEYS: usize = 4096;

/// Where a repeated warning comes from: each a log site, with the message its summary repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Repeat {
    /// A request for a plugin that is not loaded.
    NotLoaded,
    /// A plugin call refused by its guard (overloaded, quarantined).
    Refused,
    /// A plugin call that failed (trap, deadline, fuel, ...).
    CallFailed,
    /// A failed store operation (unavailable, timeout).
    StoreFailed,
    /// Events of keys past [`MAX_KEYS`].
    Overflow,
}

impl Repeat {
    /// The message of the site's own line, which its summary line repeats.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Repeat::NotLoaded => "plugin not loaded",
            Repeat::Refused => "plugin call refused",
            Repeat::CallFailed => "plugin call failed",
            Repeat::StoreFailed => "store operation failed",
            Repeat::Overflow => "repeated warnings of too many kinds",
        }
    }
}

type Key = (Repeat, &'static str, Box<str>);

/// The counts of one key in its current interval.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// When the last line of this key (the event or a summary) was logged.
    since: Instant,
    /// Events not logged since.
    quiet: u64,
}

/// One summary line to log: `count` more events of `(site, kind, name)` over `over`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) site: Repeat,
    pub(crate) kind: &'static str,
    pub(crate) name: Box<str>,
    pub(crate) count: u64,
    pub(crate) over: Duration,
}

/// The repeated-warning counts of one server (no global: it lives in the server's context).
#[derive(Debug)]
pub(crate) struct LogSummary {
    interval: Duration,
    windows: Mutex<HashMap<Key, Window>>,
}

impl LogSummary {
    pub(crate) fn new(interval: Duration) -> LogSummary {
        LogSummary {
            interval,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the event `(site, kind, name)` happening at `now` is to be logged: the first of
    /// its key, or the first after a quiet interval. Otherwise it is counted for the summary.
    /// One short lock per event on an error path (the success path never calls it).
    pub(crate) fn note(&self, site: Repeat, kind: &'static str, name: &str, now: Instant) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let key: Key = (site, kind, name.into());
        if let Some(w) = windows.get_mut(&key) {
            if w.quiet == 0 && now.saturating_duration_since(w.since) >= self.interval {
                w.since = now;
                return true;
            }
            w.quiet = w.quiet.saturating_add(1);
            return false;
        }
        let key = if windows.len() < MAX_KEYS {
            key
        } else {
            (Repeat::Overflow, "", "".into())
        };
        match windows.get_mut(&key) {
            Some(w) => {
                w.quiet = w.quiet.saturating_add(1);
                false
            }
            None => {
                windows.insert(
                    key,
                    Window {
                        since: now,
                        quiet: 0,
                    },
                );
                true
            }
        }
    }

    /// The summaries due at `now`: every key with counted events whose interval has passed (its
    /// count restarts). Keys quiet for a whole interval are forgotten, so the map holds only what
    /// is recent.
    pub(crate) fn due(&self, now: Instant) -> Vec<Summary> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        windows.retain(|(site, kind, name), w| {
            let over = now.saturating_duration_since(w.since);
            if over < self.interval {
                return true;
            }
            if w.quiet == 0 {
                return false;
            }
            out.push(Summary {
                site: *site,
                kind,
                name: name.clone(),
                count: w.quiet,
                over,
            });
            *w = Window {
                since: now,
                quiet: 0,
            };
            true
        });
        out
    }

    /// Logs the due summaries every interval (a quarter of it, so none is late by more than
    /// that) until `stop` resolves, then the last ones.
    pub(crate) async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let tick = (self.interval / 4).max(Duration::from_millis(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.as_mut() => break,
            }
            self.log(self.due(now()));
        }
        self.log(self.due(now() + self.interval));
    }

    /// Events of `(site, kind, name)` counted, not logged, in its current interval (`None`: the
    /// key is not known). For the warning sites' tests.
    #[cfg(test)]
    pub(crate) fn counted(&self, site: Repeat, kind: &'static str, name: &str) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.get(&(site, kind, name.into())).map(|w| w.quiet)
    }

    fn log(&self, summaries: Vec<Summary>) {
        for s in summaries {
            tracing::warn!(
                kind = s.kind,
                name = %s.name,
                repeated = s.count,
                within_ms = s.over.as_millis() as u64,
                "{}: {} more like this in the last {:?}",
                s.site.message(),
                s.count,
                s.over
            );
        }
    }
}

/// The time to count with: tokio's clock (so tests with paused time move it), as an `Instant`.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Duration = Duration::from_secs(10);

    #[test]
    fn the_first_is_logged_the_rest_counted_and_summarised_once_per_interval() {
        let log = LogSummary::new(TEN);
        let t0 = Instant::now();
        assert!(log.note(Repeat::Refused, "overloaded", "p", t0));
        for i in 1..=473 {
            let at = t0 + Duration::from_millis(i);
            assert!(!log.note(Repeat::Refused, "overloaded", "p", at), "{i}");
        }
        assert!(log.due(t0 + TEN - Duration::from_millis(1)).is_empty());
        let due = log.due(t0 + TEN);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].count, due[0].over, due[0].kind),
            (473, TEN, "overloaded")
        );
        // Counted again from the summary on; nothing is due twice.
        assert!(log.due(t0 + TEN).is_empty());
        assert!(!log.note(Repeat::Refused, "overloaded", "p", t0 + TEN));
        assert_eq!(log.due(t0 + TEN * 2)[0].count, 1);
        // A whole quiet interval: the key is forgotten, and the next event is logged at once.
        assert!(log.due(t0 + TEN * 3).is_empty());
        assert!(log.note(Repeat::Refused, "overloaded", "p", t0 + TEN * 3));
    }

    #[test]
    fn keys_are_site_kind_and_name() {
        let log = LogSummary::new(TEN);
        let t = Instant::now();
        assert!(log.note(Repeat::Refused, "overloaded", "p", t));
        assert!(log.note(Repeat::Refused, "quarantined", "p", t));
        assert!(log.note(Repeat::Refused, "overloaded", "q", t));
        assert!(log.note(Repeat::CallFailed, "overloaded", "p", t));
        assert!(!log.note(Repeat::Refused, "overloaded", "q", t));
    }

    #[test]
    fn after_a_quiet_interval_the_next_event_is_logged_without_a_summary() {
        let log = LogSummary::new(TEN);
        let t = Instant::now();
        assert!(log.note(Repeat::NotLoaded, "not_loaded", "p", t));
        assert!(log.note(Repeat::NotLoaded, "not_loaded", "p", t + TEN));
        assert!(!log.note(Repeat::NotLoaded, "not_loaded", "p", t + TEN));
    }

    #[test]
    fn keys_are_capped_at_the_limit_and_the_rest_share_one_overflow_line() {
        let log = LogSummary::new(TEN);
        let t = Instant::now();
        for i in 0..MAX_KEYS {
            assert!(log.note(Repeat::StoreFailed, "timeout", &format!("s{i}"), t));
        }
        // One past the limit: logged once under the overflow key, then counted there.
        assert!(log.note(Repeat::StoreFailed, "timeout", "one-more", t));
        assert!(!log.note(Repeat::StoreFailed, "timeout", "and-another", t));
        assert_eq!(log.windows.lock().unwrap().len(), MAX_KEYS + 1);
        let due = log.due(t + TEN);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].site, due[0].count), (Repeat::Overflow, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_logs_what_is_due_and_ends_with_its_stop() {
        let log = std::sync::Arc::new(LogSummary::new(TEN));
        assert!(log.note(Repeat::Refused, "overloaded", "p", now()));
        assert!(!log.note(Repeat::Refused, "overloaded", "p", now()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let log = log.clone();
            async move { log.run(async { drop(rx.await) }).await }
        });
        // The summary is logged (the count restarts) at the first tick past the interval, and the
        // quiet key forgotten an interval later.
        tokio::time::sleep(TEN + TEN / 2).await;
        assert_eq!(
            log.windows
                .lock()
                .unwrap()
                .values()
                .map(|w| w.quiet)
                .sum::<u64>(),
            0
        );
        assert_eq!(log.windows.lock().unwrap().len(), 1);
        tokio::time::sleep(TEN).await;
        assert!(log.windows.lock().unwrap().is_empty());
        let _ = tx.send(());
        task.await.unwrap();
    }
}
