//! Single logout asked by a SAML service provider (SAML 2.0 profiles §4.4.4.1): its
//! `LogoutRequest` (`GET|POST /saml/slo`) ends the Sesame session it names, through the one
//! end-of-session path (CAS services and OpenID Connect clients are told, proxy tickets
//! revoked, the logout audited), and the SP gets a signed `LogoutResponse` at its single
//! logout service.
//!
//! The session is found by the SP and the `SessionIndex` it was given (an index written with
//! each assertion, as a request posted by the SP's page carries no `SameSite=Lax` cookie), or
//! by this browser's cookie when the request names none; either way only if the request's
//! `NameID` is the one that SP was given in that session, so no one but the SP can end it.
//! The session's other SAML SPs are sent a `LogoutRequest` over SOAP where their metadata
//! offers it; when one does not, the response says `PartialLogout`.

use actix_web::{HttpRequest, HttpResponse};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::session::{session_handle, AttachedProtocol, EndedSession};
use sesame_protocol::saml::issuer::session_index;
use sesame_protocol::saml::logout::{front_channel_parties, reachable, LogoutRequest};

use super::end::send_single_logout;
use super::saml::{
    bad_request, inbound, logout_index_key, not_found, slo_url, Binding, LogoutIndex,
    MAX_RELAY_STATE,
};
use super::saml_chain::{chain_answered, finish, start_chain, ChainEnd};
use crate::services::SamlServices;
use crate::web::AppState;

/// A `LogoutRequest` as it arrives: `SAMLRequest`, `RelayState` (the Redirect binding's
/// signature is in the raw query string).
pub async fn logout(
    state: &AppState,
    req: &HttpRequest,
    binding: Binding,
    message: SloMessage<'_>,
) -> HttpResponse {
    let Some(saml) = &state.services.saml else {
        return not_found(state, req);
    };
    let (saml_request, relay_state) = (message.request, message.relay_state);
    if let (None, Some(response)) = (saml_request, message.response) {
        return chain_answered(state, req, saml, binding, response, relay_state).await;
    }
    let lang = state.lang(req, None);
    let (request, sp) =
        match inbound::<LogoutRequest>(state, req, saml, binding, saml_request, &slo_url(state)) {
            Ok(found) => found,
            Err(page) => return *page,
        };
    if relay_state.is_some_and(|r| r.len() > MAX_RELAY_STATE) {
        return bad_request(state, req, &"RelayState beyond 80 bytes");
    }
    if sp.metadata.browser_logout_service().is_none() {
        return bad_request(
            state,
            req,
            &"the service provider has no single logout service",
        );
    }

    // The sessions named: each SessionIndex, else this browser's own session.
    let cookie = req.cookie(&state.sso_cookie_name);
    let own_handle = cookie.as_ref().map(|c| session_handle(c.value()));
    let indexes: Vec<String> = if request.session_indexes.is_empty() {
        own_handle.iter().map(|h| session_index(h)).collect()
    } else {
        request.session_indexes.iter().take(16).cloned().collect()
    };
    let mut ended_own = false;
    let mut partial = false;
    let mut front_channel = Vec::new();
    for index in indexes {
        let key = logout_index_key(&sp.metadata.entity_id, &index);
        // Read, not taken: a request with the wrong NameID must not spoil the SP's own.
        let record = match state.services.store.get(&key).await {
            Ok(Some(raw)) => serde_json::from_str::<LogoutIndex>(&raw).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "store unavailable during a SAML logout");
                return state.unavailable(req, lang);
            }
        };
        let Some(record) = record.filter(|r| r.name_id == request.name_id) else {
            continue;
        };
        if let Err(e) = state.services.store.delete(&key).await {
            tracing::warn!(error = %e, "could not drop a SAML logout index");
        }
        match state
            .services
            .sessions
            .end_handle(record.account, &record.handle)
            .await
        {
            Ok(Some(mut ended)) => {
                // The SP that asked is answered below, not sent a request of its own.
                ended.attached.retain(|a| {
                    !(a.protocol == AttachedProtocol::Saml && a.party == sp.metadata.entity_id)
                });
                partial |= unreachable_saml_parties(saml, &ended);
                front_channel.extend(front_channel_parties(&saml.providers, &ended));
                ended_own |= own_handle.as_deref() == Some(record.handle.as_str());
                after_end(state, req, &ended, &record.login, &sp.metadata.entity_id).await;
            }
            Ok(None) => {}
            Err(e) => {
                // Never tell the SP the person is logged out when the session may live on.
                tracing::error!(error = %e, "store unavailable during a SAML logout");
                return state.unavailable(req, lang);
            }
        }
    }

    let answer = ChainEnd::AnswerSp {
        sp: sp.metadata.entity_id.clone(),
        in_response_to: request.id.clone(),
        relay_state: relay_state.map(str::to_owned),
        partial,
    };
    let mut res = if front_channel.is_empty() {
        finish(state, req, saml, answer).await
    } else {
        start_chain(state, req, saml, front_channel, answer).await
    };
    if ended_own {
        if let Err(e) = res.add_cookie(&state.sso_cookie_removal()) {
            tracing::warn!(error = %e, "could not clear the SSO cookie");
        }
    }
    res
}

/// The parameters of `/saml/slo`: a request from an SP, or an SP's response to a request
/// Sesame sent it through the browser.
#[derive(Debug, Clone, Copy, Default)]
pub struct SloMessage<'a> {
    /// `SAMLRequest`.
    pub request: Option<&'a str>,
    /// `SAMLResponse`.
    pub response: Option<&'a str>,
    /// `RelayState`.
    pub relay_state: Option<&'a str>,
}

/// Whether `ended` gave assertions to SAML SPs that cannot be told at all (no single
/// logout service Sesame can use).
fn unreachable_saml_parties(saml: &SamlServices, ended: &EndedSession) -> bool {
    ended
        .attached
        .iter()
        .any(|a| a.protocol == AttachedProtocol::Saml && !reachable(&saml.providers, &a.party))
}

/// What follows every ended session: single logout to CAS and OpenID Connect parties, proxy
/// tickets revoked, the logout audited.
async fn after_end(
    state: &AppState,
    req: &HttpRequest,
    ended: &EndedSession,
    login: &str,
    sp: &str,
) {
    send_single_logout(&state.services, ended).await;
    if let Err(e) = state
        .services
        .cas
        .revoke_session_tickets(&ended.handle)
        .await
    {
        tracing::error!(error = %e, "could not revoke the proxy tickets of an ended session");
    }
    let event = AuditEvent::new(AuditKind::Logout, state.services.clock.now(), "saml")
        .login(login)
        .account(ended.account_id)
        .ip(state.client_ip(req))
        .detail(serde_json::json!({ "service_provider": sp }));
    if let Err(e) = state.services.audit.record(event).await {
        tracing::error!(error = %e, "could not record a logout");
    }
}
