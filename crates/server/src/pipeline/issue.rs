//! The end of a login: an issuer's answer written out for the browser. The protocols decide
//! what the browser gets (`sesame_protocol::issuer`); this writes it as a redirect or as the
//! page that posts a form by itself (`templates/autopost.html`).
//! CAS Protocol 3.0 §2.1.1 `service`, §2.1.2 `method=POST`, §2.2.4 response.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::account::Account;
use sesame_core::i18n::Lang;
use sesame_core::session::{session_handle, SsoSession};
use sesame_protocol::cas::issuer::{CasIssuer, CasRequest};
use sesame_protocol::issuer::{BrowserResponse, IssueError, Issuer, IssuingSession};
use sesame_protocol::services::RegisteredService;

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
        sessions: Some(&state.services.sessions),
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
    if let Some(item) = &issued.attachment {
        if let Err(e) = state.services.sessions.attach(&handle, session, item).await {
            tracing::error!(error = %e, "could not record a service for single logout");
            return state.unavailable(req, lang);
        }
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
