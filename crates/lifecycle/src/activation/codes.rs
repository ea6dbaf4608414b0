//! Activation codes handed out by schools: short enough to type from paper, hashed at rest
//! with their account, single use, and guarded by failure counters (security spec A47).

use sesame_core::ids::AccountId;
use sesame_core::random;

/// Letters and digits that cannot be mistaken for one another on paper (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Characters of a code: 31^10 ≈ 2^49.5, with at most a handful of guesses per window.
pub const CODE_LEN: usize = 10;

/// A fresh code, grouped for reading (`ABCDE-FGHJK`), each character uniform over
/// [`CODE_ALPHABET`].
pub fn generate_code() -> String {
    // Each character of `random::alphanumeric` is uniform over 62 values; 62 = 2 × 31, so
    // its index modulo 31 is uniform over the 31 letters of the alphabet.
    let raw: Vec<u8> = random::alphanumeric(CODE_LEN)
        .bytes()
        .map(|b| {
            let index = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                _ => b.wrapping_sub(b'0') + 52,
            };
            CODE_ALPHABET[usize::from(index) % CODE_ALPHABET.len()]
        })
        .collect();
    let text = String::from_utf8_lossy(&raw);
    format!("{}-{}", &text[..CODE_LEN / 2], &text[CODE_LEN / 2..])
}

/// A code as typed, normalised: upper case, spaces and dashes dropped.
pub fn normalise_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .take(64)
        .collect()
}

/// The stored hash of a code: SHA-256 of the account id and the normalised code, so one
/// code string never matches another person's account.
pub fn code_hash(account_id: AccountId, code: &str) -> String {
    random::sha256_hex(&format!(
        "activation-code:{account_id}:{}",
        normalise_code(code)
    ))
}

/// The stored hash of a link or redirect-proof token.
pub fn token_hash(token: &str) -> String {
    random::sha256_hex(&format!("activation-token:{token}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet_and_normalise_back() {
        for _ in 0..200 {
            let code = generate_code();
            assert_eq!(code.len(), CODE_LEN + 1);
            let n = normalise_code(&code);
            assert_eq!(n.len(), CODE_LEN);
            assert!(n.bytes().all(|b| CODE_ALPHABET.contains(&b)));
            assert_eq!(normalise_code(&code.to_lowercase().replace('-', " ")), n);
        }
    }

    #[test]
    fn a_code_hash_depends_on_the_account() {
        let a = AccountId::new_random();
        let b = AccountId::new_random();
        assert_eq!(code_hash(a, "abcde-fghjk"), code_hash(a, "ABCDEFGHJK"));
        assert_ne!(code_hash(a, "ABCDEFGHJK"), code_hash(b, "ABCDEFGHJK"));
    }
}
