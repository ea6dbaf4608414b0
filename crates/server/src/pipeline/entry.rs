//! Where a login starts: what it is for, read from the login URL (`/cas/login?service=…`
//! for a CAS service, `?authz=…` for a parked OpenID Connect request, `?next=…` for one of
//! Sesame's own pages), and the parked OpenID Connect requests themselves.
//!
//! An authorization request that needs the person (no session, `prompt=login`, `max_age`
//! passed, consent missing) is parked in the store under a random id for 30 minutes; the
//! login page and the consent form carry that id, and the request is parsed and checked
//! again when it resumes.

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
    pub(crate) lang: Option<String>,
    /// A parked OpenID Connect authorization request to resume after the login.
    pub(crate) authz: Option<String>,
    /// A page of Sesame's own to go back to after the login (`/account…`, `/helpdesk…`).
    next: Option<String>,
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
        if let Some(next) = &self.next {
            return Continuation::Local { next: next.clone() };
        }
        Continuation::LoginPage
    }

    /// The login URL's parameters that lead to `continuation` (a login resumed from its
    /// transaction continues as the login URL would have).
    pub(crate) fn from_continuation(continuation: &Continuation) -> Self {
        let flag = |on: bool| on.then(|| "true".to_owned());
        match continuation {
            Continuation::Cas {
                service,
                renew,
                gateway,
                method_post,
            } => Self {
                service: Some(service.clone()),
                renew: flag(*renew),
                gateway: flag(*gateway),
                method: method_post.then(|| "POST".to_owned()),
                ..Self::default()
            },
            Continuation::Oidc { request_id, .. } => Self {
                authz: Some(request_id.clone()),
                ..Self::default()
            },
            Continuation::Local { next } => Self {
                next: Some(next.clone()),
                ..Self::default()
            },
            Continuation::LoginPage => Self::default(),
        }
    }

    /// The registered service this login is for, if any.
    pub(crate) fn registered_service(
        &self,
        state: &AppState,
    ) -> Option<(String, sesame_protocol::services::RegisteredService)> {
        let url = self.service.as_deref()?;
        let service = state.services.registry.find(url).cloned()?;
        Some((url.to_owned(), service))
    }

    /// Where to continue an OpenID Connect request after the login, if this login serves one.
    pub(crate) fn oidc_continuation(&self, state: &AppState) -> Option<String> {
        let id = self.authz.as_deref()?;
        is_pending_id(id).then(|| format!("{}/authorize/continue?authz={id}", state.base()))
    }

    /// Where to go back after a login started from one of Sesame's own pages: only paths
    /// under `/account` and `/helpdesk`, so `next` is never an open redirect.
    pub(crate) fn local_next(&self, state: &AppState) -> Option<String> {
        let next = self.next.as_deref()?;
        let allowed = ["/account", "/helpdesk"]
            .iter()
            .any(|p| next == *p || next.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
            && next.len() <= 64
            && next
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'/' || b == b'-');
        allowed.then(|| format!("{}{next}", state.base()))
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

/// How long a parked request waits for the person.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(30 * 60);

/// A parked authorization request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) params: Vec<(String, String)>,
    /// When the request first arrived (unix seconds), for `max_age`.
    pub(crate) requested_at: i64,
    /// The session opened by a login made for this request (its handle): what satisfies
    /// `prompt=login`. Timestamps in whole seconds could not tell a login made just before
    /// the request from one made for it.
    #[serde(default)]
    pub(crate) fresh_login: Option<String>,
}

pub(crate) fn pending_key(id: &str) -> String {
    format!("oidc:pending:{}", random::sha256_hex(id))
}

/// Whether `id` has the shape of a parked-request id (so junk costs no store round trip).
pub fn is_pending_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What the login page shows for a parked request: the client's name, and the
/// `login_hint` to prefill the login field with.
pub async fn pending_display(state: &AppState, id: &str) -> Option<(String, Option<String>)> {
    if !is_pending_id(id) {
        return None;
    }
    let raw = state.services.store.get(&pending_key(id)).await.ok()??;
    let pending: Pending = serde_json::from_str(&raw).ok()?;
    let param = |name: &str| {
        pending
            .params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let client = state.services.oidc.clients.get(param("client_id")?)?;
    let hint = param("login_hint")
        .filter(|h| h.chars().count() <= 256 && !h.chars().any(char::is_control))
        .map(str::to_owned);
    Some((client.name.clone(), hint))
}

/// Records that the session `handle` was opened by a login made for parked request `id`.
pub async fn note_fresh_login(state: &AppState, id: &str, handle: &str) {
    let Ok(Some(mut pending)) = load_pending(state, id).await else {
        return;
    };
    pending.fresh_login = Some(handle.to_owned());
    match serde_json::to_string(&pending) {
        Ok(raw) => {
            if let Err(e) = state
                .services
                .store
                .put(&pending_key(id), &raw, PENDING_TTL)
                .await
            {
                tracing::warn!(error = %e, "could not note a login on a parked authorization request");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not encode a parked authorization request"),
    }
}

pub(crate) async fn park(
    state: &AppState,
    params: Vec<(String, String)>,
    requested_at: i64,
    existing: Option<&str>,
) -> Result<String, ()> {
    let id = existing.map_or_else(|| random::alphanumeric(43), str::to_owned);
    // A parked request waits for a new login: any earlier one no longer counts.
    let raw = serde_json::to_string(&Pending {
        params,
        requested_at,
        fresh_login: None,
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
