//! The anti-automation challenge of the identity form (see `docs/lifecycle.md`).
//!
//! The server issues a challenge: a random prefix and a difficulty. A small script in the
//! page finds a nonce such that SHA-256(prefix ‖ nonce) starts with that many zero bits and
//! submits it; this costs a browser a fraction of a second, and a guessing script that much
//! per guess. Without JavaScript, the page shows a question whose answer is a small number
//! written in words instead. Either answer is accepted once: the challenge is taken from the
//! store when checked. The rate limits per address and per identifier remain the real bound
//! on guessing; the challenge adds a cost to each guess and needs no image, so it is
//! accessible to screen-reader users.

use serde::{Deserialize, Serialize};
use sesame_core::random;

/// A challenge as stored (and, without its answer, as shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Random prefix of the proof of work.
    pub prefix: String,
    /// Leading zero bits required.
    pub bits: u32,
    /// The two terms of the question, `left + right`.
    pub left: u8,
    /// Second term.
    pub right: u8,
}

impl Challenge {
    /// A fresh challenge of `bits` difficulty.
    pub fn generate(bits: u32) -> Self {
        let digits = random::alphanumeric(4);
        let small = |b: u8| (b % 9) + 1;
        let mut bytes = digits.bytes();
        let left = small(bytes.next().unwrap_or(b'3'));
        let right = small(bytes.next().unwrap_or(b'4'));
        Self {
            prefix: random::alphanumeric(24),
            bits,
            left,
            right,
        }
    }

    /// Whether `nonce` solves the proof of work.
    pub fn accepts_nonce(&self, nonce: &str) -> bool {
        if nonce.is_empty() || nonce.len() > 32 {
            return false;
        }
        leading_zero_bits(&random::sha256_hex(&format!("{}{nonce}", self.prefix))) >= self.bits
    }

    /// Whether `answer` is the question's answer (digits or a number word in French or
    /// English).
    pub fn accepts_answer(&self, answer: &str) -> bool {
        let expected = u32::from(self.left) + u32::from(self.right);
        let typed = answer.trim().to_lowercase();
        if typed.is_empty() {
            return false;
        }
        typed.parse::<u32>().ok() == Some(expected)
            || number_words(expected).contains(&typed.as_str())
    }
}

/// Leading zero bits of a lowercase hex digest.
pub fn leading_zero_bits(hex: &str) -> u32 {
    let mut bits = 0;
    for c in hex.chars() {
        match c.to_digit(16) {
            Some(0) => bits += 4,
            Some(d) => return bits + (d.leading_zeros() - 28),
            None => return bits,
        }
    }
    bits
}

/// Solves a proof of work (what the page's script does; the tests use it too).
pub fn solve(prefix: &str, bits: u32) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| leading_zero_bits(&random::sha256_hex(&format!("{prefix}{n}"))) >= bits)
        .unwrap_or_default()
}

/// The French and English words for 2..=18.
pub fn number_words(n: u32) -> [&'static str; 2] {
    const WORDS: [[&str; 2]; 19] = [
        ["zéro", "zero"],
        ["un", "one"],
        ["deux", "two"],
        ["trois", "three"],
        ["quatre", "four"],
        ["cinq", "five"],
        ["six", "six"],
        ["sept", "seven"],
        ["huit", "eight"],
        ["neuf", "nine"],
        ["dix", "ten"],
        ["onze", "eleven"],
        ["douze", "twelve"],
        ["treize", "thirteen"],
        ["quatorze", "fourteen"],
        ["quinze", "fifteen"],
        ["seize", "sixteen"],
        ["dix-sept", "seventeen"],
        ["dix-huit", "eighteen"],
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| WORDS.get(i).copied())
        .unwrap_or(["", ""])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bits_are_counted_per_hex_digit() {
        assert_eq!(leading_zero_bits("ffff"), 0);
        assert_eq!(leading_zero_bits("0fff"), 4);
        assert_eq!(leading_zero_bits("07ff"), 5);
        assert_eq!(leading_zero_bits("001f"), 11);
    }

    #[test]
    fn a_solved_challenge_is_accepted_and_a_wrong_nonce_is_not() {
        let c = Challenge::generate(8);
        let nonce = solve(&c.prefix, 8);
        assert!(c.accepts_nonce(&nonce));
        let bad = (0u64..)
            .map(|n| n.to_string())
            .find(|n| !c.accepts_nonce(n))
            .unwrap();
        assert!(!c.accepts_nonce(&bad));
    }

    #[test]
    fn the_question_takes_digits_and_words() {
        let c = Challenge {
            prefix: String::new(),
            bits: 0,
            left: 3,
            right: 4,
        };
        assert!(c.accepts_answer("7"));
        assert!(c.accepts_answer(" Sept "));
        assert!(c.accepts_answer("seven"));
        assert!(!c.accepts_answer("8"));
        assert!(!c.accepts_answer(""));
    }
}
