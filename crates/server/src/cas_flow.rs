//! Issuing a service ticket and sending the browser back to the service
//! (CAS Protocol 3.0 §2.1.1 `service`, §2.1.2 `method=POST`, §2.2.4 response).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::account::Account;
use sesame_core::i18n::Lang;
use sesame_core::session::{session_handle, EndedSession, SsoSession};
use sesame_protocol::cas::issuer::{CasIssuer, CasRequest};
use sesame_protocol::issuer::{
    BrowserResponse, IssueError, Issuer, IssuingSession, LogoutDelivery, SingleLogout,
};
use sesame_protocol::oidc::issuer::OidcIssuer;
use sesame_protocol::services::RegisteredService;

use crate::services::Services;
use crate::web::AppState;

/// Issues a service ticket for `service_url` from the session and answers with the redirect
/// (303 after a POST of credentials, 302 otherwise) or, for `method=POST`, a page that posts
/// the ticket to the service. `account` is the session's account as just read (and checked
/// active) by the caller: the ticket captures the attributes released to the service from
/// it, so that validating it reads no database. Without it, validation reads the account.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per login path; a struct would only rename them"
)]
pub async fn issue_and_redirect(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    service_url: &str,
    service: &RegisteredService,
    cookie_value: &str,
    session: &SsoSession,
    account: Option<&Account>,
    from_new_login: bool,
    method_post: bool,
) -> HttpResponse {
    let handle = session_handle(cookie_value);
    let issuing = IssuingSession {
        handle: &handle,
        session,
        from_new_login,
    };
    let request = CasRequest {
        service_url,
        service,
        method_post,
        account,
    };
    let issuer = CasIssuer::new(
        &state.services.cas,
        &state.services.registry,
        &state.settings.cas.principal_scope,
    );
    let issued = match issuer.issue(issuing, request).await {
        Ok(i) => i,
        Err(IssueError::BadTarget) => return state.unavailable(req, lang),
        Err(e) => {
            tracing::error!(error = %e, "could not issue a service ticket");
            return state.unavailable(req, lang);
        }
    };
    if let Err(e) = state
        .services
        .sessions
        .attach(&handle, session, &issued.attachment)
        .await
    {
        tracing::error!(error = %e, "could not record a service for single logout");
        return state.unavailable(req, lang);
    }
    tracing::debug!(service.id = %service.id, user.login = ?session.login.as_str(), from_new_login, "service ticket issued");
    browser_response(state, req, lang, issued.response, from_new_login)
}

/// Writes out an issuer's answer: a redirect (303 after a POST of credentials, 302
/// otherwise), or the page that posts a form by itself (`templates/autopost.html`).
pub fn browser_response(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    response: BrowserResponse,
    after_post: bool,
) -> HttpResponse {
    match response {
        BrowserResponse::Redirect(location) => {
            let mut res = if after_post {
                HttpResponse::SeeOther()
            } else {
                HttpResponse::Found()
            };
            res.insert_header(("Location", location)).finish()
        }
        BrowserResponse::AutoPost {
            action,
            fields,
            title,
        } => {
            // `ticket` stays in the context for themes written before `fields`.
            let ticket = fields
                .iter()
                .find(|(name, _)| name == "ticket")
                .map(|(_, value)| value.clone());
            state.page(
                StatusCode::OK,
                "autopost.html",
                lang,
                req,
                minijinja::context! { action => action, fields => fields, ticket => ticket, service_name => title },
            )
        }
    }
}

/// `service` without a ticket (gateway with no session).
pub fn redirect_without_ticket(service_url: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", service_url.to_owned()))
        .finish()
}

/// The single-logout messages owed for an ended session, protocol by protocol: CAS
/// logout requests, then (after revoking its grants) OpenID Connect logout tokens.
async fn logout_deliveries(services: &Services, ended: &EndedSession) -> Vec<LogoutDelivery> {
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
    let protocols: [&dyn SingleLogout; 2] = [&cas, &oidc];
    let mut deliveries = Vec::new();
    for protocol in protocols {
        deliveries.extend(protocol.logouts(ended, now).await);
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
                let outcome = client
                    .post(&d.target)
                    .form(&[(d.field, d.body.as_str())])
                    .send()
                    .await;
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
