//! Row structs (what diesel reads and writes) and their conversions to the core's types.

pub(crate) mod account;
pub(crate) mod api_key;
pub(crate) mod audit;
pub(crate) mod helpdesk;
pub(crate) mod mail;
pub(crate) mod oidc;

use sesame_core::error::RepoError;
use time::OffsetDateTime;

/// A time as stored: unix seconds, rounded down.
pub(crate) fn to_unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// A stored time limit (lock end): unix seconds, rounded *up*, so a limit never ends early.
pub(crate) fn to_unix_ceil(t: OffsetDateTime) -> i64 {
    let secs = t.unix_timestamp();
    if t.nanosecond() > 0 {
        secs + 1
    } else {
        secs
    }
}

/// Reads a stored time back.
pub(crate) fn from_unix(column: &str, secs: i64) -> Result<OffsetDateTime, RepoError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| RepoError::Corrupt(format!("{column}: {e}")))
}
