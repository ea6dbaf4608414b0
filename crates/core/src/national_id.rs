//! National ID numbers (CIN, numéro de sécurité sociale…), kept only as a keyed hash.
//!
//! Sesame needs a person's national ID to check who they are (activation by identity check),
//! never to show it. So the number is normalised and hashed with HMAC-SHA-256 under a key from
//! the configuration (`lifecycle.national_id_key`) as soon as it is read, and only the hash is
//! stored. A copy of the database alone does not let anyone test candidate numbers: the key
//! is needed, and it is not in the database.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Shortest accepted key, in bytes (256 bits, the HMAC-SHA-256 block's security level).
pub const MIN_KEY_BYTES: usize = 32;

/// Why a national ID number or key was refused. Never carries the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NationalIdError {
    /// Nothing left once spaces and separators are removed.
    #[error("must not be empty")]
    Empty,
    /// Not 4 to 32 letters and digits once separators are removed.
    #[error("must be 4 to 32 letters and digits")]
    BadFormat,
    /// The configured key is too short.
    #[error("the key must be at least {MIN_KEY_BYTES} bytes long")]
    KeyTooShort,
}

/// A national ID number as typed or imported, normalised: upper case, spaces, dots, dashes and
/// slashes removed. Neither printed nor logged: `Debug` shows nothing of it, and there is no
/// `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct NationalId(String);

impl NationalId {
    /// Normalises and checks a number.
    ///
    /// # Errors
    /// [`NationalIdError::Empty`] or [`NationalIdError::BadFormat`] (which never repeats the
    /// value).
    pub fn parse(raw: &str) -> Result<Self, NationalIdError> {
        let normalised: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '/' | '\u{a0}' | '\t'))
            .flat_map(char::to_uppercase)
            .collect();
        if normalised.is_empty() {
            return Err(NationalIdError::Empty);
        }
        if !(4..=32).contains(&normalised.len())
            || !normalised.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(NationalIdError::BadFormat);
        }
        Ok(Self(normalised))
    }
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NationalId(<redacted>)")
    }
}

/// The stored form of a national ID: lowercase hex HMAC-SHA-256 of the normalised number.
#[derive(Clone, PartialEq, Eq)]
pub struct NationalIdHash(String);

impl NationalIdHash {
    /// A hash read back from storage (64 lowercase hex digits).
    ///
    /// # Errors
    /// [`NationalIdError::BadFormat`] if it is not one.
    pub fn from_stored(stored: &str) -> Result<Self, NationalIdError> {
        if stored.len() == 64
            && stored
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        {
            Ok(Self(stored.to_owned()))
        } else {
            Err(NationalIdError::BadFormat)
        }
    }

    /// The hex digest, for storage only.
    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NationalIdHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not secret in itself, but nothing gains from seeing it.
        f.write_str("NationalIdHash(<redacted>)")
    }
}

/// The HMAC key national IDs are hashed with (`lifecycle.national_id_key`). `Debug` hides it.
///
/// Changing the key makes every stored hash useless; re-importing the HR files, which carry
/// the numbers, stores them again under the new key.
#[derive(Clone)]
pub struct NationalIdKey(Vec<u8>);

impl NationalIdKey {
    /// A key from the configured secret (its UTF-8 bytes).
    ///
    /// # Errors
    /// [`NationalIdError::KeyTooShort`] below [`MIN_KEY_BYTES`] bytes.
    pub fn new(secret: &str) -> Result<Self, NationalIdError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(NationalIdError::KeyTooShort);
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// The keyed hash of a number.
    pub fn hash(&self, id: &NationalId) -> NationalIdHash {
        NationalIdHash(hex::encode(self.mac(id).finalize().into_bytes()))
    }

    /// Whether `id` is the number whose hash is `stored`, compared in constant time.
    pub fn matches(&self, id: &NationalId, stored: &NationalIdHash) -> bool {
        self.hash(id).0.as_bytes().ct_eq(stored.0.as_bytes()).into()
    }

    fn mac(&self, id: &NationalId) -> Hmac<Sha256> {
        // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.0.as_bytes());
        mac
    }
}

impl fmt::Debug for NationalIdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NationalIdKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn spellings_of_one_number_hash_alike() {
        let key = NationalIdKey::new(KEY).unwrap();
        let a = key.hash(&NationalId::parse("be 123 456").unwrap());
        let b = key.hash(&NationalId::parse("BE-123456").unwrap());
        assert_eq!(a, b);
        assert!(key.matches(&NationalId::parse("Be123456").unwrap(), &a));
        assert!(!key.matches(&NationalId::parse("BE123457").unwrap(), &a));
        assert_eq!(a.as_stored().len(), 64);
        assert_eq!(NationalIdHash::from_stored(a.as_stored()).unwrap(), a);
    }

    #[test]
    fn the_hash_depends_on_the_key_and_is_hmac_sha256() {
        let id = NationalId::parse("AB123456").unwrap();
        let one = NationalIdKey::new(KEY).unwrap().hash(&id);
        let other = NationalIdKey::new(&KEY.replace('0', "x"))
            .unwrap()
            .hash(&id);
        assert_ne!(one, other);
        // RFC 4231-style check against an independent computation of HMAC-SHA-256.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(KEY.as_bytes()).unwrap();
        mac.update(b"AB123456");
        assert_eq!(one.as_stored(), hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn nothing_of_the_number_or_key_is_printed() {
        let id = NationalId::parse("ZZ987654").unwrap();
        let key = NationalIdKey::new(KEY).unwrap();
        let printed = format!("{id:?} {key:?} {:?}", key.hash(&id));
        assert!(
            !printed.contains("987654") && !printed.contains("0123"),
            "{printed}"
        );
    }

    #[test]
    fn bad_numbers_and_short_keys_are_refused() {
        for bad in ["", " - ", "AB1", "AB12345É", &"1".repeat(33)] {
            assert!(NationalId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            NationalIdKey::new("short").unwrap_err(),
            NationalIdError::KeyTooShort
        );
        assert!(NationalIdHash::from_stored("XYZ").is_err());
    }
}
