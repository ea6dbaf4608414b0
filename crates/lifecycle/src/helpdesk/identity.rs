//! The helpdesk's identity check on the phone: the agent types what the caller says (birth
//! date, HR or student number, the last characters of the national ID, or the whole number)
//! and learns only whether it matches the account's record, never the record itself. The
//! comparison runs here, server-side; each one is an audit event (`helpdesk.identity_compared`,
//! the field and the answer, never a value), and an agent gets a few per account and hour, so
//! the console cannot be used to guess a birth date or the end of a national ID.

use std::time::Duration;

use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::ids::{HrId, LoginName};
use sesame_core::national_id::NationalId;
use sesame_core::random;
use time::OffsetDateTime;

use super::{Helpdesk, HelpdeskError};

/// Comparisons one agent may make on one account within [`COMPARE_WINDOW`].
pub const MAX_COMPARISONS: u32 = 10;
/// The window of [`MAX_COMPARISONS`].
pub const COMPARE_WINDOW: Duration = Duration::from_secs(3600);

/// What the caller's answer is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityField {
    /// The birth date (`dd-mm-yyyy` and the import's other forms).
    BirthDate,
    /// The HR or student number.
    HrId,
    /// The last four characters of the national ID.
    NationalIdEnd,
    /// The whole national ID.
    NationalId,
}

impl IdentityField {
    /// Stable name, as posted by the console and written to the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BirthDate => "birth_date",
            Self::HrId => "hr_id",
            Self::NationalIdEnd => "national_id_end",
            Self::NationalId => "national_id",
        }
    }

    /// Every field, in the order the console offers them.
    pub const ALL: [Self; 4] = [
        Self::BirthDate,
        Self::HrId,
        Self::NationalIdEnd,
        Self::NationalId,
    ];
}

impl std::str::FromStr for IdentityField {
    type Err = HelpdeskError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or(HelpdeskError::BadComparison)
    }
}

/// The answer to a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// What the caller said is what the record holds.
    Match,
    /// It is not.
    NoMatch,
    /// The record holds nothing to compare with (not imported, or the national ID's end was
    /// not kept yet): ask something else.
    NotOnFile,
    /// What was typed cannot be that field (not a date, not four letters or digits…): nothing
    /// was compared or counted.
    Unreadable,
}

impl Comparison {
    /// Stable name, for the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::NoMatch => "no_match",
            Self::NotOnFile => "not_on_file",
            Self::Unreadable => "unreadable",
        }
    }
}

fn compare_key(actor: &str, account: &str) -> String {
    format!("helpdesk-compare:{}:{account}", random::sha256_hex(actor))
}

impl Helpdesk {
    /// Compares what a caller said (`typed`) with `field` of the account `login`'s record, for
    /// the agent `actor`.
    ///
    /// # Errors
    /// [`HelpdeskError::Account`] (`NotFound`), [`HelpdeskError::TooManyComparisons`] past
    /// [`MAX_COMPARISONS`] for this agent and account, storage errors.
    pub async fn compare_identity(
        &self,
        login: &LoginName,
        field: IdentityField,
        typed: &str,
        actor: &str,
    ) -> Result<Comparison, HelpdeskError> {
        let account = self.parts.accounts.get(login).await?;
        let profile = self
            .parts
            .profiles
            .find_with_profile(account.id)
            .await?
            .map(|found| found.profile)
            .unwrap_or_default();
        let typed = typed.trim();
        let key = self.parts.national_id_key.as_ref();
        // What the record holds, and whether the typed text can be compared with it.
        let outcome = match field {
            IdentityField::BirthDate => match crate::import::read::parse_date(typed) {
                None => Comparison::Unreadable,
                Some(said) => match profile.birth_date {
                    None => Comparison::NotOnFile,
                    Some(on_file) => verdict(said == on_file),
                },
            },
            IdentityField::HrId => match HrId::parse(typed) {
                Err(_) => Comparison::Unreadable,
                Ok(said) => match &profile.hr_id {
                    None => Comparison::NotOnFile,
                    Some(on_file) => {
                        verdict(random::constant_time_eq(said.as_str(), on_file.as_str()))
                    }
                },
            },
            IdentityField::NationalIdEnd => match (&profile.national_id, key) {
                (Some(stored), Some(key)) if stored.has_end() => key
                    .matches_end(typed, stored)
                    .map_or(Comparison::Unreadable, verdict),
                _ => Comparison::NotOnFile,
            },
            IdentityField::NationalId => match NationalId::parse(typed) {
                Err(_) => Comparison::Unreadable,
                Ok(said) => match (&profile.national_id, key) {
                    (Some(stored), Some(key)) => verdict(key.matches(&said, stored)),
                    _ => Comparison::NotOnFile,
                },
            },
        };
        let now = self.parts.clock.now();
        if matches!(outcome, Comparison::Match | Comparison::NoMatch) {
            self.count_comparison(actor, &account.id.to_string(), now)
                .await?;
        }
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::IdentityCompared, now, actor)
                    .login(account.login.as_str())
                    .account(account.id)
                    .detail(serde_json::json!({
                        "field": field.as_str(),
                        "outcome": outcome.as_str(),
                    })),
            )
            .await?;
        Ok(outcome)
    }

    /// Counts one comparison of `actor` on `account`, refusing it past the allowance.
    async fn count_comparison(
        &self,
        actor: &str,
        account: &str,
        now: OffsetDateTime,
    ) -> Result<(), HelpdeskError> {
        let key = compare_key(actor, account);
        let store = &self.parts.store;
        let reservation = store.reserve_attempt(&key, now, COMPARE_WINDOW).await?;
        if let Some(until) = reservation.locked_until {
            return Err(HelpdeskError::TooManyComparisons { until });
        }
        if reservation.attempt > MAX_COMPARISONS {
            let until = now + COMPARE_WINDOW;
            store.lock_attempts(&key, until, now).await?;
            return Err(HelpdeskError::TooManyComparisons { until });
        }
        Ok(())
    }
}

fn verdict(matched: bool) -> Comparison {
    if matched {
        Comparison::Match
    } else {
        Comparison::NoMatch
    }
}
