//! API keys of the admin HTTP API: what a provisioning system or a helpdesk tool presents as
//! `Authorization: Bearer sesame_ak_<id>_<secret>`.
//!
//! The key is shown once, when it is made. Sesame keeps its id in clear (so the row is found
//! without scanning) and the SHA-256 of the whole key. SHA-256 rather than argon2: the secret
//! holds 256 random bits, so there is nothing for a slow hash to protect against guessing, and
//! the check runs on every API request. The digests are compared in constant time.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditKind};
use crate::clock::Clock;
use crate::error::RepoError;
use crate::ports::{ApiKeyRepo, AuditLog};
use crate::random;

/// What every key starts with, so a leaked key is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "sesame_ak_";

/// Characters of a key id.
const ID_LEN: usize = 12;

/// Characters of a key secret: 43 alphanumeric characters carry about 256 bits.
const SECRET_LEN: usize = 43;

/// Longest key name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A key's `last_used_at` is rewritten at most this often: one write per request would
/// double the database load of a busy provisioning run for no gain.
const TOUCH_INTERVAL: time::Duration = time::Duration::seconds(60);

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ApiScope {
    /// `accounts:read`: read accounts and their audit events.
    #[serde(rename = "accounts:read")]
    AccountsRead,
    /// `accounts:write`: create, update, disable, block and unblock accounts.
    #[serde(rename = "accounts:write")]
    AccountsWrite,
    /// `imports`: import provisioning files.
    #[serde(rename = "imports")]
    Imports,
    /// `sessions`: list and end the SSO sessions of an account.
    #[serde(rename = "sessions")]
    Sessions,
    /// `helpdesk`: list, read and close assistance requests; mail an account a password-reset
    /// or activation link.
    #[serde(rename = "helpdesk")]
    Helpdesk,
}

impl ApiScope {
    /// Every scope.
    pub const ALL: [Self; 5] = [
        Self::AccountsRead,
        Self::AccountsWrite,
        Self::Imports,
        Self::Sessions,
        Self::Helpdesk,
    ];

    /// The name used in the CLI, storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountsRead => "accounts:read",
            Self::AccountsWrite => "accounts:write",
            Self::Imports => "imports",
            Self::Sessions => "sessions",
            Self::Helpdesk => "helpdesk",
        }
    }
}

impl fmt::Display for ApiScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiScope {
    type Err = ApiKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| ApiKeyError::UnknownScope(s.chars().take(40).collect()))
    }
}

/// An API key as stored: never the key itself.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The public part of the key, unique.
    pub id: String,
    /// Who or what holds it (`siham-provisioning`); the actor of the audit events it causes.
    pub name: String,
    /// Lowercase hex SHA-256 of the whole key.
    pub key_sha256: String,
    /// What it may do (sorted, no duplicates).
    pub scopes: Vec<ApiScope>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// After this it is refused; `None`: never.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// When it was last accepted (to the minute).
    pub last_used_at: Option<OffsetDateTime>,
}

impl fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

impl ApiKeyRecord {
    /// Whether the key has this scope.
    pub fn allows(&self, scope: ApiScope) -> bool {
        self.scopes.contains(&scope)
    }

    /// `active`, `revoked` or `expired` at `now`.
    pub fn status(&self, now: OffsetDateTime) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }

    /// The audit actor of what this key does: `api:<name>`.
    pub fn actor(&self) -> String {
        format!("api:{}", self.name)
    }
}

/// A key just made: the only time the full key exists outside its holder.
pub struct IssuedApiKey {
    /// What is stored.
    pub record: ApiKeyRecord,
    /// The key to hand over: `sesame_ak_<id>_<secret>`.
    pub key: String,
}

impl fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Why a key was not made, not found or not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// No key was presented, or it is not of Sesame's form, unknown, or wrong.
    #[error("unknown or malformed API key")]
    Invalid,
    /// The key was revoked.
    #[error("the API key was revoked")]
    Revoked,
    /// The key expired.
    #[error("the API key expired")]
    Expired,
    /// A scope name that does not exist.
    #[error(
        "unknown scope {0:?} (known: accounts:read, accounts:write, imports, sessions, helpdesk)"
    )]
    UnknownScope(String),
    /// A key needs at least one scope.
    #[error("a key needs at least one scope")]
    NoScope,
    /// The name is empty, too long or has control characters.
    #[error("the name must be 1 to {MAX_NAME_CHARS} printable characters")]
    BadName,
    /// The expiry is zero or absurdly far.
    #[error("the expiry must be between 1 and 3650 days")]
    BadExpiry,
    /// No key has this id.
    #[error("no API key {0}")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Makes, lists, revokes and checks API keys.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    repo: Arc<dyn ApiKeyRepo>,
    audit: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
}

impl ApiKeys {
    /// Keys over this repository.
    pub fn new(repo: Arc<dyn ApiKeyRepo>, audit: Arc<dyn AuditLog>, clock: Arc<dyn Clock>) -> Self {
        Self { repo, audit, clock }
    }

    /// Makes a key named `name` with `scopes`, valid for `expires_in_days` (forever if
    /// `None`), and records who made it.
    ///
    /// # Errors
    /// [`ApiKeyError::BadName`], [`ApiKeyError::NoScope`], [`ApiKeyError::BadExpiry`], or a
    /// storage failure.
    pub async fn create(
        &self,
        name: &str,
        scopes: &[ApiScope],
        expires_in_days: Option<u32>,
        actor: &str,
    ) -> Result<IssuedApiKey, ApiKeyError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ApiKeyError::BadName);
        }
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(ApiKeyError::NoScope);
        }
        let now = self.clock.now();
        let expires_at = match expires_in_days {
            None => None,
            Some(days @ 1..=3650) => Some(now + time::Duration::days(i64::from(days))),
            Some(_) => return Err(ApiKeyError::BadExpiry),
        };
        let id = random::alphanumeric(ID_LEN);
        let key = format!("{KEY_PREFIX}{id}_{}", random::alphanumeric(SECRET_LEN));
        let record = ApiKeyRecord {
            id,
            name: name.to_owned(),
            key_sha256: random::sha256_hex(&key),
            scopes,
            created_at: now,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        self.repo.insert_api_key(record.clone()).await?;
        let scope_names: Vec<&str> = record.scopes.iter().map(|s| s.as_str()).collect();
        self.audit
            .record(
                AuditEvent::new(AuditKind::ApiKeyCreated, now, actor).detail(serde_json::json!({
                    "key_id": record.id,
                    "name": record.name,
                    "scopes": scope_names,
                    "expires_at": expires_at.map(|e| e.unix_timestamp()),
                })),
            )
            .await?;
        Ok(IssuedApiKey { record, key })
    }

    /// Every key, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list(&self) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
        Ok(self.repo.api_keys().await?)
    }

    /// Revokes a key at once (every instance reads keys from the database on each request).
    ///
    /// # Errors
    /// [`ApiKeyError::NotFound`], or a storage failure.
    pub async fn revoke(&self, id: &str, actor: &str) -> Result<ApiKeyRecord, ApiKeyError> {
        let now = self.clock.now();
        let Some(record) = self.repo.find_api_key(id).await? else {
            return Err(ApiKeyError::NotFound(id.chars().take(40).collect()));
        };
        if record.revoked_at.is_some() {
            return Ok(record);
        }
        self.repo.revoke_api_key(id, now).await?;
        self.audit
            .record(
                AuditEvent::new(AuditKind::ApiKeyRevoked, now, actor).detail(serde_json::json!({
                    "key_id": record.id,
                    "name": record.name,
                })),
            )
            .await?;
        Ok(ApiKeyRecord {
            revoked_at: Some(now),
            ..record
        })
    }

    /// The key `presented` stands for, if it is known, right, not revoked and not expired.
    /// Notes its use.
    ///
    /// # Errors
    /// [`ApiKeyError::Invalid`], [`ApiKeyError::Revoked`], [`ApiKeyError::Expired`], or a
    /// storage failure.
    pub async fn authenticate(&self, presented: &str) -> Result<ApiKeyRecord, ApiKeyError> {
        let id = key_id(presented).ok_or(ApiKeyError::Invalid)?;
        let Some(record) = self.repo.find_api_key(id).await? else {
            return Err(ApiKeyError::Invalid);
        };
        let digest = random::sha256_hex(presented);
        if !bool::from(digest.as_bytes().ct_eq(record.key_sha256.as_bytes())) {
            return Err(ApiKeyError::Invalid);
        }
        let now = self.clock.now();
        if record.revoked_at.is_some() {
            return Err(ApiKeyError::Revoked);
        }
        if record.expires_at.is_some_and(|e| e <= now) {
            return Err(ApiKeyError::Expired);
        }
        if record
            .last_used_at
            .is_none_or(|last| now - last >= TOUCH_INTERVAL)
        {
            self.repo.touch_api_key(&record.id, now).await?;
        }
        Ok(record)
    }
}

/// The id part of a key of Sesame's form, `sesame_ak_<id>_<secret>`.
fn key_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == ID_LEN
        && secret.len() == SECRET_LEN
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    well_formed.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_names() {
        for scope in ApiScope::ALL {
            assert_eq!(scope.as_str().parse::<ApiScope>().unwrap(), scope);
        }
        assert!("admin".parse::<ApiScope>().is_err());
    }

    #[test]
    fn only_keys_of_sesames_form_yield_an_id() {
        let id = "A".repeat(ID_LEN);
        let secret = "b".repeat(SECRET_LEN);
        assert_eq!(
            key_id(&format!("{KEY_PREFIX}{id}_{secret}")),
            Some(id.as_str())
        );
        assert_eq!(key_id(&format!("{KEY_PREFIX}{id}_{secret}x")), None);
        assert_eq!(key_id(&format!("other_{id}_{secret}")), None);
        assert_eq!(
            key_id(&format!("{KEY_PREFIX}{id}_{}", "é".repeat(22))),
            None
        );
        assert_eq!(key_id(""), None);
    }
}
