//! Byte classes of HTTP/1.1 syntax as lookup tables, and the word-at-a-time scans over them.
//!
//! It owns "which bytes may appear here" and scanning fast over runs of allowed bytes: eight bytes
//! per step with SWAR bit tricks on a `u64` (no `unsafe`, no SIMD intrinsics), because field values
//! and targets are most of a head's bytes. It must not know about states, spans or errors.

/// tchar (RFC 9110 §5.6.2): the bytes of methods, field names, codings and other tokens.
const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z')
}

/// field-value bytes (RFC 9110 §5.5): VCHAR, obs-text, and SP/HTAB inside. Every other CTL (NUL,
/// CR, LF, DEL, ...) ends or invalidates the value.
const fn is_field_value(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=0x7e | 0x80..=0xff)
}

/// request-target bytes: visible ASCII (RFC 9112 §3.2 is built from URI characters only), minus
/// '#' because a fragment is never part of a request-target (RFC 9110 §7.1).
const fn is_target(b: u8) -> bool {
    matches!(b, b'!'..=b'~') && b != b'#'
}

const fn table(class: u8) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match class {
            0 => is_tchar(b),
            1 => is_field_value(b),
            _ => is_target(b),
        };
        i += 1;
    }
    t
}

/// Lookup tables: one load per byte in the hot loops instead of a chain of comparisons.
pub(crate) static TCHAR: [bool; 256] = table(0);
pub(crate) static FIELD_VALUE: [bool; 256] = table(1);
pub(crate) static TARGET: [bool; 256] = table(2);

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

// The masks below flag bytes in the 0x80 bit of each byte lane. Borrows and carries only ever
// propagate from a flagged lane towards more significant lanes, so the LOWEST flag is exact: read
// little-endian, `trailing_zeros / 8` is the index of the first byte that fails the test.

/// Flags bytes below `n` (n <= 128).
const fn less(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGHS
}

/// Flags bytes above `n` (n <= 127).
const fn more(x: u64, n: u8) -> u64 {
    (x.wrapping_add(ONES * (127 - n) as u64) | x) & HIGHS
}

/// Flags bytes equal to `b`.
const fn equal(x: u64, b: u8) -> u64 {
    less(x ^ (ONES * b as u64), 1)
}

/// The first index in `i..end` holding a byte `table` refuses, or `end`. `flags` must flag at
/// least every refused byte of a word (it may flag allowed ones too, e.g. HTAB: the table then
/// vouches for them and the scan goes on).
#[inline(always)]
fn scan(buf: &[u8], mut i: usize, end: usize, table: &[bool; 256], flags: fn(u64) -> u64) -> usize {
    let end = end.min(buf.len());
    // Two words per step while nothing is flagged: one branch per 16 bytes of a long value.
    while i + 16 <= end {
        let pair = u128::from_le_bytes(buf[i..i + 16].try_into().unwrap_or_default());
        if flags(pair as u64) | flags((pair >> 64) as u64) != 0 {
            break;
        }
        i += 16;
    }
    while i + 8 <= end {
        let word = u64::from_le_bytes(buf[i..i + 8].try_into().unwrap_or_default());
        let flagged = flags(word);
        if flagged == 0 {
            i += 8;
            continue;
        }
        let first = i + (flagged.trailing_zeros() / 8) as usize;
        if !table[buf[first] as usize] {
            return first;
        }
        i = first + 1;
    }
    while i < end && table[buf[i] as usize] {
        i += 1;
    }
    i
}

/// Field-value scan: stops at the first byte that is not VCHAR, obs-text, SP or HTAB.
#[inline]
pub(crate) fn scan_value(buf: &[u8], i: usize, end: usize) -> usize {
    scan(buf, i, end, &FIELD_VALUE, |w| {
        less(w, 0x20) | equal(w, 0x7f)
    })
}

/// Request-target scan: stops at the first byte that is not visible ASCII, or at '#'.
#[inline]
pub(crate) fn scan_target(buf: &[u8], i: usize, end: usize) -> usize {
    scan(buf, i, end, &TARGET, |w| {
        less(w, 0x21) | more(w, 0x7e) | equal(w, b'#')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word scans agree with the tables for every byte at every lane of a word.
    #[test]
    fn scans_match_tables() {
        for b in 0..=255u8 {
            for at in 0..20 {
                let mut buf = vec![b'a'; 20];
                buf[at] = b;
                let expect = |table: &[bool; 256]| if table[b as usize] { 20 } else { at };
                assert_eq!(
                    scan_value(&buf, 0, 20),
                    expect(&FIELD_VALUE),
                    "value {b:#x} at {at}"
                );
                assert_eq!(
                    scan_target(&buf, 0, 20),
                    expect(&TARGET),
                    "target {b:#x} at {at}"
                );
            }
        }
    }
}
