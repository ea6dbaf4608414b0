//! Ending SSO sessions: the logout of this browser's session, and what follows every ended
//! session (logout, revocation from the account page, reset, block, password change,
//! helpdesk): single logout to the applications it logged in to (CAS Protocol 3.0 §2.3.3,
//! OpenID Connect Back-Channel Logout 1.0 §2.5), its proxy tickets revoked. The sessions
//! themselves end in `sesame_core::session::SessionManager` (`end`, `end_handle`,
//! `end_all_for`), which returns what they gave out.

use actix_web::{HttpRequest, HttpResponse};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::ids::AccountId;
use sesame_core::session::EndedSession;
use sesame_protocol::cas::issuer::CasIssuer;
use sesame_protocol::issuer::{LogoutDelivery, LogoutEncoding, SingleLogout};
use sesame_protocol::oidc::issuer::OidcIssuer;
use sesame_protocol::saml::logout::{front_channel_parties, SamlLogout};

use super::saml_chain::{start_chain, ChainEnd};
use crate::services::Services;
use crate::web::AppState;

/// The single-logout messages owed for an ended session, protocol by protocol: CAS
/// logout requests, then (after revoking its grants) OpenID Connect logout tokens, then SAML
/// logout requests over SOAP.
pub(crate) async fn logout_deliveries(
    services: &Services,
    ended: &EndedSession,
) -> Vec<LogoutDelivery> {
    let now = services.clock.now();
    // The principal scope plays no part in logout.
    let cas = CasIssuer::new(&services.cas, &services.registry, "");
    let oidc = &services.oidc;
    let oidc = OidcIssuer::new(
        &oidc.codes,
        oidc.consents.as_ref(),
        &oidc.clients,
        &oidc.tokens,
        "",
    );
    let mut deliveries = Vec::new();
    for protocol in [&cas as &dyn SingleLogout, &oidc] {
        deliveries.extend(protocol.logouts(ended, now).await);
    }
    if let Some(saml) = &services.saml {
        let keys = saml.keys.key_set();
        let logout = SamlLogout {
            entity_id: &saml.entity_id,
            keys: &keys,
            providers: &saml.providers,
        };
        deliveries.extend(logout.logouts(ended, now).await);
    }
    deliveries
}

/// Tries per request, and the pause before each retry.
const SLO_ATTEMPTS: u32 = 3;
const SLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Delivers logout requests: each gets up to three tries with a growing pause, a 5 s timeout
/// per try, and any 2xx answer counts as delivered.
pub async fn deliver_logouts(deliveries: Vec<LogoutDelivery>) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SLO_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the single-logout client");
            return;
        }
    };
    let sends = deliveries.into_iter().map(|d| {
        let client = client.clone();
        async move {
            for attempt in 1..=SLO_ATTEMPTS {
                let request = client.post(&d.target);
                let request = match d.encoding {
                    LogoutEncoding::Form(field) => request.form(&[(field, d.body.as_str())]),
                    LogoutEncoding::Soap => request
                        .header("Content-Type", "text/xml; charset=utf-8")
                        .header("SOAPAction", "http://www.oasis-open.org/committees/security")
                        .body(d.body.clone()),
                };
                let outcome = request.send().await;
                match outcome {
                    Ok(res) if res.status().is_success() => {
                        tracing::info!(service.id = %d.party, attempt, "single logout delivered");
                        return;
                    }
                    Ok(res) => tracing::warn!(service.id = %d.party, attempt, http.status = res.status().as_u16(), "single logout refused"),
                    Err(e) => tracing::warn!(service.id = %d.party, attempt, error = %e.without_url(), "single logout failed"),
                }
                if attempt < SLO_ATTEMPTS {
                    tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt))).await;
                }
            }
        }
    });
    futures::future::join_all(sends).await;
}

/// Ends what an ended SSO session gave out: revokes its OpenID Connect grants, then sends
/// the back-channel logout requests (CAS) and logout tokens (OIDC) in the background:
/// logging out never waits for a slow application.
pub async fn send_single_logout(services: &Services, ended: &EndedSession) -> usize {
    let deliveries = logout_deliveries(services, ended).await;
    let count = deliveries.len();
    if count > 0 {
        tokio::spawn(deliver_logouts(deliveries));
    }
    count
}

/// As [`send_single_logout`], but waits for the deliveries (the CLI exits right after).
pub async fn send_single_logout_now(services: &Services, ended: &EndedSession) -> usize {
    let deliveries = logout_deliveries(services, ended).await;
    let count = deliveries.len();
    deliver_logouts(deliveries).await;
    count
}

/// Ends this browser's session, tells the applications it logged in to, and shows the
/// logged-out page, or goes to `service` (a registered service, checked by the caller). SAML
/// SPs without a back channel are told first, through the browser.
pub async fn end_session(
    state: &AppState,
    req: &HttpRequest,
    lang: Option<&str>,
    service: Option<&str>,
) -> HttpResponse {
    let page_lang = state.lang(req, lang);
    let mut front_channel = Vec::new();
    if let Some(cookie) = req.cookie(&state.sso_cookie_name) {
        match state.services.sessions.end(cookie.value()).await {
            Ok(Some((session, ended))) => {
                let handle = ended.handle.clone();
                send_single_logout(&state.services, &ended).await;
                if let Some(saml) = &state.services.saml {
                    front_channel = front_channel_parties(&saml.providers, &ended);
                }
                if let Err(e) = state.services.cas.revoke_session_tickets(&handle).await {
                    tracing::error!(error = %e, "could not revoke the proxy tickets of an ended session");
                }
                let event = AuditEvent::new(AuditKind::Logout, state.services.clock.now(), "self")
                    .login(session.login.as_str())
                    .account(session.account_id)
                    .ip(state.client_ip(req));
                if let Err(e) = state.services.audit.record(event).await {
                    tracing::error!(error = %e, "could not record a logout");
                }
            }
            Ok(None) => {}
            Err(e) => {
                // Never tell someone they are logged out when the session may live on.
                tracing::error!(error = %e, "logout failed: store unavailable");
                return state.unavailable(req, page_lang);
            }
        }
    }
    let mut res = match &state.services.saml {
        Some(saml) if !front_channel.is_empty() => {
            let end = ChainEnd::LoggedOut {
                lang: lang.map(str::to_owned),
                service: service.map(str::to_owned),
            };
            start_chain(state, req, saml, front_channel, end).await
        }
        _ => state.logged_out(req, lang, service),
    };
    if let Err(e) = res.add_cookie(&state.sso_cookie_removal()) {
        tracing::warn!(error = %e, "could not clear the SSO cookie");
    }
    res
}

/// After sessions of an account were ended (reset, password change, revoke): single logout
/// to the applications they logged in to, their proxy tickets revoked; and, when
/// `all_grants`, every OpenID Connect grant of the account revoked, offline ones included
/// (a reset means the password may have leaked).
pub async fn end_sessions_everywhere(
    state: &AppState,
    account_id: AccountId,
    ended: Vec<EndedSession>,
    all_grants: bool,
) {
    for session in &ended {
        send_single_logout(&state.services, session).await;
        if let Err(e) = state
            .services
            .cas
            .revoke_session_tickets(&session.handle)
            .await
        {
            tracing::error!(error = %e, "could not revoke the proxy tickets of an ended session");
        }
    }
    if all_grants {
        let oidc = &state.services.oidc;
        for client in oidc.clients.clients() {
            if let Err(e) = oidc
                .tokens
                .grants()
                .revoke_consent_grants(&account_id, &client.client_id)
                .await
            {
                tracing::error!(error = %e, client.id = %client.client_id, "could not revoke the grants of a reset account");
            }
        }
    }
}
