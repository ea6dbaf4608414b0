//! Password policy: the rules a new password must satisfy, configurable per affiliation.
//!
//! The default ([`PasswordPolicy::default`]) follows NIST SP 800-63B rev 4 for single-factor
//! passwords (`SECURITY.md`, decision 6): at least 15 characters, at least 64 accepted, no
//! composition rules, a blocklist of common and breached passwords, and no context words (login,
//! given and family names, institution and service names). Institutions that must keep the rules
//! their users already know can reproduce them per affiliation; [`seed_examples`] shows the ones
//! found in the user guides of the seeds.
//!
//! Passwords are judged in their Unicode NFC form, the form that is hashed (`SECURITY.md` A07), so
//! the same password typed in NFC or NFD gets the same answer. Lengths are counted in characters
//! (Unicode scalar values). The context and blocklist rules compare *folded* text: compatibility
//! decomposition, accents removed, lowercase (`Éloïse` matches `eloise`, `ＡＢＣ` matches `abc`);
//! the context rule compares words, not substrings, so that the context word `ENT` does not
//! refuse `argent` ([`PasswordContext`]). [`MAX_PASSWORD_BYTES`] is a hard cap that callers enforce before any hashing;
//! [`PasswordPolicy::check`] enforces it as well.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::i18n::Lang;

/// Hard cap on the size of a password: bytes of its UTF-8 NFC form.
///
/// Checked before any hashing anywhere (`SECURITY.md` A05: a 1024-character password or a 1 MiB
/// body is refused before argon2 runs). A longer password breaks [`PolicyViolation::TooLong`]
/// whatever the policy's `max_length`.
pub const MAX_PASSWORD_BYTES: usize = 512;

/// Fewest distinct characters (after folding case and accents) a password must have when the
/// policy uses the blocklist; fewer is [`PolicyViolation::TooRepetitive`].
pub const MIN_DISTINCT_CHARACTERS: usize = 5;

/// Context words (login, names, their parts, extra words) shorter than this many characters
/// are ignored by the personal-information rule (`li`, `fr` would reject too much).
pub const MIN_CONTEXT_WORD_CHARS: usize = 3;

/// A login with at least this many letters and digits is refused even inside a longer word
/// (`xxjeandupontxx`): that long, it is no chance match. Shorter logins, and names and extra
/// words whatever their length, are refused only as words of their own.
pub const MIN_LOGIN_SUBSTRING_CHARS: usize = 6;

/// NIST SP 800-63B rev 4 minimum for a password used as a single factor.
const DEFAULT_MIN_LENGTH: usize = 15;
/// Default maximum length, in characters.
const DEFAULT_MAX_LENGTH: usize = 256;
/// NIST and ASVS 6.2.9: at least 64 characters must be accepted.
const LOWEST_ALLOWED_MAX_LENGTH: usize = 64;
/// A `max_length` above this could not be reached with accented Latin letters (two bytes each in
/// UTF-8) without crossing [`MAX_PASSWORD_BYTES`].
const HIGHEST_ALLOWED_MAX_LENGTH: usize = MAX_PASSWORD_BYTES / 2;
/// NFC never makes a string more than 3 times shorter in bytes (`ΐ`: 6 bytes in NFD, 2 in NFC,
/// is the worst case); input over this many times [`MAX_PASSWORD_BYTES`] is refused without
/// normalising it, and the answer is still the same for every normalisation form.
const NFC_MAX_SHRINK: usize = 4;
/// A blocklisted word found inside a password counts only from this many characters.
const MIN_COMMON_CORE_CHARS: usize = 4;
/// Most runs of digits / symbols / spaces around a blocklisted word still called filler.
const MAX_FILLER_RUNS: usize = 3;
/// A run of filler this short is always trivial (`2025`, `!!`, `#1`).
const SHORT_FILLER_RUN_CHARS: usize = 4;
/// A run of filler with at most this many distinct characters is trivial (`20252025`).
const MAX_FILLER_RUN_DISTINCT: usize = 3;
/// Smallest unit of a repetition that is looked up in the blocklist; shorter units are always
/// common (`abab…`).
const MIN_LISTED_UNIT_CHARS: usize = 3;
/// A keyboard or alphabet walk counts from this many characters.
const MIN_WALK_CHARS: usize = 3;

/// The embedded blocklist, one folded entry per line, `#` lines are comments.
const COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

/// The blocklist, loaded on first use.
static BLOCKLIST: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Rows of the common keyboard layouts (QWERTY, AZERTY, QWERTZ, their columns and zigzags), the
/// alphabet and the digits. Two characters next to each other in a row are one step of a walk.
const WALK_ROWS: &[&str] = &[
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "1234567890-=",
    "!@#$%^&*()_+",
    "qwertyuiopasdfghjklzxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "qwertzuiopasdfghjklyxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
    "aqwzsxedcrfvtgbyhnujikolpm",
    "1q2w3e4r5t6y7u8i9o0p",
    "1a2z3e4r5t6y7u8i9o0p",
];

/// Every step of a walk, both directions.
static WALK_STEPS: LazyLock<HashSet<(char, char)>> = LazyLock::new(|| {
    let mut steps = HashSet::new();
    for row in WALK_ROWS {
        let chars: Vec<char> = row.chars().collect();
        for pair in chars.windows(2) {
            if let [a, b] = pair {
                steps.insert((*a, *b));
                steps.insert((*b, *a));
            }
        }
    }
    steps
});

/// The rules a new password must satisfy.
///
/// Deserialised from configuration (`[password_policy]`, one table per affiliation); every field
/// is optional and defaults to NIST SP 800-63B rev 4 (see [`PasswordPolicy::default`]). Call
/// [`PasswordPolicy::validate`] after loading.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values after NFC). Default 15.
    pub min_length: usize,
    /// Most characters. Default 256; must be between 64 and `MAX_PASSWORD_BYTES / 2` (256).
    pub max_length: usize,
    /// Character classes that must each appear at least once. Default none: NIST advises
    /// against composition rules.
    pub required_classes: Vec<CharClass>,
    /// Characters that may not appear (one seed forbids `"`). Default none.
    pub forbidden_characters: String,
    /// Refuse passwords containing the login, the given or family name (or a part of them of
    /// 3+ characters) or an extra context word as a word of its own, ignoring case and
    /// accents (see [`PasswordContext`]). Default on.
    pub forbid_personal_info: bool,
    /// Refuse common and breached passwords, keyboard walks, passwords with fewer than
    /// [`MIN_DISTINCT_CHARACTERS`] distinct characters, and passwords that repeat a pattern
    /// shorter than `min_length`. Default on.
    pub use_blocklist: bool,
}

impl Default for PasswordPolicy {
    /// NIST SP 800-63B rev 4 for single-factor passwords (`SECURITY.md`, decision 6): 15 to 256
    /// characters, no composition rules, no personal information, blocklist on.
    fn default() -> Self {
        Self {
            min_length: DEFAULT_MIN_LENGTH,
            max_length: DEFAULT_MAX_LENGTH,
            required_classes: Vec::new(),
            forbidden_characters: String::new(),
            forbid_personal_info: true,
            use_blocklist: true,
        }
    }
}

/// A class of characters a policy can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CharClass {
    /// A lowercase letter, in any script that has case (`a`, `é`, `ж`).
    Lowercase,
    /// An uppercase letter (`A`, `É`, `Ж`).
    Uppercase,
    /// Any letter, cased or not (`a`, `É`, `ب`).
    Letter,
    /// A digit (`0`–`9` and the digits of other scripts, such as `٣`).
    Digit,
    /// Anything that is neither a letter nor a digit: punctuation, symbols, spaces.
    Symbol,
}

impl CharClass {
    /// Every class, in the order in which violations and descriptions list them.
    pub const ALL: [Self; 5] = [
        Self::Lowercase,
        Self::Uppercase,
        Self::Letter,
        Self::Digit,
        Self::Symbol,
    ];

    /// Whether `c` belongs to this class.
    #[must_use]
    pub fn matches(self, c: char) -> bool {
        match self {
            Self::Lowercase => c.is_lowercase(),
            Self::Uppercase => c.is_uppercase(),
            Self::Letter => c.is_alphabetic(),
            Self::Digit => c.is_numeric(),
            Self::Symbol => !c.is_alphanumeric() && !is_combining_mark(c),
        }
    }

    /// The name used in configuration files (`lowercase`, `digit`…).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
            Self::Letter => "letter",
            Self::Digit => "digit",
            Self::Symbol => "symbol",
        }
    }

    /// "at least one …" phrase, for messages and descriptions.
    fn phrase(self, lang: Lang) -> &'static str {
        match (lang, self) {
            (Lang::Fr, Self::Lowercase) => "une lettre minuscule",
            (Lang::Fr, Self::Uppercase) => "une lettre majuscule",
            (Lang::Fr, Self::Letter) => "une lettre",
            (Lang::Fr, Self::Digit) => "un chiffre",
            (Lang::Fr, Self::Symbol) => "un caractère spécial (ponctuation, symbole ou espace)",
            (Lang::En, Self::Lowercase) => "one lowercase letter",
            (Lang::En, Self::Uppercase) => "one uppercase letter",
            (Lang::En, Self::Letter) => "one letter",
            (Lang::En, Self::Digit) => "one digit",
            (Lang::En, Self::Symbol) => "one special character (punctuation, symbol or space)",
        }
    }
}

/// Who is choosing the password, for the personal-information rule.
///
/// Every field may be empty; parts shorter than [`MIN_CONTEXT_WORD_CHARS`] characters are
/// ignored. A password is refused when it holds one of these as a word of its own, not
/// inside another word (the context word `ENT` does not refuse `argent`), except a login of
/// [`MIN_LOGIN_SUBSTRING_CHARS`] or more letters and digits, refused anywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    /// The login (`alice.martin`, `alice.martin@etu.uca.fr`); it and each of its parts split on
    /// `.`, `-`, `_`, `@`, `'`, `+` and spaces are refused.
    pub login: &'a str,
    /// Given name; it and each of its parts (`Jean-Pierre` → `jean`, `pierre`) are refused.
    pub given_name: &'a str,
    /// Family name; it and each of its parts are refused.
    pub family_name: &'a str,
    /// Other context words, each refused as a whole: institution name, its short forms, names
    /// of the services behind the portal (`Moodle`, `Claroline`). Pass short forms as separate
    /// entries (`Université Clermont Auvergne`, `Clermont`, `UCA`…).
    pub extra_words: &'a [String],
}

/// One broken rule of a [`PasswordPolicy`]; its `Display` is the English message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Fewer characters than the policy's minimum.
    #[error("{}", self.message(Lang::En))]
    TooShort {
        /// The policy's minimum, in characters.
        min: usize,
    },
    /// More characters than the policy's maximum, or more than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("{}", self.message(Lang::En))]
    TooLong {
        /// The policy's maximum, in characters.
        max: usize,
    },
    /// No character of a required class.
    #[error("{}", self.message(Lang::En))]
    MissingClass(CharClass),
    /// A forbidden character is present (one violation per distinct forbidden character).
    #[error("{}", self.message(Lang::En))]
    ForbiddenCharacter(char),
    /// Contains the login, a name, or an extra context word (institution, service), as a
    /// word of its own (see [`PasswordContext`]); `words` are the context words found, as the
    /// context spells them, lower-cased, so the person sees what to leave out.
    #[error("{}", self.message(Lang::En))]
    ContainsPersonalInfo {
        /// The context words found, in context order, each once.
        words: Vec<String>,
    },
    /// A common or breached password, a blocklisted word padded with digits or symbols, a
    /// repeated blocklisted word, or a keyboard / alphabet / digit walk.
    #[error("{}", self.message(Lang::En))]
    Common,
    /// Fewer than [`MIN_DISTINCT_CHARACTERS`] distinct characters, or the same pattern repeated
    /// (`Xk3#jq9!Xk3#jq9!`) with the pattern shorter than the policy's `min_length`: only one
    /// copy of the pattern counts.
    #[error("{}", self.message(Lang::En))]
    TooRepetitive,
}

impl PolicyViolation {
    /// The message to show the user, in `lang`.
    #[must_use]
    pub fn message(&self, lang: Lang) -> String {
        match (lang, self) {
            (Lang::Fr, Self::TooShort { min }) => format!(
                "Le mot de passe doit contenir au moins {min} {}.",
                plural_fr(*min, "caractère", "caractères")
            ),
            (Lang::En, Self::TooShort { min }) => format!(
                "The password must be at least {min} {} long.",
                plural_en(*min, "character", "characters")
            ),
            (Lang::Fr, Self::TooLong { max }) => format!(
                "Le mot de passe ne doit pas dépasser {max} {}.",
                plural_fr(*max, "caractère", "caractères")
            ),
            (Lang::En, Self::TooLong { max }) => format!(
                "The password must be at most {max} {} long.",
                plural_en(*max, "character", "characters")
            ),
            (Lang::Fr, Self::MissingClass(class)) => {
                format!(
                    "Le mot de passe doit contenir au moins {}.",
                    class.phrase(lang)
                )
            }
            (Lang::En, Self::MissingClass(class)) => {
                format!("The password must contain at least {}.", class.phrase(lang))
            }
            (Lang::Fr, Self::ForbiddenCharacter(c)) => format!(
                "Le mot de passe ne doit pas contenir le caractère {}.",
                quote_char(*c, lang)
            ),
            (Lang::En, Self::ForbiddenCharacter(c)) => format!(
                "The password must not contain the character {}.",
                quote_char(*c, lang)
            ),
            (Lang::Fr, Self::ContainsPersonalInfo { words }) => format!(
                "Le mot de passe contient {} : il ne doit contenir ni votre identifiant, \
                 ni votre nom, ni votre prénom, ni le nom de l'établissement ou de ses services.",
                quote_words(words, lang)
            ),
            (Lang::En, Self::ContainsPersonalInfo { words }) => format!(
                "The password contains {}: it must not contain your login, your family \
                 name, your given name, or the name of the institution or of its services.",
                quote_words(words, lang)
            ),
            (Lang::Fr, Self::Common) => {
                "Ce mot de passe est trop courant ou figure dans des listes de mots \
                 de passe divulgués : choisissez-en un autre."
                    .to_owned()
            }
            (Lang::En, Self::Common) => {
                "This password is too common or appears in lists of leaked \
                 passwords: please choose another one."
                    .to_owned()
            }
            (Lang::Fr, Self::TooRepetitive) => format!(
                "Le mot de passe est trop répétitif : utilisez au moins \
                 {MIN_DISTINCT_CHARACTERS} caractères différents et ne répétez pas un même motif."
            ),
            (Lang::En, Self::TooRepetitive) => format!(
                "The password is too repetitive: use at least {MIN_DISTINCT_CHARACTERS} different \
                 characters and do not repeat the same pattern."
            ),
        }
    }

    /// A stable `snake_case` identifier of the rule, for templates, logs and APIs:
    /// `too_short`, `too_long`, `missing_lowercase`, `missing_uppercase`, `missing_letter`,
    /// `missing_digit`, `missing_symbol`, `forbidden_character`, `contains_personal_info`,
    /// `common`, `too_repetitive`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::TooLong { .. } => "too_long",
            Self::MissingClass(CharClass::Lowercase) => "missing_lowercase",
            Self::MissingClass(CharClass::Uppercase) => "missing_uppercase",
            Self::MissingClass(CharClass::Letter) => "missing_letter",
            Self::MissingClass(CharClass::Digit) => "missing_digit",
            Self::MissingClass(CharClass::Symbol) => "missing_symbol",
            Self::ForbiddenCharacter(_) => "forbidden_character",
            Self::ContainsPersonalInfo { .. } => "contains_personal_info",
            Self::Common => "common",
            Self::TooRepetitive => "too_repetitive",
        }
    }
}

impl PasswordPolicy {
    /// Checks `password` against every rule and returns all broken ones, in a stable order:
    /// `TooShort`, `TooLong`, `MissingClass` (in [`CharClass::ALL`] order),
    /// `ForbiddenCharacter` (in the order of `forbidden_characters`), `ContainsPersonalInfo`,
    /// then `Common` or `TooRepetitive` (never both: too few distinct characters is
    /// `TooRepetitive`, a repeated blocklisted word is `Common`, any other pattern repeated
    /// within `min_length` is `TooRepetitive`).
    ///
    /// The password is normalised to NFC here as well, so NFC and NFD input get the same answer.
    /// A password over [`MAX_PASSWORD_BYTES`] bytes gets `TooLong` alone, without further
    /// analysis.
    ///
    /// # Errors
    /// The broken rules, never empty.
    pub fn check(
        &self,
        password: &str,
        ctx: &PasswordContext<'_>,
    ) -> Result<(), Vec<PolicyViolation>> {
        let too_long = PolicyViolation::TooLong {
            max: self.max_length,
        };
        if password.len() > MAX_PASSWORD_BYTES.saturating_mul(NFC_MAX_SHRINK) {
            return Err(vec![too_long]);
        }
        let password: String = password.nfc().collect();
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(vec![too_long]);
        }

        let mut violations = Vec::new();
        let length = password.chars().count();
        if length < self.min_length {
            violations.push(PolicyViolation::TooShort {
                min: self.min_length,
            });
        }
        if length > self.max_length {
            violations.push(too_long);
        }
        for class in CharClass::ALL {
            if self.required_classes.contains(&class) && !password.chars().any(|c| class.matches(c))
            {
                violations.push(PolicyViolation::MissingClass(class));
            }
        }
        let mut seen = Vec::new();
        for c in self.forbidden_characters.nfc() {
            if !seen.contains(&c) {
                seen.push(c);
                if password.contains(c) {
                    violations.push(PolicyViolation::ForbiddenCharacter(c));
                }
            }
        }

        let folded = fold(&password);
        if self.forbid_personal_info {
            let words = context_words_in(&password, ctx);
            if !words.is_empty() {
                violations.push(PolicyViolation::ContainsPersonalInfo { words });
            }
        }
        if self.use_blocklist {
            if distinct_chars(&folded) < MIN_DISTINCT_CHARACTERS {
                violations.push(PolicyViolation::TooRepetitive);
            } else if is_common(&folded) {
                violations.push(PolicyViolation::Common);
            } else if shortest_period(&folded).is_some_and(|period| period < self.min_length) {
                violations.push(PolicyViolation::TooRepetitive);
            }
        }

        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// Checks that the policy itself makes sense: `min_length` at least 1, `max_length` between
    /// 64 (NIST, ASVS 6.2.9) and `MAX_PASSWORD_BYTES / 2` (256), `min_length <= max_length`.
    ///
    /// # Errors
    /// A message naming the faulty field.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_length < 1 {
            return Err(format!(
                "min_length must be at least 1 (got {})",
                self.min_length
            ));
        }
        if self.max_length < LOWEST_ALLOWED_MAX_LENGTH {
            return Err(format!(
                "max_length must be at least {LOWEST_ALLOWED_MAX_LENGTH}: NIST SP 800-63B and \
                 ASVS 6.2.9 require accepting passwords of 64 characters (got {})",
                self.max_length
            ));
        }
        if self.max_length > HIGHEST_ALLOWED_MAX_LENGTH {
            return Err(format!(
                "max_length must be at most {HIGHEST_ALLOWED_MAX_LENGTH}, so that a password of \
                 that many accented letters stays under the hard cap of {MAX_PASSWORD_BYTES} bytes \
                 (got {})",
                self.max_length
            ));
        }
        if self.min_length > self.max_length {
            return Err(format!(
                "min_length ({}) must not be greater than max_length ({})",
                self.min_length, self.max_length
            ));
        }
        Ok(())
    }

    /// The rules in `lang`, one line each, for the "choose a password" page: length first
    /// ("Au moins 15 caractères (et au plus 256)."), then required classes, forbidden
    /// characters, personal information, blocklist, and a hint that spaces are allowed (unless
    /// the space is forbidden).
    #[must_use]
    pub fn describe(&self, lang: Lang) -> Vec<String> {
        let mut lines = Vec::new();
        let (min, max) = (self.min_length, self.max_length);
        lines.push(match lang {
            Lang::Fr => format!(
                "Au moins {min} {} (et au plus {max}).",
                plural_fr(min, "caractère", "caractères")
            ),
            Lang::En => format!(
                "At least {min} {} (and at most {max}).",
                plural_en(min, "character", "characters")
            ),
        });

        let classes: Vec<&str> = CharClass::ALL
            .into_iter()
            .filter(|class| self.required_classes.contains(class))
            .map(|class| class.phrase(lang))
            .collect();
        if !classes.is_empty() {
            lines.push(match lang {
                Lang::Fr => format!("Au moins {}.", join_list(&classes, " et ")),
                Lang::En => format!("At least {}.", join_list(&classes, " and ")),
            });
        }

        let mut forbidden: Vec<char> = Vec::new();
        for c in self.forbidden_characters.nfc() {
            if !forbidden.contains(&c) {
                forbidden.push(c);
            }
        }
        if !forbidden.is_empty() {
            let quoted: Vec<String> = forbidden.iter().map(|c| quote_char(*c, lang)).collect();
            let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
            lines.push(match (lang, quoted.len()) {
                (Lang::Fr, 1) => format!("Sans le caractère {}.", join_list(&quoted, " ni ")),
                (Lang::Fr, _) => format!("Sans les caractères {}.", join_list(&quoted, " ni ")),
                (Lang::En, 1) => format!("Without the character {}.", join_list(&quoted, " or ")),
                (Lang::En, _) => format!("Without the characters {}.", join_list(&quoted, " or ")),
            });
        }

        if self.forbid_personal_info {
            let line = match lang {
                Lang::Fr => {
                    "Sans votre identifiant, votre nom, votre prénom ni le nom de \
                     l'établissement ou de ses services."
                }
                Lang::En => {
                    "Without your login, your family name, your given name or the name of the \
                     institution or of its services."
                }
            };
            lines.push(line.to_owned());
        }

        if self.use_blocklist {
            lines.push(match lang {
                Lang::Fr => format!(
                    "Pas de mot de passe courant ou déjà divulgué, ni de motif répété \
                     (au moins {MIN_DISTINCT_CHARACTERS} caractères différents)."
                ),
                Lang::En => format!(
                    "No common or previously leaked password, and no repeated pattern \
                     (at least {MIN_DISTINCT_CHARACTERS} different characters)."
                ),
            });
        }

        if !forbidden.contains(&' ') {
            let line = match lang {
                Lang::Fr => {
                    "Les espaces sont autorisés : une phrase de plusieurs mots fait un bon \
                     mot de passe."
                }
                Lang::En => "Spaces are allowed: a phrase of several words makes a good password.",
            };
            lines.push(line.to_owned());
        }
        lines
    }
}

/// The password rules of the seeds' user guides as policies, with a name each, plus the default;
/// for documentation and tests. Each seed policy reproduces what its guide says, no more.
///
/// - `nist-800-63b-default`: [`PasswordPolicy::default`].
/// - `uh2c-staff-8-mixed-no-name-no-quote` (seed 000, Université Hassan II Casablanca): no
///   name or given name, no `"`, digits, lowercase and uppercase letters and special
///   characters, no trivial password. The guide gives no length; 8 is assumed.
/// - `provence-6-letters-digits` (seed 001, Université de Provence): at least 6 characters,
///   with both letters and digits.
/// - `ent77-8-letter-digit` (seed 002, ENT 77): at least 8 characters, at least one letter and
///   one digit.
#[must_use]
pub fn seed_examples() -> Vec<(&'static str, PasswordPolicy)> {
    let legacy = |min_length, required_classes| PasswordPolicy {
        min_length,
        required_classes,
        forbid_personal_info: false,
        use_blocklist: false,
        ..PasswordPolicy::default()
    };
    vec![
        ("nist-800-63b-default", PasswordPolicy::default()),
        (
            "uh2c-staff-8-mixed-no-name-no-quote",
            PasswordPolicy {
                min_length: 8,
                required_classes: vec![
                    CharClass::Lowercase,
                    CharClass::Uppercase,
                    CharClass::Digit,
                    CharClass::Symbol,
                ],
                forbidden_characters: "\"".to_owned(),
                ..PasswordPolicy::default()
            },
        ),
        (
            "provence-6-letters-digits",
            legacy(6, vec![CharClass::Letter, CharClass::Digit]),
        ),
        (
            "ent77-8-letter-digit",
            legacy(8, vec![CharClass::Letter, CharClass::Digit]),
        ),
    ]
}

/// French plural: 0 and 1 take the singular.
fn plural_fr(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n <= 1 {
        one
    } else {
        many
    }
}

/// English plural: only 1 takes the singular.
fn plural_en(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `a`, `a<last>b`, `a, b<last>c`.
fn join_list(items: &[&str], last: &str) -> String {
    match items.split_last() {
        None => String::new(),
        Some((only, [])) => (*only).to_owned(),
        Some((tail, head)) => format!("{}{last}{tail}", head.join(", ")),
    }
}

/// Words between quotation marks of `lang`, as a list (`« jean » et « dupont »`).
fn quote_words(words: &[String], lang: Lang) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| match lang {
            Lang::Fr => format!("« {w} »"),
            Lang::En => format!("“{w}”"),
        })
        .collect();
    let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
    match lang {
        Lang::Fr => join_list(&quoted, " et "),
        Lang::En => join_list(&quoted, " and "),
    }
}

/// A character between quotation marks of `lang`, invisible ones named.
fn quote_char(c: char, lang: Lang) -> String {
    let shown = match (lang, c) {
        (Lang::Fr, ' ') => "espace".to_owned(),
        (Lang::En, ' ') => "space".to_owned(),
        _ if c.is_whitespace() || c.is_control() || is_combining_mark(c) => {
            format!("U+{:04X}", u32::from(c))
        }
        _ => c.to_string(),
    };
    match lang {
        Lang::Fr => format!("« {shown} »"),
        Lang::En => format!("“{shown}”"),
    }
}

/// Case- and accent-insensitive form: compatibility decomposition, combining marks removed,
/// lowercase, a few ligatures and apostrophes spelt out.
fn fold(s: &str) -> String {
    let mut folded = String::with_capacity(s.len());
    for c in s
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
    {
        match c {
            'œ' => folded.push_str("oe"),
            'æ' => folded.push_str("ae"),
            'ß' => folded.push_str("ss"),
            '’' | 'ʼ' | '‘' => folded.push('\''),
            _ => folded.push(c),
        }
    }
    folded
}

/// Letters and digits only (`alice.martin` → `alicemartin`).
fn alphanumeric_only(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Without spaces and the usual word separators (`pass word` → `password`).
fn without_separators(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-' | '_'))
        .collect()
}

/// Where a login or a name splits into parts.
fn is_context_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '.' | '-' | '_' | '@' | '\'' | '+')
}

/// Undoes the usual "leet" substitutions (`p@ssw0rd` → `password`); `1` reads as `one`.
fn unleet(s: &str, one: char) -> String {
    s.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '3' => 'e',
            '1' | '!' | '|' => one,
            '0' => 'o',
            '$' | '5' => 's',
            '7' => 't',
            _ => c,
        })
        .collect()
}

/// The forms of a folded string with leet substitutions undone, if any differ from it.
fn unleet_variants(s: &str) -> Vec<String> {
    let mut variants: Vec<String> = Vec::new();
    for one in ['i', 'l'] {
        let variant = unleet(s, one);
        if variant != s && !variants.contains(&variant) {
            variants.push(variant);
        }
    }
    variants
}

/// How many different characters `s` has.
fn distinct_chars(s: &str) -> usize {
    s.chars().collect::<HashSet<char>>().len()
}

/// One word a password may not contain: its folded tokens, how the context spells it, and
/// whether it also counts inside a longer word.
#[derive(Debug)]
struct ContextWord {
    /// Folded tokens (`Université Clermont` → `universite`, `clermont`).
    tokens: Vec<String>,
    /// The tokens joined (`universiteclermont`).
    joined: String,
    /// As the context spells it, trimmed and lower-cased, for the message.
    shown: String,
    /// Found even inside a longer word (only the login, when long enough).
    as_substring: bool,
}

/// The context words of `ctx` that the NFC `password` contains, as the context spells them,
/// each once, in context order (login, given name, family name, extra words).
///
/// A context word counts where it stands as a word of its own: the password is cut into
/// tokens at every character that is neither a letter nor a digit, between a lowercase and an
/// uppercase letter (`MotDePasse`), before the last capital of a capitalised run followed by
/// lowercase (`ENTPassword`), and between letters and digits (`dupont2025`); tokens are
/// folded (case, accents). A context word is found when a token equals it (or equals its
/// tokens joined: `universiteclermont`), when consecutive tokens equal its tokens
/// (`Université Clermont`), or when it is spelt out letter by letter (`d.u.p.o.n.t`). So the
/// context word `ENT` refuses `mon ENT 2025` and `ENT2025` but not `argent`, `parent` or
/// `moment`. The same is done with the usual leet substitutions undone (`dup0nt`).
///
/// The login is also found inside a longer word when its letters and digits number at least
/// [`MIN_LOGIN_SUBSTRING_CHARS`]: `jean.dupont` in `xxjeandupontxx`. Shorter logins, names
/// and extra words are only found as words: inside another word they are as likely to be
/// chance (`ana` in `banane`) as a hint to the password.
fn context_words_in(password: &str, ctx: &PasswordContext<'_>) -> Vec<String> {
    let words = context_words(ctx);
    if words.is_empty() {
        return Vec::new();
    }
    let mut variants = vec![password.to_owned()];
    for one in ['i', 'l'] {
        let variant = unleet_keeping_case(password, one);
        if !variants.contains(&variant) {
            variants.push(variant);
        }
    }
    let tokenised: Vec<Vec<String>> = variants.iter().map(|v| tokens(v)).collect();
    let compact: Vec<String> = variants
        .iter()
        .map(|v| alphanumeric_only(&fold(v)))
        .collect();
    let mut found: Vec<&ContextWord> = Vec::new();
    for word in &words {
        // A part of a word already named (`dupont` of `jean.dupont`) adds nothing.
        if found
            .iter()
            .any(|f| f.joined.contains(word.joined.as_str()))
        {
            continue;
        }
        let present = tokenised.iter().any(|t| contains_word(t, word))
            || (word.as_substring && compact.iter().any(|c| c.contains(word.joined.as_str())));
        if present {
            found.push(word);
        }
    }
    let mut shown: Vec<String> = Vec::new();
    for word in found {
        if !shown.contains(&word.shown) {
            shown.push(word.shown.clone());
        }
    }
    shown
}

/// Whether the token sequence `tokens` holds `word` (see [`context_words_in`]).
fn contains_word(tokens: &[String], word: &ContextWord) -> bool {
    let n = word.tokens.len();
    (0..tokens.len()).any(|i| {
        if tokens[i] == word.joined {
            return true;
        }
        if n > 1 && tokens.len() - i >= n && tokens[i..i + n] == word.tokens[..] {
            return true;
        }
        // Spelt out: single characters that join into the word.
        let mut spelt = String::new();
        for token in tokens[i..].iter().take_while(|t| t.chars().count() == 1) {
            spelt.push_str(token);
            if spelt.len() >= word.joined.len() {
                break;
            }
        }
        spelt.chars().count() > 1 && spelt == word.joined
    })
}

/// The words of `ctx` a password may not contain: the login, the names, each of their parts
/// (split on `.`, `-`, `_`, `@`, `'`, `+` and spaces), and each extra word as a whole.
fn context_words(ctx: &PasswordContext<'_>) -> Vec<ContextWord> {
    let mut words: Vec<ContextWord> = Vec::new();
    let mut push = |raw: &str, as_substring: bool| {
        let tokens = tokens(raw);
        let joined: String = tokens.concat();
        if joined.chars().count() < MIN_CONTEXT_WORD_CHARS
            || words.iter().any(|w| w.tokens == tokens)
        {
            return;
        }
        let as_substring = as_substring && joined.chars().count() >= MIN_LOGIN_SUBSTRING_CHARS;
        words.push(ContextWord {
            tokens,
            joined,
            shown: raw.trim().to_lowercase(),
            as_substring,
        });
    };
    for (whole, is_login) in [
        (ctx.login, true),
        (ctx.given_name, false),
        (ctx.family_name, false),
    ] {
        push(whole, is_login);
        for part in whole.split(is_context_separator) {
            push(part, false);
        }
    }
    for word in ctx.extra_words {
        push(word, false);
    }
    words
}

/// The folded tokens of `s` (see [`context_words_in`] for where it is cut).
fn tokens(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if is_combining_mark(c) {
            // Part of the letter before it (a mark NFC could not compose).
            current.push(c);
            continue;
        }
        if !c.is_alphanumeric() {
            flush_token(&mut current, &mut out);
            continue;
        }
        if let Some(before) = current.chars().rev().find(|b| !is_combining_mark(*b)) {
            let after = chars.get(i + 1).copied();
            let letter_digit = before.is_alphabetic() != c.is_alphabetic();
            let lower_upper = before.is_lowercase() && c.is_uppercase();
            let capital_run_ends =
                before.is_uppercase() && c.is_uppercase() && after.is_some_and(char::is_lowercase);
            if letter_digit || lower_upper || capital_run_ends {
                flush_token(&mut current, &mut out);
            }
        }
        current.push(c);
    }
    flush_token(&mut current, &mut out);
    out
}

fn flush_token(current: &mut String, out: &mut Vec<String>) {
    if !current.is_empty() {
        out.push(fold(current));
        current.clear();
    }
}

/// Undoes the usual "leet" substitutions (`D@p0nt` → `Dapont`), each substitute taking the
/// case of the next letter of its word (else the previous one), so that undoing them cuts
/// no word in two: `DUP0NT` → `DUPONT`, `M@rtin` → `Martin`. `1` reads as `one`.
fn unleet_keeping_case(s: &str, one: char) -> String {
    let chars: Vec<char> = s.chars().collect();
    let letter_for = |c: char| match c {
        '@' | '4' => Some('a'),
        '3' => Some('e'),
        '1' | '!' | '|' => Some(one),
        '0' => Some('o'),
        '$' | '5' => Some('s'),
        '7' => Some('t'),
        _ => None,
    };
    let in_word = |c: char| c.is_alphanumeric() || letter_for(c).is_some();
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let Some(letter) = letter_for(c) else {
                return c;
            };
            let next = chars[i + 1..]
                .iter()
                .take_while(|c| in_word(**c))
                .find(|c| c.is_alphabetic());
            let previous = chars[..i]
                .iter()
                .rev()
                .take_while(|c| in_word(**c))
                .find(|c| c.is_alphabetic());
            if next.or(previous).is_some_and(|c| c.is_uppercase()) {
                letter.to_ascii_uppercase()
            } else {
                letter
            }
        })
        .collect()
}

/// Whether the folded password is common: see [`PolicyViolation::Common`].
fn is_common(folded: &str) -> bool {
    if is_common_form(folded) {
        return true;
    }
    let squeezed = without_separators(folded);
    squeezed != folded && is_common_form(&squeezed)
}

/// One form of the password (as typed, or without separators) is common.
fn is_common_form(s: &str) -> bool {
    is_listed(s) || is_walk(s) || is_repetition(s) || is_padded(s)
}

/// A blocklisted word, a walk or a repetition padded with filler (digits, symbols, spaces):
/// `Password1234567`, `dragon!!!!!!!!!!!`, `2025soleil2025`. The word must have at least
/// [`MIN_COMMON_CORE_CHARS`] characters, and make up half the password or be surrounded by
/// trivial filler only.
fn is_padded(s: &str) -> bool {
    let start_trimmed = s.trim_start_matches(|c: char| !c.is_alphabetic());
    let core = start_trimmed.trim_end_matches(|c: char| !c.is_alphabetic());
    let prefix = &s[..s.len() - start_trimmed.len()];
    let suffix = &start_trimmed[core.len()..];
    let core_chars = core.chars().count();
    let total_chars = s.chars().count();
    if core_chars < MIN_COMMON_CORE_CHARS || core_chars == total_chars {
        return false;
    }
    (is_listed(core) || is_walk(core) || is_repetition(core))
        && (core_chars * 2 >= total_chars || is_filler(prefix, suffix))
}

/// In the blocklist, as is or with leet substitutions undone.
fn is_listed(s: &str) -> bool {
    BLOCKLIST.contains(s)
        || unleet_variants(s)
            .iter()
            .any(|v| BLOCKLIST.contains(v.as_str()))
}

/// Two or more repetitions (the last one possibly cut short) of a unit that is shorter than 3
/// characters, blocklisted, a walk, or (for the shortest unit) a padded blocklisted word:
/// `qwertyqwerty`, `Paris2024Paris2024`.
fn is_repetition(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let mut shortest_unit_seen = false;
    (1..=chars.len() / 2).any(|period| {
        if !has_period(&chars, period) {
            return false;
        }
        let unit: String = chars.iter().take(period).collect();
        if period < MIN_LISTED_UNIT_CHARS || is_listed(&unit) || is_walk(&unit) {
            return true;
        }
        // Only the shortest unit is examined further: longer ones are repetitions of it, and
        // recursing on each would cost too much. The unit is at most half of `s`, so this ends.
        let first = !shortest_unit_seen;
        shortest_unit_seen = true;
        first && is_padded(&unit)
    })
}

/// The length of the shortest unit that `s` repeats at least twice (the last copy possibly cut
/// short), if any.
fn shortest_period(s: &str) -> Option<usize> {
    let chars: Vec<char> = s.chars().collect();
    (1..=chars.len() / 2).find(|period| has_period(&chars, *period))
}

/// Whether `chars` repeats every `period` characters.
fn has_period(chars: &[char], period: usize) -> bool {
    chars.iter().skip(period).zip(chars).all(|(a, b)| a == b)
}

/// Every character next to (or equal to) the previous one in a keyboard row, the alphabet or
/// the digits (`qwertyuiop`, `azertyuiopqsdf`, `1qaz2wsx`, `9876543210`).
fn is_walk(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    chars.len() >= MIN_WALK_CHARS
        && chars.windows(2).all(|pair| match pair {
            [a, b] => a == b || WALK_STEPS.contains(&(*a, *b)),
            _ => false,
        })
}

/// Whether what surrounds a blocklisted word is filler: at most [`MAX_FILLER_RUNS`] runs of
/// digits, symbols or spaces, each short, made of few characters, periodic, a walk or listed.
fn is_filler(prefix: &str, suffix: &str) -> bool {
    let mut runs = runs_of(prefix);
    runs.extend(runs_of(suffix));
    runs.len() <= MAX_FILLER_RUNS && runs.iter().all(|run| is_trivial_run(run))
}

/// `s` cut into maximal runs of digits, spaces, and other characters.
fn runs_of(s: &str) -> Vec<&str> {
    fn kind(c: char) -> u8 {
        if c.is_numeric() {
            0
        } else if c.is_whitespace() {
            1
        } else {
            2
        }
    }
    let mut runs = Vec::new();
    let mut start = 0;
    let mut previous: Option<u8> = None;
    for (index, c) in s.char_indices() {
        let current = kind(c);
        if previous.is_some_and(|p| p != current) {
            runs.push(&s[start..index]);
            start = index;
        }
        previous = Some(current);
    }
    if start < s.len() {
        runs.push(&s[start..]);
    }
    runs
}

/// A run of filler that adds little: short (`2025`), made of at most
/// [`MAX_FILLER_RUN_DISTINCT`] characters (`!!!!!!`, `20202`), a short unit repeated
/// (`1234512345`), a walk (`1234567`) or blocklisted (`696969`).
fn is_trivial_run(run: &str) -> bool {
    let chars: Vec<char> = run.chars().collect();
    chars.len() <= SHORT_FILLER_RUN_CHARS
        || distinct_chars(run) <= MAX_FILLER_RUN_DISTINCT
        || (1..=SHORT_FILLER_RUN_CHARS + 1)
            .any(|period| chars.len() >= 2 * period && has_period(&chars, period))
        || is_walk(run)
        || is_listed(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_alice() -> PasswordContext<'static> {
        PasswordContext {
            login: "alice.martin",
            given_name: "Alice",
            family_name: "Martin",
            extra_words: &[],
        }
    }

    fn check_default(password: &str) -> Result<(), Vec<PolicyViolation>> {
        PasswordPolicy::default().check(password, &ctx_alice())
    }

    /// The personal-information violation naming `words`.
    fn personal(words: &[&str]) -> PolicyViolation {
        PolicyViolation::ContainsPersonalInfo {
            words: words.iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    fn seed(name: &str) -> PasswordPolicy {
        seed_examples()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p)
            .expect("seed policy exists")
    }

    fn nfd(s: &str) -> String {
        s.nfd().collect()
    }

    #[test]
    fn default_is_nist_rev4() {
        let p = PasswordPolicy::default();
        assert_eq!(p.min_length, 15);
        assert_eq!(p.max_length, 256);
        assert!(p.required_classes.is_empty());
        assert!(p.forbidden_characters.is_empty());
        assert!(p.forbid_personal_info);
        assert!(p.use_blocklist);
        p.validate().unwrap();
    }

    // --- each rule alone ---

    #[test]
    fn too_short_alone() {
        assert_eq!(
            check_default("kR7#pL2!xQ9@mZ"),
            Err(vec![PolicyViolation::TooShort { min: 15 }])
        );
    }

    #[test]
    fn too_long_alone() {
        let password = "Sesame garde la porte de l'ENT, "
            .repeat(9)
            .chars()
            .take(257)
            .collect::<String>();
        assert_eq!(password.chars().count(), 257);
        assert_eq!(
            check_default(&password),
            Err(vec![PolicyViolation::TooLong { max: 256 }])
        );
        let at_max: String = password.chars().take(256).collect();
        assert_eq!(check_default(&at_max), Ok(()));
    }

    #[test]
    fn missing_class_alone() {
        let p = PasswordPolicy {
            required_classes: vec![CharClass::Digit],
            ..PasswordPolicy::default()
        };
        assert_eq!(
            p.check("correct horse battery staple", &ctx_alice()),
            Err(vec![PolicyViolation::MissingClass(CharClass::Digit)])
        );
        assert_eq!(
            p.check("correct horse battery staple 7", &ctx_alice()),
            Ok(())
        );
    }

    #[test]
    fn forbidden_character_alone_and_once() {
        let p = PasswordPolicy {
            forbidden_characters: "\"\"".to_owned(),
            ..PasswordPolicy::default()
        };
        assert_eq!(
            p.check("correct \"horse\" battery staple", &ctx_alice()),
            Err(vec![PolicyViolation::ForbiddenCharacter('"')])
        );
    }

    #[test]
    fn personal_info_alone() {
        assert_eq!(
            check_default("Martin aime les framboises"),
            Err(vec![personal(&["martin"])])
        );
    }

    #[test]
    fn common_alone() {
        assert_eq!(
            check_default("Password1234567"),
            Err(vec![PolicyViolation::Common])
        );
    }

    #[test]
    fn too_repetitive_alone() {
        for password in [
            "aaaaaaaaaaaaaaaa",
            "abababababababab",
            "AaAaAaAaAaAaAaAa",
            "1212121212123434",
            "Xk3#jq9!Xk3#jq9!",
            "éàüöçéàüöçéàüöç",
            "ha ha ha ha ha ha ha",
        ] {
            assert_eq!(
                check_default(password),
                Err(vec![PolicyViolation::TooRepetitive]),
                "{password}"
            );
        }
        let off = PasswordPolicy {
            use_blocklist: false,
            ..PasswordPolicy::default()
        };
        assert_eq!(off.check("aaaaaaaaaaaaaaaa", &ctx_alice()), Ok(()));
        // A repeated pattern at least as long as the minimum is accepted.
        assert_eq!(
            check_default("correct horse battery staple correct horse battery staple"),
            Ok(())
        );
        assert_eq!(check_default("Xk3#jq9!vL2@wZ5Xk3#jq9!vL2@wZ5"), Ok(()));
    }

    #[test]
    fn several_violations_listed_in_stable_order() {
        let p = PasswordPolicy {
            required_classes: vec![CharClass::Symbol, CharClass::Digit, CharClass::Uppercase],
            forbidden_characters: "'\"".to_owned(),
            ..PasswordPolicy::default()
        };
        assert_eq!(
            p.check("\"alice's\"", &ctx_alice()),
            Err(vec![
                PolicyViolation::TooShort { min: 15 },
                PolicyViolation::MissingClass(CharClass::Uppercase),
                PolicyViolation::MissingClass(CharClass::Digit),
                PolicyViolation::ForbiddenCharacter('\''),
                PolicyViolation::ForbiddenCharacter('"'),
                personal(&["alice"]),
            ])
        );
        assert_eq!(
            check_default("password1"),
            Err(vec![
                PolicyViolation::TooShort { min: 15 },
                PolicyViolation::Common
            ])
        );
        assert_eq!(
            check_default("aaaa"),
            Err(vec![
                PolicyViolation::TooShort { min: 15 },
                PolicyViolation::TooRepetitive
            ])
        );
    }

    // --- SECURITY.md A05 ---

    #[test]
    fn a05_lengths() {
        assert_eq!(
            check_default(&"Vq8#nT3&wZ5!rK1"[..14]),
            Err(vec![PolicyViolation::TooShort { min: 15 }])
        );
        assert_eq!(check_default("Vq8#nT3&wZ5!rK1"), Ok(()));
        let sixty_four = "Mon vélo bleu roule vers Clermont chaque jeudi, sous la pluie !!";
        assert_eq!(sixty_four.chars().count(), 64);
        assert_eq!(check_default(sixty_four), Ok(()));

        let long_1024 = "x7Qm!".repeat(205).chars().take(1024).collect::<String>();
        assert_eq!(
            check_default(&long_1024),
            Err(vec![PolicyViolation::TooLong { max: 256 }])
        );
        let mebibyte = "a".repeat(1 << 20);
        assert_eq!(
            check_default(&mebibyte),
            Err(vec![PolicyViolation::TooLong { max: 256 }])
        );

        // The byte cap holds even when the policy allows more characters.
        let lax = PasswordPolicy {
            max_length: usize::MAX,
            use_blocklist: false,
            ..PasswordPolicy::default()
        };
        let emoji = "🔑".repeat(129); // 516 bytes, 129 characters
        assert_eq!(
            lax.check(&emoji, &ctx_alice()),
            Err(vec![PolicyViolation::TooLong { max: usize::MAX }])
        );
        assert_eq!(lax.check(&"🔑".repeat(128), &ctx_alice()), Ok(()));
    }

    #[test]
    fn a05_p_and_p_plus_x_both_judged_on_their_own() {
        assert_eq!(check_default("Vq8#nT3&wZ5!rK1"), Ok(()));
        assert_eq!(check_default("Vq8#nT3&wZ5!rK1x"), Ok(()));
    }

    // --- SECURITY.md A06 ---

    #[test]
    fn a06_passphrase_without_digits_accepted() {
        assert_eq!(check_default("correct horse battery staple"), Ok(()));
        assert_eq!(
            PasswordPolicy::default()
                .check("correct horse battery staple", &PasswordContext::default()),
            Ok(())
        );
        for passphrase in [
            "Le chat de ma voisine dort au soleil",
            "j'aime les randonnées en Auvergne",
            "tartiflette du dimanche soir",
            "CorrectHorseBatteryStaple",
            "Vq8#nT3&wZ5!rK1",
        ] {
            assert_eq!(check_default(passphrase), Ok(()), "{passphrase}");
        }
    }

    #[test]
    fn a06_blocklisted_rejected() {
        for password in [
            "Password1234567",
            "passwordpassword",
            "dragon!!!!!!!!!!!",
            "!!!!dragon!!!!!!!!!!!",
            "P@ssw0rd12345678",
            "Azerty123456789!",
            "motdepasse2025!!!",
            "Motdepasse 2025 !",
            "qwertyqwertyqwerty",
            "123456123456123456",
            "monkeymonkeymonkey",
            "qwertyuiopasdfghjkl",
            "azertyuiopqsdfghjklm",
            "1qaz2wsx3edc4rfv",
            "abcdefghijklmnopq",
            "98765432109876543210",
            "soleil soleil soleil",
            "Bonjour2025!!!!!!",
            "sunshine20252025!",
            "Summer2024Summer2024",
            "Paris2024Paris2024",
            "123456789abcdefg",
            "hello world hello world",
        ] {
            assert_eq!(
                check_default(password),
                Err(vec![PolicyViolation::Common]),
                "{password}"
            );
        }
    }

    #[test]
    fn a06_padding_with_entropy_is_not_common() {
        // A listed word is fine inside a longer password with real content around it.
        assert_eq!(check_default("dragon48213!%&*qz"), Ok(()));
        assert_eq!(check_default("my dragon eats blue tulips"), Ok(()));
        assert_eq!(check_default("dragon73917#%&*@"), Ok(()));
        assert_eq!(
            check_default("dragon2025!!!!!!"),
            Err(vec![PolicyViolation::Common])
        );
    }

    #[test]
    fn a06_login_with_year_and_symbols_rejected() {
        assert_eq!(
            check_default("alice.martin2025!!!"),
            Err(vec![personal(&["alice.martin"])])
        );
        let by_login_only = PasswordContext {
            login: "alice.martin",
            ..PasswordContext::default()
        };
        for (password, word) in [
            ("alice.martin2025!!!", "alice.martin"),
            ("ALICEMARTIN2025!!!", "alice.martin"),
            ("Àlice-Mârtin 2025 !!!", "alice.martin"),
            ("AliceMartin est là 2025", "alice.martin"),
            ("@l1ce2025#########", "alice"),
            ("le jardin de martin en mai", "martin"),
            ("le jardin de M@RT1N en mai", "martin"),
        ] {
            assert_eq!(
                PasswordPolicy::default().check(password, &by_login_only),
                Err(vec![personal(&[word])]),
                "{password}"
            );
        }
    }

    #[test]
    fn a06_context_words_rejected() {
        let words = vec![
            "Moodle".to_owned(),
            "Université Clermont Auvergne".to_owned(),
            "UC".to_owned(),
        ];
        let ctx = PasswordContext {
            login: "e123456",
            given_name: "Éloïse",
            family_name: "Le Goff-Durand",
            extra_words: &words,
        };
        let p = PasswordPolicy::default();
        for (password, word) in [
            ("J'adore MOODLE le matin !", "moodle"),
            (
                "universiteclermontauvergne!",
                "université clermont auvergne",
            ),
            (
                "Une journée à l'Université Clermont Auvergne",
                "université clermont auvergne",
            ),
            ("eloise adore les tartes", "éloïse"),
            ("famille durand en vacances", "durand"),
            ("mon numéro e123456 est secret", "e123456"),
            ("mon numéro E-123456 est secret", "e123456"),
        ] {
            assert_eq!(
                p.check(password, &ctx),
                Err(vec![personal(&[word])]),
                "{password}"
            );
        }
        // Parts under 3 characters ("le", "uc") are ignored.
        assert_eq!(p.check("le lucane vole la nuit", &ctx), Ok(()));
    }

    #[test]
    fn context_words_count_as_words_not_inside_other_words() {
        let words = vec!["ENT".to_owned(), "UCA".to_owned()];
        let ctx = PasswordContext {
            login: "jean.dupont",
            given_name: "Jean",
            family_name: "Dupont",
            extra_words: &words,
        };
        let p = PasswordPolicy::default();
        // "ent" and "uca" inside ordinary words: accepted.
        for password in [
            "de l'argent pour les parents",
            "un moment de calme au bord de l'eau",
            "educational toys for the whole family",
            "Argent Parent Moment Serpent",
        ] {
            assert_eq!(p.check(password, &ctx), Ok(()), "{password}");
        }
        // As words of their own, however written: refused, naming the word.
        for (password, word) in [
            ("mon ENT est le meilleur de tous", "ent"),
            ("ENT2025 est le meilleur de tous", "ent"),
            ("MonENTEstLeMeilleurDeTous", "ent"),
            ("le portail e.n.t est le meilleur", "ent"),
            ("le portail 3NT est le meilleur", "ent"),
            ("connecté à l'UCA depuis hier soir", "uca"),
        ] {
            assert_eq!(
                p.check(password, &ctx),
                Err(vec![personal(&[word])]),
                "{password}"
            );
        }
        // Names as words (and leet), the login even inside a longer word.
        for (password, expected) in [
            ("les vacances de Dupont en mai", vec!["dupont"]),
            ("les vacances de DUP0NT en mai", vec!["dupont"]),
            ("Jean part en vacances demain", vec!["jean"]),
            ("xxjeandupontxx est mon secret", vec!["jean.dupont"]),
            ("Jean et Dupont sont à l'ENT", vec!["jean", "dupont", "ent"]),
        ] {
            assert_eq!(
                p.check(password, &ctx),
                Err(vec![personal(&expected)]),
                "{password}"
            );
        }
        // A name inside a longer word is chance, not a hint: accepted.
        assert_eq!(p.check("les dupontiers fleurissent tôt", &ctx), Ok(()));
        assert_eq!(p.check("jeanne adore les tulipes", &ctx), Ok(()));
        // A short login is only refused as a word.
        let short = PasswordContext {
            login: "ana",
            ..PasswordContext::default()
        };
        assert_eq!(p.check("une banane bien mûre au soleil", &short), Ok(()));
        assert_eq!(
            p.check("moi c'est ana et j'aime le soleil", &short),
            Err(vec![personal(&["ana"])])
        );
    }

    #[test]
    fn tokens_cut_at_separators_case_changes_and_digits() {
        assert_eq!(
            tokens("MotDePasse-ENTPortail2025 l'Élève"),
            ["mot", "de", "passe", "ent", "portail", "2025", "l", "eleve"]
        );
        assert_eq!(tokens("argent"), ["argent"]);
        assert_eq!(unleet_keeping_case("M@rt1n DUP0NT", 'i'), "Martin DUPONT");
    }

    // --- SECURITY.md A07 ---

    #[test]
    fn a07_nfc_and_nfd_give_the_same_answer() {
        let ctx = PasswordContext {
            login: "eloise.lefevre",
            given_name: "Éloïse",
            family_name: "Lefèvre",
            extra_words: &[],
        };
        let p = PasswordPolicy::default();
        for password in [
            "Crème brûlée au café, s'il te plaît",
            "Éloïse aime la crème brûlée",
            "çàéèêëîïôùûü ÇÀÉ",
            "ĥéĺĺô ŵôŕĺđ éé",
            "Ωμέγα ῷ ᾂ 한국어 비밀번호",
            "Hé!",
        ] {
            let composed: String = password.nfc().collect();
            let decomposed = nfd(password);
            assert_ne!(composed, decomposed, "{password}");
            assert_eq!(
                p.check(&composed, &ctx),
                p.check(&decomposed, &ctx),
                "{password}"
            );
        }
        // 14 characters in NFC, 17 code points in NFD: too short either way.
        let fourteen = "Crème brûlée!é";
        assert_eq!(fourteen.chars().count(), 14);
        assert_eq!(
            p.check(&nfd(fourteen), &ctx),
            Err(vec![PolicyViolation::TooShort { min: 15 }])
        );
        // A forbidden accented character matches whichever form either side uses.
        let no_e_acute = PasswordPolicy {
            forbidden_characters: nfd("é"),
            ..PasswordPolicy::default()
        };
        assert_eq!(
            no_e_acute.check("Crème brûlée au café", &ctx),
            Err(vec![PolicyViolation::ForbiddenCharacter('é')])
        );
        // A password just under the byte cap in NFC but over it in NFD is accepted.
        let accented = "é".repeat(200) + "Qz#1";
        assert!(nfd(&accented).len() > MAX_PASSWORD_BYTES);
        let lax = PasswordPolicy {
            use_blocklist: false,
            ..PasswordPolicy::default()
        };
        assert_eq!(lax.check(&nfd(&accented), &ctx), lax.check(&accented, &ctx));
        assert_eq!(lax.check(&nfd(&accented), &ctx), Ok(()));
    }

    // --- the seeds ---

    #[test]
    fn seed_policies_are_named_and_valid() {
        let names: Vec<&str> = seed_examples().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "nist-800-63b-default",
                "uh2c-staff-8-mixed-no-name-no-quote",
                "provence-6-letters-digits",
                "ent77-8-letter-digit",
            ]
        );
        for (name, policy) in seed_examples() {
            assert_eq!(policy.validate(), Ok(()), "{name}");
            assert!(!policy.describe(Lang::Fr).is_empty());
        }
    }

    #[test]
    fn seed_001_provence_six_characters_letters_and_digits() {
        let p = seed("provence-6-letters-digits");
        let ctx = PasswordContext::default();
        assert_eq!(p.check("abc123", &ctx), Ok(()));
        assert_eq!(
            p.check("abcdef", &ctx),
            Err(vec![PolicyViolation::MissingClass(CharClass::Digit)])
        );
        assert_eq!(
            p.check("123456", &ctx),
            Err(vec![PolicyViolation::MissingClass(CharClass::Letter)])
        );
        assert_eq!(
            p.check("ab12", &ctx),
            Err(vec![PolicyViolation::TooShort { min: 6 }])
        );
    }

    #[test]
    fn seed_002_ent77_eight_characters_a_letter_and_a_digit() {
        let p = seed("ent77-8-letter-digit");
        let ctx = PasswordContext {
            login: "jean.dupont",
            given_name: "Jean",
            family_name: "Dupont",
            extra_words: &[],
        };
        assert_eq!(p.check("1234567a", &ctx), Ok(()));
        assert_eq!(p.check("soleil12", &ctx), Ok(()));
        assert_eq!(
            p.check("abcdefgh", &ctx),
            Err(vec![PolicyViolation::MissingClass(CharClass::Digit)])
        );
        assert_eq!(
            p.check("12345678", &ctx),
            Err(vec![PolicyViolation::MissingClass(CharClass::Letter)])
        );
        assert_eq!(
            p.check("abc1234", &ctx),
            Err(vec![PolicyViolation::TooShort { min: 8 }])
        );
    }

    #[test]
    fn seed_000_uh2c_no_name_no_quote_mixed_classes() {
        let p = seed("uh2c-staff-8-mixed-no-name-no-quote");
        let ctx = PasswordContext {
            login: "mohamed.alaoui",
            given_name: "Mohamed",
            family_name: "Alaoui",
            extra_words: &[],
        };
        assert_eq!(p.check("Kx9#mP2vLq", &ctx), Ok(()));
        assert_eq!(
            p.check("Alaoui#2024x", &ctx),
            Err(vec![personal(&["alaoui"])])
        );
        assert_eq!(
            p.check("Kx9#mP2\"vLq", &ctx),
            Err(vec![PolicyViolation::ForbiddenCharacter('"')])
        );
        assert_eq!(
            p.check("kx9mp2vlqz", &ctx),
            Err(vec![
                PolicyViolation::MissingClass(CharClass::Uppercase),
                PolicyViolation::MissingClass(CharClass::Symbol),
            ])
        );
        assert_eq!(
            p.check("P@ssw0rd!", &ctx),
            Err(vec![PolicyViolation::Common])
        );
    }

    // --- blocklist, validate, messages, serde ---

    #[test]
    fn blocklist_is_large_folded_and_without_comments() {
        assert!(BLOCKLIST.len() >= 10_000, "{}", BLOCKLIST.len());
        for entry in BLOCKLIST.iter() {
            assert!(!entry.is_empty() && !entry.starts_with('#'));
            assert_eq!(fold(entry), *entry);
        }
        for entry in [
            "123456",
            "password",
            "azerty",
            "motdepasse",
            "soleil",
            "doudou",
        ] {
            assert!(BLOCKLIST.contains(entry), "{entry}");
        }
    }

    #[test]
    fn validate_names_the_field() {
        let p = |min_length, max_length| PasswordPolicy {
            min_length,
            max_length,
            ..PasswordPolicy::default()
        };
        let err = p(100, 64).validate().unwrap_err();
        assert!(
            err.contains("min_length") && err.contains("max_length"),
            "{err}"
        );
        assert!(p(0, 64).validate().unwrap_err().starts_with("min_length"));
        assert!(p(8, 63).validate().unwrap_err().starts_with("max_length"));
        assert!(p(8, 257).validate().unwrap_err().starts_with("max_length"));
        assert_eq!(p(64, 64).validate(), Ok(()));
        assert_eq!(p(1, 256).validate(), Ok(()));
    }

    #[test]
    fn messages_in_both_languages() {
        use PolicyViolation as V;
        assert_eq!(
            V::TooShort { min: 15 }.message(Lang::Fr),
            "Le mot de passe doit contenir au moins 15 caractères."
        );
        assert_eq!(
            V::TooShort { min: 15 }.message(Lang::En),
            "The password must be at least 15 characters long."
        );
        assert_eq!(
            V::MissingClass(CharClass::Digit).message(Lang::Fr),
            "Le mot de passe doit contenir au moins un chiffre."
        );
        assert_eq!(
            V::ForbiddenCharacter('"').message(Lang::Fr),
            "Le mot de passe ne doit pas contenir le caractère « \" »."
        );
        assert_eq!(
            V::Common.message(Lang::Fr),
            "Ce mot de passe est trop courant ou figure dans des listes de mots de passe \
             divulgués : choisissez-en un autre."
        );
        assert_eq!(
            V::TooShort { min: 1 }.message(Lang::Fr),
            "Le mot de passe doit contenir au moins 1 caractère."
        );
        assert_eq!(
            V::ForbiddenCharacter(' ').message(Lang::Fr),
            "Le mot de passe ne doit pas contenir le caractère « espace »."
        );
        assert!(personal(&["dupont"]).message(Lang::Fr).starts_with(
            "Le mot de passe contient « dupont » : il ne doit contenir ni votre identifiant, \
             ni votre nom, ni votre prénom"
        ));
        assert!(personal(&["jean", "ent"])
            .message(Lang::En)
            .starts_with("The password contains “jean” and “ent”: it must not contain"));

        let all = [
            V::TooShort { min: 15 },
            V::TooLong { max: 256 },
            V::MissingClass(CharClass::Lowercase),
            V::MissingClass(CharClass::Uppercase),
            V::MissingClass(CharClass::Letter),
            V::MissingClass(CharClass::Digit),
            V::MissingClass(CharClass::Symbol),
            V::ForbiddenCharacter('"'),
            personal(&["dupont"]),
            V::Common,
            V::TooRepetitive,
        ];
        let codes: HashSet<&str> = all.iter().map(PolicyViolation::code).collect();
        assert_eq!(codes.len(), all.len());
        for v in &all {
            let (fr, en) = (v.message(Lang::Fr), v.message(Lang::En));
            assert_ne!(fr, en);
            assert!(fr.ends_with('.') && en.ends_with('.'), "{fr} / {en}");
            assert_eq!(v.to_string(), en);
            assert!(v.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn describe_lists_the_rules() {
        let fr = PasswordPolicy::default().describe(Lang::Fr);
        assert_eq!(fr[0], "Au moins 15 caractères (et au plus 256).");
        assert!(fr.iter().any(|l| l.contains("identifiant")));
        assert!(fr.iter().any(|l| l.contains("divulgué")));
        assert!(fr.iter().any(|l| l.contains("espaces")));
        let en = PasswordPolicy::default().describe(Lang::En);
        assert_eq!(en[0], "At least 15 characters (and at most 256).");
        assert_eq!(fr.len(), en.len());

        let uh2c = seed("uh2c-staff-8-mixed-no-name-no-quote").describe(Lang::Fr);
        assert_eq!(
            uh2c[1],
            "Au moins une lettre minuscule, une lettre majuscule, un chiffre et un caractère \
             spécial (ponctuation, symbole ou espace)."
        );
        assert_eq!(uh2c[2], "Sans le caractère « \" ».");
        let ent77 = seed("ent77-8-letter-digit").describe(Lang::En);
        assert_eq!(
            ent77[..2],
            [
                "At least 8 characters (and at most 256).",
                "At least one letter and one digit."
            ]
        );
        let two = PasswordPolicy {
            forbidden_characters: "\"' ".to_owned(),
            ..PasswordPolicy::default()
        };
        let lines = two.describe(Lang::Fr);
        assert!(
            lines.contains(&"Sans les caractères « \" », « ' » ni « espace ».".to_owned()),
            "{lines:?}"
        );
        assert!(!lines
            .iter()
            .any(|l| l.contains("Les espaces sont autorisés")));
    }

    #[test]
    fn serde_defaults_lowercase_classes_and_unknown_fields() {
        let p: PasswordPolicy =
            serde_json::from_str(r#"{"min_length": 8, "required_classes": ["letter", "digit"]}"#)
                .unwrap();
        assert_eq!(p, seed("ent77-8-letter-digit").clone_with_flags(true, true));
        assert!(serde_json::from_str::<PasswordPolicy>(r#"{"min_lenght": 8}"#).is_err());
        let round: PasswordPolicy =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(round, p);
        assert_eq!(
            serde_json::to_string(&CharClass::Symbol).unwrap(),
            "\"symbol\""
        );
    }

    impl PasswordPolicy {
        fn clone_with_flags(&self, forbid_personal_info: bool, use_blocklist: bool) -> Self {
            Self {
                forbid_personal_info,
                use_blocklist,
                ..self.clone()
            }
        }
    }

    #[test]
    fn char_classes() {
        assert!(CharClass::Digit.matches('٣'));
        assert!(CharClass::Letter.matches('ب'));
        assert!(CharClass::Symbol.matches(' '));
        assert!(CharClass::Symbol.matches('€'));
        assert!(!CharClass::Symbol.matches('é'));
        assert!(CharClass::Uppercase.matches('É') && !CharClass::Lowercase.matches('É'));
        for class in CharClass::ALL {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
        }
    }
}
