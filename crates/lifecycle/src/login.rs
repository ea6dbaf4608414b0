//! Logins and institutional addresses for new people.
//!
//! The seeds' rule: the login is `prenom.nom` ("Jean-Éric O'Brien" → `jean-eric.obrien`): lower
//! case, accents folded to their base letter, apostrophes dropped, spaces and hyphens inside a
//! name kept as one hyphen. When that login is taken, the next free number is appended:
//! `jean.dupont`, `jean.dupont2`, `jean.dupont3`… The institutional e-mail comes from a
//! configured pattern such as `{login}@univ.example.org`, per affiliation if need be.

use std::collections::BTreeMap;

use sesame_core::ids::{Affiliation, Email, LoginName};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Longest part (given or family name) of a generated login, in characters.
pub const MAX_LOGIN_PART_CHARS: usize = 32;

/// The placeholder an e-mail pattern must contain.
pub const LOGIN_PLACEHOLDER: &str = "{login}";

/// Folds one name into what a login may hold: ASCII lower-case letters and digits, accents
/// removed (`é` → `e`, `ß` → `ss`, `œ` → `oe`), apostrophes dropped (`O'Brien` → `obrien`),
/// and any run of spaces, hyphens or other punctuation made one hyphen, none at either end.
/// Letters without a Latin form (Arabic, Cyrillic…) are dropped; the result may be empty.
pub fn fold_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    // A separator is written only once a letter follows it.
    let mut pending_separator = false;
    let push = |out: &mut String, piece: &str, pending: &mut bool| {
        if *pending && !out.is_empty() {
            out.push('-');
        }
        *pending = false;
        out.push_str(piece);
    };
    for c in name.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'a'..='z' | '0'..='9' => {
                push(&mut out, c.encode_utf8(&mut [0; 4]), &mut pending_separator)
            }
            'A'..='Z' => push(
                &mut out,
                c.to_ascii_lowercase().encode_utf8(&mut [0; 4]),
                &mut pending_separator,
            ),
            '\'' | '\u{2019}' | '\u{02bc}' | '\u{2018}' | '`' | '\u{b4}' => {}
            _ => match latin_letters(c) {
                Some(piece) => push(&mut out, piece, &mut pending_separator),
                None if c.is_alphanumeric() => {}
                None => pending_separator = true,
            },
        }
    }
    out
}

/// Latin letters that NFKD does not decompose into an ASCII base letter.
fn latin_letters(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' | 'ẞ' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'ø' | 'Ø' => "o",
        'đ' | 'Đ' | 'ð' | 'Ð' => "d",
        'ł' | 'Ł' => "l",
        'þ' | 'Þ' => "th",
        'ı' => "i",
        'ħ' | 'Ħ' => "h",
        'ŋ' | 'Ŋ' => "n",
        _ => return None,
    })
}

/// Cuts a folded name to [`MAX_LOGIN_PART_CHARS`], never ending on a hyphen.
fn cap(part: &str) -> &str {
    // Folded names are ASCII: byte and character counts agree.
    let cut = &part[..part.len().min(MAX_LOGIN_PART_CHARS)];
    cut.trim_end_matches('-')
}

/// Why no login can be made from a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginGenerationError {
    /// The given name has no letter or digit usable in a login.
    #[error("given_name has no Latin letter or digit to make a login from")]
    GivenName,
    /// The family name has no letter or digit usable in a login.
    #[error("family_name has no Latin letter or digit to make a login from")]
    FamilyName,
}

/// The login `prenom.nom` before any collision number.
///
/// # Errors
/// [`LoginGenerationError`] when a name folds to nothing.
pub fn base_login(given_name: &str, family_name: &str) -> Result<String, LoginGenerationError> {
    let given = fold_name(given_name);
    let family = fold_name(family_name);
    if given.is_empty() {
        return Err(LoginGenerationError::GivenName);
    }
    if family.is_empty() {
        return Err(LoginGenerationError::FamilyName);
    }
    Ok(format!("{}.{}", cap(&given), cap(&family)))
}

/// The `n`-th candidate for `base`: the base itself for 1, then `base2`, `base3`… (`None`
/// only for a base that is not a login, which [`base_login`] never makes).
pub fn numbered_login(base: &str, n: u32) -> Option<LoginName> {
    let candidate = if n <= 1 {
        base.to_owned()
    } else {
        format!("{base}{n}")
    };
    LoginName::parse(&candidate).ok()
}

/// The first of `base`, `base2`, `base3`… for which `is_taken` says no.
pub fn first_free_login(
    base: &str,
    mut is_taken: impl FnMut(&LoginName) -> bool,
) -> Option<LoginName> {
    (1..=u32::MAX)
        .filter_map(|n| numbered_login(base, n))
        .find(|login| !is_taken(login))
}

/// An institutional e-mail pattern: an address with `{login}` in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailPattern(String);

impl EmailPattern {
    /// Checks a pattern: it holds `{login}` and makes an address of a sample login.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !raw.contains(LOGIN_PLACEHOLDER) {
            return Err(format!("{raw:?} does not contain {LOGIN_PLACEHOLDER}"));
        }
        let pattern = Self(raw.to_owned());
        Email::parse(&pattern.fill("jean-eric.obrien2"))
            .map_err(|e| format!("{raw:?} does not make an e-mail address: it {e}"))?;
        Ok(pattern)
    }

    fn fill(&self, login: &str) -> String {
        self.0.replace(LOGIN_PLACEHOLDER, login)
    }

    /// The address of `login`, if it makes one.
    pub fn render(&self, login: &LoginName) -> Option<Email> {
        Email::parse(&self.fill(login.as_str())).ok()
    }
}

/// Which pattern gives each affiliation its institutional e-mail (none when unset or empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailPatterns {
    default: Option<EmailPattern>,
    by_affiliation: BTreeMap<Affiliation, Option<EmailPattern>>,
}

impl EmailPatterns {
    /// Patterns from the configuration: `default` for every affiliation not in
    /// `by_affiliation`; an empty string means "no institutional e-mail".
    ///
    /// # Errors
    /// A message naming the affiliation whose pattern is wrong.
    pub fn new(
        default: &str,
        by_affiliation: &BTreeMap<Affiliation, String>,
    ) -> Result<Self, String> {
        let parse = |raw: &str| -> Result<Option<EmailPattern>, String> {
            if raw.trim().is_empty() {
                Ok(None)
            } else {
                EmailPattern::parse(raw).map(Some)
            }
        };
        let default = parse(default)?;
        let mut map = BTreeMap::new();
        for (aff, raw) in by_affiliation {
            map.insert(*aff, parse(raw).map_err(|e| format!("{aff}: {e}"))?);
        }
        Ok(Self {
            default,
            by_affiliation: map,
        })
    }

    /// The institutional e-mail of a new `affiliation` account with this login, if any.
    pub fn render(&self, affiliation: Affiliation, login: &LoginName) -> Option<Email> {
        self.by_affiliation
            .get(&affiliation)
            .unwrap_or(&self.default)
            .as_ref()
            .and_then(|p| p.render(login))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    use super::*;

    #[test]
    fn the_seed_example_gives_prenom_nom() {
        assert_eq!(
            base_login("Jean-Éric", "O'Brien").unwrap(),
            "jean-eric.obrien"
        );
        assert_eq!(base_login("Jean", "Dupont").unwrap(), "jean.dupont");
    }

    #[test]
    fn accents_spaces_apostrophes_and_ligatures_are_folded() {
        for (given, family, login) in [
            ("Hélène", "Lefèvre", "helene.lefevre"),
            (
                "Marie Claire",
                "De La Fontaine",
                "marie-claire.de-la-fontaine",
            ),
            ("  Zoé ", "d’Artagnan", "zoe.dartagnan"),
            ("Jürgen", "Groß", "jurgen.gross"),
            ("Lætitia", "Cœur", "laetitia.coeur"),
            ("Søren", "Łukasz", "soren.lukasz"),
            ("Çağla", "Yılmaz", "cagla.yilmaz"),
            (
                "Anne--Sophie",
                "Martin - Durand",
                "anne-sophie.martin-durand",
            ),
            (
                "Jean",
                "Dupont (épouse Martin)",
                "jean.dupont-epouse-martin",
            ),
            ("ＪＥＡＮ", "DUPONT", "jean.dupont"),
        ] {
            assert_eq!(
                base_login(given, family).unwrap(),
                login,
                "{given} {family}"
            );
        }
    }

    #[test]
    fn names_without_latin_letters_make_no_login() {
        assert_eq!(
            base_login("محمد", "Alaoui"),
            Err(LoginGenerationError::GivenName)
        );
        assert_eq!(
            base_login("Ivan", "Иванов"),
            Err(LoginGenerationError::FamilyName)
        );
        assert_eq!(base_login("'", "X"), Err(LoginGenerationError::GivenName));
    }

    #[test]
    fn long_names_are_cut() {
        let login = base_login(&"a".repeat(50), &"b-".repeat(40)).unwrap();
        let (given, family) = login.split_once('.').unwrap();
        assert_eq!(given.len(), MAX_LOGIN_PART_CHARS);
        assert!(family.len() <= MAX_LOGIN_PART_CHARS && !family.ends_with('-'));
    }

    #[test]
    fn a_collision_gets_the_next_free_number() {
        let taken: HashSet<&str> = ["jean.dupont", "jean.dupont2", "jean.dupont4"].into();
        let free = first_free_login("jean.dupont", |l| taken.contains(l.as_str())).unwrap();
        assert_eq!(free.as_str(), "jean.dupont3");
        let free = first_free_login("marie.curie", |l| taken.contains(l.as_str())).unwrap();
        assert_eq!(free.as_str(), "marie.curie");
    }

    #[test]
    fn email_patterns_follow_the_affiliation() {
        let by_aff = BTreeMap::from([
            (Affiliation::Student, "{login}@etu.uca.example".to_owned()),
            (Affiliation::Parent, String::new()),
        ]);
        let patterns = EmailPatterns::new("{login}@uca.example", &by_aff).unwrap();
        let login = LoginName::parse("jean.dupont2").unwrap();
        let render = |a| patterns.render(a, &login).map(String::from);
        assert_eq!(
            render(Affiliation::Staff).as_deref(),
            Some("jean.dupont2@uca.example")
        );
        assert_eq!(
            render(Affiliation::Student).as_deref(),
            Some("jean.dupont2@etu.uca.example")
        );
        assert_eq!(render(Affiliation::Parent), None);
        assert!(EmailPatterns::new("", &BTreeMap::new())
            .unwrap()
            .render(Affiliation::Staff, &login)
            .is_none());
    }

    #[test]
    fn bad_email_patterns_are_refused() {
        for bad in [
            "univ.example.org",
            "{login}",
            "{login}@localhost",
            "a b{login}@x.org",
        ] {
            assert!(EmailPattern::parse(bad).is_err(), "{bad}");
        }
        let by_aff = BTreeMap::from([(Affiliation::Pupil, "nope".to_owned())]);
        let err = EmailPatterns::new("{login}@x.org", &by_aff).unwrap_err();
        assert!(err.starts_with("pupil:"), "{err}");
    }

    proptest! {
        #[test]
        fn every_generated_login_is_a_valid_folded_login(given in "\\PC{0,40}", family in "\\PC{0,40}", n in 1u32..500) {
            if let Ok(base) = base_login(&given, &family) {
                let login = numbered_login(&base, n);
                prop_assert!(login.is_some(), "{base}");
                let login = login.unwrap();
                // Already folded: parsing changes nothing.
                let reparsed = LoginName::parse(login.as_str()).unwrap();
                prop_assert_eq!(login.as_str(), reparsed.as_str());
                prop_assert!(login.as_str().chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'));
                prop_assert_eq!(login.as_str().matches('.').count(), 1);
                prop_assert!(!login.as_str().starts_with('-') && !login.as_str().contains("-.") && !login.as_str().contains(".-"));
            }
        }

        #[test]
        fn folding_is_idempotent(name in "\\PC{0,40}") {
            let once = fold_name(&name);
            prop_assert_eq!(fold_name(&once), once.clone());
        }
    }
}
