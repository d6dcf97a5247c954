//! Request ids: one per request, the same in the log lines, the plugin's `request_id` field and
//! the `x-request-id` response header, so an operator can follow a request from a client's report
//! to the logs.
//!
//! Owns the id's shape and its generator. An id is 16 lowercase hex digits: a random 24-bit
//! prefix chosen when the process starts, then a 40-bit counter. The prefix keeps the ids of the
//! processes behind one balancer (docs/deploy.md) apart; the counter keeps ids unique within a
//! process for a trillion requests and costs one relaxed atomic add. Formatting needs no
//! allocation. Must not know where ids are written.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of the per-request counter; the prefix takes the rest of the 64.
const COUNTER_BITS: u32 = 40;

/// One request's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// The id with these 64 bits (benchmarks and tools that call plugins outside a server).
    pub fn from_bits(bits: u64) -> RequestId {
        RequestId(bits)
    }

    /// The id as text: 16 lowercase hex digits, on the stack.
    pub(crate) fn to_text(self) -> IdText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            let nibble = (self.0 >> (60 - 4 * i)) & 0xf;
            *byte = HEX[nibble as usize];
        }
        IdText(out)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_text().as_str())
    }
}

/// A request id's text.
#[derive(Clone, Copy)]
pub(crate) struct IdText([u8; 16]);

impl IdText {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn as_str(&self) -> &str {
        // Hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Hands out ids: one generator per server.
#[derive(Debug)]
pub(crate) struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        use std::hash::BuildHasher;
        // RandomState is seeded from the OS's randomness once per process (then varied per
        // value): enough to tell processes apart, and no dependency for it.
        let random = std::collections::hash_map::RandomState::new()
            .hash_one((std::process::id(), std::time::SystemTime::now()));
        RequestIds {
            prefix: random << COUNTER_BITS,
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    /// A new id.
    pub(crate) fn next(&self) -> RequestId {
        let n = self.next.fetch_add(1, Ordering::Relaxed) & ((1 << COUNTER_BITS) - 1);
        RequestId(self.prefix | n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sixteen_hex_digits_unique_and_share_the_process_prefix() {
        let ids = RequestIds::default();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        let (ta, tb) = (a.to_string(), b.to_string());
        assert_eq!(ta.len(), 16);
        assert!(
            ta.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_eq!(ta[..6], tb[..6], "one prefix per generator");
        assert_eq!(
            u64::from_str_radix(&tb, 16).unwrap() - u64::from_str_radix(&ta, 16).unwrap(),
            1
        );
        assert_eq!(
            RequestId(0x0123_4567_89ab_cdef).to_string(),
            "0123456789abcdef"
        );
    }
}
