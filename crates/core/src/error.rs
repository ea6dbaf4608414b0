//! Errors of the authentication core.
//!
//! Policy: variants name what a caller can act on (show the generic login error, show when a
//! lock ends, answer 503 and retry). Storage faults are carried as [`StoreError`] /
//! [`RepoError`] and always end the operation: Sesame fails closed, it never treats an
//! unreachable store as "no lock" or "ticket valid".

use time::OffsetDateTime;

use crate::credentials::policy::PolicyViolation;
use crate::ids::IdentifierKind;

/// A fault of the ticket/session/counter store (in-process or Redis).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time.
    #[error("the ticket/session store is unavailable: {0}")]
    Unavailable(String),
    /// The store answered something Sesame did not write.
    #[error("the ticket/session store returned corrupt data: {0}")]
    Corrupt(String),
}

/// A fault of the account database.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    /// A unique key (login, e-mail) is already taken.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// The database could not be reached or failed.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be read back into the domain model.
    #[error("the database holds an unreadable row: {0}")]
    Corrupt(String),
}

/// Why a login did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown login or wrong password: one answer for both.
    #[error("invalid credentials")]
    InvalidCredentials {
        /// Failures left before the counter this attempt counted on locks, when they are
        /// few enough to warn about (the same for known and unknown logins).
        attempts_left: Option<u32>,
    },
    /// The "password" is the unused activation code of an account waiting for its
    /// activation (the ENT 77 guide has people type it there): not a failure, nothing
    /// counted; the person goes on to the activation.
    #[error("activation code typed as the password")]
    ActivationCode,
    /// The login is temporarily locked after repeated failures.
    #[error("login temporarily locked until {until}")]
    Locked {
        /// When attempts will be accepted again.
        until: OffsetDateTime,
    },
    /// The client address sent too many failures.
    #[error("too many failed attempts from this address")]
    Throttled {
        /// When attempts will be accepted again.
        until: OffsetDateTime,
    },
    /// Correct password, but the account is blocked by the helpdesk.
    #[error("account blocked")]
    Blocked,
    /// Correct password, but the account is disabled or not activated.
    #[error("account not usable")]
    Disabled,
    /// Too many logins are already waiting for the hashing pool.
    #[error("password hashing pool saturated")]
    Busy,
    /// The password was refused before any hashing (longer than the hard cap).
    #[error("password longer than the accepted maximum")]
    PasswordTooLong,
    /// The counters/session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Hashing failed unexpectedly (malformed stored hash, worker panic).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Why a new password or account could not be set.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The password breaks one or more rules of the policy.
    #[error("the password does not meet the policy")]
    Policy(Vec<PolicyViolation>),
    /// No such account.
    #[error("no such account")]
    NotFound,
    /// The login or e-mail is already taken.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The login (or e-mail) asked for is another account's e-mail (or login): the login
    /// page takes either in one field, so they share one namespace.
    #[error("the {field} is already the {held_as} of another account (logins and e-mails are typed in the same field of the login page)")]
    IdentifierTaken {
        /// The field of the request.
        field: IdentifierKind,
        /// What the string is to the account that holds it.
        held_as: IdentifierKind,
    },
    /// The transition is not allowed from the current state.
    #[error("cannot go from {from} to {to}")]
    BadTransition {
        /// Current state.
        from: &'static str,
        /// Requested state.
        to: &'static str,
    },
    /// Too many hashes are already waiting.
    #[error("password hashing pool saturated")]
    Busy,
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Storage failed.
    #[error(transparent)]
    Repo(RepoError),
    /// Store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RepoError> for AccountError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => Self::NotFound,
            RepoError::Conflict(what) => Self::Conflict(what),
            other => Self::Repo(other),
        }
    }
}

/// Why a mail could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A template of the mail's kind failed to render (a broken theme template).
    #[error("mail template {template}: {reason}")]
    Template {
        /// The template's name.
        template: String,
        /// What went wrong.
        reason: String,
    },
    /// The queue (the database) failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}
