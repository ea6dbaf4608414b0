//! SSO sessions: what the `TGC` cookie points to.
//!
//! The cookie carries a 256-bit random identifier; the store keys the session by the
//! identifier's SHA-256, so a copy of the store yields no usable cookie. A session ends at
//! the first of: idle timeout, absolute lifetime, logout, block of its account.
//!
//! A session records how it was authenticated ([`Authentication`]: RFC 8176 methods with
//! their times), which every protocol's "is this session good enough?" reads
//! ([`crate::login::requirement`]), and what it gave out ([`Attachment`]s: CAS tickets,
//! OpenID Connect clients) so that ending it can reach them (single logout).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{AccountId, LoginName};
use crate::login::methods::Authentication;
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
    /// How the person authenticated. Sessions stored before methods were recorded decode
    /// with none, which [`decode_session`] reads as the password at `authenticated_at` (the
    /// only method there was).
    #[serde(default, skip_serializing_if = "Authentication::is_empty")]
    pub methods: Authentication,
    /// The account as the database last showed it to a use of this session, kept so that
    /// the next uses need no database read while it is fresh or unchanged (a shared store
    /// only: see [`ACCOUNT_RECHECK`]). Sessions stored before it decode without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountSnapshot>,
}

/// How long a session's [`AccountSnapshot`] stands in for the database unasked.
///
/// With a shared store, every change that takes an account out of `Active` (block, disable,
/// import) ends its sessions in the store at once, so the snapshot is never what keeps a
/// blocked person in. Past this age a use asks the store whether the account was marked
/// changed since the snapshot was read ([`crate::account_marks`]) and reads the database only
/// if it was: this bounds how old the attributes released to services (names, mail,
/// affiliation) can be. With the in-process store the database is read at every use (an
/// operator's CLI cannot reach this process's sessions, A54).
pub const ACCOUNT_RECHECK: time::Duration = time::Duration::seconds(30);

/// How old a session's [`AccountSnapshot`] may grow however the store's change marks vouch
/// for it: a backstop should a change have been committed but its mark (or the ending of the
/// sessions that came with a block) been lost to a store failure.
pub const ACCOUNT_BACKSTOP: time::Duration = time::Duration::minutes(5);

/// The account of a session as read from the database, and when the read began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    /// The account.
    pub account: crate::account::Account,
    /// When the read that gave it began (a change committed after this is not in it).
    #[serde(with = "time::serde::timestamp")]
    pub read_at: OffsetDateTime,
}

impl AccountSnapshot {
    /// The account, if this snapshot is of `account_id`, active, and read less than
    /// [`ACCOUNT_RECHECK`] before `now`.
    pub fn fresh(
        &self,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Option<&crate::account::Account> {
        self.usable(account_id, now)
            .filter(|_| now - self.read_at < ACCOUNT_RECHECK)
    }

    /// The account, if this snapshot is of `account_id`, active, and read less than
    /// [`ACCOUNT_BACKSTOP`] before `now`: past [`ACCOUNT_RECHECK`], good only if the account
    /// was not marked changed since ([`crate::account_marks::AccountChangeMarks::current`]).
    pub fn usable(
        &self,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Option<&crate::account::Account> {
        let age = now - self.read_at;
        (self.account.id == account_id
            && self.account.state == crate::account::AccountState::Active
            && age >= time::Duration::ZERO
            && age < ACCOUNT_BACKSTOP)
            .then_some(&self.account)
    }
}

/// Reads a session as stored, filling in the methods of one stored before they were
/// recorded.
///
/// # Errors
/// [`StoreError::Corrupt`] if the record is unreadable.
pub fn decode_session(raw: &str) -> Result<SsoSession, StoreError> {
    let mut session: SsoSession =
        serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if session.methods.is_empty() {
        session.methods = Authentication::password_at(session.authenticated_at);
    }
    Ok(session)
}

/// The protocol an [`Attachment`] belongs to (who is told when the session ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachedProtocol {
    /// A CAS service ticket; the payload is the protocol crate's record of it.
    Cas,
    /// An OpenID Connect client that got a code; the payload is its `client_id`.
    Oidc,
    /// A SAML service provider that got an assertion; the payload is the protocol crate's
    /// record of the subject's name and the session index it was given.
    Saml,
}

/// Something a session gave out, recorded against it for single logout. The payload is the
/// protocol's own business; this crate only stores it.
///
/// A session keeps one attachment per protocol and party, the most recent (as Apereo CAS
/// tracks only the most recent session of each service): a relying party whose session was
/// replaced by a newer login only has the newer one to end, and a session that issues a
/// million tickets to one service keeps one record, not a million.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attachment {
    /// Whose it is.
    pub protocol: AttachedProtocol,
    /// Whom it was given to, as the protocol names them (a CAS service, an OpenID Connect
    /// client). Empty in records written before attachments had one.
    #[serde(default)]
    pub party: String,
    /// What the protocol needs to end it.
    pub payload: String,
}

impl Attachment {
    /// An attachment of `protocol`, given to `party`, carrying `payload`.
    pub fn new(
        protocol: AttachedProtocol,
        party: impl Into<String>,
        payload: impl Into<String>,
    ) -> Self {
        Self {
            protocol,
            party: party.into(),
            payload: payload.into(),
        }
    }

    /// The text stored in the session's map.
    pub fn encode(&self) -> String {
        serde_json::json!({
            "protocol": self.protocol,
            "party": self.party,
            "payload": self.payload,
        })
        .to_string()
    }

    /// The field of the session's map it goes under: one per protocol and party.
    fn field(&self) -> String {
        let protocol = match self.protocol {
            AttachedProtocol::Cas => "cas",
            AttachedProtocol::Oidc => "oidc",
            AttachedProtocol::Saml => "saml",
        };
        format!("{protocol} {}", self.party)
    }

    /// Reads a stored attachment, including the shapes written before attachments were
    /// typed: `{"oidc_client": id}` (OpenID Connect) and `{"service_id", "service",
    /// "ticket"}` (a CAS ticket, whose whole text was the record). `None` for anything else.
    pub fn decode(stored: &str) -> Option<Self> {
        if let Ok(typed) = serde_json::from_str::<Self>(stored) {
            return Some(typed);
        }
        let value: serde_json::Value = serde_json::from_str(stored).ok()?;
        let object = value.as_object()?;
        if let Some(client) = object.get("oidc_client").and_then(|v| v.as_str()) {
            return Some(Self::new(AttachedProtocol::Oidc, client, client));
        }
        if object.contains_key("ticket") && object.contains_key("service_id") {
            return Some(Self::new(AttachedProtocol::Cas, "", stored));
        }
        None
    }
}

/// An SSO session that just ended, with what it had given out (for single logout).
#[derive(Debug, Clone)]
pub struct EndedSession {
    /// Its store handle.
    pub handle: String,
    /// Whose it was.
    pub account_id: AccountId,
    /// What was attached to it (services that got tickets, clients that got codes).
    pub attached: Vec<Attachment>,
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

/// The map of what the session gave out, one entry per protocol and party.
fn attached_key(handle: &str) -> String {
    format!("sso-given:{handle}")
}

/// Where sessions opened before attachments were kept one per party recorded them: a set
/// with one member per ticket. Read (and emptied) when such a session ends; nothing writes
/// it any more, and the last of them expires with the longest session opened before the
/// upgrade (at most `remember_me_secs`), after which this can go.
fn legacy_attached_key(handle: &str) -> String {
    format!("sso-attached:{handle}")
}

/// Most parties one session keeps attachments for. A person uses a few dozen services in a
/// session; the bound is for a client that mints tickets for ever new service URLs, which
/// then displaces its own older records instead of growing the store.
pub const MAX_ATTACHED_PARTIES: usize = 200;

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
        methods: Authentication,
    ) -> Result<OpenedSession, StoreError> {
        let now = self.clock.now();
        let lifetime = if remember_me {
            self.policy.remember_me_secs
        } else {
            self.policy.max_lifetime_secs
        };
        // When credentials were last entered: the last method's time (taken by the caller
        // just before), so `auth_time` and `max_age` read one time.
        let authenticated_at = methods.last_at().unwrap_or(now);
        let session = SsoSession {
            account_id,
            login,
            authenticated_at,
            last_seen_at: now,
            expires_at: now + Duration::from_secs(lifetime),
            remember_me,
            methods,
            account: None,
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
        let mut session = decode_session(&raw)?;
        let now = self.clock.now();
        if !self.is_live_at(&session, now) {
            self.store.delete(&key).await?;
            return Ok(None);
        }
        if now - session.last_seen_at >= TOUCH_INTERVAL {
            session.last_seen_at = now;
            // Only over the live record: a logout or block that ended it since the read
            // must not be undone.
            if !self
                .store
                .replace(&key, &encode(&session)?, self.ttl(&session, now))
                .await?
            {
                return Ok(None);
            }
        }
        Ok(Some(session))
    }

    /// Keeps `account`, read from the database from `read_at` on, with the session of
    /// `cookie_value` as read by [`SessionManager::get`] (`session`), so that its next uses
    /// within [`ACCOUNT_RECHECK`] need not read it again. Nothing is written if the session
    /// ended meanwhile, or if `account` is not the session's.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn remember_account(
        &self,
        cookie_value: &str,
        session: &SsoSession,
        account: &crate::account::Account,
        read_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if account.id != session.account_id {
            return Ok(());
        }
        let now = self.clock.now();
        if !self.is_live_at(session, now) {
            return Ok(());
        }
        let mut session = session.clone();
        session.account = Some(AccountSnapshot {
            account: account.clone(),
            read_at,
        });
        self.store
            .replace(
                &session_key(cookie_value),
                &encode(&session)?,
                self.ttl(&session, now),
            )
            .await?;
        Ok(())
    }

    /// Records that the person of the session `cookie_value` has just authenticated again
    /// (a second factor added for a step-up): its methods become `methods` and its
    /// authentication time theirs; the identifier, the lifetime and the attachments stay.
    /// `None` if the session is no longer live.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn reauthenticated(
        &self,
        cookie_value: &str,
        methods: Authentication,
    ) -> Result<Option<SsoSession>, StoreError> {
        let key = session_key(cookie_value);
        let Some(raw) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let mut session = decode_session(&raw)?;
        let now = self.clock.now();
        if !self.is_live_at(&session, now) {
            return Ok(None);
        }
        session.authenticated_at = methods.last_at().unwrap_or(now);
        session.methods = methods;
        session.last_seen_at = now;
        if !self
            .store
            .replace(&key, &encode(&session)?, self.ttl(&session, now))
            .await?
        {
            return Ok(None);
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
        let session = decode_session(&raw)?;
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
                Some(raw) => decode_session(&raw).ok(),
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
        let session = decode_session(&raw)?;
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
        let session = decode_session(&raw)?;
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
        let session = decode_session(raw)?;
        Ok(self.is_live_at(&session, self.clock.now()))
    }

    /// Records `item` (e.g. a service that got a ticket) against the session, for single
    /// logout, replacing the session's earlier attachment of the same protocol and party.
    /// Kept as long as the session can live.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn attach(
        &self,
        handle: &str,
        session: &SsoSession,
        item: &Attachment,
    ) -> Result<(), StoreError> {
        let entry = self.attachment_entry(handle, session, item);
        self.store.map_put(&entry).await
    }

    /// Where [`SessionManager::attach`] records `item`, for a caller that writes it in the
    /// same store step as what it issues ([`EphemeralStore::put_new_with_map_entry`]).
    pub fn attachment_entry(
        &self,
        handle: &str,
        session: &SsoSession,
        item: &Attachment,
    ) -> crate::ports::MapEntry {
        let now = self.clock.now();
        let ttl = Duration::try_from((session.expires_at - now).max(time::Duration::ZERO))
            .unwrap_or_default()
            + Duration::from_secs(60);
        crate::ports::MapEntry {
            map: attached_key(handle),
            field: item.field(),
            value: item.encode(),
            ttl,
            max_fields: MAX_ATTACHED_PARTIES,
        }
    }

    /// Removes and returns everything attached to the session (entries no protocol can
    /// read are dropped).
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn take_attached(&self, handle: &str) -> Result<Vec<Attachment>, StoreError> {
        let mut items = self.store.map_take(&attached_key(handle)).await?;
        let legacy = legacy_attached_key(handle);
        let recorded_before = self.store.set_members(&legacy).await?;
        if !recorded_before.is_empty() {
            self.store.delete(&legacy).await?;
            items.extend(recorded_before);
        }
        Ok(items.iter().filter_map(|i| Attachment::decode(i)).collect())
    }

    /// What a session that was just closed leaves to end elsewhere: its attachments, taken.
    /// Every way of ending a session goes through here (logout, revocation, reset, block,
    /// password change, helpdesk), so none forgets single logout.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn ended(
        &self,
        account_id: AccountId,
        handle: String,
    ) -> Result<EndedSession, StoreError> {
        let attached = self.take_attached(&handle).await?;
        Ok(EndedSession {
            handle,
            account_id,
            attached,
        })
    }

    /// Ends the session designated by `cookie_value` (logout); returns it and what it ended,
    /// if it was live.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn end(
        &self,
        cookie_value: &str,
    ) -> Result<Option<(SsoSession, EndedSession)>, StoreError> {
        let Some(session) = self.close(cookie_value).await? else {
            return Ok(None);
        };
        let ended = self
            .ended(session.account_id, session_handle(cookie_value))
            .await?;
        Ok(Some((session, ended)))
    }

    /// Ends the session with this handle if it belongs to `account_id` (revocation from the
    /// account page, a password change ending the other sessions).
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn end_handle(
        &self,
        account_id: AccountId,
        handle: &str,
    ) -> Result<Option<EndedSession>, StoreError> {
        if self.close_handle(account_id, handle).await?.is_none() {
            return Ok(None);
        }
        self.ended(account_id, handle.to_owned()).await.map(Some)
    }

    /// Ends every session of an account (reset, block, "log out everywhere").
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn end_all_for(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let handles = self.close_all_for(account_id).await?;
        let mut ended = Vec::with_capacity(handles.len());
        for handle in handles {
            ended.push(self.ended(account_id, handle).await?);
        }
        Ok(ended)
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::clock::ManualClock;
    use crate::login::methods::AuthnMethod;
    use crate::testing::MapStore;

    const T0: OffsetDateTime = datetime!(2026-01-05 08:00 UTC);

    fn manager() -> SessionManager {
        SessionManager::new(
            Arc::new(MapStore::default()),
            Arc::new(ManualClock::starting_at(T0)),
            SessionPolicy::default(),
        )
    }

    fn login() -> LoginName {
        LoginName::parse("ada").unwrap()
    }

    #[test]
    fn a_session_stored_before_methods_reads_as_a_password_login() {
        let old = serde_json::json!({
            "account_id": AccountId(uuid::Uuid::nil()),
            "login": "ada",
            "authenticated_at": T0.unix_timestamp(),
            "last_seen_at": T0.unix_timestamp(),
            "expires_at": T0.unix_timestamp() + 3600,
            "remember_me": false,
        })
        .to_string();
        let session = decode_session(&old).unwrap();
        assert_eq!(session.methods, Authentication::password_at(T0));
        assert_eq!(session.methods.amr(), vec!["pwd"]);
    }

    #[tokio::test]
    async fn sessions_keep_their_methods() {
        let sessions = manager();
        let mut methods = Authentication::password_at(T0);
        methods.push(AuthnMethod::Otp, T0);
        let opened = sessions
            .open(
                AccountId(uuid::Uuid::nil()),
                login(),
                false,
                methods.clone(),
            )
            .await
            .unwrap();
        let read = sessions.get(&opened.cookie_value).await.unwrap().unwrap();
        assert_eq!(read.methods, methods);
        assert_eq!(read.methods.amr(), vec!["pwd", "otp", "mfa"]);
    }

    fn ada(id: AccountId, state: crate::account::AccountState) -> crate::account::Account {
        crate::account::Account {
            id,
            login: login(),
            email: None,
            given_name: "Ada".to_owned(),
            family_name: "Lovelace".to_owned(),
            affiliation: crate::ids::Affiliation::Staff,
            state,
            created_at: T0,
            updated_at: T0,
        }
    }

    #[tokio::test]
    async fn a_remembered_account_stands_in_for_the_database_for_a_while() {
        let sessions = manager();
        let id = AccountId(uuid::Uuid::from_u128(7));
        let opened = sessions
            .open(id, login(), false, Authentication::password_at(T0))
            .await
            .unwrap();
        let read = sessions.get(&opened.cookie_value).await.unwrap().unwrap();
        assert_eq!(read.account, None, "a new session has no snapshot");
        let account = ada(id, crate::account::AccountState::Active);
        sessions
            .remember_account(&opened.cookie_value, &read, &account, T0)
            .await
            .unwrap();
        let read = sessions.get(&opened.cookie_value).await.unwrap().unwrap();
        let snapshot = read.account.clone().unwrap();
        assert_eq!(
            snapshot.fresh(id, T0 + time::Duration::seconds(29)),
            Some(&account)
        );
        assert_eq!(snapshot.fresh(id, T0 + ACCOUNT_RECHECK), None, "too old");
        assert_eq!(
            snapshot.fresh(AccountId(uuid::Uuid::from_u128(8)), T0),
            None,
            "another account's"
        );
        let blocked = AccountSnapshot {
            account: ada(id, crate::account::AccountState::Blocked),
            read_at: T0,
        };
        assert_eq!(blocked.fresh(id, T0), None, "only an active account");
        // Another account is never remembered for this session.
        let other = ada(
            AccountId(uuid::Uuid::from_u128(8)),
            crate::account::AccountState::Active,
        );
        sessions
            .remember_account(&opened.cookie_value, &read, &other, T0)
            .await
            .unwrap();
        let again = sessions.get(&opened.cookie_value).await.unwrap().unwrap();
        assert_eq!(again.account, Some(snapshot));
    }

    #[tokio::test]
    async fn writing_back_a_session_never_revives_one_ended_meanwhile() {
        let sessions = manager();
        let id = AccountId(uuid::Uuid::from_u128(7));
        let opened = sessions
            .open(id, login(), false, Authentication::password_at(T0))
            .await
            .unwrap();
        let read = sessions.get(&opened.cookie_value).await.unwrap().unwrap();
        // A block ends the session while a request still holds what it read.
        sessions.close(&opened.cookie_value).await.unwrap();
        sessions
            .remember_account(
                &opened.cookie_value,
                &read,
                &ada(id, crate::account::AccountState::Active),
                T0,
            )
            .await
            .unwrap();
        assert_eq!(sessions.get(&opened.cookie_value).await.unwrap(), None);
        let methods = Authentication::password_at(T0);
        assert_eq!(
            sessions
                .reauthenticated(&opened.cookie_value, methods)
                .await
                .unwrap(),
            None
        );
        assert_eq!(sessions.get(&opened.cookie_value).await.unwrap(), None);
    }

    #[test]
    fn attachments_decode_typed_and_legacy_shapes() {
        let cas = Attachment::new(
            AttachedProtocol::Cas,
            "app https://app/",
            r#"{"ticket":"ST-1"}"#,
        );
        assert_eq!(Attachment::decode(&cas.encode()), Some(cas));
        let legacy_typed = r#"{"protocol":"oidc","payload":"moodle"}"#;
        assert_eq!(
            Attachment::decode(legacy_typed),
            Some(Attachment::new(AttachedProtocol::Oidc, "", "moodle"))
        );
        let legacy_oidc = r#"{"oidc_client":"moodle"}"#;
        assert_eq!(
            Attachment::decode(legacy_oidc),
            Some(Attachment::new(AttachedProtocol::Oidc, "moodle", "moodle"))
        );
        let legacy_cas = r#"{"service_id":"app","service":"https://app/","ticket":"ST-1"}"#;
        assert_eq!(
            Attachment::decode(legacy_cas),
            Some(Attachment::new(AttachedProtocol::Cas, "", legacy_cas))
        );
        assert_eq!(Attachment::decode("junk"), None);
        assert_eq!(Attachment::decode(r#"{"other":1}"#), None);
    }

    #[tokio::test]
    async fn ending_a_session_returns_what_it_gave_out_once() {
        let sessions = manager();
        let account = AccountId(uuid::Uuid::nil());
        let opened = sessions
            .open(account, login(), false, Authentication::password_at(T0))
            .await
            .unwrap();
        let handle = session_handle(&opened.cookie_value);
        let item = Attachment::new(AttachedProtocol::Oidc, "moodle", "moodle");
        sessions
            .attach(&handle, &opened.session, &item)
            .await
            .unwrap();
        let (session, ended) = sessions.end(&opened.cookie_value).await.unwrap().unwrap();
        assert_eq!(session.account_id, account);
        assert_eq!(ended.handle, handle);
        assert_eq!(ended.attached, vec![item]);
        assert!(sessions.end(&opened.cookie_value).await.unwrap().is_none());
        assert!(sessions.take_attached(&handle).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_session_keeps_the_latest_attachment_of_each_party() {
        let sessions = manager();
        let opened = sessions
            .open(
                AccountId(uuid::Uuid::nil()),
                login(),
                false,
                Authentication::password_at(T0),
            )
            .await
            .unwrap();
        let handle = session_handle(&opened.cookie_value);
        let given =
            |party: &str, ticket: &str| Attachment::new(AttachedProtocol::Cas, party, ticket);
        for item in [
            given("app https://a/", "ST-1"),
            given("app https://b/", "ST-2"),
            given("app https://a/", "ST-3"),
            Attachment::new(AttachedProtocol::Oidc, "app https://a/", "app"),
        ] {
            sessions
                .attach(&handle, &opened.session, &item)
                .await
                .unwrap();
        }
        let mut attached = sessions.take_attached(&handle).await.unwrap();
        attached.sort_by(|a, b| a.payload.cmp(&b.payload));
        assert_eq!(
            attached,
            vec![
                given("app https://b/", "ST-2"),
                given("app https://a/", "ST-3"),
                Attachment::new(AttachedProtocol::Oidc, "app https://a/", "app"),
            ],
            "ST-1 replaced by the same service's ST-3; the same party of another protocol kept"
        );
    }

    #[tokio::test]
    async fn a_session_recorded_before_the_upgrade_still_ends_what_it_gave_out() {
        let store = Arc::new(MapStore::default());
        let sessions = SessionManager::new(
            store.clone(),
            Arc::new(ManualClock::starting_at(T0)),
            SessionPolicy::default(),
        );
        let opened = sessions
            .open(
                AccountId(uuid::Uuid::nil()),
                login(),
                false,
                Authentication::password_at(T0),
            )
            .await
            .unwrap();
        let handle = session_handle(&opened.cookie_value);
        let legacy_cas = r#"{"service_id":"app","service":"https://app/","ticket":"ST-1"}"#;
        for member in [legacy_cas, r#"{"oidc_client":"moodle"}"#] {
            store
                .set_add(
                    &legacy_attached_key(&handle),
                    member,
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
        }
        let new = Attachment::new(AttachedProtocol::Cas, "app https://app/", "ST-2");
        sessions
            .attach(&handle, &opened.session, &new)
            .await
            .unwrap();
        let (_, ended) = sessions.end(&opened.cookie_value).await.unwrap().unwrap();
        let mut payloads: Vec<_> = ended.attached.iter().map(|a| a.payload.as_str()).collect();
        payloads.sort_unstable();
        assert_eq!(payloads, vec!["ST-2", "moodle", legacy_cas]);
        assert!(store
            .set_members(&legacy_attached_key(&handle))
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn ending_all_sessions_of_an_account() {
        let sessions = manager();
        let account = AccountId(uuid::Uuid::nil());
        for _ in 0..2 {
            sessions
                .open(account, login(), false, Authentication::password_at(T0))
                .await
                .unwrap();
        }
        let ended = sessions.end_all_for(account).await.unwrap();
        assert_eq!(ended.len(), 2);
        assert!(sessions.sessions_of(account).await.unwrap().is_empty());
        let other = AccountId(uuid::Uuid::max());
        assert!(sessions
            .end_handle(other, &ended[0].handle)
            .await
            .unwrap()
            .is_none());
    }
}
