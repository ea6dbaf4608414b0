//! Rows of `api_keys`.

use diesel::{Insertable, Queryable, Selectable};
use sesame_core::api_keys::{ApiKeyRecord, ApiScope};
use sesame_core::error::RepoError;

use super::{from_unix, to_unix};
use crate::schema::api_keys;

/// A row of `api_keys`. Holds a key digest, not a key; still never printed whole.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub(crate) struct ApiKeyRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) key_sha256: String,
    pub(crate) scopes: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) last_used_at: Option<i64>,
}

impl std::fmt::Debug for ApiKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ApiKeyRow {
    /// The row for a key. The expiry is rounded down to the second: a key never lives longer
    /// than asked.
    pub(crate) fn new(key: ApiKeyRecord) -> Self {
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        Self {
            id: key.id,
            name: key.name,
            key_sha256: key.key_sha256,
            scopes: scopes.join(" "),
            created_at: to_unix(key.created_at),
            expires_at: key.expires_at.map(to_unix),
            revoked_at: key.revoked_at.map(to_unix),
            last_used_at: key.last_used_at.map(to_unix),
        }
    }

    /// The key this row stores.
    ///
    /// # Errors
    /// [`RepoError::Corrupt`] if a scope or time does not parse.
    pub(crate) fn into_record(self) -> Result<ApiKeyRecord, RepoError> {
        let scopes = self
            .scopes
            .split_whitespace()
            .map(str::parse::<ApiScope>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RepoError::Corrupt(format!("api_keys.scopes: {e}")))?;
        Ok(ApiKeyRecord {
            id: self.id,
            name: self.name,
            key_sha256: self.key_sha256,
            scopes,
            created_at: from_unix("api_keys.created_at", self.created_at)?,
            expires_at: self
                .expires_at
                .map(|t| from_unix("api_keys.expires_at", t))
                .transpose()?,
            revoked_at: self
                .revoked_at
                .map(|t| from_unix("api_keys.revoked_at", t))
                .transpose()?,
            last_used_at: self
                .last_used_at
                .map(|t| from_unix("api_keys.last_used_at", t))
                .transpose()?,
        })
    }
}
