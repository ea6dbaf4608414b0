//! SSO sessions: what the `TGC` cookie points to.
//!
//! The cookie carries a 256-bit random identifier; the store keys the session by the
//! identifier's SHA-256, so a copy of the store yields no usable cookie. A session ends at
//! the first of: idle timeout, absolute lifetime, logout, block of its account.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{AccountId, LoginName};
use crate::ports::EphemeralStore;
use crate::random;

/// Session lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionPolicy {
    /// Idle timeout in seconds (default 7200, as Apereo CAS).
    pub idle_timeout_secs: u64,
    /// Absolute lifetime in seconds (default 28800: a working day).
    pub max_lifetime_secs: u64,
    /// Lifetime of a "remember me" session, in seconds (default 14 days; at most 30 days,
    /// security spec decision 5).
    pub remember_me_secs: u64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 2 * 3600,
            max_lifetime_secs: 8 * 3600,
            remember_me_secs: 14 * 24 * 3600,
        }
    }
}

/// Longest "remember me" allowed (decision 5).
pub const REMEMBER_ME_MAX_SECS: u64 = 30 * 24 * 3600;

impl SessionPolicy {
    /// Checks the values; the error names the field.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.idle_timeout_secs == 0 || self.idle_timeout_secs > self.max_lifetime_secs {
            return Err("idle_timeout_secs must be between 1 and max_lifetime_secs".to_owned());
        }
        if self.max_lifetime_secs == 0 {
            return Err("max_lifetime_secs must be at least 1".to_owned());
        }
        if self.remember_me_secs == 0 || self.remember_me_secs > REMEMBER_ME_MAX_SECS {
            return Err(format!(
                "remember_me_secs must be between 1 and {REMEMBER_ME_MAX_SECS} (30 days)"
            ));
        }
        Ok(())
    }
}

/// A live SSO session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoSession {
    /// The account logged in.
    pub account_id: AccountId,
    /// Its login.
    pub login: LoginName,
    /// When credentials were last entered (OIDC `auth_time`).
    #[serde(with = "time::serde::timestamp")]
    pub authenticated_at: OffsetDateTime,
    /// Last use, for the idle timeout.
    #[serde(with = "time::serde::timestamp")]
    pub last_seen_at: OffsetDateTime,
    /// Hard end.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
    /// Opened with "remember me" (never satisfies `renew`, `prompt=login` or `max_age`).
    pub remember_me: bool,
}

/// An SSO session that just ended, with what it had given out (for single logout).
#[derive(Debug, Clone)]
pub struct EndedSession {
    /// Its store handle.
    pub handle: String,
    /// Whose it was.
    pub account_id: AccountId,
    /// What was attached to it (services that got tickets, clients that got codes).
    pub attached: Vec<String>,
}

/// A freshly opened session and the cookie value that designates it.
#[derive(Debug)]
pub struct OpenedSession {
    /// The cookie value (the only copy of the raw identifier).
    pub cookie_value: String,
    /// The session.
    pub session: SsoSession,
}

/// Opens, reads and ends SSO sessions in the shared store.
#[derive(Debug, Clone)]
pub struct SessionManager {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
}

/// Re-writing `last_seen_at` on every request would be one store write per page view; a
/// minute of slack on the idle timeout is worth avoiding that.
const TOUCH_INTERVAL: time::Duration = time::Duration::seconds(60);

/// The public handle of a session: the SHA-256 of its cookie value. Tickets record it so
/// that validation can check the session still lives, and logout can find what the session
/// touched, without anyone holding the cookie itself.
pub fn session_handle(cookie_value: &str) -> String {
    random::sha256_hex(cookie_value)
}

fn session_key(cookie_value: &str) -> String {
    key_of_handle(&session_handle(cookie_value))
}

fn key_of_handle(handle: &str) -> String {
    format!("sso:{handle}")
}

/// The store key of the session with this handle: what a ticket links to
/// ([`crate::ports::linked_value`]) so that taking the ticket also reads the session, for
/// [`SessionManager::is_live_record`].
pub fn session_store_key(handle: &str) -> String {
    key_of_handle(handle)
}

fn attached_key(handle: &str) -> String {
    format!("sso-attached:{handle}")
}

fn account_sessions_key(id: AccountId) -> String {
    format!("sso-of:{id}")
}

impl SessionManager {
    /// A manager over `store`.
    pub fn new(
        store: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            policy,
        }
    }

    /// The lifetimes in force.
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Opens a new session with a new random identifier (never one the browser offered: no
    /// session fixation).
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn open(
        &self,
        account_id: AccountId,
        login: LoginName,
        remember_me: bool,
    ) -> Result<OpenedSession, StoreError> {
        let now = self.clock.now();
        let lifetime = if remember_me {
            self.policy.remember_me_secs
        } else {
            self.policy.max_lifetime_secs
        };
        let session = SsoSession {
            account_id,
            login,
            authenticated_at: now,
            last_seen_at: now,
            expires_at: now + Duration::from_secs(lifetime),
            remember_me,
        };
        let cookie_value = random::token();
        let key = session_key(&cookie_value);
        let ttl = self.ttl(&session, now);
        self.store.put(&key, &encode(&session)?, ttl).await?;
        self.store
            .set_add(
                &account_sessions_key(account_id),
                &key,
                Duration::from_secs(lifetime),
            )
            .await?;
        Ok(OpenedSession {
            cookie_value,
            session,
        })
    }

    /// The live session designated by `cookie_value`, touching it for the idle timeout.
    /// Expired sessions are removed and give `None`.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails (callers must not treat that as "no session" for
    /// anything but showing the login form).
    pub async fn get(&self, cookie_value: &str) -> Result<Option<SsoSession>, StoreError> {
        if cookie_value.is_empty() || cookie_value.len() > 128 {
            return Ok(None);
        }
        let key = session_key(cookie_value);
        let Some(raw) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let mut session: SsoSession =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = self.clock.now();
        if !self.is_live_at(&session, now) {
            self.store.delete(&key).await?;
            return Ok(None);
        }
        if now - session.last_seen_at >= TOUCH_INTERVAL {
            session.last_seen_at = now;
            self.store
                .put(&key, &encode(&session)?, self.ttl(&session, now))
                .await?;
        }
        Ok(Some(session))
    }

    /// Ends the session designated by `cookie_value`; returns it if it was live.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn close(&self, cookie_value: &str) -> Result<Option<SsoSession>, StoreError> {
        let key = session_key(cookie_value);
        let Some(raw) = self.store.take(&key).await? else {
            return Ok(None);
        };
        let session: SsoSession =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store
            .set_remove(&account_sessions_key(session.account_id), &key)
            .await?;
        Ok(Some(session))
    }

    /// Ends every session of an account (block, password reset, "log out everywhere").
    /// Returns the handles of the sessions that were live, so their services can be sent
    /// single-logout requests.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn close_all_for(&self, account_id: AccountId) -> Result<Vec<String>, StoreError> {
        let set = account_sessions_key(account_id);
        let mut closed = Vec::new();
        for key in self.store.set_members(&set).await? {
            if self.store.delete(&key).await? {
                if let Some(handle) = key.strip_prefix("sso:") {
                    closed.push(handle.to_owned());
                }
            }
            self.store.set_remove(&set, &key).await?;
        }
        Ok(closed)
    }

    /// The live sessions of an account, with their handles, oldest login first (the account
    /// page lists them). Sessions that ended are dropped from the account's set on the way.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn sessions_of(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<(String, SsoSession)>, StoreError> {
        let set = account_sessions_key(account_id);
        let now = self.clock.now();
        let mut live = Vec::new();
        for key in self.store.set_members(&set).await? {
            let session = match self.store.get(&key).await? {
                Some(raw) => serde_json::from_str::<SsoSession>(&raw).ok(),
                None => None,
            };
            match (session, key.strip_prefix("sso:")) {
                (Some(s), Some(handle))
                    if s.account_id == account_id && self.is_live_at(&s, now) =>
                {
                    live.push((handle.to_owned(), s));
                }
                _ => self.store.set_remove(&set, &key).await?,
            }
        }
        live.sort_by_key(|(_, s)| s.authenticated_at);
        Ok(live)
    }

    /// Ends the session with this handle if it belongs to `account_id` (a person revoking
    /// one of their sessions from the account page); returns it if it was live.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn close_handle(
        &self,
        account_id: AccountId,
        handle: &str,
    ) -> Result<Option<SsoSession>, StoreError> {
        let key = key_of_handle(handle);
        let set = account_sessions_key(account_id);
        // Only a member of the account's own set may be ended: a handle of someone else's
        // session is refused without touching it.
        if !self.store.set_members(&set).await?.contains(&key) {
            return Ok(None);
        }
        let Some(raw) = self.store.take(&key).await? else {
            self.store.set_remove(&set, &key).await?;
            return Ok(None);
        };
        self.store.set_remove(&set, &key).await?;
        let session: SsoSession =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(session))
    }

    /// Whether the session with this handle is still live (not ended, not expired). Does
    /// not touch it.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn is_live(&self, handle: &str) -> Result<bool, StoreError> {
        let Some(raw) = self.store.get(&key_of_handle(handle)).await? else {
            return Ok(false);
        };
        let session: SsoSession =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(self.is_live_at(&session, self.clock.now()))
    }

    /// Whether `record`, a session as the store holds it (read along with a ticket by
    /// [`crate::ports::EphemeralStore::take_linked`]; `None` when absent), is live. Same
    /// decision as [`SessionManager::is_live`], without a store round trip.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record is unreadable.
    pub fn is_live_record(&self, record: Option<&str>) -> Result<bool, StoreError> {
        let Some(raw) = record else {
            return Ok(false);
        };
        let session: SsoSession =
            serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(self.is_live_at(&session, self.clock.now()))
    }

    /// Records `item` (e.g. a service that got a ticket) against the session, for single
    /// logout. Kept as long as the session can live.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn attach(
        &self,
        handle: &str,
        session: &SsoSession,
        item: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let ttl = Duration::try_from((session.expires_at - now).max(time::Duration::ZERO))
            .unwrap_or_default()
            + Duration::from_secs(60);
        self.store.set_add(&attached_key(handle), item, ttl).await
    }

    /// Removes and returns everything attached to the session.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn take_attached(&self, handle: &str) -> Result<Vec<String>, StoreError> {
        let key = attached_key(handle);
        let items = self.store.set_members(&key).await?;
        self.store.delete(&key).await?;
        Ok(items)
    }

    fn is_live_at(&self, s: &SsoSession, now: OffsetDateTime) -> bool {
        if now >= s.expires_at {
            return false;
        }
        // A remember-me session is meant to survive days without use: only its absolute
        // lifetime applies.
        s.remember_me || now - s.last_seen_at < Duration::from_secs(self.policy.idle_timeout_secs)
    }

    fn ttl(&self, s: &SsoSession, now: OffsetDateTime) -> Duration {
        let to_end = (s.expires_at - now).max(time::Duration::ZERO);
        let idle = time::Duration::seconds(
            i64::try_from(self.policy.idle_timeout_secs).unwrap_or(i64::MAX),
        );
        let logical = if s.remember_me {
            to_end
        } else {
            to_end.min(idle)
        };
        // The store TTL only collects garbage; keep a margin so the clock decides.
        Duration::try_from(logical).unwrap_or_default() + Duration::from_secs(60)
    }
}

fn encode(s: &SsoSession) -> Result<String, StoreError> {
    serde_json::to_string(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}
