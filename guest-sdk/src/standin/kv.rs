//! The in-memory stand-in for the `kv_*` host functions: what [`kv::Store`](crate::kv::Store)
//! talks to when a plugin runs natively.
//!
//! It owns the reference semantics of docs/ABI.md "The functions" for stores, which the host's
//! backends (SQLite, Redis) must match and `kv::tests` pins: values expire when the clock
//! reaches `set time + ttl`; `incr` counts from 0 and keeps canonical decimal text, and
//! `kv_incr_ttl` gives its TTL only to a key it creates; `kv_ttl` rounds what is left up to a
//! whole millisecond; compare-and-swap with an absent `expected` means "only if absent"; a listing is in ascending
//! byte order, strictly after the cursor. It also applies the limits of a `[stores.NAME]` table
//! left at its defaults ([`KV_LIMITS`]), so a plugin meets `too_large` and `limit_reached` in
//! its tests where it would meet them in production. State is per thread (each test gets its
//! own, since libtest runs every test on a thread of its own); stores are created on first use,
//! and expiries follow the one stand-in clock (`standin::clock`, which `time::now` reads too),
//! moved only by [`advance_clock`](crate::testing::advance_clock). It answers at the ABI level
//! (codes and encoded bytes) so the SDK decodes its answers exactly as it decodes the host's; it
//! must not be reachable from a plugin built for wasm32, where `host` calls the real imports.

use super::clock;
use crate::outcome::Outcome;
use crate::wire::{Errno, KeyPage, NO_EXPIRY};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::time::Duration;

/// The limits the stand-in applies to every store: those of a `[stores.NAME]` table that sets
/// none (docs/configuration.md).
///
/// ```
/// use wasmgate_sdk::{kv::Store, testing::KV_LIMITS, wire::Errno};
///
/// let store = Store::open("s")?;
/// let long_key = "k".repeat(KV_LIMITS.max_key_bytes + 1);
/// assert_eq!(store.set(long_key, "v").unwrap_err().errno, Errno::TooLarge);
/// # Ok::<(), wasmgate_sdk::Error>(())
/// ```
pub const KV_LIMITS: KvLimits = KvLimits {
    max_key_bytes: 512,
    max_value_bytes: 1024 * 1024,
    max_list_keys: 1000,
    max_ops_per_request: 100,
    max_ttl: Duration::from_secs(365 * 24 * 3600),
};

/// The bounds of a store, as `[stores.NAME]` sets them; see [`KV_LIMITS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest key (and listing prefix or cursor): longer is `too_large`.
    pub max_key_bytes: usize,
    /// Largest value: larger is `too_large`.
    pub max_value_bytes: usize,
    /// Most keys one listing returns; a larger `limit`, or 0, is lowered to it.
    pub max_list_keys: u32,
    /// Operations (`open` included) one request may make on one store: past it,
    /// `limit_reached`. The stand-in counts them during
    /// [`testing::call`](crate::testing::call) only, which is one request; a test's own setup
    /// calls are not a request and are not counted.
    pub max_ops_per_request: u32,
    /// Longest TTL a `set`/`compare_and_swap` may give: longer is `too_large` (a value that
    /// should never expire takes no TTL).
    pub max_ttl: Duration,
}

/// One stored value and when it stops existing (`None`: never), on the stand-in clock.
struct Entry {
    value: Vec<u8>,
    expires_at: Option<Duration>,
}

#[derive(Default)]
struct State {
    stores: HashMap<Vec<u8>, BTreeMap<Vec<u8>, Entry>>,
    denied: HashSet<Vec<u8>>,
    /// Operations per store during the current request, while [`crate::testing::call`] runs one.
    ops: Option<HashMap<Vec<u8>, u32>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Empties every stand-in store of this thread, lifts [`kv_deny`] refusals and puts the clock
/// back to its start ([`CLOCK_START_UNIX_MS`](crate::testing::CLOCK_START_UNIX_MS)).
///
/// ```
/// use wasmgate_sdk::{kv::Store, testing};
///
/// Store::open("s")?.set("k", "v")?;
/// testing::kv_reset();
/// assert_eq!(Store::open("s")?.get("k")?, None);
/// # Ok::<(), wasmgate_sdk::Error>(())
/// ```
pub fn kv_reset() {
    STATE.set(State::default());
    clock::reset();
}

/// Makes the stand-in refuse the store `name` the way a host refuses a store missing from the
/// plugin's `kv` grant: `Store::open` and every operation fail with `denied`.
///
/// ```
/// use wasmgate_sdk::{kv::Store, testing, wire::Errno};
///
/// testing::kv_deny("secrets");
/// assert_eq!(Store::open("secrets").unwrap_err().errno, Errno::Denied);
/// ```
pub fn kv_deny(name: &str) {
    STATE.with_borrow_mut(|s| s.denied.insert(name.as_bytes().to_vec()));
}

/// Counts the operations of one request per store until dropped; [`crate::testing::call`] holds one
/// while it runs the handler.
pub(crate) struct RequestScope(());

impl RequestScope {
    pub(crate) fn begin() -> Self {
        STATE.with_borrow_mut(|s| s.ops = Some(HashMap::new()));
        RequestScope(())
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        STATE.with_borrow_mut(|s| s.ops = None);
    }
}

/// Runs `op` on the store named `store` (created empty on first use) with the clock's time,
/// after the checks a host makes first: the grant (`denied` for a store refused with
/// [`kv_deny`]), then the request's operation count (`limit_reached`), then the size of every
/// key-like argument in `keys` and value in `values` (`too_large`).
fn with_store(
    store: &[u8],
    keys: &[&[u8]],
    values: &[&[u8]],
    op: impl FnOnce(&mut BTreeMap<Vec<u8>, Entry>, Duration) -> Outcome,
) -> Outcome {
    let name = String::from_utf8_lossy(store);
    STATE.with_borrow_mut(|s| {
        if s.denied.contains(store) {
            return Outcome::fail(
                Errno::Denied,
                format!("store `{name}` is not granted (refused by testing::kv_deny)"),
            );
        }
        if let Some(ops) = &mut s.ops {
            let count = ops.entry(store.to_vec()).or_default();
            if *count >= KV_LIMITS.max_ops_per_request {
                let max = KV_LIMITS.max_ops_per_request;
                let message = format!(
                    "this request already made {max} operations on store `{name}` \
                     (max_ops_per_request)"
                );
                return Outcome::fail(Errno::LimitReached, message);
            }
            *count += 1;
        }
        if let Some(key) = keys.iter().find(|k| k.len() > KV_LIMITS.max_key_bytes) {
            let (len, max) = (key.len(), KV_LIMITS.max_key_bytes);
            let message = format!(
                "a key of {len} bytes is longer than store `{name}` allows (max_key_bytes = {max})"
            );
            return Outcome::fail(Errno::TooLarge, message);
        }
        if let Some(value) = values.iter().find(|v| v.len() > KV_LIMITS.max_value_bytes) {
            let (len, max) = (value.len(), KV_LIMITS.max_value_bytes);
            let message = format!(
                "a value of {len} bytes is larger than store `{name}` allows \
                 (max_value_bytes = {max})"
            );
            return Outcome::fail(Errno::TooLarge, message);
        }
        op(
            s.stores.entry(store.to_vec()).or_default(),
            clock::elapsed(),
        )
    })
}

/// The live (present and unexpired) entry at `key`.
fn live<'a>(
    map: &'a mut BTreeMap<Vec<u8>, Entry>,
    key: &[u8],
    now: Duration,
) -> Option<&'a mut Entry> {
    map.get_mut(key).filter(|e| is_live(e, now))
}

fn is_live(entry: &Entry, now: Duration) -> bool {
    entry.expires_at.is_none_or(|at| now < at)
}

/// `too_large` for a `ttl_ms` past [`KvLimits::max_ttl`], as the host answers.
fn ttl_past_limit(ttl_ms: i64) -> Option<Outcome> {
    let max = KV_LIMITS.max_ttl.as_millis();
    (i128::from(ttl_ms) > i128::try_from(max).unwrap_or(i128::MAX)).then(|| {
        Outcome::fail(
            Errno::TooLarge,
            format!("a TTL of {ttl_ms} ms is longer than the store allows (max_ttl = {max} ms)"),
        )
    })
}

/// When a value set now with `ttl_ms` expires: never for `ttl_ms <= 0`.
fn expiry(now: Duration, ttl_ms: i64) -> Option<Duration> {
    let ms = u64::try_from(ttl_ms).ok().filter(|&ms| ms > 0)?;
    now.checked_add(Duration::from_millis(ms))
}

fn not_found(key: &[u8]) -> Outcome {
    let key = String::from_utf8_lossy(key);
    Outcome::fail(Errno::NotFound, format!("no key `{key}`"))
}

pub(crate) fn kv_open(store: &[u8]) -> Outcome {
    with_store(store, &[], &[], |_, _| Outcome::ok(Vec::new()))
}

pub(crate) fn kv_get(store: &[u8], key: &[u8]) -> Outcome {
    with_store(store, &[key], &[], |map, now| match live(map, key, now) {
        Some(entry) => Outcome::ok(entry.value.clone()),
        None => not_found(key),
    })
}

pub(crate) fn kv_set(store: &[u8], key: &[u8], value: &[u8], ttl_ms: i64) -> Outcome {
    with_store(store, &[key], &[value], |map, now| {
        if let Some(refusal) = ttl_past_limit(ttl_ms) {
            return refusal;
        }
        let entry = Entry {
            value: value.to_vec(),
            expires_at: expiry(now, ttl_ms),
        };
        map.insert(key.to_vec(), entry);
        Outcome::ok(Vec::new())
    })
}

pub(crate) fn kv_delete(store: &[u8], key: &[u8]) -> Outcome {
    with_store(store, &[key], &[], |map, now| match map.remove(key) {
        Some(entry) if is_live(&entry, now) => Outcome::ok(Vec::new()),
        _ => not_found(key),
    })
}

pub(crate) fn kv_exists(store: &[u8], key: &[u8]) -> Outcome {
    with_store(store, &[key], &[], |map, now| match live(map, key, now) {
        Some(_) => Outcome::ok(Vec::new()),
        None => not_found(key),
    })
}

pub(crate) fn kv_incr(store: &[u8], key: &[u8], delta: i64) -> Outcome {
    kv_incr_ttl(store, key, delta, 0)
}

/// `kv_incr`, and a key it creates (absent or expired) expires after `ttl_ms` (<= 0: never); an
/// existing key keeps its expiry. A `ttl_ms` past `max_ttl` is refused first, key or no key.
pub(crate) fn kv_incr_ttl(store: &[u8], key: &[u8], delta: i64, ttl_ms: i64) -> Outcome {
    with_store(store, &[key], &[], |map, now| {
        if let Some(refusal) = ttl_past_limit(ttl_ms) {
            return refusal;
        }
        let (current, expires_at) = match live(map, key, now) {
            None => (0, expiry(now, ttl_ms)),
            Some(entry) => match canonical_integer(&entry.value) {
                Some(n) => (n, entry.expires_at),
                None => {
                    let shown = String::from_utf8_lossy(&entry.value);
                    let message = format!("the value {shown:?} is not a decimal integer");
                    return Outcome::fail(Errno::Invalid, message);
                }
            },
        };
        let Some(new) = current.checked_add(delta) else {
            return Outcome::fail(
                Errno::Invalid,
                format!("{current} + {delta} overflows an i64"),
            );
        };
        let value = new.to_string().into_bytes();
        map.insert(key.to_vec(), Entry { value, expires_at });
        Outcome::ok(new.to_le_bytes().to_vec())
    })
}

/// `kv_ttl`: the milliseconds `key` has left, rounded up (so a live key has at least 1), or
/// [`NO_EXPIRY`]; `not_found` when absent or expired.
pub(crate) fn kv_ttl(store: &[u8], key: &[u8]) -> Outcome {
    with_store(store, &[key], &[], |map, now| match live(map, key, now) {
        Some(entry) => {
            let ms = match entry.expires_at {
                None => NO_EXPIRY,
                Some(at) => {
                    let left = at - now;
                    let ms = left.as_millis()
                        + u128::from(!left.subsec_nanos().is_multiple_of(1_000_000));
                    i64::try_from(ms).unwrap_or(i64::MAX)
                }
            };
            Outcome::ok(ms.to_le_bytes().to_vec())
        }
        None => not_found(key),
    })
}

/// The integer `bytes` spell in canonical decimal, the only form every backend agrees on (and
/// the one `kv_incr` writes): an optional `-`, then digits without a leading zero (`0` itself
/// excepted); no `+`, no spaces, no `-0`.
fn canonical_integer(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let well_formed = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    well_formed.then(|| text.parse().ok()).flatten()
}

pub(crate) fn kv_cas(
    store: &[u8],
    key: &[u8],
    expected: Option<&[u8]>,
    new: &[u8],
    ttl_ms: i64,
) -> Outcome {
    with_store(store, &[key], &[new], |map, now| {
        if let Some(refusal) = ttl_past_limit(ttl_ms) {
            return refusal;
        }
        let current = live(map, key, now).map(|e| e.value.as_slice());
        if current != expected {
            let message = match current {
                Some(_) => "the key holds another value",
                None => "the key is absent",
            };
            return Outcome::fail(Errno::Conflict, message);
        }
        let entry = Entry {
            value: new.to_vec(),
            expires_at: expiry(now, ttl_ms),
        };
        map.insert(key.to_vec(), entry);
        Outcome::ok(Vec::new())
    })
}

pub(crate) fn kv_list(store: &[u8], prefix: &[u8], cursor: &[u8], limit: u32) -> Outcome {
    with_store(store, &[prefix, cursor], &[], |map, now| {
        let start = if cursor.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(cursor)
        };
        // 0 asks for the store's maximum, and a larger limit is lowered to it.
        let max = KV_LIMITS.max_list_keys;
        let limit = if limit == 0 { max } else { limit.min(max) } as usize;
        // One key more than asked tells whether a next page exists.
        let mut keys: Vec<&[u8]> = map
            .range::<[u8], _>((start, Bound::Unbounded))
            .filter(|(k, e)| k.starts_with(prefix) && is_live(e, now))
            .map(|(k, _)| k.as_slice())
            .take(limit.saturating_add(1))
            .collect();
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next = if more {
            keys.last().copied().unwrap_or_default()
        } else {
            &[]
        };
        match (KeyPage { keys, next }).encode() {
            Ok(bytes) => Outcome::ok(bytes),
            Err(e) => Outcome::fail(Errno::TooLarge, e.to_string()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers_only() {
        for (text, n) in [
            ("0", 0),
            ("42", 42),
            ("-7", -7),
            ("9223372036854775807", i64::MAX),
        ] {
            assert_eq!(canonical_integer(text.as_bytes()), Some(n), "{text}");
        }
        for bad in [
            "",
            "-",
            "+1",
            " 1",
            "1 ",
            "01",
            "-0",
            "-01",
            "1.0",
            "1e3",
            "x",
            "9223372036854775808",
        ] {
            assert_eq!(canonical_integer(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn non_positive_ttls_never_expire() {
        let now = Duration::from_secs(5);
        assert_eq!(expiry(now, 0), None);
        assert_eq!(expiry(now, -1), None);
        assert_eq!(expiry(now, 1), Some(Duration::from_millis(5001)));
        assert_eq!(expiry(Duration::MAX, 1), None);
    }
}
