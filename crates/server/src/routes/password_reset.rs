//! `GET|POST /password/forgot`, `POST /password/code`, `GET|POST /password/helpdesk-code`,
//! `GET|POST /password/reset`: the forgotten-password flow (security spec A48–A51, C07). The
//! domain rules live in `sesame_lifecycle::recovery`; this module renders the steps.
//!
//! Steps: the request form (login or institutional address, mail or SMS) → the same answer
//! whatever the account → (SMS) the code form → the new-password form, reachable only with
//! a verified token (from the mailed link, or exchanged for a right SMS code, or for a login
//! and the code a helpdesk agent gave) → done.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::account::Account;
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_core::random;
use sesame_lifecycle::recovery::reset::{reset_sms_text, ResetChannel, ResetRequest};
use sesame_lifecycle::recovery::RecoveryError;

use crate::pipeline::end::end_sessions_everywhere;
use crate::web::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/password/forgot", web::get().to(show_forgot))
        .route("/password/forgot", web::post().to(submit_forgot))
        .route("/password/code", web::post().to(submit_code))
        .route("/password/helpdesk-code", web::get().to(show_helpdesk_code))
        .route(
            "/password/helpdesk-code",
            web::post().to(submit_helpdesk_code),
        )
        .route("/password/reset", web::get().to(show_reset))
        .route("/password/reset", web::post().to(submit_reset));
}

/// The least time a reset request takes to answer, whatever happened: a request for an
/// existing account queues a mail (a database write) and one for an unknown account does
/// not, and that difference must not show (A48).
const REQUEST_ANSWER_FLOOR: Duration = Duration::from_millis(150);

/// How long a request form stays valid.
const FORM_TICKET_TTL: Duration = Duration::from_secs(30 * 60);

fn form_ticket_key(ticket: &str) -> String {
    format!("reset-form:{}", random::sha256_hex(ticket))
}

/// A single-use form ticket, as the login form's `lt` (no cross-site or replayed requests).
pub async fn issue_form_ticket(state: &AppState) -> Option<String> {
    let ticket = format!("FT-{}", random::token());
    match state
        .services
        .store
        .put_new(&form_ticket_key(&ticket), "1", FORM_TICKET_TTL)
        .await
    {
        Ok(_) => Some(ticket),
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a form: store unavailable");
            None
        }
    }
}

async fn take_form_ticket(state: &AppState, ticket: Option<&str>) -> Result<bool, ()> {
    match ticket {
        Some(t) if !t.is_empty() && t.len() <= 128 => {
            match state.services.store.take(&form_ticket_key(t)).await {
                Ok(found) => Ok(found.is_some()),
                Err(e) => {
                    tracing::error!(error = %e, "store unavailable while checking a form ticket");
                    Err(())
                }
            }
        }
        _ => Ok(false),
    }
}

/// Pages of this flow carry tokens in their URL or form: never sent on as a Referer (A49).
/// The policy is the one of every page with a token in its address (the page's `<meta>`
/// says the same), not `no-referrer`, under which the new-password form would be posted
/// with `Origin: null` and refused as cross-site.
fn no_referrer(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        actix_web::http::header::REFERRER_POLICY,
        actix_web::http::header::HeaderValue::from_static(crate::web::SECRET_PAGE_REFERRER_POLICY),
    );
    res
}

/// Query of the pages (language switch).
#[derive(Debug, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// `GET /password/forgot`
pub async fn show_forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    forgot_form(&state, &req, lang, StatusCode::OK, None, "").await
}

async fn forgot_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
    identifier: &str,
) -> HttpResponse {
    let Some(ticket) = issue_form_ticket(state).await else {
        return state.unavailable(req, lang);
    };
    state.page(
        status,
        "reset_forgot.html",
        lang,
        req,
        minijinja::context! {
            ft => ticket,
            error => error,
            identifier => identifier,
            identity_check => state.services.activation.any_reset_by_identity(),
        },
    )
}

/// The request form.
#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    ft: Option<String>,
    identifier: Option<String>,
    channel: Option<String>,
    lang: Option<String>,
}

/// `POST /password/forgot`: the same answer whether or not the account exists (A48).
pub async fn submit_forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ForgotForm>,
) -> HttpResponse {
    let started = tokio::time::Instant::now();
    let lang = state.lang(&req, form.lang.as_deref());
    let identifier: String = form
        .identifier
        .as_deref()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(256)
        .collect();
    match take_form_ticket(&state, form.ft.as_deref()).await {
        Ok(true) => {}
        Ok(false) => {
            let msg = state.renderer.text(lang, "error_form_expired");
            return forgot_form(
                &state,
                &req,
                lang,
                StatusCode::FORBIDDEN,
                Some(msg),
                &identifier,
            )
            .await;
        }
        Err(()) => return state.unavailable(&req, lang),
    }
    if identifier.is_empty() {
        let msg = state.renderer.text(lang, "reset_error_identifier");
        return forgot_form(&state, &req, lang, StatusCode::BAD_REQUEST, Some(msg), "").await;
    }
    let channel = match form.channel.as_deref() {
        Some("sms") => ResetChannel::Sms,
        _ => ResetChannel::Mail,
    };
    let request = ResetRequest {
        identifier,
        channel,
        lang,
        ip: state.client_ip(&req),
    };
    let reset_url = format!("{}/password/reset", state.base());
    let recovery = &state.services.recovery;
    let minutes = recovery.policy().sms_code_ttl.as_secs().div_ceil(60);
    let sms_text = reset_sms_text(lang, &state.settings.ui.institution_name, minutes);
    let outcome = recovery.request(&request, &reset_url, &sms_text).await;
    tokio::time::sleep_until(started + REQUEST_ANSWER_FLOOR).await;
    match outcome {
        Ok(None) => state.page(
            StatusCode::OK,
            "reset_sent.html",
            lang,
            &req,
            minijinja::context! {},
        ),
        Ok(Some(request_id)) => code_form(&state, &req, lang, StatusCode::OK, &request_id, None),
        Err(e) => {
            tracing::error!(error = %e, "password reset request failed");
            state.unavailable(&req, lang)
        }
    }
}

fn code_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    request_id: &str,
    error: Option<String>,
) -> HttpResponse {
    no_referrer(state.page(
        status,
        "reset_code.html",
        lang,
        req,
        minijinja::context! {
            request_id => request_id,
            error => error,
            minutes => state.services.recovery.policy().sms_code_ttl.as_secs() / 60,
        },
    ))
}

/// The SMS code form.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    request_id: Option<String>,
    code: Option<String>,
    lang: Option<String>,
}

/// `POST /password/code`: a right code opens the new-password step.
pub async fn submit_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let lang = state.lang(&req, form.lang.as_deref());
    let request_id = form.request_id.as_deref().unwrap_or_default();
    let code = form.code.as_deref().unwrap_or_default();
    let recovery = &state.services.recovery;
    match recovery
        .verify_code(request_id, code, state.client_ip(&req))
        .await
    {
        Ok(token) => match recovery.check_token(&token).await {
            Ok(account) => {
                new_password_form(&state, &req, lang, StatusCode::OK, &token, &account, None)
            }
            Err(e) => refused_or_unavailable(&state, &req, lang, &e),
        },
        Err(RecoveryError::Refused(sesame_lifecycle::recovery::Refusal::WrongCode)) => {
            let msg = state.renderer.text(lang, "reset_error_code");
            code_form(
                &state,
                &req,
                lang,
                StatusCode::BAD_REQUEST,
                request_id,
                Some(msg),
            )
        }
        Err(e) => refused_or_unavailable(&state, &req, lang, &e),
    }
}

async fn helpdesk_code_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
    identifier: &str,
) -> HttpResponse {
    let Some(ticket) = issue_form_ticket(state).await else {
        return state.unavailable(req, lang);
    };
    state.page(
        status,
        "reset_helpdesk_code.html",
        lang,
        req,
        minijinja::context! {
            ft => ticket,
            error => error,
            identifier => identifier,
        },
    )
}

/// `GET /password/helpdesk-code`
pub async fn show_helpdesk_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    helpdesk_code_form(&state, &req, lang, StatusCode::OK, None, "").await
}

/// The helpdesk code form.
#[derive(Deserialize)]
pub struct HelpdeskCodeForm {
    ft: Option<String>,
    identifier: Option<String>,
    code: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for HelpdeskCodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelpdeskCodeForm")
            .field("identifier", &self.identifier)
            .finish_non_exhaustive()
    }
}

/// `POST /password/helpdesk-code`: a login and the right code from the helpdesk open the
/// new-password step; anything else gets one answer (no enumeration).
pub async fn submit_helpdesk_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<HelpdeskCodeForm>,
) -> HttpResponse {
    let started = tokio::time::Instant::now();
    let form = form.into_inner();
    let lang = state.lang(&req, form.lang.as_deref());
    let identifier: String = form
        .identifier
        .as_deref()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(256)
        .collect();
    match take_form_ticket(&state, form.ft.as_deref()).await {
        Ok(true) => {}
        Ok(false) => {
            let msg = state.renderer.text(lang, "error_form_expired");
            return helpdesk_code_form(
                &state,
                &req,
                lang,
                StatusCode::FORBIDDEN,
                Some(msg),
                &identifier,
            )
            .await;
        }
        Err(()) => return state.unavailable(&req, lang),
    }
    let code: String = form
        .code
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect();
    let recovery = &state.services.recovery;
    let outcome = recovery
        .verify_helpdesk_code(&identifier, &code, state.client_ip(&req))
        .await;
    // Whether the login exists or holds a code must not show in the time taken either.
    tokio::time::sleep_until(started + REQUEST_ANSWER_FLOOR).await;
    match outcome {
        Ok(token) => match recovery.check_token(&token).await {
            Ok(account) => {
                new_password_form(&state, &req, lang, StatusCode::OK, &token, &account, None)
            }
            Err(e) => refused_or_unavailable(&state, &req, lang, &e),
        },
        Err(RecoveryError::Refused(_)) => {
            let msg = state.renderer.text(lang, "reset_helpdesk_code_error");
            helpdesk_code_form(
                &state,
                &req,
                lang,
                StatusCode::BAD_REQUEST,
                Some(msg),
                &identifier,
            )
            .await
        }
        Err(e) => refused_or_unavailable(&state, &req, lang, &e),
    }
}

fn refused_or_unavailable(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    e: &RecoveryError,
) -> HttpResponse {
    match e {
        RecoveryError::Refused(_) => no_referrer(state.page(
            StatusCode::BAD_REQUEST,
            "reset_invalid.html",
            lang,
            req,
            minijinja::context! {},
        )),
        RecoveryError::Busy => state.error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            lang,
            req,
            "error_title",
            "error_busy",
        ),
        other => {
            tracing::error!(error = %other, "password reset failed");
            state.unavailable(req, lang)
        }
    }
}

fn new_password_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    token: &str,
    account: &Account,
    errors: Option<Vec<String>>,
) -> HttpResponse {
    crate::reset_form::new_password_page(state, req, lang, status, token, account, errors)
}

/// Query of the mailed link.
#[derive(Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for ResetQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetQuery").finish_non_exhaustive()
    }
}

/// `GET /password/reset?token=`: the mailed link. Shows the new-password form only for a
/// valid token; consumes nothing.
pub async fn show_reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ResetQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let token = query.token.as_deref().unwrap_or_default();
    match state.services.recovery.check_token(token).await {
        Ok(account) => new_password_form(&state, &req, lang, StatusCode::OK, token, &account, None),
        Err(e) => refused_or_unavailable(&state, &req, lang, &e),
    }
}

/// The new-password form.
#[derive(Deserialize)]
pub struct ResetForm {
    token: Option<String>,
    password: Option<String>,
    confirm: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for ResetForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetForm").finish_non_exhaustive()
    }
}

/// `POST /password/reset`: the new password, twice, with the verified token (A51).
pub async fn submit_reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ResetForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = state.lang(&req, form.lang.as_deref());
    let token = form.token.unwrap_or_default();
    let password = Password::new(form.password.as_deref().unwrap_or_default());
    let confirmation = Password::new(form.confirm.as_deref().unwrap_or_default());
    let recovery = &state.services.recovery;
    match recovery
        .reset(&token, password, &confirmation, lang, state.client_ip(&req))
        .await
    {
        Ok(done) => {
            end_sessions_everywhere(&state, done.account.id, done.ended, true).await;
            let mut res = state.page(
                StatusCode::OK,
                "reset_done.html",
                lang,
                &req,
                minijinja::context! { login => done.account.login.as_str() },
            );
            if let Err(e) = res.add_cookie(&state.sso_cookie_removal()) {
                tracing::warn!(error = %e, "could not clear the SSO cookie");
            }
            // The reset came through a verified channel: this browser is now a known device
            // of the account (the reset has lifted every lock of the account).
            if let Some(device) = state.remember_device(&req, done.account.id).await {
                if let Err(e) = res.add_cookie(&device) {
                    tracing::warn!(error = %e, "could not set the device cookie");
                }
            }
            no_referrer(res)
        }
        Err(RecoveryError::Mismatch) => {
            let msg = state.renderer.text(lang, "reset_error_mismatch");
            retry_new_password(&state, &req, lang, &token, vec![msg]).await
        }
        Err(RecoveryError::Policy(violations)) => {
            let msgs = violations.iter().map(|v| v.message(lang)).collect();
            retry_new_password(&state, &req, lang, &token, msgs).await
        }
        Err(e) => refused_or_unavailable(&state, &req, lang, &e),
    }
}

async fn retry_new_password(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    token: &str,
    errors: Vec<String>,
) -> HttpResponse {
    match state.services.recovery.check_token(token).await {
        Ok(account) => new_password_form(
            state,
            req,
            lang,
            StatusCode::BAD_REQUEST,
            token,
            &account,
            Some(errors),
        ),
        Err(e) => refused_or_unavailable(state, req, lang, &e),
    }
}
