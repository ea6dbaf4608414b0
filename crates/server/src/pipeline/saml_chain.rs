//! Single logout through the browser (SAML 2.0 profiles §4.4.3.4): the SPs of an ended
//! session that offer no SOAP service are visited one after the other, each with a signed
//! `LogoutRequest`, and each sends the browser back to `/saml/slo` with its `LogoutResponse`;
//! then the logout ends as it was asked (the logged-out page, a registered service, or the
//! response owed to the SP that asked). The chain is kept in the store under a random ID, the
//! `RelayState` of each request; a response is taken only from the SP the browser was sent
//! to, answering that request.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::random;
use sesame_protocol::saml::logout::{
    logout_request, logout_response, through_browser, Carried, FrontChannelParty,
    LogoutResponseMessage, STATUS_PARTIAL_LOGOUT,
};
use sesame_protocol::saml::redirect_signature;
use sesame_protocol::saml::request::{post_xml, redirect_xml};
use sesame_protocol::saml::verify::verify_signed_message;
use sesame_protocol::saml::STATUS_SUCCESS;

use super::issue::browser_response;
use super::saml::{bad_request, Binding, MAX_RELAY_STATE};
use crate::services::SamlServices;
use crate::web::AppState;

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
        let Some(service) = sp.metadata.browser_logout_service().cloned() else {
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
        let Ok(raw) = serde_json::to_string(&chain) else {
            break;
        };
        if let Err(e) = state
            .services
            .store
            .put(&chain_key(&id), &raw, CHAIN_TTL)
            .await
        {
            tracing::error!(error = %e, "store unavailable: front-channel logout stopped");
            break;
        }
        let hop = through_browser(
            &service,
            Carried::Request,
            request,
            Some(&id),
            &key.key,
            &sp.name,
        );
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
pub(crate) async fn chain_answered(
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
        return state.logged_out(req, None, None);
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
pub(crate) async fn finish(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    end: ChainEnd,
) -> HttpResponse {
    let (sp_id, in_response_to, relay_state, partial) = match end {
        ChainEnd::LoggedOut { lang, service } => {
            return state.logged_out(req, lang.as_deref(), service.as_deref());
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
        return state.logged_out(req, None, None);
    };
    let Some(service) = sp.metadata.browser_logout_service().cloned() else {
        return state.logged_out(req, None, None);
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
    let answer = through_browser(
        &service,
        Carried::Response,
        response,
        relay_state.as_deref(),
        &key.key,
        &sp.name,
    );
    match answer {
        Ok(a) => browser_response(state, req, lang, a, false),
        Err(e) => {
            tracing::error!(error = %e, "could not sign a SAML logout response");
            state.unavailable(req, lang)
        }
    }
}
