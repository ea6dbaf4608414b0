//! Errors of activation.
//!
//! Policy: every way an identity check, code or link can fail that would tell an attacker
//! something (unknown person, wrong birth date, used code, expired link) is one variant with
//! one generic message; the variants that remain are what the person can act on (the two
//! addresses differ, retry after a time, the form has expired, the account is already
//! active). Storage faults are [`ActivationError::Unavailable`]: the page says "try again".

use sesame_core::credentials::policy::PolicyViolation;
use sesame_core::error::{AccountError, MailError, RepoError, StoreError};
use time::OffsetDateTime;

/// Why an activation step did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// The identity does not match anybody (or this path is not open to them): one answer
    /// for every mismatch.
    #[error("the information does not match")]
    Mismatch,
    /// The personal address and its confirmation differ.
    #[error("the two addresses differ")]
    EmailsDiffer,
    /// The anti-automation challenge was missing, used, expired or wrong.
    #[error("the challenge was not solved")]
    ChallengeFailed,
    /// Too many failures from this address or for this identifier.
    #[error("too many attempts until {until}")]
    Throttled {
        /// When attempts are accepted again.
        until: OffsetDateTime,
    },
    /// The account is already active: shows its login.
    #[error("the account is already active")]
    AlreadyActive {
        /// Its login.
        login: String,
    },
    /// The code is unknown, used, expired, or not this login's.
    #[error("invalid activation code")]
    InvalidCode,
    /// The link is unknown, used, replaced or expired.
    #[error("invalid activation link")]
    InvalidLink,
    /// The flow id is unknown, used or expired (a replayed or stale form).
    #[error("the activation form has expired")]
    FlowExpired,
    /// The form posted is not the flow's current step.
    #[error("this step is not the current one")]
    WrongStep,
    /// The new password breaks the policy.
    #[error("the password does not meet the policy")]
    Policy(Vec<PolicyViolation>),
    /// The database, store or mail queue failed.
    #[error("activation is unavailable: {0}")]
    Unavailable(String),
}

impl From<RepoError> for ActivationError {
    fn from(e: RepoError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<StoreError> for ActivationError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<MailError> for ActivationError {
    fn from(e: MailError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<AccountError> for ActivationError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Policy(v) => Self::Policy(v),
            AccountError::NotFound => Self::Mismatch,
            other => Self::Unavailable(other.to_string()),
        }
    }
}
