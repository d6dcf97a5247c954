//! Randomness for plugins: ids, tokens, sampling.
//!
//! This module owns the choice of source. In a plugin it is WASI `random_get`, which the host
//! backs with a cryptographically secure generator (the raw call lives in `sys`, with the rest of
//! the `unsafe`). Natively (unit tests) it falls back to std's randomly keyed SipHash, which is
//! unpredictable enough for test ids but not a CSPRNG. It must not keep state across calls: an
//! instance lives for one request anyway.
//!
//! ```
//! let id = wasmgate_sdk::random::uuid_v4();
//! assert_eq!(id.len(), 36);
//! assert_ne!(id, wasmgate_sdk::random::uuid_v4());
//! ```

/// Fills `buf` with random bytes.
///
/// # Panics
/// If the host's `random_get` fails (it does not in wasmtime); a plugin cannot do anything
/// sensible without randomness it asked for, so this traps with the WASI errno.
///
/// ```
/// let mut key = [0u8; 32];
/// wasmgate_sdk::random::fill(&mut key);
/// assert!(key.iter().any(|&b| b != 0));
/// ```
pub fn fill(buf: &mut [u8]) {
    #[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
    if let Err(errno) = crate::sys::wasi_random_get(buf) {
        panic!("wasmgate-sdk: WASI random_get failed with errno {errno}");
    }
    #[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
    native_fill(buf);
}

/// A random `u64`.
///
/// ```
/// let n = wasmgate_sdk::random::u64();
/// assert_ne!(n, wasmgate_sdk::random::u64()); // 2^-64 chance of a false failure
/// ```
pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

/// A random (version 4) UUID in the usual lowercase hyphenated form,
/// e.g. `1b4e28ba-2fa1-4d2e-883f-0016d3cca427`.
///
/// ```
/// let id = wasmgate_sdk::random::uuid_v4();
/// let groups: Vec<_> = id.split('-').map(str::len).collect();
/// assert_eq!(groups, [8, 4, 4, 4, 12]);
/// assert_eq!(&id[14..15], "4"); // version
/// assert!(matches!(&id[19..20], "8" | "9" | "a" | "b")); // RFC 9562 variant
/// ```
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(byte >> 4)]));
        s.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    s
}

/// Native stand-in: each `RandomState::new()` is keyed from the OS generator (then stepped), and
/// hashing a block counter with it yields independent-looking 64-bit words.
#[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
fn native_fill(buf: &mut [u8]) {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let word = state.hash_one(i).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_covers_odd_lengths_and_differs_between_calls() {
        let (mut a, mut b) = ([0u8; 13], [0u8; 13]);
        fill(&mut a);
        fill(&mut b);
        assert_ne!(a, b);
        fill(&mut []);
    }

    #[test]
    fn uuids_are_well_formed_and_distinct() {
        let ids: std::collections::HashSet<_> = (0..100).map(|_| uuid_v4()).collect();
        assert_eq!(ids.len(), 100);
        assert!(
            ids.iter()
                .all(|id| id.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()))
        );
    }
}
