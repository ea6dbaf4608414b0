//! Passwords: how they are normalised, hashed (argon2id), verified, and judged acceptable.

pub mod hasher;
pub mod policy;
pub mod pool;

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A password as typed, normalised to Unicode NFC (security spec A07: the same password typed
/// in NFC or NFD verifies). Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Password(String);

/// Two passwords (a new one and its confirmation) compare in time that does not depend on
/// where they first differ.
impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        crate::random::constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for Password {}

impl Password {
    /// Normalises `raw` to NFC.
    pub fn new(raw: &str) -> Self {
        Self(raw.nfc().collect())
    }

    /// The normalised password, for hashing and policy checks only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is longer than the hard cap enforced before any hashing.
    pub fn exceeds_hard_cap(&self) -> bool {
        self.0.len() > policy::MAX_PASSWORD_BYTES
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_compare_by_their_normalised_value() {
        // "é" precomposed (NFC) and decomposed (NFD) are the same password.
        assert_eq!(Password::new("caf\u{e9}"), Password::new("cafe\u{301}"));
        assert_ne!(Password::new("caf\u{e9}"), Password::new("cafe"));
        assert_ne!(Password::new("abc"), Password::new("abcd"));
        assert_ne!(Password::new(""), Password::new("a"));
    }
}
