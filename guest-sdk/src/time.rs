//! The wall clock: [`now`], one source of "now" for a plugin and its native tests, and
//! [`retry_after_secs`], a wait as the whole seconds a `Retry-After` header carries.
//!
//! On wasm32 [`now`] reads the host's clock (WASI `clock_time_get`, which every plugin may
//! call). Natively it reads the stand-in clock that
//! [`testing::advance_clock`](crate::testing::advance_clock) moves and the key-value stand-in's
//! expiries follow, starting at [`testing::CLOCK_START_UNIX_MS`](crate::testing::CLOCK_START_UNIX_MS):
//! one clock, so a handler that computes a `Retry-After` from the time, or from a key's
//! remaining TTL, is unit-tested without sleeping. This module must not keep time of its own.
//!
//! ```
//! use std::time::Duration;
//! use wasmgate_sdk::{testing, time};
//!
//! let before = time::now();
//! testing::advance_clock(Duration::from_secs(90));
//! assert_eq!(time::now().duration_since(before).unwrap(), Duration::from_secs(90));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A duration as the ABI's milliseconds (`ttl_ms`, `timeout_ms`): rounded up, so a non-zero
/// duration stays non-zero (and zero stays "none"), saturating at `i64::MAX`.
pub(crate) fn abi_millis(d: Duration) -> i64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The current wall-clock time: the host's clock in a plugin, the stand-in clock in native
/// tests.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use wasmgate_sdk::{testing, time};
///
/// let start = UNIX_EPOCH + Duration::from_millis(testing::CLOCK_START_UNIX_MS);
/// assert_eq!(time::now(), start);
/// testing::advance_clock(Duration::from_millis(1));
/// assert_eq!(time::now(), start + Duration::from_millis(1));
/// ```
pub fn now() -> SystemTime {
    #[cfg(target_arch = "wasm32")]
    {
        SystemTime::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::standin::clock::now()
    }
}

/// [`now`] as whole milliseconds since the Unix epoch (0 for a clock set before it).
///
/// ```
/// use wasmgate_sdk::{testing, time};
///
/// assert_eq!(time::unix_millis(), testing::CLOCK_START_UNIX_MS);
/// ```
pub fn unix_millis() -> u64 {
    now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `wait` as the whole seconds a `Retry-After` header carries: rounded up, at least 1 (the
/// host's own rule, written once in `wasmgate-http`).
#[doc(inline)]
pub use wasmgate_http::encode::retry_after_secs;
