//! Factor secrets sealed at rest: a TOTP secret must be readable by Sesame (it computes the
//! codes), so it cannot be hashed; it is encrypted with AES-256-GCM under a key from the
//! configuration (a `_FILE` secret), with the account id as associated data, so a database
//! dump alone yields nothing and a sealed secret copied onto another account does not open.
//!
//! Keys carry an id written in front of each sealed value: a new key is added as the sealing
//! one while the former ones still open what they sealed, and re-sealing moves values over.
//! Format: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`.

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sesame_core::ids::AccountId;

/// Bytes of a sealing key.
pub const KEY_LEN: usize = 32;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// A configured key is not 32 bytes, or its id is unusable.
    #[error("invalid MFA sealing key {id:?}: {why}")]
    BadKey {
        /// The key's id.
        id: String,
        /// What is wrong.
        why: String,
    },
    /// The value is not in Sesame's sealed format.
    #[error("not a sealed value")]
    Malformed,
    /// The value names a key that is not configured.
    #[error("the MFA key {0:?} that sealed this value is not configured")]
    UnknownKey(String),
    /// Wrong key, wrong account, or altered value.
    #[error("the sealed value does not open (wrong key, wrong account or altered)")]
    DoesNotOpen,
}

/// The configured keys: one seals, all open.
pub struct SecretSealer {
    sealing: (String, RandomizedNonceKey),
    opening: Vec<(String, RandomizedNonceKey)>,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.opening.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SecretSealer")
            .field("sealing", &self.sealing.0)
            .field("opening", &ids)
            .finish()
    }
}

fn key(id: &str, bytes: &[u8]) -> Result<RandomizedNonceKey, SealingError> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SealingError::BadKey {
            id: id.to_owned(),
            why: "the id must be letters, digits, '-' or '_'".to_owned(),
        });
    }
    if bytes.len() != KEY_LEN {
        return Err(SealingError::BadKey {
            id: id.to_owned(),
            why: format!("a key is {KEY_LEN} bytes, not {}", bytes.len()),
        });
    }
    RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| SealingError::BadKey {
        id: id.to_owned(),
        why: "rejected by AES-256-GCM".to_owned(),
    })
}

impl SecretSealer {
    /// A sealer that seals with `sealing` and also opens with `former` (rotation).
    ///
    /// # Errors
    /// [`SealingError::BadKey`] for a key that is not 32 bytes or an id that is not a word.
    pub fn new(sealing: (&str, &[u8]), former: &[(&str, &[u8])]) -> Result<Self, SealingError> {
        let mut opening = vec![(sealing.0.to_owned(), key(sealing.0, sealing.1)?)];
        for (id, bytes) in former {
            opening.push(((*id).to_owned(), key(id, bytes)?));
        }
        Ok(Self {
            sealing: (sealing.0.to_owned(), key(sealing.0, sealing.1)?),
            opening,
        })
    }

    /// Seals `secret` for `account`.
    ///
    /// # Errors
    /// [`SealingError::DoesNotOpen`] if the cipher fails (it does not with a valid key).
    pub fn seal(&self, account: AccountId, secret: &[u8]) -> Result<String, SealingError> {
        let mut in_out = secret.to_vec();
        let nonce = self
            .sealing
            .1
            .seal_in_place_append_tag(Aad::from(account.0.as_bytes()), &mut in_out)
            .map_err(|_| SealingError::DoesNotOpen)?;
        let mut raw = nonce.as_ref().to_vec();
        raw.extend_from_slice(&in_out);
        Ok(format!(
            "v1.{}.{}",
            self.sealing.0,
            URL_SAFE_NO_PAD.encode(raw)
        ))
    }

    /// Opens a value sealed for `account` by any configured key.
    ///
    /// # Errors
    /// [`SealingError`]: not sealed by Sesame, sealed by a key no longer configured, or not
    /// for this account / altered.
    pub fn open(&self, account: AccountId, sealed: &str) -> Result<Vec<u8>, SealingError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealingError::Malformed);
        };
        let key = self
            .opening
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, key)| key)
            .ok_or_else(|| SealingError::UnknownKey(id.to_owned()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealingError::Malformed)?;
        if raw.len() < NONCE_LEN {
            return Err(SealingError::Malformed);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealingError::Malformed)?;
        let mut in_out = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(account.0.as_bytes()), &mut in_out)
            .map_err(|_| SealingError::DoesNotOpen)?;
        Ok(plain.to_vec())
    }

    /// Whether `sealed` was sealed by another key than the current one (to re-seal it).
    pub fn needs_resealing(&self, sealed: &str) -> bool {
        !sealed.starts_with(&format!("v1.{}.", self.sealing.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
    const K2: &[u8; 32] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn a_sealed_secret_opens_for_its_account_only() {
        let sealer = SecretSealer::new(("2026", K1), &[]).unwrap();
        let (alice, bob) = (AccountId::new_random(), AccountId::new_random());
        let sealed = sealer.seal(alice, b"twenty bytes secret!").unwrap();
        assert!(sealed.starts_with("v1.2026."), "{sealed}");
        assert!(!sealed.contains("twenty"));
        assert_eq!(
            sealer.open(alice, &sealed).unwrap(),
            b"twenty bytes secret!"
        );
        assert!(matches!(
            sealer.open(bob, &sealed),
            Err(SealingError::DoesNotOpen)
        ));
        // Two seals of one secret differ (random nonce).
        assert_ne!(sealed, sealer.seal(alice, b"twenty bytes secret!").unwrap());
    }

    #[test]
    fn an_altered_or_foreign_value_does_not_open() {
        let sealer = SecretSealer::new(("2026", K1), &[]).unwrap();
        let alice = AccountId::new_random();
        let sealed = sealer.seal(alice, b"twenty bytes secret!").unwrap();
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(sealer.open(alice, &altered).is_err());
        for bad in [
            "",
            "v1",
            "v1.2026",
            "v2.2026.AAAA",
            "v1.2026.!!!",
            "v1.2026.AAAA",
        ] {
            assert!(sealer.open(alice, bad).is_err(), "{bad}");
        }
        let other = SecretSealer::new(("2026", K2), &[]).unwrap();
        assert!(matches!(
            other.open(alice, &sealed),
            Err(SealingError::DoesNotOpen)
        ));
    }

    #[test]
    fn a_rotated_key_still_opens_what_it_sealed_and_flags_it_for_resealing() {
        let old = SecretSealer::new(("2025", K1), &[]).unwrap();
        let alice = AccountId::new_random();
        let sealed = old.seal(alice, b"twenty bytes secret!").unwrap();
        let new = SecretSealer::new(("2026", K2), &[("2025", K1)]).unwrap();
        assert_eq!(new.open(alice, &sealed).unwrap(), b"twenty bytes secret!");
        assert!(new.needs_resealing(&sealed));
        let resealed = new.seal(alice, b"twenty bytes secret!").unwrap();
        assert!(!new.needs_resealing(&resealed));
        // Once the old key is dropped, its values name it.
        let newest = SecretSealer::new(("2026", K2), &[]).unwrap();
        assert!(matches!(
            newest.open(alice, &sealed),
            Err(SealingError::UnknownKey(id)) if id == "2025"
        ));
    }

    #[test]
    fn keys_must_be_thirty_two_bytes_with_a_word_for_an_id() {
        assert!(SecretSealer::new(("2026", b"short"), &[]).is_err());
        assert!(SecretSealer::new(("", K1), &[]).is_err());
        assert!(SecretSealer::new(("a.b", K1), &[]).is_err());
        let sealer = SecretSealer::new(("2026", K1), &[]).unwrap();
        assert!(!format!("{sealer:?}").contains("0123"), "no key in logs");
    }
}
