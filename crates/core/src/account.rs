//! Accounts and their states.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::ids::{AccountId, Affiliation, Email, HrId, IdentifierError, LoginName, MobilePhone};
use crate::national_id::NationalIdHash;

/// Where an account is in its life. Only `Active` accounts can log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    /// Created from HR or by an operator, not yet activated: cannot log in.
    Provisioned,
    /// In use.
    Active,
    /// Blocked by the helpdesk (compromise, abuse) until unblocked: cannot log in.
    Blocked,
    /// The person left the institution: cannot log in; deleted after the retention period.
    Disabled,
}

impl AccountState {
    /// The lowercase name used in storage and CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioned => "provisioned",
            Self::Active => "active",
            Self::Blocked => "blocked",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountState {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "provisioned" => Ok(Self::Provisioned),
            "active" => Ok(Self::Active),
            "blocked" => Ok(Self::Blocked),
            "disabled" => Ok(Self::Disabled),
            _ => Err(IdentifierError::Unknown(
                "provisioned, active, blocked, disabled",
            )),
        }
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Stable identifier (the OIDC `sub`).
    pub id: AccountId,
    /// Login, folded.
    pub login: LoginName,
    /// Institutional e-mail, if any.
    pub email: Option<Email>,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Affiliation.
    pub affiliation: Affiliation,
    /// Lifecycle state.
    pub state: AccountState,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What is needed to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Login, folded.
    pub login: LoginName,
    /// Institutional e-mail.
    pub email: Option<Email>,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Affiliation.
    pub affiliation: Affiliation,
    /// Initial state.
    pub state: AccountState,
}

/// An account together with its password hash, as the login procedure needs them.
#[derive(Debug, Clone)]
pub struct AccountCredential {
    /// The account.
    pub account: Account,
    /// Its argon2 PHC string, if a password was ever set.
    pub password_hash: Option<String>,
}

/// A contact address (recovery e-mail, mobile) and whether its owner proved they receive at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact<T> {
    /// The address or number.
    pub address: T,
    /// Proven by a link or code sent to it, or entered by an operator.
    pub verified: bool,
}

impl<T> Contact<T> {
    /// A contact not yet proven.
    pub fn unverified(address: T) -> Self {
        Self {
            address,
            verified: false,
        }
    }

    /// A proven contact.
    pub fn verified(address: T) -> Self {
        Self {
            address,
            verified: true,
        }
    }
}

/// Which version of the IT charter a person accepted, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharterAcceptance {
    /// The charter version (as configured, e.g. `2026-09`).
    pub version: String,
    /// When it was accepted.
    pub accepted_at: OffsetDateTime,
}

/// Where a person's institutional mail is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRedirect {
    /// The outside address.
    pub address: Email,
    /// Proven by a link sent to it (or equal to the verified recovery address).
    pub verified: bool,
    /// Keep a copy in the institutional mailbox too.
    pub keep_copy: bool,
}

/// What Sesame knows about the person behind an account besides its login and names: the HR
/// link, identity-check data, recovery contacts and the choices made at activation.
///
/// Stored beside the account (see `docs/lifecycle.md`); an account created by an operator
/// starts with an empty profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountProfile {
    /// Identifier in the HR or student system; unique when present.
    pub hr_id: Option<HrId>,
    /// Birth date.
    pub birth_date: Option<Date>,
    /// Keyed hash of the national ID number (never the number).
    pub national_id: Option<NationalIdHash>,
    /// Personal e-mail for recovery.
    pub recovery_email: Option<Contact<Email>>,
    /// Mobile phone for recovery.
    pub mobile: Option<Contact<MobilePhone>>,
    /// The IT charter accepted last.
    pub charter: Option<CharterAcceptance>,
    /// Listed in the public directory.
    pub directory_opt_in: bool,
    /// Forwarding of institutional mail.
    pub mail_redirect: Option<MailRedirect>,
}

/// An account and its profile, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountWithProfile {
    /// The account.
    pub account: Account,
    /// Its profile.
    pub profile: AccountProfile,
}

/// A change to an account's names, affiliation or profile: each `Some` field is written,
/// each `None` left as it is. For the fields that can be removed, `Some(None)` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChanges {
    /// New given name.
    pub given_name: Option<String>,
    /// New family name.
    pub family_name: Option<String>,
    /// New affiliation.
    pub affiliation: Option<Affiliation>,
    /// New HR identifier.
    pub hr_id: Option<HrId>,
    /// New birth date.
    pub birth_date: Option<Date>,
    /// New national ID hash.
    pub national_id: Option<NationalIdHash>,
    /// New (or no) recovery e-mail.
    pub recovery_email: Option<Option<Contact<Email>>>,
    /// New (or no) mobile.
    pub mobile: Option<Option<Contact<MobilePhone>>>,
    /// A charter acceptance.
    pub charter: Option<CharterAcceptance>,
    /// The directory choice.
    pub directory_opt_in: Option<bool>,
    /// New (or no) mail redirect.
    pub mail_redirect: Option<Option<MailRedirect>>,
}

impl AccountChanges {
    /// The names of the fields this change writes, in a stable order (for audit details and
    /// reports; never the values).
    pub fn field_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut push = |set: bool, name: &'static str| {
            if set {
                names.push(name);
            }
        };
        push(self.given_name.is_some(), "given_name");
        push(self.family_name.is_some(), "family_name");
        push(self.affiliation.is_some(), "affiliation");
        push(self.hr_id.is_some(), "hr_id");
        push(self.birth_date.is_some(), "birth_date");
        push(self.national_id.is_some(), "national_id");
        push(self.recovery_email.is_some(), "recovery_email");
        push(self.mobile.is_some(), "mobile");
        push(self.charter.is_some(), "charter");
        push(self.directory_opt_in.is_some(), "directory_opt_in");
        push(self.mail_redirect.is_some(), "mail_redirect");
        names
    }

    /// Whether nothing would be written.
    pub fn is_empty(&self) -> bool {
        self.field_names().is_empty()
    }
}
