//! Forgotten password: a reset link to the verified recovery address, a 6-digit code by SMS
//! to the verified mobile, or a one-time code a helpdesk agent gives after checking identity
//! ([`helpdesk_codes`]), then a new password (security spec A48–A51, C07, F15, F16).
//!
//! The flow is a state machine whose only way into the "new password" step is a verified
//! one-time token: the link's token, or the token a correct SMS or helpdesk code (or, where
//! configured, a passed identity check) is exchanged for. The
//! tokens and codes live in the ephemeral store, keyed by their SHA-256, and are consumed
//! with the store's atomic *take*, so of any number of parallel submissions exactly one
//! wins. A request gets the same answer whether or not the account exists, and the mail or
//! SMS is queued, never sent while the person waits.

pub mod codes;
pub mod helpdesk_codes;
pub mod links;
pub mod reset;

use std::time::Duration;

use sesame_core::credentials::policy::PolicyViolation;
use sesame_core::error::{AccountError, AuthError, MailError, RepoError, StoreError};

/// Longest life of a reset link (NIST SP 800-63B: recovery codes sent by mail, 24 hours).
pub const MAX_LINK_TTL: Duration = Duration::from_secs(24 * 3600);

/// Lifetimes, tries and sending budgets of recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPolicy {
    /// How long a reset (or address verification) link is valid.
    pub link_ttl: Duration,
    /// How long an SMS code is valid.
    pub sms_code_ttl: Duration,
    /// Wrong codes allowed before a code is invalidated.
    pub sms_max_tries: u32,
    /// SMS sent to one number per 24 hours, at most.
    pub sms_per_number_per_day: u32,
    /// SMS sent for one account per 24 hours, at most.
    pub sms_per_account_per_day: u32,
    /// How long a helpdesk reset code is valid.
    pub helpdesk_code_ttl: Duration,
    /// Wrong helpdesk codes allowed for one account before its code is invalidated.
    pub helpdesk_code_max_tries: u32,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        Self {
            link_ttl: Duration::from_secs(3600),
            sms_code_ttl: Duration::from_secs(600),
            sms_max_tries: 5,
            sms_per_number_per_day: 5,
            sms_per_account_per_day: 10,
            helpdesk_code_ttl: Duration::from_secs(1800),
            helpdesk_code_max_tries: 5,
        }
    }
}

impl RecoveryPolicy {
    /// Checks the values; the error names the field.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.link_ttl.is_zero() || self.link_ttl > MAX_LINK_TTL {
            return Err("link_ttl_secs must be between 1 and 86400 (24 hours)".to_owned());
        }
        if self.sms_code_ttl.is_zero() || self.sms_code_ttl > Duration::from_secs(3600) {
            return Err("sms_code_ttl_secs must be between 1 and 3600".to_owned());
        }
        if self.sms_max_tries == 0 || self.sms_max_tries > 10 {
            return Err("sms_max_tries must be between 1 and 10".to_owned());
        }
        // Read out on the phone and typed at once: short-lived, like the codes of A50.
        if self.helpdesk_code_ttl < Duration::from_secs(60)
            || self.helpdesk_code_ttl > Duration::from_secs(86_400)
        {
            return Err("helpdesk_code_ttl_secs must be between 60 and 86400".to_owned());
        }
        if self.helpdesk_code_max_tries == 0 || self.helpdesk_code_max_tries > 10 {
            return Err("helpdesk_code_max_tries must be between 1 and 10".to_owned());
        }
        Ok(())
    }
}

/// Why a link or code was refused. People see one generic message for all of them; the
/// reason goes to the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Never issued, already used, or invalidated.
    Unknown,
    /// Past its lifetime.
    Expired,
    /// A newer link or code was issued for the same account and purpose.
    Superseded,
    /// A wrong SMS or helpdesk code.
    WrongCode,
    /// Too many wrong codes: the code is invalidated.
    TooManyTries,
}

impl Refusal {
    /// Stable name for the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
            Self::WrongCode => "wrong_code",
            Self::TooManyTries => "too_many_tries",
        }
    }
}

/// Why a recovery or self-service step failed.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The link, token or code is not (or no longer) valid.
    #[error("refused: {}", .0.as_str())]
    Refused(Refusal),
    /// The new password breaks the policy (nothing was consumed).
    #[error("the password does not meet the policy")]
    Policy(Vec<PolicyViolation>),
    /// The two new passwords differ.
    #[error("the two passwords differ")]
    Mismatch,
    /// The current password is wrong (counted toward lockout).
    #[error("wrong current password")]
    WrongPassword,
    /// The account is locked or throttled.
    #[error("locked")]
    Locked(AuthError),
    /// An address or number that does not parse.
    #[error("invalid address")]
    InvalidAddress,
    /// Too many hashes waiting.
    #[error("password hashing pool saturated")]
    Busy,
    /// An account operation failed.
    #[error(transparent)]
    Account(AccountError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A mail could not be queued.
    #[error(transparent)]
    Mail(#[from] MailError),
}

impl From<AccountError> for RecoveryError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Policy(v) => Self::Policy(v),
            AccountError::Busy => Self::Busy,
            AccountError::Store(e) => Self::Store(e),
            other => Self::Account(other),
        }
    }
}

impl From<AuthError> for RecoveryError {
    fn from(e: AuthError) -> Self {
        match e {
            // A provisioned account has no session to change a password from: an activation
            // code cannot reach here, and would be a wrong password anyway.
            AuthError::InvalidCredentials { .. } | AuthError::ActivationCode => Self::WrongPassword,
            AuthError::Busy => Self::Busy,
            AuthError::Store(e) => Self::Store(e),
            AuthError::Repo(e) => Self::Repo(e),
            other => Self::Locked(other),
        }
    }
}
