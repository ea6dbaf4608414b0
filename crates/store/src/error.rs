//! Errors of this crate, and how storage faults become the core's error types.
//!
//! Policy: setting a store up ([`crate::Database::connect`], [`crate::Database::run_migrations`],
//! [`crate::RedisStore::connect`]) fails with [`StoreSetupError`], which names what could not be
//! done and includes the driver's explanation; `main` reports it and exits. Once running,
//! every fault becomes the core's [`RepoError`] or [`StoreError`]: unique violations are
//! [`RepoError::Conflict`], rows that cannot be read back are `Corrupt`, and everything else
//! (pool timeout, lost connection, statement timeout, Redis timeout) is `Unavailable`, which the
//! server answers with 503. Messages never contain store keys, values or passwords.

use std::path::PathBuf;
use std::time::Duration;

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind};
use sesame_core::error::{RepoError, StoreError};

/// A boxed driver error, carried by a [`StoreSetupError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store could not be set up (connect or migrate).
///
/// The message includes the driver's explanation (callers often only keep `to_string()`), so
/// the variants carry no separate `source`.
#[derive(Debug, thiserror::Error)]
pub enum StoreSetupError {
    /// The URL names no supported backend.
    #[error("unsupported database URL: expected postgres://…, postgresql://… or sqlite://<path>")]
    UnsupportedUrl,
    /// The directory of the SQLite file could not be created.
    #[error("cannot create the directory {path} for the SQLite database: {error}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// No connection to the database could be opened.
    #[error("cannot connect to the database: {0}")]
    Connect(BoxError),
    /// Applying the migrations failed.
    #[error("running the database migrations failed: {0}")]
    Migrate(BoxError),
    /// The Redis URL is malformed or Redis refused the connection.
    #[error("cannot connect to Redis: {0}")]
    Redis(BoxError),
    /// Redis did not answer in time.
    #[error("Redis did not answer within {0:?}")]
    RedisTimeout(Duration),
    /// Redis is older than 6.2, which lacks the `GETDEL` command that single-use tickets need.
    #[error("Redis {0} is too old: Sesame needs Redis 6.2 or newer (GETDEL)")]
    RedisTooOld(String),
    /// The server is a Redis Cluster node or a sentinel, not a standalone Redis.
    #[error("Redis at store.url runs in {0} mode: Sesame needs a standalone Redis (Cluster is not supported; for Sentinel, list the sentinels in store.sentinels)")]
    RedisMode(String),
    /// A blocking task died.
    #[error("a background task failed: {0}")]
    Task(BoxError),
}

/// Converts a diesel error into the core's repository error.
pub(crate) fn repo_error(error: diesel::result::Error) -> RepoError {
    use diesel::result::Error;
    match error {
        Error::NotFound => RepoError::NotFound,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            RepoError::Conflict(conflicting_field(info.as_ref()))
        }
        Error::DeserializationError(e) => RepoError::Corrupt(e.to_string()),
        other => RepoError::Unavailable(other.to_string()),
    }
}

/// Which unique key a violation is about: `login`, `email`, `hr_id`, or the constraint as
/// reported.
///
/// PostgreSQL names the constraint (`accounts_email_key`); SQLite only says
/// `UNIQUE constraint failed: accounts.email` in the message.
fn conflicting_field(info: &(dyn DatabaseErrorInformation + Send + Sync)) -> String {
    let what = info.constraint_name().unwrap_or_else(|| info.message());
    if what.contains("accounts_email") || what.contains("accounts.email") {
        "email".to_owned()
    } else if what.contains("accounts_login") || what.contains("accounts.login") {
        "login".to_owned()
    } else if what.contains("account_profiles_hr_id") || what.contains("account_profiles.hr_id") {
        "hr_id".to_owned()
    } else {
        what.to_owned()
    }
}

/// Converts a Redis error into the core's store error: a type mismatch (`WRONGTYPE`, a value
/// that is not UTF-8 or not a number, a script's `CORRUPT` reply) is corrupt data, anything else
/// makes the store unavailable.
pub(crate) fn store_error(error: &redis::RedisError) -> StoreError {
    if error.kind() == redis::ErrorKind::TypeError
        || matches!(error.code(), Some("WRONGTYPE" | "CORRUPT"))
    {
        StoreError::Corrupt(error.to_string())
    } else {
        StoreError::Unavailable(error.to_string())
    }
}
