//! Byte classes of HTTP/1.1 syntax as lookup tables, and the word-at-a-time scans over them.
//!
//! It owns "which bytes may appear here" and scanning fast over runs of allowed bytes: eight bytes
//! per step with exact SWAR bit tricks on a `u64` (no `unsafe`, no SIMD intrinsics), because field
//! values and targets are most of a head's bytes. It must not know about states, spans or errors.

/// tchar (RFC 9110 §5.6.2): the bytes of methods, field names, codings and other tokens.
const fn tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z')
}

/// field-value bytes (RFC 9110 §5.5): VCHAR, obs-text, and SP/HTAB inside. Every other CTL (NUL,
/// CR, LF, DEL, ...) ends or invalidates the value.
const fn field_value_byte(b: u8) -> bool {
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
            0 => tchar(b),
            1 => field_value_byte(b),
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

/// Whether `s` is an RFC 9110 `token` (§5.6.2): one or more tchar. The one token rule of the
/// project: methods, field names, route methods in the config and guest header names all use it.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| TCHAR[b as usize])
}

/// Whether `v` may be sent as a field value as it is (RFC 9110 §5.5): no control character but
/// HTAB, no DEL; obs-text (0x80-0xff) is allowed. Leading and trailing whitespace is not judged.
pub fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| FIELD_VALUE[b as usize])
}

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

// Word-at-a-time classification (SWAR). Each function below looks at eight bytes read
// little-endian and sets the 0x80 bit of every byte lane it flags. They work on `x7`, the word
// with each lane's high bit cleared, so that adding a constant below 0x80 to a lane never carries
// into the next one: every lane is decided exactly, on its own, and `trailing_zeros / 8` is the
// index of the first flagged byte. Bytes >= 0x80 are decided from the original word's high bits.

/// Flags lanes of `x7` (every lane <= 0x7f) that are >= `n` (n <= 0x80).
const fn at_least(x7: u64, n: u8) -> u64 {
    x7.wrapping_add(ONES * (0x80 - n as u64)) & HIGHS
}

/// Flags lanes of `x7` (every lane <= 0x7f) equal to `b` (b <= 0x7f).
const fn equal(x7: u64, b: u8) -> u64 {
    !at_least(x7 ^ (ONES * b as u64), 1) & HIGHS
}

/// Flags at least every byte a field value refuses, in five operations: every byte whose low
/// seven bits are a CTL or DEL. That also flags HTAB and some obs-text (0x80-0x9f, 0xff), rare in
/// values, which the table then lets through.
const fn value_suspects(x: u64) -> u64 {
    // low7 + 1 maps CTLs to 0x01..=0x20 and DEL to 0x00 (masked); everything else to >= 0x21.
    let shifted = (x & !HIGHS).wrapping_add(ONES) & !HIGHS;
    !at_least(shifted, 0x21) & HIGHS
}

/// Flags every byte a field value refuses: CTLs other than HTAB, and DEL. Exact.
#[cfg(test)]
const fn value_refuses(x: u64) -> u64 {
    let x7 = x & !HIGHS;
    let ctl = !at_least(x7, 0x20) & HIGHS;
    // HTAB is the one CTL a value allows; its lanes are a subset of `ctl`'s.
    let refused = (ctl ^ equal(x7, b'\t')) | at_least(x7, 0x7f);
    // obs-text (>= 0x80) is allowed: only lanes whose original high bit is clear count.
    refused & !x
}

/// Flags every byte a request-target refuses: CTLs, SP, DEL, '#' and anything >= 0x80. Exact.
const fn target_refuses(x: u64) -> u64 {
    let x7 = x & !HIGHS;
    let below = !at_least(x7, 0x21) & HIGHS;
    below | at_least(x7, 0x7f) | equal(x7, b'#') | (x & HIGHS)
}

/// Flags every byte that is not an ASCII letter, digit or '-': the bytes of almost every field
/// name and method. The other tchars ('_', '!', ...) are flagged too; the table vouches for them.
const fn not_alnum_dash(x: u64) -> u64 {
    let x7 = x & !HIGHS;
    let folded = x7 | (ONES * 0x20);
    let letter = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
    let digit = at_least(x7, b'0') & !at_least(x7, b'9' + 1);
    let ok = (letter | digit | equal(x7, b'-')) & !x;
    !ok & HIGHS
}

/// The first index in `i..end` holding a byte `table` refuses, or `end`, a word per step. `flags`
/// must flag every byte the table refuses; with `EXACT` it flags only those, otherwise the table
/// vouches for a flagged byte and the scan goes on after it.
#[inline(always)]
fn scan<const EXACT: bool>(
    buf: &[u8],
    mut i: usize,
    end: usize,
    table: &[bool; 256],
    flags: fn(u64) -> u64,
) -> usize {
    let end = end.min(buf.len());
    while i + 8 <= end {
        let word = u64::from_le_bytes(buf[i..i + 8].try_into().unwrap_or_default());
        let flagged = flags(word);
        if flagged == 0 {
            i += 8;
            continue;
        }
        let first = i + (flagged.trailing_zeros() / 8) as usize;
        if EXACT || !table[buf[first] as usize] {
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
    scan::<false>(buf, i, end, &FIELD_VALUE, value_suspects)
}

/// Token scan (methods, field names): stops at the first byte that is not a tchar.
#[inline]
pub(crate) fn scan_token(buf: &[u8], i: usize, end: usize) -> usize {
    scan::<false>(buf, i, end, &TCHAR, not_alnum_dash)
}

/// Request-target scan: stops at the first byte that is not visible ASCII, or at '#'.
#[inline]
pub(crate) fn scan_target(buf: &[u8], i: usize, end: usize) -> usize {
    scan::<true>(buf, i, end, &TARGET, target_refuses)
}

/// The first index of `byte` (<= 0x7f) in `buf[i..]`, or `buf.len()`; a word per step.
#[inline]
pub(crate) fn find_byte(buf: &[u8], mut i: usize, byte: u8) -> usize {
    while i + 8 <= buf.len() {
        let word = u64::from_le_bytes(buf[i..i + 8].try_into().unwrap_or_default());
        let found = equal(word & !HIGHS, byte) & !word;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && buf[i] != byte {
        i += 1;
    }
    i
}

/// Where the field name starting at `i` ends, if it is one or more tchars ended by ':' (the index
/// of the colon); `None` for anything else, or when `end` comes first.
#[inline(always)]
pub(crate) fn name_colon(buf: &[u8], start: usize, end: usize) -> Option<usize> {
    let end = end.min(buf.len());
    let i = scan_token(buf, start, end);
    (i > start && i < end && buf[i] == b':').then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word classifiers flag a lane iff its table refuses the byte, whatever the other lanes
    /// hold (no carry or borrow crosses lanes); the token one also flags the rarer tchars.
    #[test]
    fn word_flags_are_exact_per_lane() {
        let others = [0x00u8, 0x09, 0x0d, 0x20, b'-', b'a', b'Z', 0x7f, 0x80, 0xff];
        for b in 0..=255u8 {
            for lane in 0..8 {
                for &o in &others {
                    let mut bytes = [o; 8];
                    bytes[lane] = b;
                    let w = u64::from_le_bytes(bytes);
                    let bit = |f: u64| f >> (lane * 8 + 7) & 1 == 1;
                    assert_eq!(
                        bit(value_refuses(w)),
                        !FIELD_VALUE[b as usize],
                        "value {b:#x}"
                    );
                    let suspect = b & 0x7f < 0x20 || b & 0x7f == 0x7f;
                    assert_eq!(bit(value_suspects(w)), suspect, "value suspect {b:#x}");
                    assert_eq!(bit(target_refuses(w)), !TARGET[b as usize], "target {b:#x}");
                    let alnum_dash = b.is_ascii_alphanumeric() || b == b'-';
                    assert_eq!(bit(not_alnum_dash(w)), !alnum_dash, "token {b:#x}");
                    assert!(alnum_dash || !TCHAR[b as usize] || bit(not_alnum_dash(w)));
                }
            }
        }
    }

    /// The scans agree with the tables for every byte at every position of a block and its tail.
    #[test]
    fn scans_match_tables() {
        for b in 0..=255u8 {
            for at in 0..40 {
                let mut buf = vec![b'a'; 40];
                buf[at] = b;
                let expect = |table: &[bool; 256]| if table[b as usize] { 40 } else { at };
                assert_eq!(
                    scan_value(&buf, 0, 40),
                    expect(&FIELD_VALUE),
                    "value {b:#x} at {at}"
                );
                assert_eq!(
                    scan_target(&buf, 0, 40),
                    expect(&TARGET),
                    "target {b:#x} at {at}"
                );
                assert_eq!(
                    scan_token(&buf, 0, 40),
                    expect(&TCHAR),
                    "token {b:#x} at {at}"
                );
                if b < 0x80 {
                    let found = find_byte(&buf, 0, b);
                    assert_eq!(found, if b == b'a' { 0 } else { at }, "find {b:#x} at {at}");
                    assert_eq!(find_byte(&buf, 0, b'?'), if b == b'?' { at } else { 40 });
                }
                let colon = name_colon(&buf, 0, 40);
                let expect_colon = (b == b':' && at > 0).then_some(at);
                assert_eq!(colon, expect_colon, "name {b:#x} at {at}");
                // A scan never passes `end`, nor starts before `i`.
                assert_eq!(scan_value(&buf, 1, at), at.max(1), "value end {at}");
            }
        }
    }
}
