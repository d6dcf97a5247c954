//! The stand-in clock: the one notion of "now" of a plugin's native tests, read by
//! [`time::now`](crate::time::now) and by the key-value stand-in's expiries alike, and moved
//! only by [`testing::advance_clock`](crate::testing::advance_clock).
//!
//! It owns a per-thread offset from a fixed start ([`CLOCK_START_UNIX_MS`]), so a test that
//! computes a `Retry-After` from the clock and one that reads a key's remaining TTL see the same
//! time, and every run sees the same instants (a fixed start, not the machine's clock: a window
//! boundary or a date in an answer is reproducible). It must not read the real clock: on wasm32
//! the SDK reads the host's clock directly and never reaches this module.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the stand-in clock starts on every test thread (and after
/// [`testing::reset`](crate::testing::reset)): 2026-01-01T00:00:00Z, as milliseconds since the
/// Unix epoch. A whole day, so fixed windows of a minute or an hour begin exactly there.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use wasmgate_sdk::{testing, time};
///
/// assert_eq!(time::now(), UNIX_EPOCH + Duration::from_millis(testing::CLOCK_START_UNIX_MS));
/// ```
pub const CLOCK_START_UNIX_MS: u64 = 1_767_225_600_000;

thread_local! {
    /// Time since [`CLOCK_START_UNIX_MS`] on this thread, moved only by `advance_clock`.
    static ELAPSED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Time since the start, the scale of the key-value stand-in's expiries.
pub(crate) fn elapsed() -> Duration {
    ELAPSED.get()
}

/// The wall-clock time the stand-in clock shows.
pub(crate) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(CLOCK_START_UNIX_MS) + elapsed()
}

/// Puts the clock back to its start.
pub(crate) fn reset() {
    ELAPSED.set(Duration::ZERO);
}

/// Moves the stand-in clock forward by `by`: [`time::now`](crate::time::now) moves with it, and
/// key-value entries whose time to live has passed disappear.
///
/// ```
/// use std::time::Duration;
/// use wasmgate_sdk::{kv::Store, testing, time};
///
/// let store = Store::open("cache")?;
/// store.set_with_ttl("k", "v", Duration::from_millis(1500))?;
/// let before = time::now();
/// testing::advance_clock(Duration::from_millis(1499));
/// assert!(store.exists("k")?);
/// testing::advance_clock(Duration::from_millis(1));
/// assert!(!store.exists("k")?);
/// assert_eq!(time::now().duration_since(before).unwrap(), Duration::from_millis(1500));
/// # Ok::<(), wasmgate_sdk::Error>(())
/// ```
pub fn advance_clock(by: Duration) {
    ELAPSED.set(ELAPSED.get().saturating_add(by));
}
