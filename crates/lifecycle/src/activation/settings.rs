//! How activation is configured: `[lifecycle.activation]` and `[lifecycle.charter]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sesame_core::ids::Affiliation;

/// A way to prove who one is before activating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationPath {
    /// HR or student number, national ID, birth date, personal e-mail.
    Identity,
    /// Login plus a one-time code handed out by the school.
    Code,
    /// A link mailed to the recovery address at provisioning (and on request).
    EmailLink,
}

/// `[lifecycle.activation]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivationPolicy {
    /// The paths open to each affiliation; an affiliation not listed can use none.
    pub paths: BTreeMap<Affiliation, Vec<ActivationPath>>,
    /// How long a code of `sesame activation-codes` stays valid, in days.
    pub code_ttl_days: u32,
    /// How long an activation in progress waits between two steps, in seconds.
    pub flow_ttl_secs: u64,
    /// Wrong identity checks or codes allowed per identifier (HR number, login) from one
    /// client address (an IPv6 one by its /64) within `failure_window_secs`; the next ones
    /// from that address are refused until the window ends. Other addresses are not.
    pub max_failures_per_identifier: u32,
    /// The same per identifier and address over a day.
    pub max_daily_failures_per_identifier_and_address: u32,
    /// Wrong identity checks or codes allowed per identifier from all addresses together
    /// over a day: the ceiling on distributed guessing, past which the identifier is refused
    /// to everybody until the day ends.
    pub max_daily_failures_per_identifier: u32,
    /// Wrong identity checks or codes allowed per client address, whatever the identifier,
    /// within the window.
    pub max_failures_per_ip: u32,
    /// The window of the per-identifier-and-address and per-address counts, in seconds.
    pub failure_window_secs: u64,
    /// Delay before answering the 2nd failure on one identifier from one address, in
    /// milliseconds; it doubles with each further failure, up to 4 s (0: none).
    pub failure_delay_ms: u64,
    /// Leading zero bits the proof of work of the identity form needs (each one doubles the
    /// work; 18 takes well under a second in a browser).
    pub challenge_bits: u32,
    /// Activation mails of each kind one account may be sent per day: links from the "first
    /// login" page and, counted apart, codes proving a recovery address typed during one.
    pub max_links_per_day: u32,
}

impl Default for ActivationPolicy {
    fn default() -> Self {
        let identity_or_link = vec![ActivationPath::Identity, ActivationPath::EmailLink];
        let paths = BTreeMap::from([
            (Affiliation::Staff, identity_or_link.clone()),
            (Affiliation::Faculty, identity_or_link.clone()),
            (Affiliation::Affiliate, identity_or_link.clone()),
            (Affiliation::Student, identity_or_link),
            (Affiliation::Pupil, vec![ActivationPath::Code]),
            (Affiliation::Parent, vec![ActivationPath::Code]),
        ]);
        Self {
            paths,
            code_ttl_days: 60,
            flow_ttl_secs: 1800,
            max_failures_per_identifier: 5,
            max_daily_failures_per_identifier_and_address: 10,
            max_daily_failures_per_identifier: 100,
            max_failures_per_ip: 30,
            failure_window_secs: 3600,
            failure_delay_ms: 500,
            challenge_bits: 18,
            max_links_per_day: 5,
        }
    }
}

impl ActivationPolicy {
    /// Whether `affiliation` may activate by `path`.
    pub fn allows(&self, affiliation: Affiliation, path: ActivationPath) -> bool {
        self.paths
            .get(&affiliation)
            .is_some_and(|p| p.contains(&path))
    }

    /// Checks the values; the message names the key.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.code_ttl_days == 0 || self.code_ttl_days > 366 {
            return Err("code_ttl_days: between 1 and 366".to_owned());
        }
        if !(60..=86_400).contains(&self.flow_ttl_secs) {
            return Err("flow_ttl_secs: between 60 and 86400".to_owned());
        }
        for (name, max) in [
            (
                "max_failures_per_identifier",
                self.max_failures_per_identifier,
            ),
            (
                "max_daily_failures_per_identifier_and_address",
                self.max_daily_failures_per_identifier_and_address,
            ),
            (
                "max_daily_failures_per_identifier",
                self.max_daily_failures_per_identifier,
            ),
            ("max_failures_per_ip", self.max_failures_per_ip),
        ] {
            if max == 0 {
                return Err(format!("{name}: at least 1"));
            }
        }
        if self.max_daily_failures_per_identifier
            < self.max_daily_failures_per_identifier_and_address
        {
            return Err("max_daily_failures_per_identifier: at least max_daily_failures_per_identifier_and_address (else one address alone could block a person)".to_owned());
        }
        if self.failure_delay_ms > 4000 {
            return Err("failure_delay_ms: at most 4000".to_owned());
        }
        if self.failure_window_secs == 0 {
            return Err("failure_window_secs: at least 1".to_owned());
        }
        if self.challenge_bits > 28 {
            return Err("challenge_bits: at most 28".to_owned());
        }
        Ok(())
    }
}

/// `[lifecycle.charter]`: the IT charter every person accepts at activation, and again when
/// its version changes. None by default: an institution that has one sets its version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CharterPolicy {
    /// The version in force (any text, e.g. `2026-09`); empty: no charter step at all.
    pub version: String,
    /// Where the full charter can be read (shown as a link); may be empty.
    pub url: String,
    /// The charter's text (or its summary), shown on the page; may be empty.
    pub text: String,
}

impl CharterPolicy {
    /// Whether an account that accepted `accepted` must accept the charter in force.
    pub fn is_pending(&self, accepted: Option<&str>) -> bool {
        !self.version.is_empty() && accepted != Some(self.version.as_str())
    }
}
