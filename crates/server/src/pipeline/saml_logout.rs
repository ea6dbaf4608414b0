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
use serde::{Deserialize, Serialize};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::random;
use sesame_core::session::{session_handle, AttachedProtocol, EndedSession};
use sesame_protocol::issuer::BrowserResponse;
use sesame_protocol::saml::issuer::session_index;
use sesame_protocol::saml::key_store::SamlKeySet;
use sesame_protocol::saml::logout::{
    logout_request, logout_response, post_encoded, redirect_request_url, redirect_url,
    FrontChannelParty, LogoutRequest, LogoutResponseMessage, SamlLogout, STATUS_PARTIAL_LOGOUT,
};
use sesame_protocol::saml::redirect_signature;
use sesame_protocol::saml::request::{post_xml, redirect_xml};
use sesame_protocol::saml::verify::verify_signed_message;
use sesame_protocol::saml::{BINDING_REDIRECT, STATUS_SUCCESS};

use super::end::{logged_out_page, send_single_logout};
use super::issue::browser_response;
use super::saml::{
    addressed_and_recent, bad_request, inbound, logout_index_key, not_found, slo_url, Binding,
    LogoutIndex, MAX_RELAY_STATE,
};
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
    if saml_request.is_none() {
        if let Some(response) = message.response {
            return chain_answered(state, req, saml, binding, response, relay_state).await;
        }
    }
    let lang = state.lang(req, None);
    let (request, sp) = match inbound(
        state,
        req,
        saml,
        binding,
        saml_request,
        LogoutRequest::parse,
        |r| &r.issuer,
    ) {
        Ok(found) => found,
        Err(page) => return *page,
    };
    if let Err(page) = addressed_and_recent(
        state,
        req,
        request.destination.as_deref(),
        &slo_url(state),
        request.issue_instant,
    ) {
        return *page;
    }
    if relay_state.is_some_and(|r| r.len() > MAX_RELAY_STATE) {
        return bad_request(state, req, &"RelayState beyond 80 bytes");
    }
    if sp.metadata.logout_response_service().is_none() {
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
                front_channel.extend(saml_logout(saml, &saml.keys.key_set()).front_channel(&ended));
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

/// How long a front-channel logout may take, SP after SP.
const CHAIN_TTL: std::time::Duration = std::time::Duration::from_secs(600);

fn chain_key(id: &str) -> String {
    format!("saml:chain:{id}")
}

/// A logout told through the browser, one SP after the other (the SPs of the ended session
/// without a SOAP service; SAML 2.0 profiles §4.4.3.4), then how it ends. Kept in the store
/// under a random ID, which is the `RelayState` of each request.
#[derive(Debug, Serialize, Deserialize)]
struct LogoutChain {
    remaining: Vec<FrontChannelParty>,
    awaiting: Option<Awaiting>,
    finish: ChainEnd,
}

/// The SP the browser was sent to, and the request it must answer.
#[derive(Debug, Serialize, Deserialize)]
struct Awaiting {
    sp: String,
    request_id: String,
}

/// What the browser gets once every SP was visited.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ChainEnd {
    /// Sesame's logged-out page, or the registered service the logout named.
    LoggedOut {
        lang: Option<String>,
        service: Option<String>,
    },
    /// The `LogoutResponse` owed to the SP whose request started it all.
    AnswerSp {
        sp: String,
        in_response_to: String,
        relay_state: Option<String>,
        partial: bool,
    },
}

fn saml_logout<'a>(saml: &'a SamlServices, keys: &'a SamlKeySet) -> SamlLogout<'a> {
    SamlLogout {
        entity_id: &saml.entity_id,
        keys,
        providers: &saml.providers,
    }
}

/// Starts telling `parties` through the browser, ending with `finish`.
pub(crate) async fn start_chain(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    parties: Vec<FrontChannelParty>,
    finish_with: ChainEnd,
) -> HttpResponse {
    let chain = LogoutChain {
        remaining: parties,
        awaiting: None,
        finish: finish_with,
    };
    next_hop(state, req, saml, random::alphanumeric(43), chain).await
}

/// Sends the browser to the next SP of `chain`, or ends it.
async fn next_hop(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    id: String,
    mut chain: LogoutChain,
) -> HttpResponse {
    let lang = state.lang(req, None);
    let now = state.services.clock.now();
    let keys = saml.keys.key_set();
    while !chain.remaining.is_empty() {
        let party = chain.remaining.remove(0);
        let Some(sp) = saml.providers.get(&party.sp) else {
            continue;
        };
        let Some(service) = sp.metadata.front_channel_logout_service().cloned() else {
            continue;
        };
        let Some(key) = keys.current(now) else {
            tracing::error!("no SAML key may sign: front-channel logout stopped");
            break;
        };
        let (request_id, request) = logout_request(
            &saml.entity_id,
            &party.sp,
            &service.location,
            &party.given,
            now,
        );
        chain.awaiting = Some(Awaiting {
            sp: party.sp.clone(),
            request_id,
        });
        let stored = serde_json::to_string(&chain)
            .ok()
            .map(|raw| (raw, chain_key(&id)));
        let Some((raw, key_name)) = stored else {
            break;
        };
        if let Err(e) = state.services.store.put(&key_name, &raw, CHAIN_TTL).await {
            tracing::error!(error = %e, "store unavailable: front-channel logout stopped");
            break;
        }
        let hop = if service.binding == BINDING_REDIRECT {
            redirect_request_url(&service.location, &request, Some(&id), &key.key)
                .map(BrowserResponse::Redirect)
        } else {
            post_encoded(request, &key.key).map(|encoded| BrowserResponse::AutoPost {
                action: service.location.clone(),
                fields: vec![
                    ("SAMLRequest".to_owned(), encoded),
                    ("RelayState".to_owned(), id.clone()),
                ],
                title: sp.name.clone(),
            })
        };
        match hop {
            Ok(hop) => {
                tracing::info!(service.id = %party.sp, "single logout through the browser");
                return browser_response(state, req, lang, hop, false);
            }
            Err(e) => tracing::error!(error = %e, "could not sign a SAML logout request"),
        }
    }
    finish(state, req, saml, chain.finish).await
}

/// An SP's `LogoutResponse` to the request Sesame sent it through the browser: the chain
/// goes on (whatever the SP's status: the Sesame session has ended already).
async fn chain_answered(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    binding: Binding,
    encoded: &str,
    relay_state: Option<&str>,
) -> HttpResponse {
    let lang = state.lang(req, None);
    let Some(id) = relay_state.filter(|r| r.len() <= MAX_RELAY_STATE) else {
        return bad_request(state, req, &"a LogoutResponse without its RelayState");
    };
    let chain = match state.services.store.take(&chain_key(id)).await {
        Ok(Some(raw)) => serde_json::from_str::<LogoutChain>(&raw).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable during a SAML logout");
            return state.unavailable(req, lang);
        }
    };
    // Gone (answered already, or past its time): the sessions ended long ago.
    let Some(mut chain) = chain else {
        return logged_out_page(state, req, None, None);
    };
    let xml = match binding {
        Binding::Redirect => redirect_xml(encoded),
        Binding::Post => post_xml(encoded),
    };
    let response = match xml.and_then(|x| LogoutResponseMessage::parse(&x).map(|r| (x, r))) {
        Ok(found) => found,
        Err(e) => return bad_request(state, req, &e),
    };
    let (xml, response) = response;
    let Some(awaiting) = chain.awaiting.take() else {
        return bad_request(state, req, &"no logout request is awaiting an answer");
    };
    if response.issuer != awaiting.sp
        || response.in_response_to.as_deref() != Some(awaiting.request_id.as_str())
    {
        return bad_request(
            state,
            req,
            &"a LogoutResponse from another SP, or to another request",
        );
    }
    if let Some(sp) = saml.providers.get(&awaiting.sp) {
        let checked = match binding {
            Binding::Redirect => {
                redirect_signature::verify(req.query_string(), &sp.metadata.signing_certificates)
            }
            Binding::Post => verify_signed_message(&xml, &sp.metadata.signing_certificates),
        };
        if let Err(e) = checked {
            return bad_request(state, req, &e);
        }
    }
    if response.status != STATUS_SUCCESS {
        tracing::warn!(service.id = %awaiting.sp, status = %response.status,
            "a service provider did not log out");
        if let ChainEnd::AnswerSp { partial, .. } = &mut chain.finish {
            *partial = true;
        }
    }
    next_hop(state, req, saml, id.to_owned(), chain).await
}

/// The end of a logout: the logged-out page (or the service named), or the response owed to
/// the SP that asked.
async fn finish(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    end: ChainEnd,
) -> HttpResponse {
    let (sp_id, in_response_to, relay_state, partial) = match end {
        ChainEnd::LoggedOut { lang, service } => {
            return logged_out_page(state, req, lang.as_deref(), service.as_deref());
        }
        ChainEnd::AnswerSp {
            sp,
            in_response_to,
            relay_state,
            partial,
        } => (sp, in_response_to, relay_state, partial),
    };
    let lang = state.lang(req, None);
    let Some(sp) = saml.providers.get(&sp_id) else {
        return logged_out_page(state, req, None, None);
    };
    let Some(service) = sp.metadata.logout_response_service().cloned() else {
        return logged_out_page(state, req, None, None);
    };
    let keys = saml.keys.key_set();
    let now = state.services.clock.now();
    let Some(key) = keys.current(now) else {
        tracing::error!("no SAML key may sign: logout response not sent");
        return state.unavailable(req, lang);
    };
    let response = logout_response(
        &saml.entity_id,
        &service.response_location,
        &in_response_to,
        STATUS_SUCCESS,
        partial.then_some(STATUS_PARTIAL_LOGOUT),
        now,
    );
    let relay_state = relay_state.as_deref();
    let answer = if service.binding == BINDING_REDIRECT {
        redirect_url(&service.response_location, &response, relay_state, &key.key)
            .map(BrowserResponse::Redirect)
    } else {
        post_encoded(response, &key.key).map(|encoded| {
            let mut fields = vec![("SAMLResponse".to_owned(), encoded)];
            if let Some(relay) = relay_state {
                fields.push(("RelayState".to_owned(), relay.to_owned()));
            }
            BrowserResponse::AutoPost {
                action: service.response_location.clone(),
                fields,
                title: sp.name.clone(),
            }
        })
    };
    match answer {
        Ok(a) => browser_response(state, req, lang, a, false),
        Err(e) => {
            tracing::error!(error = %e, "could not sign a SAML logout response");
            state.unavailable(req, lang)
        }
    }
}

/// Whether `ended` gave assertions to SAML SPs that cannot be told at all (no single
/// logout service Sesame can use).
fn unreachable_saml_parties(saml: &SamlServices, ended: &EndedSession) -> bool {
    let keys = saml.keys.key_set();
    let logout = saml_logout(saml, &keys);
    ended
        .attached
        .iter()
        .any(|a| a.protocol == AttachedProtocol::Saml && !logout.reachable_somehow(&a.party))
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
