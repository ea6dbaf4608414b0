//! OAuth grants over the shared store: refresh-token families with rotation and reuse
//! detection (RFC 6749 §6 and §10.4, RFC 9700 §4.14.2), revocation (RFC 7009), grant
//! revocation on authorization-code reuse (OpenID Connect Core 1.0 §3.1.3.2, RFC 6749
//! §4.1.2) and on logout (OpenID Connect Back-Channel Logout 1.0 §2.7).
//!
//! * A [`Grant`] is what one authorization-code redemption (or one `client_credentials`
//!   request) granted; every token issued from it carries its `grant_id`.
//! * A refresh token is [`REFRESH_TOKEN_CHARS`] characters `[A-Za-z0-9]` from the OS CSPRNG
//!   (≈ 256 bits). The store keys it by its SHA-256 only, so a dump of Redis (or of its
//!   persistence files, or a replica) yields no token that can be presented: the raw value
//!   exists only in the client's hands. Store keys:
//!   - `oidc:rtf:<family id>` → the family: its [`Grant`] and when the chain must end;
//!   - `oidc:rt:<sha256(token)>` → the token: its family, grant, client and expiry, and a
//!     copy of the family's grant and end, linked ([`EphemeralStore::get_linked`]) to the
//!     grant's revocation marker and, for a grant tied to its SSO session, to the session:
//!     one round trip reads all a rotation decides on. Kept until the token expires, *after*
//!     it was used, to recognise a reuse;
//!   - `oidc:rt-live:<sha256(token)>` → present while the token is unused. Rotation `take`s
//!     it: the store's atomic read-and-delete decides which of any number of concurrent
//!     presentations (on any instance) wins;
//!   - `oidc:grant-revoked:<grant id>` → the grant is revoked. It lives longer than any token
//!     of the grant can ([`Grants::revoke_grant`]);
//!   - `oidc:session-grants:<session handle>` → the grants issued on one SSO session.
//! * Rotation (RFC 9700 §4.14.2): each use of a refresh token returns the next one of its
//!   family and ends the used one. A used token presented again (while it would still be
//!   valid) means two parties held it, so the whole grant is revoked: the attacker's and the
//!   legitimate client's tokens alike. Two *concurrent* refreshes with the same token count as
//!   reuse too: one wins, the other revokes the grant.
//! * Lifetimes (by the [`Clock`]; store TTLs are longer and only collect garbage): each
//!   refresh token lives [`TokenPolicy::refresh_token_ttl`] unused (idle lifetime); a chain
//!   ends [`TokenPolicy::refresh_family_max`] after its grant was issued, however often it is
//!   rotated.
//! * Time decisions use the caller's clock; a used token presented after it would have
//!   expired is merely unknown (the attacker gains nothing from it, and remembering every
//!   used token for the chain's whole life would cost store memory for no security gain).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_core::clock::Clock;
use sesame_core::error::StoreError;
use sesame_core::ids::AccountId;
use sesame_core::ports::{linked_value, split_linked_value, EphemeralStore, SetMember};
use sesame_core::random;
use sesame_core::session::session_store_key;
use time::OffsetDateTime;

use super::codes::{TokenError, TokenErrorCode};

/// Characters of a refresh token (43 × log2(62) ≈ 256 bits, decision 7).
pub const REFRESH_TOKEN_CHARS: usize = 43;

/// Longest string looked up as a refresh token; longer or non-alphanumeric input is refused
/// without a store round trip.
pub const MAX_REFRESH_TOKEN_CHARS: usize = 128;

/// Added to every store TTL, which only collects garbage (time decisions use the [`Clock`]);
/// covers clock differences between instances and the store.
pub const GRANT_TTL_MARGIN: Duration = Duration::from_secs(300);

/// Default lifetime of an access token: 5 minutes.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);

/// Default idle lifetime of a refresh token: 8 hours.
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);

/// Default absolute lifetime of a refresh-token chain: 30 days.
pub const DEFAULT_REFRESH_FAMILY_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// Lifetimes of the tokens of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Lifetime of an access token (default 5 min).
    pub access_token_ttl: Duration,
    /// How long each refresh token stays usable if not used (default 8 h).
    pub refresh_token_ttl: Duration,
    /// Absolute lifetime of a chain of refresh tokens, from the grant's issue (default 30
    /// days).
    pub refresh_family_max: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            refresh_family_max: DEFAULT_REFRESH_FAMILY_MAX,
        }
    }
}

/// What a token chain was granted: one per authorization-code redemption or
/// `client_credentials` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Identifies the grant (random; from `CodeGrant::grant_id` for the code flow).
    pub grant_id: String,
    /// The client the grant was issued to.
    pub client_id: String,
    /// The person; `None` for `client_credentials`.
    pub account_id: Option<AccountId>,
    /// The person's login.
    pub login: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When credentials were last entered (`auth_time`; unix seconds in the store).
    #[serde(with = "time::serde::timestamp::option")]
    pub auth_time: Option<OffsetDateTime>,
    /// Authentication methods (`amr`).
    pub amr: Vec<String>,
    /// Authentication context class (`acr`).
    pub acr: Option<String>,
    /// The SSO session handle; `None` for `client_credentials`.
    pub session_handle: Option<String>,
    /// Scope `offline_access` was granted: the grant survives the end of its SSO session.
    pub offline: bool,
    /// When the grant was made (unix milliseconds in the store). Its refresh-token chain ends
    /// [`TokenPolicy::refresh_family_max`] later.
    #[serde(with = "time::serde::timestamp::milliseconds_i64")]
    pub issued_at: OffsetDateTime,
    /// The claims released for the granted scopes (copied into each access token).
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// What a rotation gives: the grant, the next refresh token, and the session as read.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The grant the token belongs to.
    pub grant: Grant,
    /// The next refresh token (raw).
    pub next: String,
    /// The grant's SSO session record as the store held it when the token was read:
    /// `Some(None)` if it was gone, `Some(Some(record))` if present (check it with
    /// `SessionManager::is_live_record`). `None` when it was not read (an `offline` grant, a
    /// grant without session, or a token written before sessions were linked): the caller
    /// reads the session itself if it needs to.
    pub session: Option<Option<String>>,
    /// The access token stored with the successor, if the caller asked for one.
    pub access_token: Option<String>,
}

/// What a rotation stores with the successor token, in the same step: an access token made
/// from the family's grant ([`super::tokens::TokenService::prepare_access_token`]).
pub type AccessTokenMaker<'a> =
    Box<dyn FnOnce(&Grant) -> Result<super::tokens::PreparedAccessToken, StoreError> + Send + 'a>;

/// A refresh-token family as stored under `oidc:rtf:<family id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FamilyRecord {
    grant: Grant,
    /// When the chain ends, whatever its rotations.
    #[serde(with = "time::serde::timestamp::milliseconds_i64")]
    expires_at: OffsetDateTime,
}

/// One refresh token as stored under `oidc:rt:<sha256(token)>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshRecord {
    family_id: String,
    grant_id: String,
    client_id: String,
    /// The family's grant and end, copied from its record so that a rotation need not read
    /// it. Absent from tokens written before the copy existed: the family is then read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    family: Option<FamilyRecord>,
    /// When this token stops being usable (idle lifetime, capped by the family's end).
    #[serde(with = "time::serde::timestamp::milliseconds_i64")]
    expires_at: OffsetDateTime,
    /// When the family ends.
    #[serde(with = "time::serde::timestamp::milliseconds_i64")]
    family_expires_at: OffsetDateTime,
}

/// A member of `oidc:session-grants:<handle>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionGrant {
    grant_id: String,
    client_id: String,
    offline: bool,
}

/// A refresh token prepared by [`Grants::prepare_refresh_token`].
#[derive(Debug, Clone)]
pub struct PreparedRefreshToken {
    /// The token to hand out (raw: only its hash is stored).
    pub token: String,
    /// `(key, value, ttl)` records to store.
    pub puts: Vec<(String, String, Duration)>,
}

fn family_key(family_id: &str) -> String {
    format!("oidc:rtf:{family_id}")
}

fn refresh_key(hash: &str) -> String {
    format!("oidc:rt:{hash}")
}

fn live_key(hash: &str) -> String {
    format!("oidc:rt-live:{hash}")
}

pub(crate) fn revoked_grant_key(grant_id: &str) -> String {
    format!("oidc:grant-revoked:{grant_id}")
}

fn session_grants_key(session_handle: &str) -> String {
    format!("oidc:session-grants:{session_handle}")
}

fn consent_grants_key(account_id: &AccountId, client_id: &str) -> String {
    format!("oidc:consent-grants:{account_id}:{client_id}")
}

fn invalid_grant(description: &'static str) -> TokenError {
    TokenError::Rejected {
        code: TokenErrorCode::InvalidGrant,
        description,
    }
}

fn corrupt(e: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// `d` as a time span, saturating.
fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// The store TTL for something that must live until `until`: the time left plus the margin.
fn ttl_until(until: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(until - now)
        .unwrap_or(Duration::ZERO)
        .saturating_add(GRANT_TTL_MARGIN)
}

fn well_formed(presented: &str) -> bool {
    !presented.is_empty()
        && presented.len() <= MAX_REFRESH_TOKEN_CHARS
        && presented.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Refresh tokens, grant and access-token revocation, in the shared store.
#[derive(Debug, Clone)]
pub struct Grants {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    policy: TokenPolicy,
}

impl Grants {
    /// Grants in `store`, timed by `clock`, with the lifetimes of `policy`.
    pub fn new(store: Arc<dyn EphemeralStore>, clock: Arc<dyn Clock>, policy: TokenPolicy) -> Self {
        Self {
            store,
            clock,
            policy,
        }
    }

    /// The lifetimes in force.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// How long a revocation marker must live: past the end of the longest chain, plus the
    /// last access token issued from it.
    fn revocation_ttl(&self) -> Duration {
        self.policy
            .refresh_family_max
            .saturating_add(self.policy.access_token_ttl)
            .saturating_add(GRANT_TTL_MARGIN)
    }

    /// Remembers that `grant` was issued on its SSO session, so that
    /// [`Grants::revoke_session_grants`] finds it at logout. Does nothing for grants without
    /// a session. The token endpoint calls this on every code redemption (with or without a
    /// refresh token) *before* it checks that the session still lives: a logout racing the
    /// redemption then either sees the grant or ends the session first.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn record_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        for m in self.grant_members(grant)? {
            self.store.set_add(&m.set, &m.member, m.ttl).await?;
        }
        Ok(())
    }

    /// Where [`Grants::record_grant`] records `grant`: the person's grants for the client (so
    /// that withdrawing the consent ends them) and the session's (so that its end does), for
    /// a caller that writes them in one step with the tokens
    /// ([`EphemeralStore::write_while_live`]).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the session's member cannot be written as JSON.
    pub fn grant_members(&self, grant: &Grant) -> Result<Vec<SetMember>, StoreError> {
        let mut members = Vec::with_capacity(2);
        if let Some(account_id) = &grant.account_id {
            members.push(SetMember {
                set: consent_grants_key(account_id, &grant.client_id),
                member: grant.grant_id.clone(),
                ttl: self.revocation_ttl(),
            });
        }
        if let Some(handle) = &grant.session_handle {
            let member = serde_json::to_string(&SessionGrant {
                grant_id: grant.grant_id.clone(),
                client_id: grant.client_id.clone(),
                offline: grant.offline,
            })
            .map_err(|e| corrupt(&e))?;
            members.push(SetMember {
                set: session_grants_key(handle),
                member,
                ttl: self.revocation_ttl(),
            });
        }
        Ok(members)
    }

    /// One refresh token of `family` (id `family_id`): the raw token, its hash, and the record
    /// to store under [`refresh_key`] with its TTL.
    fn new_refresh_token(
        &self,
        family_id: &str,
        family: &FamilyRecord,
        now: OffsetDateTime,
    ) -> Result<(String, String, String, Duration), StoreError> {
        let token = random::alphanumeric(REFRESH_TOKEN_CHARS);
        let hash = random::sha256_hex(&token);
        let expires_at = now
            .checked_add(span(self.policy.refresh_token_ttl))
            .map_or(family.expires_at, |idle| idle.min(family.expires_at));
        let record = RefreshRecord {
            family_id: family_id.to_owned(),
            grant_id: family.grant.grant_id.clone(),
            client_id: family.grant.client_id.clone(),
            family: Some(family.clone()),
            expires_at,
            family_expires_at: family.expires_at,
        };
        let raw = serde_json::to_string(&record).map_err(|e| corrupt(&e))?;
        // Read along with the record at the next rotation: the revocation marker, and the
        // session for a grant that ends with it.
        let revoked = revoked_grant_key(&family.grant.grant_id);
        let session = match (&family.grant.session_handle, family.grant.offline) {
            (Some(handle), false) => Some(session_store_key(handle)),
            _ => None,
        };
        let links: Vec<&str> = std::iter::once(revoked.as_str())
            .chain(session.as_deref())
            .collect();
        Ok((
            token,
            hash,
            linked_value(&links, &raw),
            ttl_until(expires_at, now),
        ))
    }

    /// Starts a refresh-token family for `grant` and returns its first token (the raw value,
    /// [`REFRESH_TOKEN_CHARS`] characters, ≈ 256 random bits). Also records the grant on its
    /// session ([`Grants::record_grant`]).
    ///
    /// The chain ends [`TokenPolicy::refresh_family_max`] after `grant.issued_at` (or now, if
    /// that lies in the future), so a revocation marker of the grant outlives every token of
    /// it. A token issued for a grant already revoked or past its end is refused when used.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails; no usable token exists then.
    pub async fn issue_refresh_token(&self, grant: &Grant) -> Result<String, StoreError> {
        let prepared = self.prepare_refresh_token(grant)?;
        // The grant recorded before any token of it exists, so that a logout or a withdrawn
        // consent in between finds it; then the family, the token's record and its live
        // marker, in that order (a live marker without its record would be refused anyway).
        self.record_grant(grant).await?;
        for (key, value, ttl) in &prepared.puts {
            self.store.put(key, value, *ttl).await?;
        }
        Ok(prepared.token)
    }

    /// A new refresh-token family for `grant` and its first token, as
    /// [`Grants::issue_refresh_token`] stores them, not yet stored: the records to write (the
    /// family, the token's record, its live marker), for a caller that writes them in one
    /// step with the grant's members ([`Grants::grant_members`]).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a record cannot be written as JSON.
    pub fn prepare_refresh_token(&self, grant: &Grant) -> Result<PreparedRefreshToken, StoreError> {
        let now = self.clock.now();
        let started = grant.issued_at.min(now);
        let family_expires_at = started
            .checked_add(span(self.policy.refresh_family_max))
            .unwrap_or(now);
        let family_id = random::token();
        let family = FamilyRecord {
            grant: grant.clone(),
            expires_at: family_expires_at,
        };
        let raw = serde_json::to_string(&family).map_err(|e| corrupt(&e))?;
        let (token, hash, record, ttl) = self.new_refresh_token(&family_id, &family, now)?;
        Ok(PreparedRefreshToken {
            token,
            puts: vec![
                (
                    family_key(&family_id),
                    raw,
                    ttl_until(family_expires_at, now),
                ),
                (refresh_key(&hash), record, ttl),
                (live_key(&hash), family_id, ttl),
            ],
        })
    }

    /// Redeems refresh token `presented` for the authenticated client `client_id` (RFC 6749
    /// §6): returns its grant and the next refresh token of its family. In this order:
    ///
    /// 1. not `[A-Za-z0-9]{1,128}` or unknown ⇒ `invalid_grant`, without a store write;
    /// 2. issued to another client ⇒ `invalid_grant`, and the token is **not** consumed (a
    ///    client cannot burn another client's token);
    /// 3. expired (idle lifetime) or its chain past [`TokenPolicy::refresh_family_max`] ⇒
    ///    `invalid_grant`;
    /// 4. grant revoked ⇒ `invalid_grant`;
    /// 5. the token is taken (atomic: of concurrent presentations exactly one gets past this
    ///    step); already used ⇒ the whole grant is revoked ([`Grants::revoke_grant`]) and
    ///    `invalid_grant`.
    ///
    /// The caller then checks, for a grant that is not `offline`, that its SSO session still
    /// lives (the session's end revokes such grants, [`Grants::revoke_session_grants`]).
    ///
    /// # Errors
    /// As above; [`TokenError::Store`] if the store fails (the presented token may then be
    /// spent).
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        client_id: &str,
        requested_scopes: Option<&[String]>,
    ) -> Result<(Grant, String), TokenError> {
        self.rotate_refresh_token_with_session(presented, client_id, requested_scopes, None)
            .await
            .map(|rotated| (rotated.grant, rotated.next))
    }

    /// [`Grants::rotate_refresh_token`], also returning the grant's SSO session record as read
    /// with the token (see [`Rotated::session`]), so that the caller can check the session
    /// without another round trip. In the usual case the rotation costs two round trips: one
    /// reads the token, its grant's revocation marker and its session; one takes the token and
    /// writes its successor, and the access token `access` makes from the family's grant
    /// (stored only if the token is taken; if the caller then finds the session ended, the
    /// grant's revocation refuses that access token too, as it is linked to the marker).
    ///
    /// # Errors
    /// As [`Grants::rotate_refresh_token`].
    pub async fn rotate_refresh_token_with_session(
        &self,
        presented: &str,
        client_id: &str,
        requested_scopes: Option<&[String]>,
        access: Option<AccessTokenMaker<'_>>,
    ) -> Result<Rotated, TokenError> {
        if !well_formed(presented) {
            return Err(invalid_grant("invalid refresh token"));
        }
        let hash = random::sha256_hex(presented);
        let Some((raw, linked)) = self.store.get_linked(&refresh_key(&hash)).await? else {
            return Err(invalid_grant("invalid refresh token"));
        };
        let record: RefreshRecord = serde_json::from_str(&raw).map_err(|e| corrupt(&e))?;
        // Reading before taking lets a wrong client be refused without spending the token;
        // the take below is still what decides who uses it.
        if record.client_id != client_id {
            return Err(invalid_grant("invalid refresh token"));
        }
        let now = self.clock.now();
        if record.family_expires_at < now {
            return Err(invalid_grant(
                "refresh token chain reached its maximum lifetime",
            ));
        }
        if record.expires_at < now {
            return Err(invalid_grant("refresh token expired"));
        }
        // Checked before the take: once a presentation has taken the token, the revocation
        // that concurrent presentations of the same token trigger (below) must not make it
        // fail as well, or of several racing presentations none might succeed. A revocation
        // landing between this read and the take leaves the next token refused at its use
        // (it links to the marker), like a revocation just after the rotation.
        let mut linked = linked.into_iter();
        let revoked = match linked.next() {
            Some(marker) => marker.is_some(),
            // A token written before the links existed.
            None => self.is_grant_revoked(&record.grant_id).await?,
        };
        if revoked {
            return Err(invalid_grant("the grant was revoked"));
        }
        let session = linked.next();
        let family = match record.family.clone() {
            Some(family) => family,
            None => {
                let Some(raw) = self.store.get(&family_key(&record.family_id)).await? else {
                    return Err(invalid_grant("invalid refresh token"));
                };
                serde_json::from_str(&raw).map_err(|e| corrupt(&e))?
            }
        };
        if family.grant.grant_id != record.grant_id || family.grant.client_id != client_id {
            return Err(
                StoreError::Corrupt("refresh token does not match its family".to_owned()).into(),
            );
        }
        // RFC 6749 §6: a refresh may narrow the scope, never widen it. Refused before the
        // take, so a client that asked too much keeps its refresh token.
        if let Some(requested) = requested_scopes {
            if requested.iter().any(|s| !family.grant.scopes.contains(s)) {
                return Err(TokenError::Rejected {
                    code: TokenErrorCode::InvalidScope,
                    description: "the scope exceeds what was granted",
                });
            }
        }
        let (next, next_hash, next_record, ttl) =
            self.new_refresh_token(&record.family_id, &family, now)?;
        let (next_key, next_live) = (refresh_key(&next_hash), live_key(&next_hash));
        let prepared = match access {
            Some(make) => Some(make(&family.grant)?),
            None => None,
        };
        let mut successor = vec![
            (next_key.as_str(), next_record.as_str(), ttl),
            (next_live.as_str(), record.family_id.as_str(), ttl),
        ];
        if let Some(p) = &prepared {
            successor.push((p.key.as_str(), p.value.as_str(), p.ttl));
        }
        // One step: the token is spent and its successor exists, or neither.
        if self
            .store
            .take_and_put(&live_key(&hash), &successor)
            .await?
            .is_none()
        {
            // The live marker and the record share one TTL and the clock said the token has
            // not expired: someone else used this token.
            self.revoke_grant(&record.grant_id).await?;
            return Err(invalid_grant(
                "refresh token already used: every token of the grant is revoked",
            ));
        }
        Ok(Rotated {
            grant: family.grant,
            next,
            session,
            access_token: prepared.map(|p| p.token),
        })
    }

    /// RFC 7009 §2.1: revokes refresh token `presented` of client `client_id`, and with it
    /// its whole grant (every refresh and access token of it, as §2.1 recommends). `false`
    /// if the token is malformed, unknown or belongs to another client (the endpoint answers
    /// 200 all the same, §2.2); in the last case nothing changes.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn revoke_refresh_token(
        &self,
        presented: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        if !well_formed(presented) {
            return Ok(false);
        }
        let hash = random::sha256_hex(presented);
        let Some(raw) = self.store.get(&refresh_key(&hash)).await? else {
            return Ok(false);
        };
        let (_, raw) = split_linked_value(&raw);
        let record: RefreshRecord = serde_json::from_str(raw).map_err(|e| corrupt(&e))?;
        if record.client_id != client_id {
            return Ok(false);
        }
        self.revoke_grant(&record.grant_id).await?;
        self.store.delete(&live_key(&hash)).await?;
        Ok(true)
    }

    /// Revokes everything issued under `grant_id` (code reuse, refresh-token reuse, logout,
    /// RFC 7009): its refresh tokens are refused from now on, and resource servers, the
    /// UserInfo and introspection endpoints must refuse its access tokens
    /// ([`Grants::is_grant_revoked`]). Idempotent.
    ///
    /// The marker lives [`TokenPolicy::refresh_family_max`] plus an access token's lifetime
    /// (plus a margin): every chain of the grant ends `refresh_family_max` after the grant's
    /// issue, which precedes the revocation, so no token of the grant outlives it.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails: the grant may then not be revoked.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store
            .put(
                &revoked_grant_key(grant_id),
                &now.unix_timestamp().to_string(),
                self.revocation_ttl(),
            )
            .await
    }

    /// Whether `grant_id` was revoked.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails (never answered as "not revoked").
    pub async fn is_grant_revoked(&self, grant_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .get(&revoked_grant_key(grant_id))
            .await?
            .is_some())
    }

    /// At the end of SSO session `session_handle` (logout): revokes its grants that are not
    /// `offline` (Back-Channel Logout 1.0 §2.7: offline grants survive the session) and
    /// returns the ids of every client that had a grant on it, offline or not, sorted and
    /// without duplicates, to send logout tokens to. Forgets the session's grants, so a
    /// second call returns nothing.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails. An unreadable member does not stop the others
    /// from being revoked; it is reported as [`StoreError::Corrupt`] afterwards.
    pub async fn revoke_session_grants(
        &self,
        session_handle: &str,
    ) -> Result<Vec<String>, StoreError> {
        let key = session_grants_key(session_handle);
        let mut clients = BTreeSet::new();
        let mut unreadable = None;
        for member in self.store.set_members(&key).await? {
            match serde_json::from_str::<SessionGrant>(&member) {
                Ok(entry) => {
                    if !entry.offline {
                        self.revoke_grant(&entry.grant_id).await?;
                    }
                    clients.insert(entry.client_id);
                }
                Err(e) => unreadable = Some(corrupt(&e)),
            }
        }
        if let Some(e) = unreadable {
            return Err(e);
        }
        self.store.delete(&key).await?;
        Ok(clients.into_iter().collect())
    }

    /// Revokes every grant `account_id` gave `client_id` (offline ones included): the person
    /// withdrew their consent. Returns how many grants were revoked.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn revoke_consent_grants(
        &self,
        account_id: &AccountId,
        client_id: &str,
    ) -> Result<usize, StoreError> {
        let key = consent_grants_key(account_id, client_id);
        let grants = self.store.set_members(&key).await?;
        for grant_id in &grants {
            self.revoke_grant(grant_id).await?;
        }
        self.store.delete(&key).await?;
        Ok(grants.len())
    }
}

#[cfg(test)]
mod tests {
    use sesame_core::clock::ManualClock;
    use sesame_store::testing::{random_prefix, skip_or_fail, test_redis_url};
    use sesame_store::{MemoryStore, RedisStore};
    use time::macros::datetime;

    use super::*;

    const START: OffsetDateTime = datetime!(2026-03-02 08:00 UTC);

    struct Fixture {
        grants: Grants,
        clock: Arc<ManualClock>,
        store: Arc<dyn EphemeralStore>,
    }

    fn fixture_on(store: Arc<dyn EphemeralStore>, policy: TokenPolicy) -> Fixture {
        let clock = Arc::new(ManualClock::starting_at(START));
        Fixture {
            grants: Grants::new(store.clone(), clock.clone(), policy),
            clock,
            store,
        }
    }

    fn fixture() -> Fixture {
        fixture_on(Arc::new(MemoryStore::new()), TokenPolicy::default())
    }

    fn grant(client_id: &str, session: Option<&str>, offline: bool) -> Grant {
        Grant {
            grant_id: random::token(),
            client_id: client_id.to_owned(),
            account_id: Some(AccountId::new_random()),
            login: Some("alice.martin".to_owned()),
            scopes: vec!["openid".to_owned(), "profile".to_owned()],
            auth_time: Some(datetime!(2026-03-02 07:59 UTC)),
            amr: vec!["pwd".to_owned()],
            acr: None,
            session_handle: session.map(str::to_owned),
            offline,
            issued_at: START,
            claims: serde_json::Map::new(),
        }
    }

    fn rejected(result: Result<(Grant, String), TokenError>) -> TokenErrorCode {
        match result {
            Err(e @ TokenError::Rejected { .. }) => e.code().unwrap(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn rotation_yields_a_new_token_and_the_old_one_then_fails() {
        let f = fixture();
        let g = grant("moodle", Some("h1"), false);
        let first = f.grants.issue_refresh_token(&g).await.unwrap();
        assert_eq!(first.len(), REFRESH_TOKEN_CHARS);
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
        let (got, second) = f
            .grants
            .rotate_refresh_token(&first, "moodle", None)
            .await
            .unwrap();
        assert_eq!(got, g);
        assert_ne!(second, first);
        assert_eq!(second.len(), REFRESH_TOKEN_CHARS);
        assert_eq!(
            rejected(f.grants.rotate_refresh_token(&first, "moodle", None).await),
            TokenErrorCode::InvalidGrant
        );
    }

    #[tokio::test]
    async fn chain_of_rotations_keeps_the_grant() {
        let f = fixture();
        let g = grant("moodle", None, true);
        let mut token = f.grants.issue_refresh_token(&g).await.unwrap();
        for _ in 0..10 {
            f.clock.advance(time::Duration::minutes(5));
            let (got, next) = f
                .grants
                .rotate_refresh_token(&token, "moodle", None)
                .await
                .unwrap();
            assert_eq!(got, g);
            token = next;
        }
        assert!(!f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
    }

    #[tokio::test]
    async fn reuse_of_an_old_token_revokes_the_grant_and_the_new_token() {
        let f = fixture();
        let g = grant("moodle", Some("h1"), false);
        let first = f.grants.issue_refresh_token(&g).await.unwrap();
        let (_, second) = f
            .grants
            .rotate_refresh_token(&first, "moodle", None)
            .await
            .unwrap();
        assert!(!f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        f.clock.advance(time::Duration::hours(1));
        // The attacker (or the client) presents the used token again.
        assert_eq!(
            rejected(f.grants.rotate_refresh_token(&first, "moodle", None).await),
            TokenErrorCode::InvalidGrant
        );
        assert!(f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        // The token the other party holds is dead too.
        assert_eq!(
            rejected(f.grants.rotate_refresh_token(&second, "moodle", None).await),
            TokenErrorCode::InvalidGrant
        );
    }

    #[tokio::test]
    async fn an_access_token_made_with_a_rotation_is_stored_only_if_the_token_was_taken() {
        let f = fixture();
        let bound = grant("moodle", None, false);
        let token = f.grants.issue_refresh_token(&bound).await.unwrap();
        let maker = |key: &'static str| -> AccessTokenMaker<'static> {
            Box::new(move |g: &Grant| {
                Ok(super::super::tokens::PreparedAccessToken {
                    token: format!("token-of-{}", g.grant_id),
                    key: key.to_owned(),
                    value: "access-record".to_owned(),
                    ttl: Duration::from_secs(600),
                })
            })
        };
        let rotated = f
            .grants
            .rotate_refresh_token_with_session(&token, "moodle", None, Some(maker("at-1")))
            .await
            .unwrap();
        assert_eq!(
            rotated.access_token,
            Some(format!("token-of-{}", bound.grant_id))
        );
        assert_eq!(
            f.store.get("at-1").await.unwrap().as_deref(),
            Some("access-record")
        );
        // The used token again: refused (and the grant revoked), no access token stored.
        let reused = f
            .grants
            .rotate_refresh_token_with_session(&token, "moodle", None, Some(maker("at-2")))
            .await;
        assert!(reused.is_err());
        assert_eq!(f.store.get("at-2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn rotation_reads_the_session_of_a_session_bound_grant_with_the_token() {
        let f = fixture();
        let handle = random::sha256_hex("cookie");
        f.store
            .put(
                &session_store_key(&handle),
                "session-record",
                Duration::from_secs(600),
            )
            .await
            .unwrap();
        let bound = grant("moodle", Some(&handle), false);
        let token = f.grants.issue_refresh_token(&bound).await.unwrap();
        let rotated = f
            .grants
            .rotate_refresh_token_with_session(&token, "moodle", None, None)
            .await
            .unwrap();
        assert_eq!(rotated.session, Some(Some("session-record".to_owned())));
        // The successor links to the session too; once it is gone, that shows.
        f.store.delete(&session_store_key(&handle)).await.unwrap();
        let rotated = f
            .grants
            .rotate_refresh_token_with_session(&rotated.next, "moodle", None, None)
            .await
            .unwrap();
        assert_eq!(rotated.session, Some(None));
        // An offline grant outlives its session: nothing to read.
        let offline = grant("moodle", Some(&handle), true);
        let token = f.grants.issue_refresh_token(&offline).await.unwrap();
        let rotated = f
            .grants
            .rotate_refresh_token_with_session(&token, "moodle", None, None)
            .await
            .unwrap();
        assert_eq!(rotated.session, None);
        // A revocation made after a rotation refuses the successor.
        f.grants.revoke_grant(&bound.grant_id).await.unwrap();
        let token = f.grants.issue_refresh_token(&bound).await.unwrap();
        assert_eq!(
            rejected(f.grants.rotate_refresh_token(&token, "moodle", None).await),
            TokenErrorCode::InvalidGrant
        );
    }

    #[tokio::test]
    async fn refresh_tokens_are_hashed_at_rest() {
        let f = fixture();
        let g = grant("moodle", Some("h1"), false);
        let token = f.grants.issue_refresh_token(&g).await.unwrap();
        for key in [format!("oidc:rt:{token}"), format!("oidc:rt-live:{token}")] {
            assert!(f.store.get(&key).await.unwrap().is_none());
        }
        let hash = random::sha256_hex(&token);
        let record = f
            .store
            .get(&format!("oidc:rt:{hash}"))
            .await
            .unwrap()
            .unwrap();
        assert!(!record.contains(&token));
        let record: RefreshRecord = serde_json::from_str(split_linked_value(&record).1).unwrap();
        let family = f
            .store
            .get(&family_key(&record.family_id))
            .await
            .unwrap()
            .unwrap();
        assert!(!family.contains(&token));
        let live = f
            .store
            .get(&format!("oidc:rt-live:{hash}"))
            .await
            .unwrap()
            .unwrap();
        assert!(!live.contains(&token));
    }

    #[tokio::test]
    async fn wrong_client_gets_invalid_grant_and_does_not_consume_the_token() {
        let f = fixture();
        let g = grant("moodle", Some("h1"), false);
        let token = f.grants.issue_refresh_token(&g).await.unwrap();
        for _ in 0..3 {
            assert_eq!(
                rejected(f.grants.rotate_refresh_token(&token, "evil", None).await),
                TokenErrorCode::InvalidGrant
            );
        }
        assert!(!f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        let (got, _) = f
            .grants
            .rotate_refresh_token(&token, "moodle", None)
            .await
            .unwrap();
        assert_eq!(got.grant_id, g.grant_id);
    }

    #[tokio::test]
    async fn malformed_or_unknown_tokens_are_invalid_grant() {
        let f = fixture();
        for fake in [
            String::new(),
            "x".repeat(MAX_REFRESH_TOKEN_CHARS + 1),
            "abc def".to_owned(),
            "abc%00".to_owned(),
            random::alphanumeric(REFRESH_TOKEN_CHARS),
        ] {
            assert_eq!(
                rejected(f.grants.rotate_refresh_token(&fake, "moodle", None).await),
                TokenErrorCode::InvalidGrant
            );
            assert!(!f
                .grants
                .revoke_refresh_token(&fake, "moodle")
                .await
                .unwrap());
        }
    }

    #[tokio::test]
    async fn expired_refresh_token_fails_without_revoking() {
        let f = fixture();
        let g = grant("moodle", Some("h1"), false);
        let at_limit = f.grants.issue_refresh_token(&g).await.unwrap();
        let past_limit = f.grants.issue_refresh_token(&g).await.unwrap();
        f.clock.advance(span(DEFAULT_REFRESH_TOKEN_TTL));
        let (_, next) = f
            .grants
            .rotate_refresh_token(&at_limit, "moodle", None)
            .await
            .unwrap();
        f.clock.advance(time::Duration::milliseconds(1));
        assert_eq!(
            rejected(
                f.grants
                    .rotate_refresh_token(&past_limit, "moodle", None)
                    .await
            ),
            TokenErrorCode::InvalidGrant
        );
        assert!(!f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        // The idle lifetime restarts with each rotation.
        f.grants
            .rotate_refresh_token(&next, "moodle", None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn family_ends_at_its_maximum_lifetime_however_often_rotated() {
        let f = fixture();
        let g = grant("moodle", None, true);
        let mut token = f.grants.issue_refresh_token(&g).await.unwrap();
        let end = START + span(DEFAULT_REFRESH_FAMILY_MAX);
        let step = time::Duration::hours(7);
        while f.clock.now() + step <= end {
            f.clock.advance(step);
            token = f
                .grants
                .rotate_refresh_token(&token, "moodle", None)
                .await
                .unwrap()
                .1;
        }
        // Less than the idle lifetime later, but past the chain's end.
        f.clock
            .advance(end - f.clock.now() + time::Duration::seconds(1));
        assert!(f.clock.now() < end + step);
        assert_eq!(
            rejected(f.grants.rotate_refresh_token(&token, "moodle", None).await),
            TokenErrorCode::InvalidGrant
        );
        assert!(!f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
    }

    #[tokio::test]
    async fn family_lifetime_counts_from_the_grant() {
        let f = fixture();
        let g = grant("moodle", None, true);
        f.clock
            .advance(span(DEFAULT_REFRESH_FAMILY_MAX) + time::Duration::seconds(1));
        let late = f.grants.issue_refresh_token(&g).await.unwrap();
        assert_eq!(
            rejected(f.grants.rotate_refresh_token(&late, "moodle", None).await),
            TokenErrorCode::InvalidGrant
        );
    }

    #[tokio::test]
    async fn revoke_refresh_token_revokes_the_grant_of_its_own_client_only() {
        let f = fixture();
        let g = grant("moodle", Some("h1"), false);
        let token = f.grants.issue_refresh_token(&g).await.unwrap();
        let sibling = f.grants.issue_refresh_token(&g).await.unwrap();
        assert!(!f.grants.revoke_refresh_token(&token, "evil").await.unwrap());
        assert!(!f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        assert!(f
            .grants
            .revoke_refresh_token(&token, "moodle")
            .await
            .unwrap());
        assert!(f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        for t in [&token, &sibling] {
            assert_eq!(
                rejected(f.grants.rotate_refresh_token(t, "moodle", None).await),
                TokenErrorCode::InvalidGrant
            );
        }
        // Idempotent.
        f.grants.revoke_grant(&g.grant_id).await.unwrap();
        assert!(f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
    }

    #[tokio::test]
    async fn revoked_grant_refuses_its_refresh_tokens() {
        let f = fixture();
        let g = grant("moodle", Some("h1"), false);
        let other = grant("moodle", Some("h1"), false);
        let token = f.grants.issue_refresh_token(&g).await.unwrap();
        let other_token = f.grants.issue_refresh_token(&other).await.unwrap();
        f.grants.revoke_grant(&g.grant_id).await.unwrap();
        assert_eq!(
            rejected(f.grants.rotate_refresh_token(&token, "moodle", None).await),
            TokenErrorCode::InvalidGrant
        );
        assert!(f
            .grants
            .rotate_refresh_token(&other_token, "moodle", None)
            .await
            .is_ok());
        assert!(!f.grants.is_grant_revoked(&other.grant_id).await.unwrap());
    }

    #[tokio::test]
    async fn revoke_session_grants_revokes_non_offline_only_and_returns_client_ids() {
        let f = fixture();
        let moodle = grant("moodle", Some("h1"), false);
        let moodle_again = grant("moodle", Some("h1"), false);
        let nextcloud = grant("nextcloud", Some("h1"), true);
        let gitlab = grant("gitlab", Some("h1"), false);
        let elsewhere = grant("wiki", Some("h2"), false);
        let service = Grant {
            account_id: None,
            login: None,
            session_handle: None,
            ..grant("batch", None, false)
        };
        let moodle_rt = f.grants.issue_refresh_token(&moodle).await.unwrap();
        f.grants.issue_refresh_token(&moodle_again).await.unwrap();
        let nextcloud_rt = f.grants.issue_refresh_token(&nextcloud).await.unwrap();
        // A grant without refresh token is recorded by the token endpoint.
        f.grants.record_grant(&gitlab).await.unwrap();
        f.grants.record_grant(&gitlab).await.unwrap();
        f.grants.issue_refresh_token(&elsewhere).await.unwrap();
        f.grants.issue_refresh_token(&service).await.unwrap();

        let clients = f.grants.revoke_session_grants("h1").await.unwrap();
        assert_eq!(clients, ["gitlab", "moodle", "nextcloud"]);
        for g in [&moodle, &moodle_again, &gitlab] {
            assert!(f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        }
        for g in [&nextcloud, &elsewhere, &service] {
            assert!(!f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        }
        assert_eq!(
            rejected(
                f.grants
                    .rotate_refresh_token(&moodle_rt, "moodle", None)
                    .await
            ),
            TokenErrorCode::InvalidGrant
        );
        assert!(f
            .grants
            .rotate_refresh_token(&nextcloud_rt, "nextcloud", None)
            .await
            .is_ok());
        assert!(f
            .grants
            .revoke_session_grants("h1")
            .await
            .unwrap()
            .is_empty());
        assert!(f
            .grants
            .revoke_session_grants("unknown")
            .await
            .unwrap()
            .is_empty());
    }

    async fn fifty_concurrent_rotations_succeed_once(f: Fixture) {
        let g = grant("moodle", Some("h1"), false);
        let token = f.grants.issue_refresh_token(&g).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let grants = f.grants.clone();
            let token = token.clone();
            tasks.push(tokio::spawn(async move {
                grants.rotate_refresh_token(&token, "moodle", None).await
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok((got, next)) => {
                    assert_eq!(got, g);
                    winners.push(next);
                }
                Err(e) => assert_eq!(e.code(), Some(TokenErrorCode::InvalidGrant), "{e}"),
            }
        }
        assert_eq!(winners.len(), 1);
        // Every loser saw a used token: the grant is revoked (RFC 9700 §4.14.2).
        assert!(f.grants.is_grant_revoked(&g.grant_id).await.unwrap());
        assert_eq!(
            rejected(
                f.grants
                    .rotate_refresh_token(&winners[0], "moodle", None)
                    .await
            ),
            TokenErrorCode::InvalidGrant
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn fifty_concurrent_rotations_succeed_once_in_memory() {
        fifty_concurrent_rotations_succeed_once(fixture()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn fifty_concurrent_rotations_succeed_once_on_redis() {
        let store =
            match RedisStore::connect(&test_redis_url(), &random_prefix(), Duration::from_secs(2))
                .await
            {
                Ok(store) => store,
                Err(e) => {
                    skip_or_fail("Redis", &e);
                    return;
                }
            };
        // Short lifetimes, so the test's keys leave Redis within minutes.
        let policy = TokenPolicy {
            access_token_ttl: Duration::from_secs(10),
            refresh_token_ttl: Duration::from_secs(30),
            refresh_family_max: Duration::from_secs(60),
        };
        fifty_concurrent_rotations_succeed_once(fixture_on(Arc::new(store), policy)).await;
    }
}
