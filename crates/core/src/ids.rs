//! Validated identifiers, parsed once at the boundary.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

/// Longest login or e-mail Sesame accepts (characters).
pub const MAX_IDENTIFIER_CHARS: usize = 254;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Nothing left after trimming.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_IDENTIFIER_CHARS`].
    #[error("is longer than {MAX_IDENTIFIER_CHARS} characters")]
    TooLong,
    /// Contains control characters, spaces inside, or characters not allowed for this kind.
    #[error("contains a character that is not allowed ({0:?})")]
    BadCharacter(char),
    /// Not of the form `local@domain`.
    #[error("is not an e-mail address")]
    NotAnEmail,
    /// Not one of the known values.
    #[error("is not one of: {0}")]
    Unknown(&'static str),
    /// Not 6 to 15 digits, optionally after a `+`.
    #[error("is not a phone number (6 to 15 digits, optionally after +)")]
    NotAPhoneNumber,
}

/// Folds what a person might type for the same login into one form: Unicode NFKC (so
/// full-width and composed/decomposed forms agree), trimmed, lower-cased. Every lookup and
/// every lockout counter uses this form (security spec A04: one account, one counter).
pub fn fold_identifier(raw: &str) -> String {
    // ASCII is its own NFKC form, and most logins are ASCII: the fast path spares every
    // session and ticket decoded on the CAS cycle the normaliser's buffers (≈ 2 % of its CPU).
    if raw.is_ascii() {
        return raw.trim().to_ascii_lowercase();
    }
    raw.nfkc().collect::<String>().trim().to_lowercase()
}

/// The two strings a person may type in the login page's one field: an account's login or its
/// institutional e-mail. They share one namespace: no string is one account's login and
/// another's e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierKind {
    /// The login.
    Login,
    /// The institutional e-mail.
    Email,
}

impl IdentifierKind {
    /// `login` or `email`, as the API and the CLI name the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Email => "email",
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Folds a name or a searched word for the helpdesk's search, so "Élodie", "ELODIE" and
/// "elodie" meet: Unicode compatibility decomposition, accents (combining marks) dropped,
/// lower case, and the letters that do not decompose spelt out (`œ` → `oe`, `æ` → `ae`,
/// `ß` → `ss`, `ø` → `o`, `ł` → `l`, `đ` → `d`, curly apostrophes → `'`). The database keeps
/// the names of each account in this form (`accounts.search_name`), written with the names.
pub fn fold_for_search(raw: &str) -> String {
    let mut folded = String::with_capacity(raw.len());
    for c in raw
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
    {
        match c {
            'œ' => folded.push_str("oe"),
            'æ' => folded.push_str("ae"),
            'ß' => folded.push_str("ss"),
            'ø' => folded.push('o'),
            'ł' => folded.push('l'),
            'đ' => folded.push('d'),
            'ı' => folded.push('i'),
            '’' | 'ʼ' | '‘' => folded.push('\''),
            _ => folded.push(c),
        }
    }
    folded.trim().to_owned()
}

/// An account's login (`prenom.nom` in the seeds), in folded form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LoginName(String);

impl LoginName {
    /// Parses and folds a login. Letters (any script), digits and `. - _ @ '` are allowed.
    ///
    /// # Errors
    /// [`IdentifierError`] if it is empty, too long, or holds any other character.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let folded = fold_identifier(raw);
        if folded.is_empty() {
            return Err(IdentifierError::Empty);
        }
        if folded.chars().count() > MAX_IDENTIFIER_CHARS {
            return Err(IdentifierError::TooLong);
        }
        if let Some(bad) = folded
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | '\'')))
        {
            return Err(IdentifierError::BadCharacter(bad));
        }
        Ok(Self(folded))
    }

    /// The folded login.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LoginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for LoginName {
    type Error = IdentifierError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<LoginName> for String {
    fn from(value: LoginName) -> Self {
        value.0
    }
}

/// An e-mail address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address: one `@`, non-empty local part, a dotted domain, no spaces or controls.
    ///
    /// # Errors
    /// [`IdentifierError`] when it is not an address.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let folded = fold_identifier(raw);
        if folded.is_empty() {
            return Err(IdentifierError::Empty);
        }
        if folded.chars().count() > MAX_IDENTIFIER_CHARS {
            return Err(IdentifierError::TooLong);
        }
        if let Some(bad) = folded
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','))
        {
            return Err(IdentifierError::BadCharacter(bad));
        }
        let (local, domain) = folded.split_once('@').ok_or(IdentifierError::NotAnEmail)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(IdentifierError::NotAnEmail);
        }
        Ok(Self(folded))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = IdentifierError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// An account's stable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountId(pub Uuid);

impl AccountId {
    /// A fresh random identifier.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for AccountId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What a person is to the institution; password policies and activation paths vary by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Affiliation {
    /// Administrative and technical staff.
    Staff,
    /// Teachers and researchers.
    Faculty,
    /// University students.
    Student,
    /// Secondary-school pupils.
    Pupil,
    /// Parents of pupils.
    Parent,
    /// People hosted by the institution (CNRS, Inserm staff, visitors).
    Affiliate,
}

impl Affiliation {
    /// Every affiliation, in a stable order.
    pub const ALL: [Self; 6] = [
        Self::Staff,
        Self::Faculty,
        Self::Student,
        Self::Pupil,
        Self::Parent,
        Self::Affiliate,
    ];

    /// The lowercase name used in configuration, storage and CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Faculty => "faculty",
            Self::Student => "student",
            Self::Pupil => "pupil",
            Self::Parent => "parent",
            Self::Affiliate => "affiliate",
        }
    }
}

impl fmt::Display for Affiliation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Affiliation {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim().to_ascii_lowercase())
            .ok_or(IdentifierError::Unknown(
                "staff, faculty, student, pupil, parent, affiliate",
            ))
    }
}

/// Longest HR or student identifier Sesame accepts (characters).
pub const MAX_HR_ID_CHARS: usize = 64;

/// A person's identifier in the HR or student system (staff number, student file number,
/// INE): the key of provisioning imports. ASCII letters and digits, with `-`, `_`, `.` or `/`
/// inside; stored upper-cased, so `0a12` and `0A12` are one person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HrId(String);

impl HrId {
    /// Parses an identifier: trimmed, upper-cased, at most [`MAX_HR_ID_CHARS`] characters.
    ///
    /// # Errors
    /// [`IdentifierError`] if it is empty, too long or holds another character.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(IdentifierError::Empty);
        }
        if trimmed.chars().count() > MAX_HR_ID_CHARS {
            return Err(IdentifierError::TooLong);
        }
        if let Some(bad) = trimmed
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
        {
            return Err(IdentifierError::BadCharacter(bad));
        }
        Ok(Self(trimmed.to_ascii_uppercase()))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for HrId {
    type Error = IdentifierError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<HrId> for String {
    fn from(value: HrId) -> Self {
        value.0
    }
}

/// A mobile phone number, as digits with an optional leading `+` (spaces, dots, dashes and
/// brackets people type are dropped: `06 12 34 56 78` is `0612345678`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MobilePhone(String);

impl MobilePhone {
    /// Parses a number: 6 to 15 digits once separators are removed (E.164 allows 15).
    ///
    /// # Errors
    /// [`IdentifierError`] if it is empty, holds a letter or has too few or too many digits.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(IdentifierError::Empty);
        }
        let mut out = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => out.push(c),
                '+' if i == 0 => out.push(c),
                ' ' | '.' | '-' | '(' | ')' | '\u{a0}' => {}
                other => return Err(IdentifierError::BadCharacter(other)),
            }
        }
        let digits = out.trim_start_matches('+').len();
        if !(6..=15).contains(&digits) {
            return Err(IdentifierError::NotAPhoneNumber);
        }
        Ok(Self(out))
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MobilePhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MobilePhone {
    type Error = IdentifierError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MobilePhone> for String {
    fn from(value: MobilePhone) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_for_search_without_case_or_accents() {
        for (typed, folded) in [
            ("Élodie", "elodie"),
            ("ÉLODIE", "elodie"),
            ("élodie", "elodie"),
            ("Lefèvre-Œuvray", "lefevre-oeuvray"),
            ("Strauß", "strauss"),
            ("Søren Łukasz", "soren lukasz"),
            ("N’Diaye", "n'diaye"),
            ("Çağlar", "caglar"),
        ] {
            assert_eq!(fold_for_search(typed), folded, "{typed}");
        }
    }

    #[test]
    fn the_ascii_fast_path_folds_as_nfkc_does() {
        // Every ASCII character, alone and within a login, with the whitespace `trim` takes.
        let mut inputs: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        inputs.extend(
            (0u8..0x80).map(|b| format!(" \t{}Alice.Martin-2{}\r\n", char::from(b), char::from(b))),
        );
        inputs.push("\u{0b}\u{0c}MiXeD_Case@Univ.Example.ORG\u{0b}".to_owned());
        for raw in inputs {
            let slow = raw.nfkc().collect::<String>().trim().to_lowercase();
            assert_eq!(fold_identifier(&raw), slow, "{raw:?}");
        }
    }

    #[test]
    fn login_variants_fold_to_one_login() {
        let canonical = LoginName::parse("alice.martin").unwrap();
        for variant in [
            "Alice.Martin",
            "ALICE.MARTIN",
            " alice.martin ",
            "\u{ff41}lice.martin", // full-width a
        ] {
            assert_eq!(LoginName::parse(variant).unwrap(), canonical, "{variant:?}");
        }
        // NFD and NFC spellings of an accented login agree.
        assert_eq!(
            LoginName::parse("he\u{0301}le\u{0300}ne").unwrap(),
            LoginName::parse("hélène").unwrap()
        );
    }

    #[test]
    fn logins_with_controls_or_spaces_inside_are_refused() {
        for bad in ["a\nb", "a\rb", "a\u{1b}[31mb", "a b", "a<b", ""] {
            assert!(LoginName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(
            Email::parse("Bob@X.org").unwrap().as_str(),
            Email::parse("bob@x.org").unwrap().as_str()
        );
        for bad in ["bob", "bob@", "@x.org", "bob@x", "a b@x.org", "a@b@x.org"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hr_ids_are_trimmed_and_upper_cased() {
        assert_eq!(HrId::parse(" 0a12b ").unwrap().as_str(), "0A12B");
        assert_eq!(HrId::parse("SOM-1234/5").unwrap().as_str(), "SOM-1234/5");
        for bad in ["", "  ", "a b", "é1", "12;3", &"9".repeat(65)] {
            assert!(HrId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phone_numbers_lose_their_separators() {
        assert_eq!(
            MobilePhone::parse("06 12 34 56 78").unwrap().as_str(),
            "0612345678"
        );
        assert_eq!(
            MobilePhone::parse("+33 (0)6.12.34.56.78").unwrap().as_str(),
            "+330612345678"
        );
        for bad in ["", "12345", "06 12 AB", "0612+345678", &"1".repeat(16)] {
            assert!(MobilePhone::parse(bad).is_err(), "{bad:?}");
        }
    }
}
