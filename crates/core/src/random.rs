//! Unguessable identifiers (decision 7 of the security spec: at least 128 bits from the OS CSPRNG).

use sha2::{Digest, Sha256};

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random string of `len` characters from `[A-Za-z0-9]`, drawn from the OS CSPRNG without
/// modulo bias (rejection sampling). Each character carries log2(62) ≈ 5.95 bits, so 22
/// characters already exceed 128 bits; Sesame uses 32 or more.
///
/// # Panics
/// Panics if the operating system's random source fails, since Sesame cannot run safely without it.
pub fn alphanumeric(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        #[expect(
            clippy::expect_used,
            reason = "no safe way to continue without the OS random source"
        )]
        getrandom::getrandom(&mut buf).expect("the OS random number generator failed");
        for byte in buf {
            // 248 = 4 * 62: bytes at or above it would bias the distribution.
            if byte < 248 {
                out.push(char::from(ALPHANUMERIC[usize::from(byte % 62)]));
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

/// A session or token identifier: 43 alphanumeric characters (≈ 256 bits).
pub fn token() -> String {
    alphanumeric(43)
}

/// A one-time code of `len` decimal digits (an SMS code), uniform (rejection sampling).
///
/// # Panics
/// Panics if the operating system's random source fails, as [`alphanumeric`].
pub fn digits(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        #[expect(
            clippy::expect_used,
            reason = "no safe way to continue without the OS random source"
        )]
        getrandom::getrandom(&mut buf).expect("the OS random number generator failed");
        for byte in buf {
            // 250 = 25 * 10: bytes at or above it would bias the distribution.
            if byte < 250 {
                out.push(char::from(b'0' + byte % 10));
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

/// Whether two secrets (hashes of tokens or codes) are equal, in time that does not depend
/// on where they first differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Lowercase hex SHA-256 of `value`: how tokens are keyed at rest, so a dump of the store
/// yields nothing that can be replayed as a cookie or ticket.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq("", ""));
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!(!constant_time_eq("ab", "abc"));
    }

    #[test]
    fn tokens_are_long_alphanumeric_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let t = token();
            assert_eq!(t.len(), 43);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(seen.insert(t), "duplicate token");
        }
    }

    #[test]
    fn characters_are_roughly_uniform() {
        let sample = alphanumeric(62_000);
        let mut counts = [0u32; 128];
        for b in sample.bytes() {
            counts[usize::from(b)] += 1;
        }
        for &c in ALPHANUMERIC {
            let n = counts[usize::from(c)];
            assert!((800..1200).contains(&n), "{} drawn {n} times", c as char);
        }
    }
}
