//! `created_at`: the current time as an RFC 3339 UTC timestamp, from the SDK's clock (the host's
//! in a plugin, the stand-in clock that `testing::advance_clock` moves in tests).

use std::time::UNIX_EPOCH;

/// Now, e.g. `2025-03-01T12:34:56Z`; `None` if the clock is before 1970.
pub(crate) fn now_rfc3339() -> Option<String> {
    let secs = wasmgate_sdk::time::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(rfc3339(secs))
}

/// `secs` after the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar; the
/// days-to-date conversion is Howard Hinnant's `civil_from_days`).
pub(crate) fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of the 400-year era
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year starting in March
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(rfc3339(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn now_follows_the_sdks_clock() {
        assert_eq!(now_rfc3339().unwrap(), "2026-01-01T00:00:00Z");
        wasmgate_sdk::testing::advance_clock(std::time::Duration::from_secs(90));
        assert_eq!(now_rfc3339().unwrap(), "2026-01-01T00:01:30Z");
    }
}
