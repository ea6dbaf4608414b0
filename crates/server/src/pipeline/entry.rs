//! Where a login starts: what it is for, read once from the login URL (`/cas/login?service=…`
//! for a CAS service, `?authz=…` for a parked OpenID Connect request, `?next=…` for one of
//! Sesame's own pages) into the [`Continuation`] a [`LoginTransaction`] carries to the end
//! of the login, and the parked OpenID Connect requests themselves.
//!
//! The login URL stays what CAS clients, OpenID Connect's redirect and people's bookmarks
//! use, and the login form posts back to it (CAS Protocol 3.0 §2.2: `service` is a parameter
//! of the credential acceptor too). Past this module nothing reads it: the rest of the login
//! works on the transaction.
//!
//! An authorization request that needs the person (no session, `prompt=login`, `max_age`
//! passed, consent missing) is parked in the store under a random id for 30 minutes; the
//! login page and the consent form carry that id, and the request is parsed and checked
//! again when it resumes.
//!
//! [`LoginTransaction`]: sesame_core::login::transaction::LoginTransaction

use std::time::Duration;

use actix_web::web;
use serde::{Deserialize, Serialize};
use sesame_core::login::transaction::Continuation;
use sesame_core::random;
use time::OffsetDateTime;

use crate::web::AppState;

/// Query parameters of `GET /cas/login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    pub(crate) service: Option<String>,
    renew: Option<String>,
    gateway: Option<String>,
    method: Option<String>,
    /// Apereo CAS's `authn_method`: `mfa` (or the REFEDS MFA URI) asks for a second factor.
    authn_method: Option<String>,
    pub(crate) lang: Option<String>,
    /// A parked OpenID Connect authorization request to resume after the login.
    pub(crate) authz: Option<String>,
    /// A page of Sesame's own to go back to after the login (`/account…`, `/helpdesk…`).
    next: Option<String>,
    /// A parked SAML authentication request to answer after the login.
    pub(crate) saml: Option<String>,
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v == "true" || v == "1")
}

impl LoginQuery {
    /// Parses a `/cas/login` query string.
    pub(crate) fn parse(query_string: &str) -> Option<Self> {
        web::Query::<Self>::from_query(query_string)
            .ok()
            .map(web::Query::into_inner)
    }

    /// What this login is for, as the data a login transaction keeps: a CAS service first,
    /// then a parked OpenID Connect request (its parameters read from where it is parked),
    /// then one of Sesame's own pages, else the logged-in page.
    pub(crate) async fn continuation(&self, state: &AppState, now: OffsetDateTime) -> Continuation {
        if let Some(service) = &self.service {
            return Continuation::Cas {
                service: service.clone(),
                renew: self.renew(),
                gateway: self.gateway(),
                method_post: self.method_post(),
                mfa: self.mfa_asked(),
            };
        }
        if let Some(id) = self.authz.as_deref().filter(|id| is_pending_id(id)) {
            let (params, requested_at) = match load_pending(state, id).await {
                Ok(Some(p)) => (
                    p.params,
                    OffsetDateTime::from_unix_timestamp(p.requested_at).unwrap_or(now),
                ),
                _ => (Vec::new(), now),
            };
            return Continuation::Oidc {
                request_id: id.to_owned(),
                params,
                requested_at,
            };
        }
        if let Some(id) = self.saml_request() {
            return Continuation::Saml {
                request_id: id.to_owned(),
            };
        }
        if let Some(next) = &self.next {
            return Continuation::Local { next: next.clone() };
        }
        Continuation::LoginPage
    }

    /// The parked SAML request this login URL names, if any.
    pub(crate) fn saml_request(&self) -> Option<&str> {
        self.saml.as_deref().filter(|id| is_pending_id(id))
    }

    /// The parked OpenID Connect request this login URL names, if any.
    pub(crate) fn oidc_request(&self) -> Option<&str> {
        self.authz.as_deref().filter(|id| is_pending_id(id))
    }

    /// The page of Sesame's own this login URL goes back to, if any and allowed.
    pub(crate) fn local_next(&self, state: &AppState) -> Option<String> {
        local_next(state, self.next.as_deref()?)
    }

    /// Whether `authn_method` asks for a second factor.
    pub(crate) fn mfa_asked(&self) -> bool {
        self.authn_method.as_deref().is_some_and(|m| {
            m == "mfa"
                || sesame_core::login::methods::Assurance::parse(m)
                    == Some(sesame_core::login::methods::Assurance::MultiFactor)
        })
    }

    pub(crate) fn renew(&self) -> bool {
        is_true(self.renew.as_deref())
    }
    pub(crate) fn gateway(&self) -> bool {
        is_true(self.gateway.as_deref())
    }
    pub(crate) fn method_post(&self) -> bool {
        self.method
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("post"))
    }
}

/// The name of the application this login is for, as the login page shows it, and the
/// login to suggest (OpenID Connect `login_hint`). Registered services and clients only.
pub(crate) async fn display(
    state: &AppState,
    continuation: &Continuation,
) -> (Option<String>, Option<String>) {
    match continuation {
        Continuation::Cas { service, .. } => (
            state
                .services
                .registry
                .find(service)
                .map(|s| s.name.clone()),
            None,
        ),
        Continuation::Oidc { params, .. } => {
            let param = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            let Some(client) =
                param("client_id").and_then(|id| state.services.oidc.clients.get(id))
            else {
                return (None, None);
            };
            let hint = param("login_hint")
                .filter(|h| h.chars().count() <= 256 && !h.chars().any(char::is_control))
                .map(str::to_owned);
            (Some(client.name.clone()), hint)
        }
        Continuation::Saml { request_id } => {
            (super::saml::display_name(state, request_id).await, None)
        }
        Continuation::Local { .. } | Continuation::LoginPage => (None, None),
    }
}

/// Where to go back after a login started from one of Sesame's own pages: only paths under
/// `/account` and `/helpdesk`, so `next` is never an open redirect.
pub(crate) fn local_next(state: &AppState, next: &str) -> Option<String> {
    let allowed = ["/account", "/helpdesk"]
        .iter()
        .any(|p| next == *p || next.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        && next.len() <= 64
        && next
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'/' || b == b'-');
    allowed.then(|| format!("{}{next}", state.base()))
}

/// How long a parked request waits for the person.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(30 * 60);

/// A parked authorization request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) params: Vec<(String, String)>,
    /// When the request first arrived (unix seconds), for `max_age`.
    pub(crate) requested_at: i64,
}

pub(crate) fn pending_key(id: &str) -> String {
    format!("oidc:pending:{}", random::sha256_hex(id))
}

/// Whether `id` has the shape of a parked-request id (so junk costs no store round trip).
pub fn is_pending_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub(crate) async fn park(
    state: &AppState,
    params: Vec<(String, String)>,
    requested_at: i64,
    existing: Option<&str>,
) -> Result<String, ()> {
    let id = existing.map_or_else(|| random::alphanumeric(43), str::to_owned);
    let raw = serde_json::to_string(&Pending {
        params,
        requested_at,
    })
    .map_err(|_| ())?;
    state
        .services
        .store
        .put(&pending_key(&id), &raw, PENDING_TTL)
        .await
        .map_err(|e| tracing::error!(error = %e, "could not park an authorization request"))?;
    Ok(id)
}

pub(crate) async fn load_pending(state: &AppState, id: &str) -> Result<Option<Pending>, ()> {
    if !is_pending_id(id) {
        return Ok(None);
    }
    match state.services.store.get(&pending_key(id)).await {
        Ok(Some(raw)) => Ok(serde_json::from_str(&raw).ok()),
        Ok(None) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while reading an authorization request");
            Err(())
        }
    }
}
