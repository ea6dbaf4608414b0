//! Ticket issuance and validation over the shared store: `/login` issues service tickets,
//! `/validate`, `/serviceValidate`, `/proxyValidate`, `/p3/*` and `/samlValidate` consume
//! them, `/proxy` turns proxy-granting tickets into proxy tickets (CAS Protocol 3.0
//! §2.4–2.7, §3.1–3.4, §3.7; security rows A11–A15, C04, C13).
//!
//! * Ids are `ST-`, `PT-`, `PGT-`, `PGTIOU-` followed by 48 characters from the OS CSPRNG
//!   (`[A-Za-z0-9]`, ≈ 285 bits; §3.7 charset).
//! * The store holds `cas:<kind>:<sha256(id)>` → [`TicketGrant`] as JSON: a copy of the store
//!   yields no usable ticket.
//! * Service and proxy tickets are consumed with the store's atomic `take` (GETDEL) before
//!   any check, so every validation attempt burns the ticket whatever its outcome (§3.1.1,
//!   §3.2.1; A11, A12, C04). Expiry is decided by the [`Clock`]; the store's TTL (the
//!   lifetime plus [`STORE_TTL_MARGIN`]) only collects garbage.
//! * Proxy-granting tickets are listed under their SSO session
//!   ([`TicketGrant::session_key`]) so that logout can kill them
//!   ([`CasTickets::revoke_session_tickets`], §3.3.1).
//!
//! What this module does not do, and the caller must: check that the ticket's SSO session is
//! still live after a successful [`CasTickets::validate`] (logout, block and expiry end every
//! ticket of a session, as Apereo CAS deletes a TGT's descendants: A44, A54, C10), resolve
//! services in the registry, and call back `pgtUrl`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_core::clock::Clock;
use sesame_core::error::StoreError;
use sesame_core::ids::AccountId;
use sesame_core::login::methods::AuthnMethod;
use sesame_core::ports::{linked_value, EphemeralStore, MapEntry};
use sesame_core::random;
use sesame_core::session::{session_store_key, REMEMBER_ME_MAX_SECS};
use time::OffsetDateTime;

pub use super::{CasError, CasErrorCode};

/// Random characters after a ticket's prefix (48 × log2(62) ≈ 285 bits, security decision 7).
pub const TICKET_RANDOM_CHARS: usize = 48;

/// Longest ticket looked up in the store (§3.1.1 recommends supporting up to 256 characters;
/// Sesame's own are 51 to 55).
pub const MAX_TICKET_CHARS: usize = 256;

/// Added to every ticket's lifetime for the store's TTL, which only collects garbage: the
/// clock decides expiry. Kept small so that clock skew between instances cannot stretch a
/// ticket's life by more than this (F12).
pub const STORE_TTL_MARGIN: Duration = Duration::from_secs(5);

/// The kinds of CAS tickets Sesame issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketKind {
    /// Service ticket (`ST-`, §3.1): single use, short-lived.
    Service,
    /// Proxy ticket (`PT-`, §3.2): single use, short-lived.
    Proxy,
    /// Proxy-granting ticket (`PGT-`, §3.3): reusable until it expires or its session ends.
    ProxyGranting,
    /// Proxy-granting ticket IOU (`PGTIOU-`, §3.4): only correlates a PGT with a validation;
    /// never stored.
    ProxyGrantingIou,
}

impl TicketKind {
    /// The prefix ids of this kind start with, e.g. `ST-`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Service => "ST-",
            Self::Proxy => "PT-",
            Self::ProxyGranting => "PGT-",
            Self::ProxyGrantingIou => "PGTIOU-",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Self::Service => "st",
            Self::Proxy => "pt",
            Self::ProxyGranting => "pgt",
            Self::ProxyGrantingIou => "pgtiou",
        }
    }
}

/// A fresh ticket id of `kind`: its prefix and [`TICKET_RANDOM_CHARS`] random alphanumerics.
pub fn new_ticket_id(kind: TicketKind) -> String {
    format!(
        "{}{}",
        kind.prefix(),
        random::alphanumeric(TICKET_RANDOM_CHARS)
    )
}

/// The store key of ticket `id`: `cas:<kind>:<sha256 hex of id>`.
fn store_key(kind: TicketKind, id: &str) -> String {
    format!("cas:{}:{}", kind.namespace(), random::sha256_hex(id))
}

fn pgts_of(session_key: &str) -> String {
    format!("cas:pgts-of:{session_key}")
}

/// Only `[A-Za-z0-9-]` (§3.7) and at most [`MAX_TICKET_CHARS`]: anything else cannot be one of
/// ours and is refused without a store round trip.
fn is_well_formed(ticket: &str) -> bool {
    ticket.len() <= MAX_TICKET_CHARS
        && ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// What a ticket stands for: stored (as JSON) under the ticket's hashed id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketGrant {
    /// The exact service URL the ticket was issued for; validation compares it byte for byte.
    /// For a proxy-granting ticket: the service that validated with `pgtUrl`.
    pub service: String,
    /// The registry id of that service.
    pub service_id: String,
    /// The account authenticated.
    pub account_id: AccountId,
    /// The CAS user (`<cas:user>`), i.e. the login.
    pub login: String,
    /// When credentials were last entered (`authenticationDate`; unix seconds in JSON).
    #[serde(with = "time::serde::timestamp")]
    pub authenticated_at: OffsetDateTime,
    /// Credentials were entered to obtain this ticket (`isFromNewLogin`; satisfies `renew`).
    /// Always `false` for proxy tickets.
    pub from_new_login: bool,
    /// The SSO session is a "remember me" one (`longTermAuthenticationRequestTokenUsed`).
    pub remember_me: bool,
    /// Identifies the SSO session the ticket came from (Sesame uses
    /// `sesame_core::session::session_handle` of the `TGC` value): the caller checks with it
    /// that the session still lives, and logout revokes the session's PGTs with it. Opaque
    /// here.
    pub session_key: String,
    /// The proxy chain, most recent first (§2.6.2). Empty for service tickets. For a
    /// proxy-granting ticket: the chain its proxy tickets will carry, i.e. the callback URL
    /// (`pgtUrl`) that received it, then the chain of the ticket validated to obtain it.
    pub proxies: Vec<String>,
    /// When the ticket was issued; set by [`CasTickets`] from its clock (unix milliseconds
    /// in JSON). Whatever the caller puts here is replaced.
    #[serde(with = "time::serde::timestamp::milliseconds_i64")]
    pub issued_at: OffsetDateTime,
    /// The attributes released to the service, captured when the service ticket was issued
    /// (from the account read then), as an authorization code captures its claims: so that
    /// `/p3/serviceValidate` answers without reading the database. `None` when not captured
    /// (proxy-granting and proxy tickets, whose target service has its own release list):
    /// the caller then reads the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<(String, Vec<String>)>>,
    /// How the session was authenticated (RFC 8176 methods), for the CAS 3.0
    /// `authenticationMethod` and `successfulAuthenticationHandlers` attributes. A ticket
    /// stored before this was recorded reads as the password ([`TicketGrant::methods`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<AuthnMethod>,
}

impl TicketGrant {
    /// The methods behind the ticket; the password for a ticket issued before they were
    /// recorded (the only method there was).
    pub fn methods(&self) -> &[AuthnMethod] {
        if self.methods.is_empty() {
            &[AuthnMethod::Pwd]
        } else {
            &self.methods
        }
    }
}

/// Ticket lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasTicketPolicy {
    /// Service ticket lifetime in seconds (default 10, security decision 4; at most 300, §3.1.1).
    pub service_ticket_ttl_secs: u64,
    /// Proxy ticket lifetime in seconds (default 10; at most 300, §3.2.1).
    pub proxy_ticket_ttl_secs: u64,
    /// Proxy-granting ticket lifetime in seconds (default 7200; at most 30 days). A PGT also
    /// dies with its SSO session.
    pub proxy_granting_ticket_ttl_secs: u64,
}

impl Default for CasTicketPolicy {
    fn default() -> Self {
        Self {
            service_ticket_ttl_secs: 10,
            proxy_ticket_ttl_secs: 10,
            proxy_granting_ticket_ttl_secs: 7200,
        }
    }
}

/// Longest service or proxy ticket lifetime accepted (§3.1.1: "no longer than five minutes";
/// security row A13).
pub const MAX_SHORT_TICKET_TTL_SECS: u64 = 300;

impl CasTicketPolicy {
    /// Checks the values; the error names the field.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_SHORT_TICKET_TTL_SECS).contains(&self.service_ticket_ttl_secs) {
            return Err(format!(
                "service_ticket_ttl_secs must be between 1 and {MAX_SHORT_TICKET_TTL_SECS}"
            ));
        }
        if !(1..=MAX_SHORT_TICKET_TTL_SECS).contains(&self.proxy_ticket_ttl_secs) {
            return Err(format!(
                "proxy_ticket_ttl_secs must be between 1 and {MAX_SHORT_TICKET_TTL_SECS}"
            ));
        }
        if !(1..=REMEMBER_ME_MAX_SECS).contains(&self.proxy_granting_ticket_ttl_secs) {
            return Err(format!(
                "proxy_granting_ticket_ttl_secs must be between 1 and {REMEMBER_ME_MAX_SECS}"
            ));
        }
        Ok(())
    }

    fn ttl_secs(&self, kind: TicketKind) -> u64 {
        match kind {
            TicketKind::Service => self.service_ticket_ttl_secs,
            TicketKind::Proxy => self.proxy_ticket_ttl_secs,
            TicketKind::ProxyGranting | TicketKind::ProxyGrantingIou => {
                self.proxy_granting_ticket_ttl_secs
            }
        }
    }
}

/// One validation call, as the endpoint received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationRequest<'a> {
    /// The `ticket` parameter (or the SAML `AssertionArtifact`).
    pub ticket: &'a str,
    /// The `service` parameter (or the SAML `TARGET`).
    pub service: &'a str,
    /// `renew` was set: only a ticket from a new login passes.
    pub renew: bool,
    /// `true` at `/proxyValidate` and `/p3/proxyValidate`; `false` at `/validate`,
    /// `/serviceValidate`, `/p3/serviceValidate`, `/samlValidate`.
    pub accept_proxy_tickets: bool,
}

/// Issues and validates CAS tickets in the shared store.
#[derive(Debug, Clone)]
pub struct CasTickets {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    policy: CasTicketPolicy,
}

fn invalid_ticket(message: &str) -> CasError {
    CasError::new(CasErrorCode::InvalidTicket, message)
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode_grant(raw: &str) -> Result<TicketGrant, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The store TTL for something that lives `secs` seconds by the clock.
fn store_ttl(secs: u64) -> Duration {
    Duration::from_secs(secs).saturating_add(STORE_TTL_MARGIN)
}

impl CasTickets {
    /// Tickets in `store`, timed by `clock`.
    pub fn new(
        store: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        policy: CasTicketPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            policy,
        }
    }

    /// The lifetimes in force.
    pub fn policy(&self) -> CasTicketPolicy {
        self.policy
    }

    /// Issues a service ticket (`/login`, §2.2.4) for `grant` (its `issued_at` is set now).
    ///
    /// # Errors
    /// [`StoreError`] if the store fails; no ticket exists then.
    pub async fn issue_service_ticket(&self, grant: TicketGrant) -> Result<String, StoreError> {
        self.issue(TicketKind::Service, grant).await
    }

    /// Issues a service ticket as [`CasTickets::issue_service_ticket`] and, in the same store
    /// step, adds `record(ticket)`: the session's record of it for single logout, so that no
    /// ticket exists that its session could not end, in one round trip.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails or `record` does; no ticket exists then.
    pub async fn issue_recorded_service_ticket<F>(
        &self,
        grant: TicketGrant,
        record: F,
    ) -> Result<String, StoreError>
    where
        F: FnOnce(&str) -> Result<MapEntry, StoreError> + Send,
    {
        let (key, id, value, ttl) = self.prepare(TicketKind::Service, grant)?;
        let also = record(&id)?;
        if !self
            .store
            .put_new_with_map_entry(&key, &value, ttl, &also)
            .await?
        {
            return Err(StoreError::Corrupt("ticket id collision".to_owned()));
        }
        sesame_metrics::ticket_issued(TicketKind::Service.namespace());
        Ok(id)
    }

    /// Issues a proxy-granting ticket and its IOU (§2.5.4, §3.3, §3.4) for `grant`: the grant
    /// of the ticket just validated, with the proxy callback URL (`pgtUrl`) pushed in front of
    /// its `proxies`. The PGT is not single-use; it lives `proxy_granting_ticket_ttl_secs`
    /// and is listed under its session for [`CasTickets::revoke_session_tickets`]. The IOU is
    /// not stored.
    ///
    /// Checking that the validating service may proxy (`allow_proxy`), checking `pgtUrl`,
    /// calling it back, and [`CasTickets::revoke_proxy_granting_ticket`] when that fails are
    /// the caller's job.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn issue_proxy_granting_ticket(
        &self,
        grant: TicketGrant,
    ) -> Result<(String, String), StoreError> {
        // The attributes were those of the validating service, not of the targets.
        let grant = TicketGrant {
            attributes: None,
            ..grant
        };
        let pgt = self.issue(TicketKind::ProxyGranting, grant).await?;
        Ok((pgt, new_ticket_id(TicketKind::ProxyGrantingIou)))
    }

    /// `/proxy` (§2.7): a proxy ticket for `target_service` (registry id `target_service_id`,
    /// already resolved by the caller) from the proxy-granting ticket `pgt`. The proxy
    /// ticket's grant is the PGT's with the target as service, the PGT's proxy chain (whose
    /// first entry is the PGT's callback URL), and `from_new_login = false`.
    ///
    /// # Errors
    /// `INVALID_REQUEST` if a parameter is empty; `INVALID_TICKET` for an unknown, malformed or
    /// expired PGT; `INTERNAL_ERROR` if the store fails.
    pub async fn issue_proxy_ticket(
        &self,
        pgt: &str,
        target_service: &str,
        target_service_id: &str,
    ) -> Result<String, CasError> {
        if pgt.is_empty() || target_service.is_empty() {
            return Err(CasError::new(
                CasErrorCode::InvalidRequest,
                "'pgt' and 'targetService' parameters are both required",
            ));
        }
        if !pgt.starts_with(TicketKind::ProxyGranting.prefix()) || !is_well_formed(pgt) {
            return Err(invalid_ticket("proxy-granting ticket not recognized"));
        }
        let key = store_key(TicketKind::ProxyGranting, pgt);
        let Some(raw) = self.store.get(&key).await? else {
            return Err(invalid_ticket("proxy-granting ticket not recognized"));
        };
        let pgt_grant = decode_grant(&raw)?;
        let now = self.clock.now();
        if self.is_expired(TicketKind::ProxyGranting, &pgt_grant, now) {
            self.store.delete(&key).await?;
            return Err(invalid_ticket("proxy-granting ticket expired"));
        }
        let grant = TicketGrant {
            service: target_service.to_owned(),
            service_id: target_service_id.to_owned(),
            from_new_login: false,
            attributes: None,
            ..pgt_grant
        };
        Ok(self.issue(TicketKind::Proxy, grant).await?)
    }

    /// Validates (and consumes) a service or proxy ticket, §2.4–2.6 and §4.2:
    ///
    /// 1. empty `ticket` or `service` ⇒ `INVALID_REQUEST` (nothing consumed);
    /// 2. a ticket that is not `ST-…` (or `PT-…` where proxy tickets are accepted) ⇒
    ///    `INVALID_TICKET_SPEC`; a `PT-…` where they are not accepted is burned first (§3.2.1:
    ///    one validation attempt per proxy ticket);
    /// 3. the ticket is taken from the store atomically (burned whatever follows); unknown or
    ///    already used ⇒ `INVALID_TICKET`;
    /// 4. older than its lifetime by the clock ⇒ `INVALID_TICKET`;
    /// 5. `service` not byte-for-byte the one the ticket was issued for ⇒ `INVALID_SERVICE`;
    /// 6. `renew` and the ticket not from a new login ⇒ `INVALID_TICKET`.
    ///
    /// The caller then checks that the grant's SSO session still lives (`INVALID_TICKET`
    /// otherwise): [`CasTickets::validate_with_session`] gives what it needs for that.
    ///
    /// # Errors
    /// As above; `INTERNAL_ERROR` if the store fails (never a success).
    pub async fn validate(&self, req: &ValidationRequest<'_>) -> Result<TicketGrant, CasError> {
        self.validate_with_session(req)
            .await
            .map(|(grant, _)| grant)
    }

    /// [`CasTickets::validate`], also returning the ticket's SSO session record as the store
    /// held it when the ticket was taken (`None` if it was gone), read in the same round
    /// trip ([`EphemeralStore::take_linked`]); the caller decides with
    /// `SessionManager::is_live_record` whether it still lives.
    ///
    /// # Errors
    /// As [`CasTickets::validate`].
    pub async fn validate_with_session(
        &self,
        req: &ValidationRequest<'_>,
    ) -> Result<(TicketGrant, Option<String>), CasError> {
        if req.ticket.is_empty() || req.service.is_empty() {
            return Err(CasError::new(
                CasErrorCode::InvalidRequest,
                "'ticket' and 'service' parameters are both required",
            ));
        }
        let kind = if req.ticket.starts_with(TicketKind::Service.prefix()) {
            TicketKind::Service
        } else if req.ticket.starts_with(TicketKind::Proxy.prefix()) {
            if !req.accept_proxy_tickets {
                if is_well_formed(req.ticket) {
                    self.store
                        .take(&store_key(TicketKind::Proxy, req.ticket))
                        .await?;
                }
                return Err(CasError::new(
                    CasErrorCode::InvalidTicketSpec,
                    "a proxy ticket was presented to an endpoint that validates service tickets \
                     only; proxy tickets are validated at /proxyValidate",
                ));
            }
            TicketKind::Proxy
        } else {
            return Err(CasError::new(
                CasErrorCode::InvalidTicketSpec,
                if req.accept_proxy_tickets {
                    "not a service ticket (ST-) or proxy ticket (PT-)"
                } else {
                    "not a service ticket (ST-)"
                },
            ));
        };
        if !is_well_formed(req.ticket) {
            return Err(invalid_ticket("ticket not recognized"));
        }
        let Some((raw, linked)) = self.store.take_linked(&store_key(kind, req.ticket)).await?
        else {
            return Err(invalid_ticket("ticket not recognized"));
        };
        let grant = decode_grant(&raw)?;
        let session = match linked.into_iter().next() {
            Some(session) => session,
            // A ticket stored before tickets linked to their session (an upgrade within its
            // lifetime): its session is read apart.
            None => {
                self.store
                    .get(&session_store_key(&grant.session_key))
                    .await?
            }
        };
        let now = self.clock.now();
        if self.is_expired(kind, &grant, now) {
            return Err(invalid_ticket("ticket expired"));
        }
        if grant.service != req.service {
            return Err(CasError::new(
                CasErrorCode::InvalidService,
                "the ticket was not issued for this service; it is no longer valid",
            ));
        }
        if req.renew && !grant.from_new_login {
            return Err(invalid_ticket(
                "renew was requested but the ticket was not issued from a new login",
            ));
        }
        Ok((grant, session))
    }

    /// Kills the proxy-granting tickets issued under the SSO session `session_key` (logout,
    /// §3.3.1: "PGTs MUST expire when the client logs out"). Service and proxy tickets of the
    /// session are not listed: they live seconds, and the caller's session check refuses them
    /// once the session is gone.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn revoke_session_tickets(&self, session_key: &str) -> Result<(), StoreError> {
        let set = pgts_of(session_key);
        for key in self.store.set_members(&set).await? {
            self.store.delete(&key).await?;
        }
        self.store.delete(&set).await?;
        Ok(())
    }

    /// Kills one proxy-granting ticket (e.g. after its callback failed: the service may have
    /// seen it). Unknown tickets are ignored.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn revoke_proxy_granting_ticket(&self, pgt: &str) -> Result<(), StoreError> {
        if !is_well_formed(pgt) {
            return Ok(());
        }
        let key = store_key(TicketKind::ProxyGranting, pgt);
        if let Some(raw) = self.store.take(&key).await? {
            if let Ok(grant) = decode_grant(&raw) {
                self.store
                    .set_remove(&pgts_of(&grant.session_key), &key)
                    .await?;
            }
        }
        Ok(())
    }

    /// A new ticket of `kind` for `grant` (stamped now): its store key, id, stored value and
    /// lifetime in the store.
    fn prepare(
        &self,
        kind: TicketKind,
        mut grant: TicketGrant,
    ) -> Result<(String, String, String, Duration), StoreError> {
        grant.issued_at = self.clock.now();
        let ttl = store_ttl(self.policy.ttl_secs(kind));
        let id = new_ticket_id(kind);
        let key = store_key(kind, &id);
        let value = match kind {
            // Consumed by `validate_with_session`: the session is read in the same step.
            TicketKind::Service | TicketKind::Proxy => {
                linked_value(&[&session_store_key(&grant.session_key)], &encode(&grant)?)
            }
            TicketKind::ProxyGranting | TicketKind::ProxyGrantingIou => encode(&grant)?,
        };
        Ok((key, id, value, ttl))
    }

    async fn issue(&self, kind: TicketKind, grant: TicketGrant) -> Result<String, StoreError> {
        let session_key = grant.session_key.clone();
        let (key, id, value, ttl) = self.prepare(kind, grant)?;
        if kind == TicketKind::ProxyGranting {
            // Listed first: a PGT must never exist without being revocable with its session.
            self.store
                .set_add(&pgts_of(&session_key), &key, ttl)
                .await?;
        }
        if !self.store.put_new(&key, &value, ttl).await? {
            return Err(StoreError::Corrupt("ticket id collision".to_owned()));
        }
        sesame_metrics::ticket_issued(kind.namespace());
        Ok(id)
    }

    /// `issued_at + lifetime < now`; a lifetime too large to add counts as expired.
    fn is_expired(&self, kind: TicketKind, grant: &TicketGrant, now: OffsetDateTime) -> bool {
        let ttl = i64::try_from(self.policy.ttl_secs(kind))
            .ok()
            .map(time::Duration::seconds);
        match ttl.and_then(|ttl| grant.issued_at.checked_add(ttl)) {
            Some(expires_at) => expires_at < now,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use regex::Regex;
    use sesame_core::clock::ManualClock;
    use sesame_store::MemoryStore;
    use time::macros::datetime;

    use super::*;

    const MOODLE: &str = "https://app.example.org/moodle/login/index.php";
    const OTHER: &str = "https://app.example.org/other/";
    const PGT_URL: &str = "https://app.example.org/moodle/proxy-callback";

    struct Fixture {
        tickets: CasTickets,
        clock: Arc<ManualClock>,
        store: Arc<MemoryStore>,
    }

    fn fixture() -> Fixture {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::starting_at(datetime!(2026-03-02 08:00 UTC)));
        Fixture {
            tickets: CasTickets::new(store.clone(), clock.clone(), CasTicketPolicy::default()),
            clock,
            store,
        }
    }

    impl Fixture {
        fn grant(&self, service: &str, session_key: &str, from_new_login: bool) -> TicketGrant {
            TicketGrant {
                service: service.to_owned(),
                service_id: "moodle".to_owned(),
                account_id: AccountId::new_random(),
                login: "alice.martin".to_owned(),
                authenticated_at: self.clock.now(),
                from_new_login,
                remember_me: false,
                session_key: session_key.to_owned(),
                proxies: Vec::new(),
                issued_at: OffsetDateTime::UNIX_EPOCH,
                attributes: None,
                methods: Vec::new(),
            }
        }

        /// A service ticket for `service` under a fresh session handle.
        async fn st(&self, service: &str, from_new_login: bool) -> (String, String) {
            let session_key = random::sha256_hex(&random::token());
            let st = self
                .tickets
                .issue_service_ticket(self.grant(service, &session_key, from_new_login))
                .await
                .unwrap();
            (st, session_key)
        }
    }

    fn req<'a>(ticket: &'a str, service: &'a str) -> ValidationRequest<'a> {
        ValidationRequest {
            ticket,
            service,
            renew: false,
            accept_proxy_tickets: false,
        }
    }

    fn code(result: Result<TicketGrant, CasError>) -> CasErrorCode {
        result.unwrap_err().code
    }

    #[tokio::test]
    async fn service_ticket_validates_once() {
        let f = fixture();
        let (st, session_key) = f.st(MOODLE, true).await;
        assert!(st.starts_with("ST-"));
        let grant = f.tickets.validate(&req(&st, MOODLE)).await.unwrap();
        assert_eq!(grant.service, MOODLE);
        assert_eq!(grant.login, "alice.martin");
        assert_eq!(grant.session_key, session_key);
        assert_eq!(grant.issued_at, f.clock.now());
        assert!(grant.proxies.is_empty());
        assert_eq!(
            code(f.tickets.validate(&req(&st, MOODLE)).await),
            CasErrorCode::InvalidTicket
        );
    }

    #[tokio::test]
    async fn validation_reads_the_ticket_session_in_the_same_step() {
        let f = fixture();
        let session_key = random::sha256_hex(&random::token());
        f.store
            .put(
                &session_store_key(&session_key),
                "{\"the\": \"session\"}",
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let grant = TicketGrant {
            attributes: Some(vec![("mail".to_owned(), vec!["a@b.fr".to_owned()])]),
            ..f.grant(MOODLE, &session_key, true)
        };
        let st = f.tickets.issue_service_ticket(grant).await.unwrap();
        let (grant, session) = f
            .tickets
            .validate_with_session(&req(&st, MOODLE))
            .await
            .unwrap();
        assert_eq!(session.as_deref(), Some("{\"the\": \"session\"}"));
        assert_eq!(
            grant.attributes,
            Some(vec![("mail".to_owned(), vec!["a@b.fr".to_owned()])])
        );
        // A ticket whose session is gone still validates here (the caller refuses it).
        let (st, _) = f.st(MOODLE, true).await;
        let (_, session) = f
            .tickets
            .validate_with_session(&req(&st, MOODLE))
            .await
            .unwrap();
        assert_eq!(session, None);
    }

    #[tokio::test]
    async fn a_ticket_stored_without_its_session_link_still_reads_the_session() {
        let f = fixture();
        let grant = TicketGrant {
            issued_at: f.clock.now(),
            ..f.grant(MOODLE, "old-handle", false)
        };
        f.store
            .put(
                &session_store_key("old-handle"),
                "session",
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let st = "ST-storedbeforetheupgrade";
        f.store
            .put(
                &store_key(TicketKind::Service, st),
                &encode(&grant).unwrap(),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let (_, session) = f
            .tickets
            .validate_with_session(&req(st, MOODLE))
            .await
            .unwrap();
        assert_eq!(session.as_deref(), Some("session"));
    }

    #[tokio::test]
    async fn proxy_tickets_do_not_carry_the_attributes_of_the_validating_service() {
        let f = fixture();
        let grant = TicketGrant {
            attributes: Some(vec![("sn".to_owned(), vec!["Martin".to_owned()])]),
            ..f.grant(MOODLE, "handle", true)
        };
        let st = f.tickets.issue_service_ticket(grant).await.unwrap();
        let validated = f.tickets.validate(&req(&st, MOODLE)).await.unwrap();
        assert!(validated.attributes.is_some());
        let pgt = pgt_for(&f, validated, PGT_URL).await;
        let backend = "https://backend.example.org/api";
        let pt = f
            .tickets
            .issue_proxy_ticket(&pgt, backend, "backend")
            .await
            .unwrap();
        let grant = f
            .tickets
            .validate(&ValidationRequest {
                accept_proxy_tickets: true,
                ..req(&pt, backend)
            })
            .await
            .unwrap();
        assert_eq!(grant.attributes, None);
    }

    #[tokio::test]
    async fn tickets_are_hashed_at_rest() {
        let f = fixture();
        let (st, _) = f.st(MOODLE, true).await;
        assert!(f
            .store
            .get(&format!("cas:st:{st}"))
            .await
            .unwrap()
            .is_none());
        let stored = f
            .store
            .get(&format!("cas:st:{}", random::sha256_hex(&st)))
            .await
            .unwrap()
            .expect("stored under the hash");
        assert!(!stored.contains(&st));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_validations_of_one_ticket_succeed_once() {
        let f = fixture();
        let (st, _) = f.st(MOODLE, true).await;
        let tickets = Arc::new(f.tickets.clone());
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let tickets = tickets.clone();
            let st = st.clone();
            tasks.push(tokio::spawn(async move {
                tickets.validate(&req(&st, MOODLE)).await
            }));
        }
        let mut successes = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => successes += 1,
                Err(e) => assert_eq!(e.code, CasErrorCode::InvalidTicket),
            }
        }
        assert_eq!(successes, 1);
    }

    #[tokio::test]
    async fn wrong_service_burns_the_ticket() {
        let f = fixture();
        let (st, _) = f.st(MOODLE, true).await;
        assert_eq!(
            code(f.tickets.validate(&req(&st, OTHER)).await),
            CasErrorCode::InvalidService
        );
        assert_eq!(
            code(f.tickets.validate(&req(&st, MOODLE)).await),
            CasErrorCode::InvalidTicket
        );
        // Exact comparison: a trailing slash or another case is another service.
        for variant in [
            format!("{MOODLE}/"),
            MOODLE.to_uppercase(),
            format!("{MOODLE}?x=1"),
        ] {
            let (st, _) = f.st(MOODLE, true).await;
            assert_eq!(
                code(f.tickets.validate(&req(&st, &variant)).await),
                CasErrorCode::InvalidService,
                "{variant}"
            );
        }
    }

    #[tokio::test]
    async fn service_ticket_expires_after_ten_seconds() {
        let f = fixture();
        let (at_limit, _) = f.st(MOODLE, true).await;
        let (past_limit, _) = f.st(MOODLE, true).await;
        f.clock.advance(time::Duration::seconds(10));
        assert!(f.tickets.validate(&req(&at_limit, MOODLE)).await.is_ok());
        f.clock.advance(time::Duration::milliseconds(1));
        assert_eq!(
            code(f.tickets.validate(&req(&past_limit, MOODLE)).await),
            CasErrorCode::InvalidTicket
        );
    }

    #[tokio::test]
    async fn renew_needs_a_ticket_from_a_new_login() {
        let f = fixture();
        let renew = |ticket| ValidationRequest {
            renew: true,
            ..req(ticket, MOODLE)
        };
        let (from_sso, _) = f.st(MOODLE, false).await;
        assert_eq!(
            code(f.tickets.validate(&renew(&from_sso)).await),
            CasErrorCode::InvalidTicket
        );
        let (from_login, _) = f.st(MOODLE, true).await;
        assert!(
            f.tickets
                .validate(&renew(&from_login))
                .await
                .unwrap()
                .from_new_login
        );
        // Without renew, an SSO ticket is fine.
        let (from_sso, _) = f.st(MOODLE, false).await;
        assert!(f.tickets.validate(&req(&from_sso, MOODLE)).await.is_ok());
    }

    #[tokio::test]
    async fn remember_me_sso_does_not_satisfy_renew() {
        let f = fixture();
        let grant = TicketGrant {
            remember_me: true,
            ..f.grant(MOODLE, "handle", false)
        };
        let st = f.tickets.issue_service_ticket(grant).await.unwrap();
        let renew = ValidationRequest {
            renew: true,
            ..req(&st, MOODLE)
        };
        assert_eq!(
            code(f.tickets.validate(&renew).await),
            CasErrorCode::InvalidTicket
        );
    }

    #[tokio::test]
    async fn malformed_requests_and_tickets() {
        let f = fixture();
        assert_eq!(
            code(f.tickets.validate(&req("", MOODLE)).await),
            CasErrorCode::InvalidRequest
        );
        assert_eq!(
            code(f.tickets.validate(&req("ST-abc", "")).await),
            CasErrorCode::InvalidRequest
        );
        for wrong_kind in ["PGT-abc", "TGT-abc", "abc", "st-abc", "LT-1"] {
            assert_eq!(
                code(f.tickets.validate(&req(wrong_kind, MOODLE)).await),
                CasErrorCode::InvalidTicketSpec,
                "{wrong_kind}"
            );
        }
        let injected = "ST-1</cas:authenticationFailure><cas:authenticationSuccess><cas:user>admin";
        assert_eq!(
            code(f.tickets.validate(&req(injected, MOODLE)).await),
            CasErrorCode::InvalidTicket
        );
        let long = format!("ST-{}", "a".repeat(300));
        assert_eq!(
            code(f.tickets.validate(&req(&long, MOODLE)).await),
            CasErrorCode::InvalidTicket
        );
        assert_eq!(
            code(f.tickets.validate(&req("ST-unknown", MOODLE)).await),
            CasErrorCode::InvalidTicket
        );
    }

    #[tokio::test]
    async fn corrupt_store_data_is_an_internal_error_never_a_success() {
        let f = fixture();
        let st = "ST-corrupt";
        f.store
            .put(
                &store_key(TicketKind::Service, st),
                "{not json",
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(
            code(f.tickets.validate(&req(st, MOODLE)).await),
            CasErrorCode::InternalError
        );
        let err = CasError::from(StoreError::Unavailable("redis://secret@host".to_owned()));
        assert_eq!(err.code, CasErrorCode::InternalError);
        assert!(!err.message.contains("secret"));
    }

    /// The PGT the caller issues after validating `validated` with `pgtUrl`.
    async fn pgt_for(f: &Fixture, validated: TicketGrant, pgt_url: &str) -> String {
        let proxies = std::iter::once(pgt_url.to_owned())
            .chain(validated.proxies.iter().cloned())
            .collect();
        let (pgt, iou) = f
            .tickets
            .issue_proxy_granting_ticket(TicketGrant {
                proxies,
                ..validated
            })
            .await
            .unwrap();
        assert!(pgt.starts_with("PGT-") && iou.starts_with("PGTIOU-"));
        assert_ne!(pgt[4..], iou[7..]);
        pgt
    }

    #[tokio::test]
    async fn proxy_tickets_carry_the_proxy_chain() {
        let f = fixture();
        let (st, _) = f.st(MOODLE, true).await;
        let validated = f.tickets.validate(&req(&st, MOODLE)).await.unwrap();
        let pgt = pgt_for(&f, validated, PGT_URL).await;

        let backend = "https://backend.example.org/api";
        let pt = f
            .tickets
            .issue_proxy_ticket(&pgt, backend, "backend")
            .await
            .unwrap();
        assert!(pt.starts_with("PT-"));
        let proxy_validate = |ticket| ValidationRequest {
            accept_proxy_tickets: true,
            ..req(ticket, backend)
        };
        let grant = f.tickets.validate(&proxy_validate(&pt)).await.unwrap();
        assert_eq!(grant.proxies, vec![PGT_URL.to_owned()]);
        assert_eq!(grant.service_id, "backend");
        assert!(!grant.from_new_login);
        assert_eq!(grant.login, "alice.martin");
        // Single use, like a service ticket.
        assert_eq!(
            code(f.tickets.validate(&proxy_validate(&pt)).await),
            CasErrorCode::InvalidTicket
        );

        // The PGT is reusable; the back end proxies further: newest proxy first.
        let backend_pgt_url = "https://backend.example.org/pgt";
        let backend_pgt = pgt_for(&f, grant, backend_pgt_url).await;
        let deeper = "https://deeper.example.org/";
        let pt2 = f
            .tickets
            .issue_proxy_ticket(&backend_pgt, deeper, "deeper")
            .await
            .unwrap();
        let grant2 = f
            .tickets
            .validate(&ValidationRequest {
                accept_proxy_tickets: true,
                ..req(&pt2, deeper)
            })
            .await
            .unwrap();
        assert_eq!(
            grant2.proxies,
            vec![backend_pgt_url.to_owned(), PGT_URL.to_owned()]
        );
        assert!(f
            .tickets
            .issue_proxy_ticket(&pgt, backend, "backend")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn proxy_tickets_are_refused_and_burned_where_not_accepted() {
        let f = fixture();
        let (st, _) = f.st(MOODLE, true).await;
        let validated = f.tickets.validate(&req(&st, MOODLE)).await.unwrap();
        let pgt = pgt_for(&f, validated, PGT_URL).await;
        let backend = "https://backend.example.org/api";
        let pt = f
            .tickets
            .issue_proxy_ticket(&pgt, backend, "backend")
            .await
            .unwrap();
        assert_eq!(
            code(f.tickets.validate(&req(&pt, backend)).await),
            CasErrorCode::InvalidTicketSpec
        );
        assert_eq!(
            code(
                f.tickets
                    .validate(&ValidationRequest {
                        accept_proxy_tickets: true,
                        ..req(&pt, backend)
                    })
                    .await
            ),
            CasErrorCode::InvalidTicket
        );
    }

    #[tokio::test]
    async fn proxy_granting_tickets_die_with_their_session() {
        let f = fixture();
        let (st, session_key) = f.st(MOODLE, true).await;
        let (other_st, _) = f.st(MOODLE, true).await;
        let validated = f.tickets.validate(&req(&st, MOODLE)).await.unwrap();
        let other_validated = f.tickets.validate(&req(&other_st, MOODLE)).await.unwrap();
        let pgt = pgt_for(&f, validated.clone(), PGT_URL).await;
        let second_pgt = pgt_for(&f, validated, PGT_URL).await;
        let other_session_pgt = pgt_for(&f, other_validated, PGT_URL).await;
        let backend = "https://backend.example.org/api";
        assert!(f
            .tickets
            .issue_proxy_ticket(&pgt, backend, "backend")
            .await
            .is_ok());

        f.tickets
            .revoke_session_tickets(&session_key)
            .await
            .unwrap();
        for dead in [&pgt, &second_pgt] {
            let err = f
                .tickets
                .issue_proxy_ticket(dead, backend, "backend")
                .await
                .unwrap_err();
            assert_eq!(err.code, CasErrorCode::InvalidTicket);
        }
        // Other sessions keep theirs.
        assert!(f
            .tickets
            .issue_proxy_ticket(&other_session_pgt, backend, "backend")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn one_proxy_granting_ticket_can_be_revoked() {
        let f = fixture();
        let (st, _) = f.st(MOODLE, true).await;
        let validated = f.tickets.validate(&req(&st, MOODLE)).await.unwrap();
        let pgt = pgt_for(&f, validated, PGT_URL).await;
        f.tickets.revoke_proxy_granting_ticket(&pgt).await.unwrap();
        assert_eq!(
            f.tickets
                .issue_proxy_ticket(&pgt, "https://backend.example.org/", "backend")
                .await
                .unwrap_err()
                .code,
            CasErrorCode::InvalidTicket
        );
        // Unknown or malformed: nothing to do.
        f.tickets.revoke_proxy_granting_ticket(&pgt).await.unwrap();
        f.tickets
            .revoke_proxy_granting_ticket("PGT-<x>")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn proxy_granting_ticket_expires() {
        let f = fixture();
        let (st, _) = f.st(MOODLE, true).await;
        let validated = f.tickets.validate(&req(&st, MOODLE)).await.unwrap();
        let pgt = pgt_for(&f, validated, PGT_URL).await;
        f.clock.advance(time::Duration::seconds(7201));
        assert_eq!(
            f.tickets
                .issue_proxy_ticket(&pgt, "https://backend.example.org/", "backend")
                .await
                .unwrap_err()
                .code,
            CasErrorCode::InvalidTicket
        );
        for (pgt, target) in [("", "https://b/"), ("PGT-x", ""), ("ST-x", "https://b/")] {
            let err = f
                .tickets
                .issue_proxy_ticket(pgt, target, "b")
                .await
                .unwrap_err();
            assert!(matches!(
                err.code,
                CasErrorCode::InvalidRequest | CasErrorCode::InvalidTicket
            ));
        }
    }

    #[test]
    fn ticket_ids_are_distinct_and_follow_the_charset() {
        let shape = Regex::new("^(ST|PT|PGT|PGTIOU)-[A-Za-z0-9]+$").unwrap();
        let kinds = [
            TicketKind::Service,
            TicketKind::Proxy,
            TicketKind::ProxyGranting,
            TicketKind::ProxyGrantingIou,
        ];
        let mut seen = HashSet::new();
        for i in 0..100_000 {
            let kind = kinds[i % kinds.len()];
            let id = new_ticket_id(kind);
            assert!(shape.is_match(&id), "{id}");
            assert!(id.starts_with(kind.prefix()));
            assert!(id.len() <= 64, "§3.3.1/§3.4.1: clients handle up to 64");
            assert!(seen.insert(id), "duplicate id");
        }
    }

    #[test]
    fn policy_defaults_and_bounds() {
        let policy = CasTicketPolicy::default();
        assert_eq!(policy.service_ticket_ttl_secs, 10);
        assert!(policy.validate().is_ok());
        let parsed: CasTicketPolicy =
            serde_json::from_str(r#"{"service_ticket_ttl_secs": 20}"#).unwrap();
        assert_eq!(parsed.service_ticket_ttl_secs, 20);
        assert_eq!(parsed.proxy_granting_ticket_ttl_secs, 7200);
        assert!(serde_json::from_str::<CasTicketPolicy>(r#"{"st_ttl": 20}"#).is_err());
        let too_long = CasTicketPolicy {
            service_ticket_ttl_secs: 301,
            ..policy
        };
        assert!(too_long
            .validate()
            .unwrap_err()
            .contains("service_ticket_ttl_secs"));
        let zero = CasTicketPolicy {
            proxy_granting_ticket_ttl_secs: 0,
            ..policy
        };
        assert!(zero.validate().is_err());
    }
}
