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

/// How many characters end a national ID for the helpdesk's comparison ("the last four
/// digits"): few enough to ask on the phone, while the whole number is never spoken.
pub const NATIONAL_ID_END_CHARS: usize = 4;

/// The stored form of a national ID: lowercase hex HMAC-SHA-256 of the normalised number and,
/// for the helpdesk's comparison, of its last [`NATIONAL_ID_END_CHARS`] characters. Stored as
/// `<hash>` or `<hash>:<hash of the end>`; hashes stored before the end was kept have none
/// until the next import of the number writes both.
#[derive(Clone, PartialEq, Eq)]
pub struct NationalIdHash {
    full: String,
    end: Option<String>,
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

impl NationalIdHash {
    /// A hash read back from storage (64 lowercase hex digits, optionally `:` and 64 more).
    ///
    /// # Errors
    /// [`NationalIdError::BadFormat`] if it is not one.
    pub fn from_stored(stored: &str) -> Result<Self, NationalIdError> {
        let (full, end) = match stored.split_once(':') {
            Some((full, end)) => (full, Some(end)),
            None => (stored, None),
        };
        if is_digest(full) && end.is_none_or(is_digest) {
            Ok(Self {
                full: full.to_owned(),
                end: end.map(str::to_owned),
            })
        } else {
            Err(NationalIdError::BadFormat)
        }
    }

    /// The stored text, for storage only.
    pub fn as_stored(&self) -> String {
        match &self.end {
            Some(end) => format!("{}:{end}", self.full),
            None => self.full.clone(),
        }
    }

    /// Whether the hash of the number's end is on file (imported since it was kept).
    pub fn has_end(&self) -> bool {
        self.end.is_some()
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

    /// The keyed hash of a number, with that of its end.
    pub fn hash(&self, id: &NationalId) -> NationalIdHash {
        let end_start = id.0.len().saturating_sub(NATIONAL_ID_END_CHARS);
        NationalIdHash {
            full: self.digest(id.0.as_bytes()),
            end: Some(self.digest(format!("end:{}", &id.0[end_start..]).as_bytes())),
        }
    }

    /// Whether `id` is the number whose hash is `stored`, compared in constant time.
    pub fn matches(&self, id: &NationalId, stored: &NationalIdHash) -> bool {
        self.digest(id.0.as_bytes())
            .as_bytes()
            .ct_eq(stored.full.as_bytes())
            .into()
    }

    /// Whether `typed` (separators and case ignored) is the last [`NATIONAL_ID_END_CHARS`]
    /// characters of the number whose hash is `stored`, compared in constant time; `None`
    /// when the end's hash is not on file or `typed` is not that many letters and digits.
    pub fn matches_end(&self, typed: &str, stored: &NationalIdHash) -> Option<bool> {
        let end = stored.end.as_deref()?;
        let typed: String = typed
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '/' | '\u{a0}' | '\t'))
            .flat_map(char::to_uppercase)
            .collect();
        if typed.chars().count() != NATIONAL_ID_END_CHARS
            || !typed.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return None;
        }
        let digest = self.digest(format!("end:{typed}").as_bytes());
        Some(digest.as_bytes().ct_eq(end.as_bytes()).into())
    }

    fn digest(&self, data: &[u8]) -> String {
        // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
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
        assert_eq!(a.as_stored().len(), 64 + 1 + 64);
        assert_eq!(NationalIdHash::from_stored(&a.as_stored()).unwrap(), a);
        // A hash stored before the end was kept still reads, and still matches.
        let old = NationalIdHash::from_stored(&a.as_stored()[..64]).unwrap();
        assert!(!old.has_end());
        assert!(key.matches(&NationalId::parse("BE123456").unwrap(), &old));
        assert_eq!(key.matches_end("3456", &old), None);
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
        assert_eq!(
            one.as_stored()[..64],
            hex::encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn the_end_of_a_number_is_compared_without_the_rest() {
        let key = NationalIdKey::new(KEY).unwrap();
        let stored = key.hash(&NationalId::parse("AB-123 456").unwrap());
        assert!(stored.has_end());
        assert_eq!(key.matches_end("3456", &stored), Some(true));
        assert_eq!(key.matches_end(" 34-56 ", &stored), Some(true));
        assert_eq!(key.matches_end("3457", &stored), Some(false));
        assert_eq!(key.matches_end("123456", &stored), None);
        assert_eq!(key.matches_end("34", &stored), None);
        // Letters at the end too, case ignored.
        let stored = key.hash(&NationalId::parse("1234AB").unwrap());
        assert_eq!(key.matches_end("34ab", &stored), Some(true));
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
