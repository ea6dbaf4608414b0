//! `GET /account/second-factor` ("Vérification en deux étapes") and its forms: `POST
//! /account/second-factor/totp` (begin adding an authenticator application),
//! `/account/second-factor/totp/confirm` (its first code and the password),
//! `/account/second-factor/remove` and `/account/second-factor/recovery-codes` (both with the
//! password), `/account/second-factor/passkey` (begin registering a passkey or security key,
//! with the password) and `/account/second-factor/passkey/finish` (the authenticator's
//! answer, posted by `static/webauthn.js`). The rules live in `sesame_mfa::factors` and
//! `sesame_mfa::passkeys`; this module renders them.
//!
//! Every form needs the SSO session and carries the account page's token, derived from the
//! session cookie; every change needs the current password too (a session left open on a lab
//! PC must not let someone else add their phone, or remove the person's), and is audited.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::account::Account;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_core::session::SsoSession;
use sesame_lifecycle::recovery::RecoveryError;
use sesame_mfa::factors::{MfaError, TotpEnrolment};
use sesame_mfa::policy::MfaRequirement;

use crate::pipeline::session::current_session_with_account;
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/second-factor", web::get().to(show))
        .route("/account/second-factor/totp", web::post().to(begin_totp))
        .route(
            "/account/second-factor/totp/confirm",
            web::post().to(confirm_totp),
        )
        .route(
            "/account/second-factor/passkey",
            web::post().to(begin_passkey),
        )
        .route(
            "/account/second-factor/passkey/finish",
            web::post().to(finish_passkey),
        )
        .route("/account/second-factor/remove", web::post().to(remove))
        .route(
            "/account/second-factor/forget-browser",
            web::post().to(forget_browser),
        )
        .route(
            "/account/second-factor/recovery-codes",
            web::post().to(regenerate_codes),
        );
}

/// The person, from the session.
struct Person {
    cookie: String,
    session: SsoSession,
    account: Account,
}

/// To the login page, and back here after it.
fn to_login(state: &AppState) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!("{}/cas/login?next=/account/second-factor", state.base()),
        ))
        .finish()
}

async fn person(state: &AppState, req: &HttpRequest) -> Result<Person, HttpResponse> {
    match current_session_with_account(state, req).await {
        Some((cookie, session, account)) => Ok(Person {
            cookie,
            session,
            account,
        }),
        None => Err(to_login(state)),
    }
}

/// The person of a form: the session, and the form's token checked.
async fn form_person(
    state: &AppState,
    req: &HttpRequest,
    csrf: Option<&str>,
) -> Result<Person, HttpResponse> {
    let p = person(state, req).await?;
    if !FormPurpose::Account.accepts(&p.cookie, csrf) {
        let lang = state.lang(req, None);
        return Err(state.form_expired(req, lang));
    }
    Ok(p)
}

/// Whether second factors are offered to this person: a key is set, and the policy does not
/// say `off` for their affiliation (someone who already enrolled can always manage theirs).
fn offered(state: &AppState, account: &Account) -> bool {
    state.services.second_factors.is_enabled()
        && state
            .services
            .mfa_policy
            .requirement(&[account.affiliation])
            != MfaRequirement::Off
}

/// What to say on the page after a form.
#[derive(Debug, Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    recovery_codes: Vec<String>,
}

impl Outcome {
    fn error(text: String) -> Self {
        Self {
            error: Some(text),
            ..Self::default()
        }
    }

    fn notice(text: String) -> Self {
        Self {
            notice: Some(text),
            ..Self::default()
        }
    }
}

async fn render(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    p: &Person,
    status: StatusCode,
    outcome: Outcome,
) -> HttpResponse {
    let factors = match state.services.second_factors.list(p.account.id).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "could not list second factors");
            return state.unavailable(req, lang);
        }
    };
    let codes_left = if factors.is_empty() {
        0
    } else {
        match state
            .services
            .second_factors
            .recovery_codes_left(p.account.id)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "could not count recovery codes");
                return state.unavailable(req, lang);
            }
        }
    };
    let remembered = match state.services.remembered_browsers.list(p.account.id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not list remembered browsers");
            return state.unavailable(req, lang);
        }
    };
    let this_browser = req
        .cookie(&state.mfa_browser_cookie_name)
        .map(|c| sesame_core::random::sha256_hex(c.value()));
    let remembered: Vec<_> = remembered
        .iter()
        .map(|b| {
            minijinja::context! {
                id => b.id,
                label => b.label,
                created => state.local_datetime(b.created_at),
                until => state.local_datetime(b.expires_at),
                last_used => b.last_used_at.map(|t| state.local_datetime(t)),
                this_one => this_browser.as_deref() == Some(b.token_hash.as_str()),
            }
        })
        .collect();
    let listed: Vec<_> = factors
        .iter()
        .map(|f| {
            minijinja::context! {
                id => f.id,
                label => f.label,
                kind => f.kind.as_str(),
                created => state.local_datetime(f.created_at),
                last_used => f.last_used_at.map(|t| state.local_datetime(t)),
            }
        })
        .collect();
    state.page(
        status,
        "account_second_factor.html",
        lang,
        req,
        minijinja::context! {
            enabled => offered(state, &p.account) || !factors.is_empty(),
            passkeys => offered(state, &p.account) && state.services.passkeys.is_enabled(),
            factors => listed,
            remembered => remembered,
            codes_left => codes_left,
            login => p.session.login.as_str(),
            csrf => FormPurpose::Account.token(&p.cookie),
            notice => outcome.notice,
            error => outcome.error,
            recovery_codes => outcome.recovery_codes,
        },
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "the page's parts: who, which enrolment, what to say"
)]
fn enrol_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    p: &Person,
    enrolment: &TotpEnrolment,
    label: &str,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    state.page(
        status,
        "account_totp_enrol.html",
        lang,
        req,
        minijinja::context! {
            qr_svg => enrolment.qr_svg,
            secret_text => enrolment.secret_text,
            enrolment => enrolment.id,
            label => label,
            login => p.session.login.as_str(),
            csrf => FormPurpose::Account.token(&p.cookie),
            error => error,
        },
    )
}

async fn audit(
    state: &AppState,
    req: &HttpRequest,
    p: &Person,
    kind: AuditKind,
    detail: serde_json::Value,
) -> Result<(), HttpResponse> {
    let event = AuditEvent::new(kind, state.services.clock.now(), "self")
        .login(p.session.login.as_str())
        .account(p.account.id)
        .ip(state.client_ip(req))
        .detail(detail);
    state.services.audit.record(event).await.map_err(|e| {
        tracing::error!(error = %e, "could not record a second-factor change");
        let lang = state.lang(req, None);
        state.unavailable(req, lang)
    })
}

/// Tells the person, at their verified addresses, that their second factors changed.
async fn notify(state: &AppState, req: &HttpRequest, lang: Lang, p: &Person, what: &str) {
    if let Err(e) = crate::operations::notify_second_factor_change(
        &state.services,
        &p.account,
        what,
        lang,
        state.client_ip(req),
        None,
    )
    .await
    {
        tracing::error!(error = %e, "could not queue the notice of a second-factor change");
    }
}

/// The current password, checked as a login is (a wrong one counts toward the lockout).
/// `Err` is the page to answer.
async fn check_password(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    p: &Person,
    current: Option<&str>,
) -> Result<(), String> {
    let text = |key: &str| state.renderer.text(lang, key);
    match state
        .services
        .self_service
        .confirm_password(
            &p.session,
            Password::new(current.unwrap_or_default()),
            state.client_ip(req),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(RecoveryError::Locked(
            sesame_core::error::AuthError::Locked { until }
            | sesame_core::error::AuthError::Throttled { until },
        )) => Err(text("error_locked").replace("{time}", &state.local_time(until))),
        Err(RecoveryError::WrongPassword | RecoveryError::Locked(_)) => {
            Err(text("account_error_current_password"))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not check a password");
            Err(text("error_unavailable"))
        }
    }
}

/// `?lang=`
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
}

/// `GET /account/second-factor`
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let p = match person(&state, &req).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    render(&state, &req, lang, &p, StatusCode::OK, Outcome::default()).await
}

/// A form with only its token.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    csrf: Option<String>,
}

/// `POST /account/second-factor/totp`: a new secret, shown as a QR code and as text.
pub async fn begin_totp(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let p = match form_person(&state, &req, form.csrf.as_deref()).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    if !offered(&state, &p.account) {
        let msg = state.renderer.text(lang, "mfa_not_offered");
        let outcome = Outcome::error(msg);
        return render(&state, &req, lang, &p, StatusCode::FORBIDDEN, outcome).await;
    }
    match state
        .services
        .second_factors
        .begin_totp(p.account.id, p.session.login.as_str())
        .await
    {
        Ok(enrolment) => enrol_page(&state, &req, lang, &p, &enrolment, "", StatusCode::OK, None),
        Err(e) => {
            tracing::error!(error = %e, "could not begin a TOTP enrolment");
            state.unavailable(&req, lang)
        }
    }
}

/// `POST /account/second-factor/totp/confirm`
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: Option<String>,
    enrolment: Option<String>,
    label: Option<String>,
    code: Option<String>,
    current: Option<String>,
}

impl std::fmt::Debug for ConfirmForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmForm").finish_non_exhaustive()
    }
}

/// `POST /account/second-factor/totp/confirm`: the password and the application's first code
/// make the secret a factor; the first factor comes with recovery codes, shown once.
pub async fn confirm_totp(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ConfirmForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let p = match form_person(&state, &req, form.csrf.as_deref()).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let text = |key: &str| state.renderer.text(lang, key);
    let id = form.enrolment.as_deref().unwrap_or_default();
    let label = form.label.as_deref().unwrap_or_default();
    let factors = &state.services.second_factors;
    if let Err(message) = check_password(&state, &req, lang, &p, form.current.as_deref()).await {
        return enrol_again(
            &state,
            &req,
            lang,
            &p,
            id,
            label,
            message,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let code = form.code.as_deref().unwrap_or_default();
    match factors.confirm_totp(p.account.id, id, code, label).await {
        Ok(enrolled) => {
            if let Err(res) = audit(
                &state,
                &req,
                &p,
                AuditKind::MfaEnrolled,
                serde_json::json!({ "kind": "totp", "factor": enrolled.factor_id }),
            )
            .await
            {
                return res;
            }
            notify(&state, &req, lang, &p, "added").await;
            let outcome = Outcome {
                notice: Some(text("mfa_enrolled")),
                recovery_codes: enrolled.recovery_codes.map(|c| c.shown).unwrap_or_default(),
                ..Outcome::default()
            };
            render(&state, &req, lang, &p, StatusCode::OK, outcome).await
        }
        Err(MfaError::WrongCode) => {
            let message = text("mfa_error_code");
            enrol_again(
                &state,
                &req,
                lang,
                &p,
                id,
                label,
                message,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(MfaError::EnrolmentExpired) => {
            let outcome = Outcome::error(text("mfa_error_expired"));
            render(&state, &req, lang, &p, StatusCode::BAD_REQUEST, outcome).await
        }
        Err(e) => {
            tracing::error!(error = %e, "could not confirm a TOTP enrolment");
            state.unavailable(&req, lang)
        }
    }
}

/// The enrolment page again, for another try within the same enrolment (or the list, once it
/// expired).
#[expect(
    clippy::too_many_arguments,
    reason = "the page's parts: who, which enrolment, what to say"
)]
async fn enrol_again(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    p: &Person,
    id: &str,
    label: &str,
    error: String,
    status: StatusCode,
) -> HttpResponse {
    match state
        .services
        .second_factors
        .resume_totp(p.account.id, p.session.login.as_str(), id)
        .await
    {
        Ok(enrolment) => enrol_page(state, req, lang, p, &enrolment, label, status, Some(error)),
        Err(MfaError::EnrolmentExpired) => {
            let outcome = Outcome::error(state.renderer.text(lang, "mfa_error_expired"));
            render(state, req, lang, p, StatusCode::BAD_REQUEST, outcome).await
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read a TOTP enrolment");
            state.unavailable(req, lang)
        }
    }
}

/// `POST /account/second-factor/remove` and `/recovery-codes`
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    id: Option<String>,
    current: Option<String>,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm").finish_non_exhaustive()
    }
}

/// `POST /account/second-factor/remove`
pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PasswordForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let p = match form_person(&state, &req, form.csrf.as_deref()).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    if let Err(message) = check_password(&state, &req, lang, &p, form.current.as_deref()).await {
        let outcome = Outcome::error(message);
        return render(&state, &req, lang, &p, StatusCode::UNAUTHORIZED, outcome).await;
    }
    let id = form.id.as_deref().unwrap_or_default();
    match state.services.second_factors.remove(p.account.id, id).await {
        Ok(true) => {
            if let Err(res) = audit(
                &state,
                &req,
                &p,
                AuditKind::MfaRemoved,
                serde_json::json!({ "factor": id }),
            )
            .await
            {
                return res;
            }
            // Without any factor left, a remembered browser stands for nothing: forgotten,
            // so that it cannot stand for a factor added later.
            match state.services.second_factors.enrolled(p.account.id).await {
                Ok(true) => {}
                Ok(false) => {
                    if let Err(e) = state
                        .services
                        .remembered_browsers
                        .forget_all(p.account.id)
                        .await
                    {
                        tracing::error!(error = %e, "could not forget remembered browsers");
                        return state.unavailable(&req, lang);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not read second factors");
                    return state.unavailable(&req, lang);
                }
            }
            notify(&state, &req, lang, &p, "removed").await;
            let outcome = Outcome::notice(state.renderer.text(lang, "mfa_removed"));
            render(&state, &req, lang, &p, StatusCode::OK, outcome).await
        }
        Ok(false) => render(&state, &req, lang, &p, StatusCode::OK, Outcome::default()).await,
        Err(e) => {
            tracing::error!(error = %e, "could not remove a second factor");
            state.unavailable(&req, lang)
        }
    }
}

/// `POST /account/second-factor/recovery-codes`: ten new codes, the old ones void.
pub async fn regenerate_codes(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PasswordForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let p = match form_person(&state, &req, form.csrf.as_deref()).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    if let Err(message) = check_password(&state, &req, lang, &p, form.current.as_deref()).await {
        let outcome = Outcome::error(message);
        return render(&state, &req, lang, &p, StatusCode::UNAUTHORIZED, outcome).await;
    }
    // Codes stand in for a factor: without one, there is nothing for them to stand in for.
    match state.services.second_factors.enrolled(p.account.id).await {
        Ok(true) => {}
        Ok(false) => {
            return render(&state, &req, lang, &p, StatusCode::OK, Outcome::default()).await
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read second factors");
            return state.unavailable(&req, lang);
        }
    }
    match state
        .services
        .second_factors
        .regenerate_recovery_codes(p.account.id)
        .await
    {
        Ok(codes) => {
            if let Err(res) = audit(
                &state,
                &req,
                &p,
                AuditKind::RecoveryCodesRegenerated,
                serde_json::Value::Null,
            )
            .await
            {
                return res;
            }
            notify(&state, &req, lang, &p, "recovery_codes").await;
            let outcome = Outcome {
                notice: Some(state.renderer.text(lang, "mfa_codes_regenerated")),
                recovery_codes: codes.shown,
                ..Outcome::default()
            };
            render(&state, &req, lang, &p, StatusCode::OK, outcome).await
        }
        Err(e) => {
            tracing::error!(error = %e, "could not regenerate recovery codes");
            state.unavailable(&req, lang)
        }
    }
}

/// `POST /account/second-factor/passkey`
#[derive(Deserialize)]
pub struct PasskeyBeginForm {
    csrf: Option<String>,
    label: Option<String>,
    current: Option<String>,
}

impl std::fmt::Debug for PasskeyBeginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyBeginForm").finish_non_exhaustive()
    }
}

/// `POST /account/second-factor/passkey`: with the password, the options the browser needs
/// to create a key, on a page whose script asks the authenticator and posts its answer.
pub async fn begin_passkey(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PasskeyBeginForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let p = match form_person(&state, &req, form.csrf.as_deref()).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    if !offered(&state, &p.account) || !state.services.passkeys.is_enabled() {
        let outcome = Outcome::error(state.renderer.text(lang, "mfa_not_offered"));
        return render(&state, &req, lang, &p, StatusCode::FORBIDDEN, outcome).await;
    }
    if let Err(message) = check_password(&state, &req, lang, &p, form.current.as_deref()).await {
        let outcome = Outcome::error(message);
        return render(&state, &req, lang, &p, StatusCode::UNAUTHORIZED, outcome).await;
    }
    let login = p.session.login.as_str();
    let display_name = format!("{} {}", p.account.given_name, p.account.family_name);
    let display_name = if display_name.trim().is_empty() {
        login.to_owned()
    } else {
        display_name.trim().to_owned()
    };
    match state
        .services
        .passkeys
        .begin_registration(p.account.id, login, &display_name)
        .await
    {
        Ok(ceremony) => state.page(
            StatusCode::OK,
            "account_passkey_register.html",
            lang,
            &req,
            minijinja::context! {
                options => ceremony.options_json,
                ceremony => ceremony.id,
                label => form.label.as_deref().unwrap_or_default(),
                csrf => FormPurpose::Account.token(&p.cookie),
            },
        ),
        Err(e) => {
            tracing::error!(error = %e, "could not begin a passkey registration");
            state.unavailable(&req, lang)
        }
    }
}

/// `POST /account/second-factor/passkey/finish`
#[derive(Debug, Deserialize)]
pub struct PasskeyFinishForm {
    csrf: Option<String>,
    ceremony: Option<String>,
    label: Option<String>,
    credential: Option<String>,
}

/// `POST /account/second-factor/passkey/finish`: the authenticator's answer makes the key a
/// factor (the first factor comes with recovery codes, shown once).
pub async fn finish_passkey(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PasskeyFinishForm>,
) -> HttpResponse {
    use sesame_mfa::passkeys::PasskeyError;
    let lang = state.lang(&req, None);
    let p = match form_person(&state, &req, form.csrf.as_deref()).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let text = |key: &str| state.renderer.text(lang, key);
    let first = match state.services.second_factors.enrolled(p.account.id).await {
        Ok(enrolled) => !enrolled,
        Err(e) => {
            tracing::error!(error = %e, "could not read second factors");
            return state.unavailable(&req, lang);
        }
    };
    let outcome = state
        .services
        .passkeys
        .finish_registration(
            p.account.id,
            form.ceremony.as_deref().unwrap_or_default(),
            form.credential.as_deref().unwrap_or_default(),
            form.label.as_deref().unwrap_or_default(),
        )
        .await;
    let factor_id = match outcome {
        Ok(id) => id,
        Err(PasskeyError::CeremonyExpired) => {
            let outcome = Outcome::error(text("mfa_error_expired"));
            return render(&state, &req, lang, &p, StatusCode::BAD_REQUEST, outcome).await;
        }
        Err(PasskeyError::AlreadyRegistered) => {
            let outcome = Outcome::error(text("passkey_error_registered"));
            return render(&state, &req, lang, &p, StatusCode::CONFLICT, outcome).await;
        }
        Err(
            e @ (PasskeyError::Malformed(_) | PasskeyError::Refused(_) | PasskeyError::UnknownKey),
        ) => {
            tracing::info!(reason = %e, "a passkey registration was refused");
            let outcome = Outcome::error(text("passkey_error_refused"));
            return render(&state, &req, lang, &p, StatusCode::BAD_REQUEST, outcome).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not finish a passkey registration");
            return state.unavailable(&req, lang);
        }
    };
    if let Err(res) = audit(
        &state,
        &req,
        &p,
        AuditKind::MfaEnrolled,
        serde_json::json!({ "kind": "passkey", "factor": factor_id }),
    )
    .await
    {
        return res;
    }
    notify(&state, &req, lang, &p, "added").await;
    let recovery_codes = if first {
        match state
            .services
            .second_factors
            .regenerate_recovery_codes(p.account.id)
            .await
        {
            Ok(codes) => codes.shown,
            Err(e) => {
                tracing::error!(error = %e, "could not make recovery codes");
                return state.unavailable(&req, lang);
            }
        }
    } else {
        Vec::new()
    };
    let outcome = Outcome {
        notice: Some(text("passkey_added")),
        recovery_codes,
        ..Outcome::default()
    };
    render(&state, &req, lang, &p, StatusCode::OK, outcome).await
}

/// `POST /account/second-factor/forget-browser`: `id` of a remembered browser, or `all`.
#[derive(Debug, Deserialize)]
pub struct ForgetBrowserForm {
    csrf: Option<String>,
    id: Option<String>,
}

/// `POST /account/second-factor/forget-browser`: the second step is asked again on that
/// browser (or on every one). Forgetting only takes trust away: the form's token suffices.
pub async fn forget_browser(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ForgetBrowserForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let p = match form_person(&state, &req, form.csrf.as_deref()).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let id = form.id.as_deref().unwrap_or_default();
    let browsers = &state.services.remembered_browsers;
    let forgotten = if id == "all" {
        browsers.forget_all(p.account.id).await.map(|n| n > 0)
    } else {
        browsers.forget(p.account.id, id).await
    };
    match forgotten {
        Ok(true) => {
            if let Err(res) = audit(
                &state,
                &req,
                &p,
                AuditKind::MfaRemoved,
                serde_json::json!({ "remembered_browser": id }),
            )
            .await
            {
                return res;
            }
            let outcome = Outcome::notice(state.renderer.text(lang, "remembered_forgotten"));
            render(&state, &req, lang, &p, StatusCode::OK, outcome).await
        }
        Ok(false) => render(&state, &req, lang, &p, StatusCode::OK, Outcome::default()).await,
        Err(e) => {
            tracing::error!(error = %e, "could not forget a remembered browser");
            state.unavailable(&req, lang)
        }
    }
}
