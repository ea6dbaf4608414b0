//! Passwords: how they are normalised, hashed (argon2id), verified, and judged acceptable.

pub mod hasher;
pub mod policy;
pub mod pool;

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A password as typed, normalised to Unicode NFC (security spec A07: the same password typed
/// in NFC or NFD verifies). Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

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
