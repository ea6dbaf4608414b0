//! Request ids for the access log and the `X-Request-Id` header.
//!
//! One id per request, so it must cost next to nothing: no system call (the OS random source
//! costs one per call) and no allocation. An id is a per-process counter, offset by a random
//! value drawn once, passed through a bijective mix and written as 16 hex digits: distinct
//! for every request of a process, and unlikely to repeat between instances. It only
//! correlates log lines and a helpdesk call: it is not secret and grants nothing, so being
//! predictable is harmless.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A request id: 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

impl RequestId {
    /// The next id of this process.
    pub fn next() -> Self {
        static OFFSET: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let offset = *OFFSET.get_or_init(|| {
            // 11 alphanumerics ≈ 65 random bits, folded into 64.
            sesame_core::random::alphanumeric(11)
                .bytes()
                .fold(0_u64, |acc, b| {
                    acc.wrapping_mul(62).wrapping_add(u64::from(b))
                })
        });
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::from_number(mix(offset.wrapping_add(count)))
    }

    fn from_number(number: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0_u8; 16];
        for (i, digit) in digits.iter_mut().enumerate() {
            let nibble = (number >> (60 - 4 * i)) & 0xf;
            *digit = HEX[usize::try_from(nibble).unwrap_or(0)];
        }
        Self(digits)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SplitMix64 finaliser: a bijection of `u64` that spreads consecutive numbers apart, so
/// consecutive ids do not look alike in the logs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_sixteen_hex_digits_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let id = RequestId::next();
            assert_eq!(id.as_str().len(), 16);
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(seen.insert(id.as_str().to_owned()), "{id}");
        }
        assert_eq!(
            RequestId::from_number(0x0123_4567_89ab_cdef).as_str(),
            "0123456789abcdef"
        );
    }
}
