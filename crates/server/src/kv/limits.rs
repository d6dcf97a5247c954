//! The checks of a store's limits on a guest's arguments, before any reaches a backend: key and
//! value sizes, and a TTL's bound (`max_ttl`, and an expiry that fits in checked arithmetic), so
//! an argument past a limit is `too_large` on both backends alike and never mistaken for a
//! backend failure. The limits themselves are the config's (`StoreLimits`); it must not touch
//! a backend, the bounds of an operation or its metrics (`kv`'s `Store::run`).

use std::time::Duration;

use super::{Expiry, KvError, Store};

impl Store {
    pub(super) fn check_key(&self, key: &[u8]) -> Result<(), KvError> {
        if key.len() > self.limits.max_key_bytes {
            return Err(KvError::TooLarge(format!(
                "a key of {} bytes is longer than store `{}` allows (max_key_bytes = {})",
                key.len(),
                self.name,
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }

    pub(super) fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        if value.len() > self.limits.max_value_bytes {
            return Err(KvError::TooLarge(format!(
                "a value of {} bytes is larger than store `{}` allows (max_value_bytes = {})",
                value.len(),
                self.name,
                self.limits.max_value_bytes
            )));
        }
        Ok(())
    }

    /// When a value written now with `ttl` expires (`None`: never; a zero TTL is none), or
    /// `too_large` past `max_ttl`: one rule for both backends (Redis refuses an expiry past its
    /// clock's range, SQLite would take anything), and a guest's argument never reaches a
    /// backend that could mistake it for a failure.
    pub(super) fn expiry(&self, ttl: Option<Duration>) -> Result<Expiry, KvError> {
        let Some(ttl) = ttl.filter(|t| !t.is_zero()) else {
            return Ok(None);
        };
        let too_large = || {
            KvError::TooLarge(format!(
                "a TTL of {ttl:?} is longer than store `{}` allows (max_ttl = {:?})",
                self.name, self.limits.max_ttl
            ))
        };
        if ttl > self.limits.max_ttl {
            return Err(too_large());
        }
        expiry_at(super::now_ms(), ttl)
            .map(Some)
            .ok_or_else(too_large)
    }
}

/// `now_ms + ttl`, rounded up to whole milliseconds (a sub-millisecond TTL still expires), or
/// `None` if it does not fit (checked: never a wrapped or saturated expiry).
fn expiry_at(now_ms: i64, ttl: Duration) -> Option<i64> {
    let ms = ttl
        .as_millis()
        .checked_add(u128::from(!ttl.subsec_nanos().is_multiple_of(1_000_000)))?;
    now_ms.checked_add(i64::try_from(ms).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_checked_arithmetic() {
        assert_eq!(expiry_at(1_000, Duration::from_millis(5)), Some(1_005));
        assert_eq!(
            expiry_at(1_000, Duration::from_micros(1)),
            Some(1_001),
            "rounded up"
        );
        assert_eq!(
            expiry_at(i64::MAX - 5, Duration::from_millis(5)),
            Some(i64::MAX)
        );
        assert_eq!(expiry_at(i64::MAX - 5, Duration::from_millis(6)), None);
        assert_eq!(expiry_at(0, Duration::MAX), None);
    }
}
