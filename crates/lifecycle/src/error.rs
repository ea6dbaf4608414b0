//! Errors of the lifecycle crate.
//!
//! Policy: a problem with one line of a provisioning file is not an error but a
//! [`Rejection`](crate::import::read::Rejection) in the report, so the rest of the file still
//! goes in. [`ImportError`] is for what stops a whole import: a file that cannot be read as a
//! whole (its message says what to fix), or a storage failure (carried as the core's
//! [`RepoError`] / [`AccountError`], which the operator sees as is). No message repeats a
//! national ID number.

use sesame_core::account::{Account, AccountState};
use sesame_core::error::{AccountError, RepoError};
use sesame_core::ids::LoginName;
use sesame_core::ports::AccountRepo;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not UTF-8.
    #[error("the file is not UTF-8 (first bad byte at offset {offset}); export it as UTF-8")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The CSV file has no header line.
    #[error("the CSV file has no header line naming its columns")]
    NoHeader,
    /// The CSV file cannot be read.
    #[error("the CSV file cannot be read: {0}")]
    Csv(String),
    /// The JSON file is not an array.
    #[error("the JSON file is not an array of objects: {0}")]
    Json(String),
    /// Header names that are not known columns.
    #[error("unknown column(s): {} (known: hr_id, given_name, family_name, affiliation, birth_date, national_id, recovery_email, mobile)", .0.join(", "))]
    UnknownColumns(Vec<String>),
    /// Required columns absent from the header.
    #[error("missing column(s): {}", .0.join(", "))]
    MissingColumns(Vec<&'static str>),
    /// A column named twice.
    #[error("the column {0} appears twice")]
    DuplicateColumn(&'static str),
    /// National IDs in the file but no key to hash them.
    #[error("the file has national IDs but lifecycle.national_id_key is not set, so they cannot be kept; set it (see docs/lifecycle.md) or remove the column")]
    NationalIdKeyMissing,
    /// Every numbered variant of a login is taken.
    #[error("no free login for {0} (tried up to {0}{max})", max = crate::import::MAX_LOGIN_NUMBER)]
    NoFreeLogin(String),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// An account operation failed.
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// Why a link an operator asked for (a password-reset link, an activation link) was not
/// sent. Unlike the public forms, which answer the same whatever the account, an operator is
/// told exactly why, so they can fix it or tell the person.
#[derive(Debug, thiserror::Error)]
pub enum OperatorLinkError {
    /// No account has this login.
    #[error("no such account")]
    NoSuchAccount,
    /// The account's state does not allow this link (a reset needs an active account, an
    /// activation a provisioned one).
    #[error("the account is {state}; this link needs an account that is {needed}")]
    WrongState {
        /// The account's state.
        state: &'static str,
        /// The state the link needs.
        needed: &'static str,
    },
    /// The account has no recovery address to send the link to.
    #[error("the account has no recovery address to send the link to")]
    NoRecoveryAddress,
    /// The recovery address was never verified: a reset link is a password, and an address
    /// nobody proved to be the person's (typed by a provisioning system, say) is not where
    /// one may go.
    #[error(
        "the account's recovery address is not verified; a reset link goes only to a verified one"
    )]
    UnverifiedRecoveryAddress,
    /// The account's affiliation may not activate by a mailed link
    /// (`lifecycle.activation.paths`).
    #[error("{0} accounts may not activate with a mailed link (lifecycle.activation.paths)")]
    PathNotAllowed(&'static str),
    /// The database, the store or the mail queue failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// The account an operator's link is for, if it exists and is in state `needed`: the check
/// both operator links (reset, activation) begin with.
///
/// # Errors
/// [`OperatorLinkError::NoSuchAccount`], [`OperatorLinkError::WrongState`], or
/// [`OperatorLinkError::Unavailable`] when the database fails.
pub(crate) async fn operator_link_account(
    accounts: &dyn AccountRepo,
    login: &LoginName,
    needed: AccountState,
) -> Result<Account, OperatorLinkError> {
    let account = accounts
        .find_by_login(login)
        .await
        .map_err(|e| OperatorLinkError::Unavailable(e.to_string()))?
        .ok_or(OperatorLinkError::NoSuchAccount)?;
    if account.state != needed {
        return Err(OperatorLinkError::WrongState {
            state: account.state.as_str(),
            needed: needed.as_str(),
        });
    }
    Ok(account)
}
