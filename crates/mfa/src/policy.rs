//! Who is asked for a second factor (`[mfa]` in the configuration).
//!
//! Per affiliation, a second factor is `required`, `optional` or `off` (ANSSI's guidance on
//! authentication and the REFEDS MFA profile expect it of staff; pupils cannot be asked).
//! A person who must enrol gets a grace period (a number of logins, a date, or both: it ends
//! at the first reached) with a reminder at each login, then cannot log in anywhere until
//! enrolled. Whoever enrolled a factor is always asked for it: a factor that could be skipped
//! would protect nothing. An application can demand a second factor for its own logins
//! whatever the affiliation says; a session with only the password is then stepped up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sesame_core::ids::Affiliation;
use time::Date;

/// What the policy says of one affiliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaRequirement {
    /// Neither offered nor asked.
    Off,
    /// Offered on the account page; asked once enrolled.
    Optional,
    /// Must be enrolled (after the grace period) and is asked at every login.
    Required,
}

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// How long a person who must enrol may still log in without a factor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrolmentGrace {
    /// Logins allowed without a factor once it is required.
    pub logins: Option<u32>,
    /// Last day such logins are allowed (`"2027-01-31"`).
    #[serde(with = "iso_date::option")]
    pub until: Option<Date>,
}

/// `[mfa]`: the requirement per affiliation and the grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaPolicy {
    /// The requirement of each affiliation; an affiliation not listed is `optional`.
    pub affiliations: BTreeMap<Affiliation, MfaRequirement>,
    /// The grace period of people who must enrol.
    pub grace: EnrolmentGrace,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        Self {
            affiliations: BTreeMap::from([
                (Affiliation::Staff, MfaRequirement::Optional),
                (Affiliation::Faculty, MfaRequirement::Optional),
                (Affiliation::Student, MfaRequirement::Optional),
                (Affiliation::Affiliate, MfaRequirement::Optional),
                (Affiliation::Parent, MfaRequirement::Optional),
                (Affiliation::Pupil, MfaRequirement::Off),
            ]),
            grace: EnrolmentGrace {
                logins: Some(5),
                until: None,
            },
        }
    }
}

/// What a person's factors are, as the policy needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactorState {
    /// At least one confirmed second factor.
    pub enrolled: bool,
    /// Logins completed without a factor since the factor became required.
    pub logins_without_factor: u32,
}

/// What the login does about a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaDecision {
    /// Nothing: no factor asked or offered.
    NotAsked,
    /// No factor enrolled, none needed: the account page offers one.
    MayEnrol,
    /// Required but not enrolled, still within the grace period: the login goes on with a
    /// reminder saying how long is left.
    EnrolSoon {
        /// Logins left without a factor, if counted.
        logins_left: Option<u32>,
        /// Last day, if dated.
        until: Option<Date>,
    },
    /// Required (by the affiliation after the grace period, or by the application) and not
    /// enrolled: the person enrols before anything is issued.
    MustEnrol,
    /// Enrolled: the second factor is asked.
    Challenge,
}

impl MfaPolicy {
    /// Whether any affiliation requires a second factor (if none does, nobody need be read).
    pub fn any_required(&self) -> bool {
        self.affiliations
            .values()
            .any(|r| *r == MfaRequirement::Required)
    }

    /// The strictest requirement among a person's affiliations.
    pub fn requirement(&self, affiliations: &[Affiliation]) -> MfaRequirement {
        affiliations
            .iter()
            .map(|a| {
                self.affiliations
                    .get(a)
                    .copied()
                    .unwrap_or(MfaRequirement::Optional)
            })
            .max()
            .unwrap_or(MfaRequirement::Optional)
    }

    /// What this login does: for a person of `affiliations` whose factors are `state`, on
    /// `today`, for an application that does or does not demand a second factor.
    pub fn decide(
        &self,
        affiliations: &[Affiliation],
        state: FactorState,
        today: Date,
        application_requires_mfa: bool,
    ) -> MfaDecision {
        if state.enrolled {
            return MfaDecision::Challenge;
        }
        if application_requires_mfa {
            return MfaDecision::MustEnrol;
        }
        match self.requirement(affiliations) {
            MfaRequirement::Off => MfaDecision::NotAsked,
            MfaRequirement::Optional => MfaDecision::MayEnrol,
            MfaRequirement::Required => self.grace_left(state.logins_without_factor, today),
        }
    }

    fn grace_left(&self, used: u32, today: Date) -> MfaDecision {
        let EnrolmentGrace { logins, until } = self.grace;
        if logins.is_none() && until.is_none() {
            return MfaDecision::MustEnrol;
        }
        let logins_left = logins.map(|n| n.saturating_sub(used));
        let out_of_logins = logins_left == Some(0);
        let out_of_days = until.is_some_and(|last| today > last);
        if out_of_logins || out_of_days {
            MfaDecision::MustEnrol
        } else {
            MfaDecision::EnrolSoon { logins_left, until }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 12 - 06);

    fn state(enrolled: bool, used: u32) -> FactorState {
        FactorState {
            enrolled,
            logins_without_factor: used,
        }
    }

    #[test]
    fn by_default_pupils_are_never_asked_and_everyone_else_may_enrol() {
        let p = MfaPolicy::default();
        assert_eq!(
            p.decide(&[Affiliation::Pupil], state(false, 0), TODAY, false),
            MfaDecision::NotAsked
        );
        for a in [
            Affiliation::Staff,
            Affiliation::Faculty,
            Affiliation::Student,
            Affiliation::Parent,
            Affiliation::Affiliate,
        ] {
            assert_eq!(
                p.decide(&[a], state(false, 0), TODAY, false),
                MfaDecision::MayEnrol,
                "{a:?}"
            );
        }
    }

    #[test]
    fn whoever_enrolled_is_asked_whatever_the_policy() {
        let p = MfaPolicy::default();
        for a in [Affiliation::Pupil, Affiliation::Student] {
            assert_eq!(
                p.decide(&[a], state(true, 0), TODAY, false),
                MfaDecision::Challenge
            );
        }
    }

    #[test]
    fn a_required_factor_counts_down_the_logins_then_must_be_enrolled() {
        let mut p = MfaPolicy::default();
        p.affiliations
            .insert(Affiliation::Staff, MfaRequirement::Required);
        p.grace = EnrolmentGrace {
            logins: Some(3),
            until: None,
        };
        let staff = [Affiliation::Staff];
        assert_eq!(
            p.decide(&staff, state(false, 0), TODAY, false),
            MfaDecision::EnrolSoon {
                logins_left: Some(3),
                until: None
            }
        );
        assert_eq!(
            p.decide(&staff, state(false, 2), TODAY, false),
            MfaDecision::EnrolSoon {
                logins_left: Some(1),
                until: None
            }
        );
        assert_eq!(
            p.decide(&staff, state(false, 3), TODAY, false),
            MfaDecision::MustEnrol
        );
    }

    #[test]
    fn a_dated_grace_ends_after_its_last_day_and_the_first_limit_reached_wins() {
        let mut p = MfaPolicy::default();
        p.affiliations
            .insert(Affiliation::Faculty, MfaRequirement::Required);
        p.grace = EnrolmentGrace {
            logins: Some(10),
            until: Some(TODAY),
        };
        let faculty = [Affiliation::Faculty];
        assert!(matches!(
            p.decide(&faculty, state(false, 0), TODAY, false),
            MfaDecision::EnrolSoon { .. }
        ));
        assert_eq!(
            p.decide(&faculty, state(false, 0), date!(2026 - 12 - 07), false),
            MfaDecision::MustEnrol
        );
        assert_eq!(
            p.decide(&faculty, state(false, 10), TODAY, false),
            MfaDecision::MustEnrol
        );
        p.grace = EnrolmentGrace::default();
        assert_eq!(
            p.decide(&faculty, state(false, 0), TODAY, false),
            MfaDecision::MustEnrol,
            "no grace configured"
        );
    }

    #[test]
    fn the_strictest_affiliation_applies_and_an_application_can_demand_a_factor() {
        let mut p = MfaPolicy::default();
        p.affiliations
            .insert(Affiliation::Faculty, MfaRequirement::Required);
        p.grace = EnrolmentGrace::default();
        assert_eq!(
            p.requirement(&[Affiliation::Student, Affiliation::Faculty]),
            MfaRequirement::Required
        );
        assert_eq!(p.requirement(&[]), MfaRequirement::Optional);
        assert_eq!(
            p.decide(&[Affiliation::Student], state(false, 0), TODAY, true),
            MfaDecision::MustEnrol
        );
    }

    #[test]
    fn the_policy_reads_from_the_configuration() {
        let p: MfaPolicy = toml_like(
            r#"{"affiliations": {"staff": "required", "pupil": "off"},
                "grace": {"logins": 3, "until": "2027-01-31"}}"#,
        );
        assert_eq!(
            p.affiliations[&Affiliation::Staff],
            MfaRequirement::Required
        );
        assert_eq!(p.grace.logins, Some(3));
        assert_eq!(p.grace.until, Some(date!(2027 - 01 - 31)));
    }

    fn toml_like(json: &str) -> MfaPolicy {
        serde_json::from_str(json).unwrap()
    }
}
