//! Accounts and their states.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{AccountId, Affiliation, Email, IdentifierError, LoginName};

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
