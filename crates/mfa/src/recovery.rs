//! Recovery codes: ten single-use codes shown once, for the day the phone or the key is lost.
//!
//! Each code is 16 characters from a 31-symbol alphabet without look-alikes (79 random bits),
//! written `xxxx-xxxx-xxxx-xxxx`. Like every secret Sesame generates with that much entropy, a
//! code is kept as its SHA-256: no slow hash is needed, since 2^79 candidates can be neither
//! tried through a login form that locks nor searched offline from a stolen table.

use sesame_core::random::{constant_time_eq, sha256_hex};

/// Codes per set.
pub const CODES_PER_SET: usize = 10;
/// Characters per code, without the dashes.
pub const CODE_LEN: usize = 16;

/// Lowercase letters and digits without `0 o 1 l i`: 31 symbols, log2(31) ≈ 4.95 bits each.
const ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A fresh set: the codes to show once, and what to store.
#[derive(Clone)]
pub struct RecoveryCodeSet {
    /// The codes as the person sees them (`xxxx-xxxx-xxxx-xxxx`); never stored.
    pub shown: Vec<String>,
    /// Their SHA-256, in the same order: what the database keeps.
    pub hashes: Vec<String>,
}

/// The codes are secrets: a `{:?}` in a log line shows how many, never which.
impl std::fmt::Debug for RecoveryCodeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodeSet")
            .field("codes", &self.shown.len())
            .finish_non_exhaustive()
    }
}

impl RecoveryCodeSet {
    /// Ten new codes.
    ///
    /// # Panics
    /// Panics if the operating system's random source fails.
    pub fn generate() -> Self {
        let shown: Vec<String> = (0..CODES_PER_SET).map(|_| one_code()).collect();
        let hashes = shown.iter().map(|c| hash(c)).collect();
        Self { shown, hashes }
    }
}

fn one_code() -> String {
    let mut chars: Vec<char> = Vec::with_capacity(CODE_LEN);
    let mut buf = [0u8; 32];
    while chars.len() < CODE_LEN {
        #[expect(
            clippy::expect_used,
            reason = "no safe way to continue without the OS random source"
        )]
        getrandom::getrandom(&mut buf).expect("the OS random number generator failed");
        // 248 = 8 * 31: bytes at or above it would bias the distribution.
        for byte in buf.iter().filter(|b| **b < 248) {
            if chars.len() == CODE_LEN {
                break;
            }
            chars.push(char::from(ALPHABET[usize::from(byte % 31)]));
        }
    }
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A code as typed, reduced to what identifies it: case, spaces and dashes do not matter.
fn normalized(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is stored for a code (the same for every way of typing it).
pub fn hash(code: &str) -> String {
    sha256_hex(&normalized(code))
}

/// Which of the stored, unused codes `typed` is, if any (its index in `unused`), comparing
/// every one in constant time so the position of a match does not show in the timing. The
/// caller deletes the matched one atomically (a code is single-use) before accepting it.
pub fn find(typed: &str, unused: &[String]) -> Option<usize> {
    let norm = normalized(typed);
    if norm.len() != CODE_LEN {
        return None;
    }
    let typed_hash = sha256_hex(&norm);
    let mut found = None;
    for (i, stored) in unused.iter().enumerate() {
        if constant_time_eq(&typed_hash, stored) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_of_sixteen_symbols_in_groups_of_four() {
        let set = RecoveryCodeSet::generate();
        assert_eq!(set.shown.len(), CODES_PER_SET);
        assert_eq!(set.hashes.len(), CODES_PER_SET);
        for code in &set.shown {
            assert_eq!(code.len(), CODE_LEN + 3, "{code}");
            assert_eq!(code.split('-').count(), 4, "{code}");
            assert!(
                code.chars()
                    .all(|c| c == '-' || ALPHABET.contains(&(c as u8))),
                "{code}"
            );
        }
        let mut unique = set.shown.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), CODES_PER_SET);
    }

    #[test]
    fn the_alphabet_has_no_look_alikes_and_no_repeated_symbol() {
        let mut symbols = ALPHABET.to_vec();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), ALPHABET.len());
        for confusing in [b'0', b'o', b'1', b'l', b'i'] {
            assert!(!ALPHABET.contains(&confusing), "{}", confusing as char);
        }
    }

    #[test]
    fn a_code_is_found_however_it_is_typed_and_only_among_the_unused() {
        let set = RecoveryCodeSet::generate();
        let third = &set.shown[2];
        let typed = format!(" {} ", third.replace('-', " ").to_uppercase());
        assert_eq!(find(&typed, &set.hashes), Some(2));
        assert_eq!(find(&third.replace('-', ""), &set.hashes), Some(2));
        // Once used, it is gone from the stored list.
        let mut unused = set.hashes.clone();
        unused.remove(2);
        assert_eq!(find(third, &unused), None);
        assert_eq!(find("", &set.hashes), None);
        assert_eq!(find("abcd-efgh-jkmn-pqrs", &set.hashes), None);
    }
}
