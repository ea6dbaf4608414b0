//! `GET /account` ("Mon compte") and its forms: `POST /account/password`,
//! `/account/recovery-email`, `/account/recovery-email/verification`, `/account/mobile`,
//! `/account/mobile/verification`, `/account/mobile/verify`,
//! `/account/directory`, `/account/redirect`, `/account/sessions/revoke`; and
//! `GET|POST /account/verify` (the link that proves a new address: its page has a button
//! that posts, so that opening the link, by a person or a mail scanner, changes nothing).
//! The rules live in `sesame_lifecycle::self_service`; this module renders them.
//!
//! Every form needs the SSO session and carries a token derived from its cookie, which a
//! cross-site page cannot know; a foreign `Origin` is refused as well.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::audit::AuditEvent;
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_core::mail::mask_email;
use sesame_core::random;
use sesame_core::session::{session_handle, SsoSession};
use sesame_core::sms::mask_phone;
use sesame_lifecycle::recovery::{RecoveryError, Refusal};
use sesame_lifecycle::self_service::{
    mobile_sms_text, PasswordChange, RedirectChoice, VerificationRequest, Verified,
};

use crate::pipeline::end::end_sessions_everywhere;
use crate::pipeline::session::current_session;
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(show_account))
        .route("/account/password", web::post().to(change_password))
        .route(
            "/account/recovery-email",
            web::post().to(change_recovery_email),
        )
        .route(
            "/account/recovery-email/verification",
            web::post().to(verify_recovery_email),
        )
        .route("/account/mobile", web::post().to(change_mobile))
        .route(
            "/account/mobile/verification",
            web::post().to(verify_current_mobile),
        )
        .route("/account/mobile/verify", web::post().to(verify_mobile))
        .route("/account/directory", web::post().to(set_directory))
        .route("/account/redirect", web::post().to(set_redirect))
        .route("/account/sessions/revoke", web::post().to(revoke_session))
        .route("/account/verify", web::get().to(show_verify_address))
        .route("/account/verify", web::post().to(verify_address));
}

/// Audit kinds shown under "recent activity".
const SHOWN_EVENTS: &[&str] = &[
    "login.succeeded",
    "login.failed",
    "login.locked",
    "logout",
    "account.password_changed",
    "recovery.reset_requested",
    "recovery.password_reset",
    "account.contact_verified",
    "account.session_revoked",
    "account.updated",
    "oidc.consent_granted",
    "oidc.consent_revoked",
    "mfa.enrolled",
    "mfa.removed",
    "mfa.recovery_codes_regenerated",
];

/// What to say above the page after a form.
#[derive(Debug, Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    errors: Vec<String>,
}

impl Outcome {
    fn notice(text: String) -> Self {
        Self {
            notice: Some(text),
            ..Self::default()
        }
    }
    fn error(text: String) -> Self {
        Self {
            error: Some(text),
            ..Self::default()
        }
    }
}

/// To the login page, and back to the account page after it.
fn to_login(state: &AppState) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!("{}/cas/login?next=/account", state.base()),
        ))
        .finish()
}

/// Query of `GET /account`.
#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    lang: Option<String>,
}

/// `GET /account`
pub async fn show_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<AccountQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let Some((cookie, session)) = current_session(&state, &req).await else {
        return to_login(&state);
    };
    render(
        &state,
        &req,
        lang,
        &cookie,
        &session,
        StatusCode::OK,
        Outcome::default(),
    )
    .await
}

async fn render(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    cookie: &str,
    session: &SsoSession,
    status: StatusCode,
    outcome: Outcome,
) -> HttpResponse {
    let services = &state.services;
    let who = match services.self_service.profile(session.account_id).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while showing the account page");
            return state.unavailable(req, lang);
        }
    };
    let sessions = match services.sessions.sessions_of(session.account_id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while listing sessions");
            return state.unavailable(req, lang);
        }
    };
    let events = match services
        .audit
        .recent(Some(session.login.as_str()), 200)
        .await
    {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while reading recent events");
            return state.unavailable(req, lang);
        }
    };
    let texts = state.renderer.texts(lang);
    let current_handle = session_handle(cookie);
    let session_items: Vec<minijinja::Value> = sessions
        .iter()
        .map(|(handle, s)| {
            minijinja::context! {
                handle => handle,
                current => random::constant_time_eq(handle, &current_handle),
                since => state.local_datetime(s.authenticated_at),
                last_seen => state.local_datetime(s.last_seen_at),
                remember_me => s.remember_me,
            }
        })
        .collect();
    let event_items: Vec<minijinja::Value> = events
        .iter()
        .filter(|e| SHOWN_EVENTS.contains(&e.kind.as_str()))
        .take(20)
        .map(|e: &AuditEvent| {
            let key = format!("account_event_{}", e.kind.replace('.', "_"));
            minijinja::context! {
                at => state.local_datetime(e.at),
                what => texts.get(&key).cloned().unwrap_or_else(|| e.kind.clone()),
                ip => e.ip.clone(),
            }
        })
        .collect();
    let account = &who.account;
    let profile = &who.profile;
    let rules = services
        .accounts
        .policies()
        .for_affiliation(account.affiliation)
        .describe(lang);
    let affiliation_key = format!("account_affiliation_{}", account.affiliation.as_str());
    state.page(
        status,
        "account_index.html",
        lang,
        req,
        minijinja::context! {
            csrf => FormPurpose::Account.token(cookie),
            logout_csrf => FormPurpose::Logout.token(cookie),
            login => account.login.as_str(),
            given_name => account.given_name,
            family_name => account.family_name,
            email => account.email.as_ref().map(|e| e.as_str().to_owned()),
            affiliation => texts.get(&affiliation_key).cloned().unwrap_or_else(|| account.affiliation.as_str().to_owned()),
            recovery_email => profile.recovery_email.as_ref().map(|c| c.address.as_str().to_owned()),
            recovery_email_verified => profile.recovery_email.as_ref().is_some_and(|c| c.verified),
            mobile => profile.mobile.as_ref().map(|c| mask_phone(c.address.as_str())),
            mobile_verified => profile.mobile.as_ref().is_some_and(|c| c.verified),
            directory_opt_in => profile.directory_opt_in,
            redirect => profile.mail_redirect.as_ref().map(|r| r.address.as_str().to_owned()),
            redirect_verified => profile.mail_redirect.as_ref().is_some_and(|r| r.verified),
            keep_copy => profile.mail_redirect.as_ref().is_some_and(|r| r.keep_copy),
            sessions => session_items,
            events => event_items,
            rules => rules,
            notice => outcome.notice,
            error => outcome.error,
            errors => outcome.errors,
        },
    )
}

/// Checks the session and the form's token; on success the session's cookie and record.
async fn guard(
    state: &AppState,
    req: &HttpRequest,
    csrf: Option<&str>,
) -> Result<(String, SsoSession), HttpResponse> {
    let lang = state.lang(req, None);
    let Some((cookie, session)) = current_session(state, req).await else {
        return Err(to_login(state));
    };
    if !FormPurpose::Account.accepts(&cookie, csrf) {
        return Err(state.form_expired(req, lang));
    }
    Ok((cookie, session))
}

/// Maps a failed operation to the page with a message (or 503).
/// The account page again, with `text` as the notice of a change that went through.
async fn notice(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    cookie: &str,
    session: &SsoSession,
    text: String,
) -> HttpResponse {
    render(
        state,
        req,
        lang,
        cookie,
        session,
        StatusCode::OK,
        Outcome::notice(text),
    )
    .await
}

async fn failed(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    cookie: &str,
    session: &SsoSession,
    e: RecoveryError,
) -> HttpResponse {
    let text = |key: &str| state.renderer.text(lang, key);
    let (status, outcome) = match e {
        RecoveryError::WrongPassword => (
            StatusCode::UNAUTHORIZED,
            Outcome::error(text("account_error_current_password")),
        ),
        RecoveryError::Locked(err) => {
            let message = match err {
                sesame_core::error::AuthError::Locked { until }
                | sesame_core::error::AuthError::Throttled { until } => {
                    text("error_locked").replace("{time}", &state.local_time(until))
                }
                _ => text("account_error_current_password"),
            };
            (StatusCode::UNAUTHORIZED, Outcome::error(message))
        }
        RecoveryError::Mismatch => (
            StatusCode::BAD_REQUEST,
            Outcome::error(text("reset_error_mismatch")),
        ),
        RecoveryError::Policy(violations) => (
            StatusCode::BAD_REQUEST,
            Outcome {
                error: Some(text("account_error_policy")),
                errors: violations.iter().map(|v| v.message(lang)).collect(),
                ..Outcome::default()
            },
        ),
        RecoveryError::InvalidAddress => (
            StatusCode::BAD_REQUEST,
            Outcome::error(text("account_error_address")),
        ),
        RecoveryError::Refused(_) => (
            StatusCode::BAD_REQUEST,
            Outcome::error(text("account_error_code")),
        ),
        RecoveryError::Busy => {
            return state.error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                req,
                "error_title",
                "error_busy",
            )
        }
        other => {
            tracing::error!(error = %other, "account page operation failed");
            return state.unavailable(req, lang);
        }
    };
    render(state, req, lang, cookie, session, status, outcome).await
}

/// `POST /account/password`
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    current: Option<String>,
    password: Option<String>,
    confirm: Option<String>,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm").finish_non_exhaustive()
    }
}

/// `POST /account/password`: current password, then the new one twice (A52).
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PasswordForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let handle = session_handle(&cookie);
    match state
        .services
        .self_service
        .change_password(
            &session,
            &handle,
            PasswordChange {
                current: Password::new(form.current.as_deref().unwrap_or_default()),
                new: Password::new(form.password.as_deref().unwrap_or_default()),
                confirmation: Password::new(form.confirm.as_deref().unwrap_or_default()),
            },
            lang,
            state.client_ip(&req),
        )
        .await
    {
        Ok(ended) => {
            end_sessions_everywhere(&state, session.account_id, ended, false).await;
            let text = state.renderer.text(lang, "account_password_changed");
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

/// `POST /account/recovery-email`
#[derive(Deserialize)]
pub struct RecoveryEmailForm {
    csrf: Option<String>,
    current: Option<String>,
    email: Option<String>,
}

impl std::fmt::Debug for RecoveryEmailForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryEmailForm").finish_non_exhaustive()
    }
}

/// `POST /account/recovery-email`: current password, then a link to the new address (A53).
pub async fn change_recovery_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RecoveryEmailForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let verify_url = format!("{}/account/verify", state.base());
    match state
        .services
        .self_service
        .request_recovery_email(
            &session,
            Password::new(form.current.as_deref().unwrap_or_default()),
            form.email.as_deref().unwrap_or_default(),
            &verify_url,
            lang,
            state.client_ip(&req),
        )
        .await
    {
        Ok(address) => {
            let text = state
                .renderer
                .text(lang, "account_link_sent")
                .replace("{address}", &mask_email(address.as_str()));
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

/// A form with only its token (the "verify" buttons).
#[derive(Debug, Deserialize)]
pub struct TokenOnlyForm {
    csrf: Option<String>,
}

/// The notice of a "verify" button that sent nothing.
fn not_sent_text(state: &AppState, lang: Lang, outcome: &VerificationRequest) -> String {
    state.renderer.text(
        lang,
        match outcome {
            VerificationRequest::DailyLimit => "account_verification_limit",
            _ => "account_nothing_to_verify",
        },
    )
}

/// `POST /account/recovery-email/verification`: mails a link that verifies the recovery
/// address already on file (one an import gave, or typed before contacts were proven at
/// activation). No password: the link only proves that same address, at that address.
pub async fn verify_recovery_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenOnlyForm>,
) -> HttpResponse {
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let verify_url = format!("{}/account/verify", state.base());
    match state
        .services
        .self_service
        .send_recovery_verification(session.account_id, &verify_url, lang, "self")
        .await
    {
        Ok(VerificationRequest::Sent(address)) => {
            let text = state
                .renderer
                .text(lang, "account_verification_sent")
                .replace("{address}", &mask_email(&address));
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Ok(other) => {
            let text = not_sent_text(&state, lang, &other);
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

/// `POST /account/mobile/verification`: sends a code by SMS to the mobile already on file,
/// then shows the code form.
pub async fn verify_current_mobile(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenOnlyForm>,
) -> HttpResponse {
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let minutes = state
        .services
        .recovery
        .policy()
        .sms_code_ttl
        .as_secs()
        .div_ceil(60);
    let text = mobile_sms_text(lang, &state.settings.ui.institution_name, minutes);
    match state
        .services
        .self_service
        .send_mobile_verification(&session, &text)
        .await
    {
        Ok((_, Some(request_id))) => mobile_code_form(
            &state,
            &req,
            lang,
            &cookie,
            StatusCode::OK,
            &request_id,
            None,
        ),
        Ok((outcome, None)) => {
            let text = not_sent_text(&state, lang, &outcome);
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

/// `POST /account/mobile`
#[derive(Deserialize)]
pub struct MobileForm {
    csrf: Option<String>,
    current: Option<String>,
    mobile: Option<String>,
}

impl std::fmt::Debug for MobileForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MobileForm").finish_non_exhaustive()
    }
}

/// `POST /account/mobile`: current password, then a code by SMS to the new number.
pub async fn change_mobile(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<MobileForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let minutes = state
        .services
        .recovery
        .policy()
        .sms_code_ttl
        .as_secs()
        .div_ceil(60);
    let text = mobile_sms_text(lang, &state.settings.ui.institution_name, minutes);
    match state
        .services
        .self_service
        .request_mobile(
            &session,
            Password::new(form.current.as_deref().unwrap_or_default()),
            form.mobile.as_deref().unwrap_or_default(),
            &text,
            state.client_ip(&req),
        )
        .await
    {
        Ok(request_id) => mobile_code_form(
            &state,
            &req,
            lang,
            &cookie,
            StatusCode::OK,
            &request_id,
            None,
        ),
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

fn mobile_code_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    cookie: &str,
    status: StatusCode,
    request_id: &str,
    error: Option<String>,
) -> HttpResponse {
    state.page(
        status,
        "account_mobile_code.html",
        lang,
        req,
        minijinja::context! {
            csrf => FormPurpose::Account.token(cookie),
            request_id => request_id,
            error => error,
            minutes => state.services.recovery.policy().sms_code_ttl.as_secs() / 60,
        },
    )
}

/// `POST /account/mobile/verify`
#[derive(Debug, Deserialize)]
pub struct MobileCodeForm {
    csrf: Option<String>,
    request_id: Option<String>,
    code: Option<String>,
}

/// `POST /account/mobile/verify`: the code sent to the new number.
pub async fn verify_mobile(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<MobileCodeForm>,
) -> HttpResponse {
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let request_id = form.request_id.as_deref().unwrap_or_default();
    match state
        .services
        .self_service
        .confirm_mobile(
            &session,
            request_id,
            form.code.as_deref().unwrap_or_default(),
            lang,
            state.client_ip(&req),
        )
        .await
    {
        Ok(_) => {
            let text = state.renderer.text(lang, "account_mobile_verified");
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Err(RecoveryError::Refused(Refusal::WrongCode)) => {
            let msg = state.renderer.text(lang, "reset_error_code");
            mobile_code_form(
                &state,
                &req,
                lang,
                &cookie,
                StatusCode::BAD_REQUEST,
                request_id,
                Some(msg),
            )
        }
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

/// `POST /account/directory`
#[derive(Debug, Deserialize)]
pub struct DirectoryForm {
    csrf: Option<String>,
    opt_in: Option<String>,
}

/// `POST /account/directory`: listed in the directory or not.
pub async fn set_directory(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<DirectoryForm>,
) -> HttpResponse {
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let opt_in = form
        .opt_in
        .as_deref()
        .is_some_and(|v| v == "true" || v == "on");
    match state
        .services
        .self_service
        .set_directory_opt_in(&session, opt_in)
        .await
    {
        Ok(()) => {
            let text = state.renderer.text(lang, "account_saved");
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

/// `POST /account/redirect`
#[derive(Deserialize)]
pub struct RedirectForm {
    csrf: Option<String>,
    current: Option<String>,
    address: Option<String>,
    keep_copy: Option<String>,
}

impl std::fmt::Debug for RedirectForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedirectForm").finish_non_exhaustive()
    }
}

/// `POST /account/redirect`: current password, then the mail redirect and keep-a-copy.
pub async fn set_redirect(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RedirectForm>,
) -> HttpResponse {
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let keep_copy = form
        .keep_copy
        .as_deref()
        .is_some_and(|v| v == "true" || v == "on");
    let address = form.address.as_deref().unwrap_or_default();
    let verify_url = format!("{}/account/verify", state.base());
    let choice = RedirectChoice {
        current: Password::new(form.current.as_deref().unwrap_or_default()),
        address,
        keep_copy,
    };
    match state
        .services
        .self_service
        .set_mail_redirect(&session, choice, &verify_url, lang, state.client_ip(&req))
        .await
    {
        Ok(link_sent) => {
            let text = if link_sent {
                state
                    .renderer
                    .text(lang, "account_link_sent")
                    .replace("{address}", &mask_email(address.trim()))
            } else {
                state.renderer.text(lang, "account_saved")
            };
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

/// `POST /account/sessions/revoke`
#[derive(Debug, Deserialize)]
pub struct RevokeSessionForm {
    csrf: Option<String>,
    handle: Option<String>,
}

/// `POST /account/sessions/revoke`: ends one of the person's sessions (another device).
pub async fn revoke_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RevokeSessionForm>,
) -> HttpResponse {
    let (cookie, session) = match guard(&state, &req, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let lang = state.lang(&req, None);
    let handle = form.handle.as_deref().unwrap_or_default();
    match state
        .services
        .self_service
        .revoke_session(&session, handle, state.client_ip(&req))
        .await
    {
        Ok(Some(ended)) => {
            end_sessions_everywhere(&state, session.account_id, vec![ended], false).await;
            if random::constant_time_eq(handle, &session_handle(&cookie)) {
                // The person ended the session they were using: they are logged out.
                let mut res = state.page(
                    StatusCode::OK,
                    "logged_out.html",
                    lang,
                    &req,
                    minijinja::context! {},
                );
                if let Err(e) = res.add_cookie(&state.sso_cookie_removal()) {
                    tracing::warn!(error = %e, "could not clear the SSO cookie");
                }
                return res;
            }
            let text = state.renderer.text(lang, "account_session_revoked");
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Ok(None) => {
            let text = state.renderer.text(lang, "account_session_gone");
            notice(&state, &req, lang, &cookie, &session, text).await
        }
        Err(e) => failed(&state, &req, lang, &cookie, &session, e).await,
    }
}

/// Query of the verification link, and the form of its page.
#[derive(Deserialize)]
pub struct VerifyQuery {
    kind: Option<String>,
    token: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for VerifyQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyQuery")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The page of a link that is not (or no longer) valid, or 503.
fn link_refused(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    e: &RecoveryError,
) -> HttpResponse {
    match e {
        RecoveryError::Refused(_) | RecoveryError::InvalidAddress => state.error_page(
            StatusCode::BAD_REQUEST,
            lang,
            req,
            "error_title",
            "account_error_link",
        ),
        other => {
            tracing::error!(error = %other, "address verification failed");
            state.unavailable(req, lang)
        }
    }
}

/// `GET /account/verify?kind=recovery|redirect&token=`: what the link would prove, and a
/// button that posts it. Changes nothing: a mail scanner, a preview or a person who did not
/// ask for it opening the link commits nothing. Works without a session (the link may be
/// opened on another device).
pub async fn show_verify_address(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<VerifyQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let kind = query.kind.as_deref().unwrap_or_default();
    let token: String = query
        .token
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    match state
        .services
        .self_service
        .check_address_link(kind, &token)
        .await
    {
        Ok(pending) => {
            let (key, kind, address) = match &pending.verified {
                Verified::RecoveryEmail(a) => ("account_verify_recovery", "recovery", a),
                Verified::MailRedirect(a) => ("account_verify_redirect", "redirect", a),
            };
            let question = state
                .renderer
                .text(lang, key)
                .replace("{address}", address.as_str())
                .replace("{login}", pending.login.as_str());
            state.page(
                StatusCode::OK,
                "account_verify_confirm.html",
                lang,
                &req,
                minijinja::context! { question => question, kind => kind, token => token },
            )
        }
        Err(e) => link_refused(&state, &req, lang, &e),
    }
}

/// `POST /account/verify`: the button of the link's page; writes the proven address and
/// tells the institutional and former recovery addresses.
pub async fn verify_address(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<VerifyQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, form.lang.as_deref());
    // The token in the form is the proof; a foreign page cannot post one it was not sent.
    match state
        .services
        .self_service
        .confirm_address(
            form.kind.as_deref().unwrap_or_default(),
            form.token.as_deref().unwrap_or_default(),
            lang,
            state.client_ip(&req),
        )
        .await
    {
        Ok(verified) => {
            let (key, address) = match &verified {
                Verified::RecoveryEmail(a) => ("account_recovery_email_verified", a),
                Verified::MailRedirect(a) => ("account_redirect_verified", a),
            };
            let message = state
                .renderer
                .text(lang, key)
                .replace("{address}", address.as_str());
            state.page(
                StatusCode::OK,
                "account_verified.html",
                lang,
                &req,
                minijinja::context! { message => message },
            )
        }
        Err(e) => link_refused(&state, &req, lang, &e),
    }
}
