//! `GET|POST /activation/…`, `/forgot-login` and `/password/identity`: account activation by
//! identity check, by code or by mailed link, its steps, the "first login" page, the
//! mail-redirect proof, the forgotten login, and the forgotten password by identity check
//! (for the affiliations `lifecycle.recovery.identity_check` lists; it ends on the reset
//! flow's new-password page). The rules live in `sesame_lifecycle::activation`; this module turns
//! forms into calls and answers into pages. See `docs/lifecycle.md`.
//!
//! Forgery: every POST is refused when its `Origin` is foreign (as `/cas/login`). The
//! identity form carries a single-use challenge, the code and first-login forms a
//! single-use form token, and the steps a flow id in a `SameSite=Strict` cookie that changes
//! at every step.

use std::time::Duration;

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_lifecycle::activation::challenge::number_words;
use sesame_lifecycle::activation::error::ActivationError;
use sesame_lifecycle::activation::flow::{
    Activated, Advance, CodeProblem, FlowState, Step, StepInput, StepProblem, VerifyAction,
};
use sesame_lifecycle::activation::{
    ChallengeAnswer, IdentityClaim, IdentityOutcome, IdentityPurpose,
};

use crate::web::csrf::ACTIVATION_FORM;
use crate::web::AppState;

/// The cookie holding the id of the activation in progress.
pub const FLOW_COOKIE: &str = crate::web::ACTIVATION_FLOW_COOKIE;

/// Registers the activation routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/activation", web::get().to(show_start))
        .route("/activation/identity", web::get().to(show_identity))
        .route("/activation/identity", web::post().to(submit_identity))
        .route("/activation/code", web::get().to(show_code))
        .route("/activation/code", web::post().to(submit_code))
        .route("/activation/first-login", web::get().to(show_first_login))
        .route(
            "/activation/first-login",
            web::post().to(submit_first_login),
        )
        .route("/activation/link", web::get().to(show_link))
        .route("/activation/link", web::post().to(submit_link))
        .route("/activation/step", web::get().to(show_step))
        .route("/activation/step", web::post().to(submit_step))
        .route("/activation/redirect", web::get().to(show_redirect_proof))
        .route(
            "/activation/redirect",
            web::post().to(submit_redirect_proof),
        )
        .route("/forgot-login", web::get().to(show_forgot_login))
        .route("/forgot-login", web::post().to(submit_forgot_login))
        .route("/password/identity", web::get().to(show_reset_identity))
        .route("/password/identity", web::post().to(submit_reset_identity));
}

/// `?lang=` on the GET pages.
#[derive(Debug, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

fn flow_cookie(state: &AppState, value: String) -> Cookie<'static> {
    state.activation_flow_cookie(value)
}

fn with_cookie(mut response: HttpResponse, cookie: &Cookie<'static>) -> HttpResponse {
    if let Err(e) = response.add_cookie(cookie) {
        tracing::error!(error = %e, "could not set the activation cookie");
    }
    response
}

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

async fn issue_form_token(state: &AppState) -> Option<String> {
    match ACTIVATION_FORM.issue(state.services.store.as_ref()).await {
        Ok(token) => Some(token),
        Err(e) => {
            tracing::error!(error = %e, "cannot issue an activation form: store unavailable");
            None
        }
    }
}

/// Takes a form token: `Ok(true)` the first time it is presented.
async fn take_form_token(state: &AppState, token: Option<&str>) -> Result<bool, ()> {
    match ACTIVATION_FORM
        .take(state.services.store.as_ref(), token)
        .await
    {
        Ok(valid) => Ok(valid),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while checking an activation form");
            Err(())
        }
    }
}

/// A result page: a title, a message, and the login when there is one to show.
fn result_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    (title, message): (&str, &str),
    login: Option<&str>,
    restart: Option<&str>,
) -> HttpResponse {
    let text = |key: &str| state.renderer.text(lang, key);
    state.page(
        status,
        "activation_result.html",
        lang,
        req,
        minijinja::context! {
            title => text(title),
            message => text(message),
            login => login,
            restart => restart,
        },
    )
}

/// The pages every activation error leads to, when it is not a form to show again.
fn error_outcome(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    error: &ActivationError,
) -> Option<HttpResponse> {
    match error {
        ActivationError::AlreadyActive { login } => Some(result_page(
            state,
            req,
            lang,
            StatusCode::OK,
            ("activation_already_title", "activation_already_text"),
            Some(login),
            None,
        )),
        ActivationError::FlowExpired | ActivationError::WrongStep => Some(result_page(
            state,
            req,
            lang,
            StatusCode::BAD_REQUEST,
            ("activation_expired_title", "activation_expired_text"),
            None,
            Some("/activation"),
        )),
        ActivationError::InvalidLink => Some(result_page(
            state,
            req,
            lang,
            StatusCode::BAD_REQUEST,
            ("activation_expired_title", "activation_error_link"),
            None,
            Some("/activation/first-login"),
        )),
        ActivationError::Unavailable(e) => {
            tracing::error!(error = %e, "activation failed: storage unavailable");
            Some(state.unavailable(req, lang))
        }
        _ => None,
    }
}

/// The message of an error shown on the form it came from.
fn form_error(state: &AppState, lang: Lang, error: &ActivationError) -> (StatusCode, String) {
    let text = |key: &str| state.renderer.text(lang, key);
    match error {
        ActivationError::EmailsDiffer => (
            StatusCode::BAD_REQUEST,
            text("activation_error_emails_differ"),
        ),
        ActivationError::ChallengeFailed => {
            (StatusCode::BAD_REQUEST, text("activation_error_challenge"))
        }
        ActivationError::Throttled { until } => (
            StatusCode::TOO_MANY_REQUESTS,
            text("activation_error_throttled").replace("{time}", &state.local_time(*until)),
        ),
        ActivationError::InvalidCode => (StatusCode::BAD_REQUEST, text("activation_error_code")),
        _ => (StatusCode::BAD_REQUEST, text("activation_error_mismatch")),
    }
}

/// `GET /activation`
pub async fn show_start(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    state.page(
        StatusCode::OK,
        "activation_start.html",
        lang,
        &req,
        minijinja::context! {},
    )
}

// --- identity check (activation and forgotten login) ---------------------------------

/// The identity form.
#[derive(Deserialize)]
pub struct IdentityForm {
    hr_id: Option<String>,
    national_id: Option<String>,
    birth_date: Option<String>,
    email: Option<String>,
    email_confirm: Option<String>,
    challenge_id: Option<String>,
    pow_nonce: Option<String>,
    challenge_answer: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for IdentityForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The national ID and birth date are never logged.
        f.debug_struct("IdentityForm").finish_non_exhaustive()
    }
}

/// What is kept when the identity form is shown again (never the national ID).
#[derive(Debug, Default)]
struct IdentityRefill {
    hr_id: String,
    birth_date: String,
    email: String,
}

async fn identity_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    purpose: IdentityPurpose,
    (status, error): (StatusCode, Option<String>),
    refill: IdentityRefill,
) -> HttpResponse {
    let issued = match state.services.activation.issue_challenge().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot issue an identity form");
            return state.unavailable(req, lang);
        }
    };
    let text = |key: &str| state.renderer.text(lang, key);
    let word = |n: u8| {
        let [fr, en] = number_words(u32::from(n));
        match lang {
            Lang::Fr => fr,
            Lang::En => en,
        }
    };
    let question = text("activation_challenge_question")
        .replace("{left}", word(issued.challenge.left))
        .replace("{right}", word(issued.challenge.right));
    let (title, intro, submit, action) = match purpose {
        IdentityPurpose::Activation => (
            text("activation_identity_title"),
            text("activation_identity_intro"),
            text("activation_submit_identity"),
            format!("{}/activation/identity", state.base()),
        ),
        IdentityPurpose::ForgotLogin => (
            text("forgot_login_title"),
            text("forgot_login_intro"),
            text("forgot_login_submit"),
            format!("{}/forgot-login", state.base()),
        ),
        IdentityPurpose::ResetPassword => (
            text("reset_identity_title"),
            text("reset_identity_intro"),
            text("reset_identity_submit"),
            format!("{}/password/identity", state.base()),
        ),
    };
    state.page(
        status,
        "activation_identity.html",
        lang,
        req,
        minijinja::context! {
            title => title,
            intro => intro,
            submit => submit,
            action => action,
            error => error,
            challenge_id => issued.id,
            challenge_prefix => issued.challenge.prefix,
            challenge_bits => issued.challenge.bits,
            challenge_question => question,
            hr_id => refill.hr_id,
            birth_date => refill.birth_date,
            email => refill.email,
            ask_email => purpose != IdentityPurpose::ResetPassword,
        },
    )
}

async fn submit_identity_for(
    state: &AppState,
    req: &HttpRequest,
    form: IdentityForm,
    purpose: IdentityPurpose,
) -> HttpResponse {
    let lang = state.lang(req, form.lang.as_deref());
    let clip = |v: Option<String>| -> String { v.unwrap_or_default().chars().take(256).collect() };
    let claim = IdentityClaim {
        hr_id: clip(form.hr_id),
        national_id: clip(form.national_id),
        birth_date: clip(form.birth_date),
        email: clip(form.email),
        email_confirm: clip(form.email_confirm),
    };
    let answer = ChallengeAnswer {
        id: clip(form.challenge_id),
        nonce: clip(form.pow_nonce),
        answer: clip(form.challenge_answer),
    };
    let ip = state.client_ip(req);
    let outcome = state
        .services
        .activation
        .check_identity(&claim, &answer, ip, purpose)
        .await;
    match outcome {
        Ok(IdentityOutcome::Started { flow_id }) => with_cookie(
            see_other(format!("{}/activation/step", state.base())),
            &flow_cookie(state, flow_id),
        ),
        Ok(IdentityOutcome::ResetAllowed { account_id }) => {
            reset_after_identity_check(state, req, lang, account_id).await
        }
        Ok(IdentityOutcome::Login { login }) => result_page(
            state,
            req,
            lang,
            StatusCode::OK,
            ("forgot_login_title", "forgot_login_result"),
            Some(&login),
            None,
        ),
        Err(ActivationError::AlreadyActive { login }) if purpose == IdentityPurpose::Activation => {
            result_page(
                state,
                req,
                lang,
                StatusCode::OK,
                ("activation_already_title", "activation_already_text"),
                Some(&login),
                None,
            )
        }
        Err(e) => {
            if let Some(page) = error_outcome(state, req, lang, &e) {
                return page;
            }
            let refill = IdentityRefill {
                hr_id: claim.hr_id,
                birth_date: claim.birth_date,
                email: claim.email,
            };
            let (status, message) = form_error(state, lang, &e);
            identity_form(state, req, lang, purpose, (status, Some(message)), refill).await
        }
    }
}

/// `GET /activation/identity`
pub async fn show_identity(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    identity_form(
        &state,
        &req,
        lang,
        IdentityPurpose::Activation,
        (StatusCode::OK, None),
        IdentityRefill::default(),
    )
    .await
}

/// `POST /activation/identity`
pub async fn submit_identity(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<IdentityForm>,
) -> HttpResponse {
    submit_identity_for(&state, &req, form.into_inner(), IdentityPurpose::Activation).await
}

/// `GET /forgot-login`
pub async fn show_forgot_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    identity_form(
        &state,
        &req,
        lang,
        IdentityPurpose::ForgotLogin,
        (StatusCode::OK, None),
        IdentityRefill::default(),
    )
    .await
}

/// `POST /forgot-login`
pub async fn submit_forgot_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<IdentityForm>,
) -> HttpResponse {
    submit_identity_for(
        &state,
        &req,
        form.into_inner(),
        IdentityPurpose::ForgotLogin,
    )
    .await
}

/// The new-password step after a passed identity check: the reset token the check earned,
/// and the reset flow's form.
async fn reset_after_identity_check(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account_id: sesame_core::ids::AccountId,
) -> HttpResponse {
    let recovery = &state.services.recovery;
    let token = match recovery.token_after_identity_check(account_id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not open the new-password step");
            return state.unavailable(req, lang);
        }
    };
    match recovery.check_token(&token).await {
        Ok(account) => crate::reset_form::new_password_page(
            state,
            req,
            lang,
            StatusCode::OK,
            &token,
            &account,
            None,
        ),
        Err(e) => {
            tracing::error!(error = %e, "a reset token just issued is not valid");
            state.unavailable(req, lang)
        }
    }
}

/// The page of `/password/identity` when no affiliation may reset this way.
fn reset_identity_closed(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    state.error_page(
        StatusCode::NOT_FOUND,
        lang,
        req,
        "not_found_title",
        "not_found_text",
    )
}

/// `GET /password/identity`
pub async fn show_reset_identity(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    if !state.services.activation.any_reset_by_identity() {
        return reset_identity_closed(&state, &req, lang);
    }
    identity_form(
        &state,
        &req,
        lang,
        IdentityPurpose::ResetPassword,
        (StatusCode::OK, None),
        IdentityRefill::default(),
    )
    .await
}

/// `POST /password/identity`
pub async fn submit_reset_identity(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<IdentityForm>,
) -> HttpResponse {
    if !state.services.activation.any_reset_by_identity() {
        let lang = state.lang(&req, form.lang.as_deref());
        return reset_identity_closed(&state, &req, lang);
    }
    submit_identity_for(
        &state,
        &req,
        form.into_inner(),
        IdentityPurpose::ResetPassword,
    )
    .await
}

// --- activation code --------------------------------------------------------------------

/// The code form.
#[derive(Deserialize)]
pub struct CodeForm {
    login: Option<String>,
    code: Option<String>,
    form_token: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for CodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeForm")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

async fn code_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
    login: &str,
) -> HttpResponse {
    let Some(form_token) = issue_form_token(state).await else {
        return state.unavailable(req, lang);
    };
    state.page(
        status,
        "activation_code.html",
        lang,
        req,
        minijinja::context! { form_token => form_token, error => error, login => login },
    )
}

/// `GET /activation/code`
pub async fn show_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    code_form(&state, &req, lang, StatusCode::OK, None, "").await
}

/// `POST /activation/code`
pub async fn submit_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = state.lang(&req, form.lang.as_deref());
    let login: String = form.login.unwrap_or_default().chars().take(256).collect();
    match take_form_token(&state, form.form_token.as_deref()).await {
        Ok(true) => {}
        Ok(false) => {
            let msg = state.renderer.text(lang, "error_form_expired");
            return code_form(&state, &req, lang, StatusCode::FORBIDDEN, Some(msg), &login).await;
        }
        Err(()) => return state.unavailable(&req, lang),
    }
    let code = form.code.unwrap_or_default();
    let ip = state.client_ip(&req);
    match state
        .services
        .activation
        .start_with_code(&login, &code, ip)
        .await
    {
        Ok(flow_id) => with_cookie(
            see_other(format!("{}/activation/step", state.base())),
            &flow_cookie(&state, flow_id),
        ),
        Err(e) => {
            if let Some(page) = error_outcome(&state, &req, lang, &e) {
                return page;
            }
            let (status, msg) = form_error(&state, lang, &e);
            code_form(&state, &req, lang, status, Some(msg), &login).await
        }
    }
}

// --- mailed link and first login ------------------------------------------------------

/// `?token=` of a mailed link.
#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for TokenQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenQuery").finish_non_exhaustive()
    }
}

fn confirm_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    (title, intro, submit): (&str, &str, &str),
    action: &str,
    token: &str,
) -> HttpResponse {
    let text = |key: &str| state.renderer.text(lang, key);
    state.page(
        StatusCode::OK,
        "activation_confirm.html",
        lang,
        req,
        minijinja::context! {
            title => text(title),
            intro => text(intro),
            submit => text(submit),
            action => format!("{}{action}", state.base()),
            token => token,
        },
    )
}

/// `GET /activation/link?token=…`: a page with a button, so that a mail scanner that
/// follows links does not use the link up.
pub async fn show_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<TokenQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let token: String = query
        .token
        .clone()
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    confirm_page(
        &state,
        &req,
        lang,
        (
            "activation_link_title",
            "activation_link_intro",
            "activation_link_submit",
        ),
        "/activation/link",
        &token,
    )
}

/// `POST /activation/link`
pub async fn submit_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, form.lang.as_deref());
    let token = form.token.as_deref().unwrap_or_default();
    let ip = state.client_ip(&req);
    match state.services.activation.start_with_link(token, ip).await {
        Ok(flow_id) => with_cookie(
            see_other(format!("{}/activation/step", state.base())),
            &flow_cookie(&state, flow_id),
        ),
        Err(e) => error_outcome(&state, &req, lang, &e).unwrap_or_else(|| {
            result_page(
                &state,
                &req,
                lang,
                StatusCode::BAD_REQUEST,
                ("activation_expired_title", "activation_error_link"),
                None,
                Some("/activation/first-login"),
            )
        }),
    }
}

/// The first-login form.
#[derive(Debug, Deserialize)]
pub struct FirstLoginForm {
    address: Option<String>,
    form_token: Option<String>,
    lang: Option<String>,
}

async fn first_login_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let Some(form_token) = issue_form_token(state).await else {
        return state.unavailable(req, lang);
    };
    state.page(
        status,
        "activation_first_login.html",
        lang,
        req,
        minijinja::context! { form_token => form_token, error => error, sent => false },
    )
}

/// `GET /activation/first-login`
pub async fn show_first_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    first_login_form(&state, &req, lang, StatusCode::OK, None).await
}

/// `POST /activation/first-login`: the same answer whether or not an account matches
/// (the mail, if any, is queued and sent later).
pub async fn submit_first_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<FirstLoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = state.lang(&req, form.lang.as_deref());
    match take_form_token(&state, form.form_token.as_deref()).await {
        Ok(true) => {}
        Ok(false) => {
            let msg = state.renderer.text(lang, "error_form_expired");
            return first_login_form(&state, &req, lang, StatusCode::FORBIDDEN, Some(msg)).await;
        }
        Err(()) => return state.unavailable(&req, lang),
    }
    let address: String = form.address.unwrap_or_default().chars().take(256).collect();
    if !address.trim().is_empty() {
        if let Err(e) = state.services.activation.request_link(address.trim()).await {
            // Logged, not shown: the answer must not depend on the account.
            tracing::error!(error = %e, "could not send an activation link");
        }
    }
    state.page(
        StatusCode::OK,
        "activation_first_login.html",
        lang,
        &req,
        minijinja::context! { sent => true },
    )
}

// --- the steps ----------------------------------------------------------------------

/// A step's form (only the fields of the step posted are read).
#[derive(Deserialize)]
pub struct StepForm {
    step: Option<String>,
    accept: Option<String>,
    opt_in: Option<String>,
    recovery_email: Option<String>,
    mobile: Option<String>,
    email_code: Option<String>,
    mobile_code: Option<String>,
    /// At the verify step: `confirm` (the default), `resend` or `change`.
    action: Option<String>,
    forward: Option<String>,
    redirect: Option<String>,
    keep_copy: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for StepForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepForm")
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

fn ticked(v: Option<&str>) -> bool {
    v.is_some_and(|v| v == "true" || v == "on")
}

impl StepForm {
    fn into_input(self, lang: Lang) -> Option<StepInput> {
        let step = Step::parse(self.step.as_deref()?)?;
        let clip =
            |v: Option<String>| -> String { v.unwrap_or_default().chars().take(256).collect() };
        Some(match step {
            Step::Charter => StepInput::Charter {
                accepted: ticked(self.accept.as_deref()),
            },
            Step::Directory => StepInput::Directory {
                opt_in: ticked(self.opt_in.as_deref()),
            },
            Step::Contacts => StepInput::Contacts {
                recovery_email: clip(self.recovery_email),
                mobile: clip(self.mobile),
                lang,
            },
            Step::Verify => StepInput::Verify {
                action: match self.action.as_deref() {
                    Some("resend") => VerifyAction::Resend,
                    Some("change") => VerifyAction::Change,
                    _ => VerifyAction::Confirm {
                        email_code: clip(self.email_code),
                        mobile_code: clip(self.mobile_code),
                    },
                },
                lang,
            },
            Step::Redirect => StepInput::Redirect {
                forward: ticked(self.forward.as_deref()),
                address: clip(self.redirect),
                keep_copy: ticked(self.keep_copy.as_deref()),
            },
            Step::Password => StepInput::Password {
                password: Password::new(self.password.as_deref().unwrap_or_default()),
                confirm: Password::new(self.password_confirm.as_deref().unwrap_or_default()),
            },
        })
    }
}

/// The message of one code not accepted at the verify step.
fn code_problem_text(state: &AppState, lang: Lang, problem: Option<CodeProblem>) -> Option<String> {
    let key = match problem? {
        CodeProblem::Missing => "activation_error_code_missing",
        CodeProblem::Wrong => "activation_error_code_wrong",
        CodeProblem::Expired => "activation_error_verify_code_expired",
    };
    Some(state.renderer.text(lang, key))
}

fn step_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    flow: &FlowState,
    status: StatusCode,
    (problem, notice): (Option<&StepProblem>, Option<String>),
) -> HttpResponse {
    let text = |key: &str| state.renderer.text(lang, key);
    let title = text(match flow.step {
        Step::Charter => "activation_charter_title",
        Step::Directory => "activation_directory_title",
        Step::Contacts => "activation_contacts_title",
        Step::Verify => "activation_verify_title",
        Step::Redirect => "activation_redirect_step_title",
        Step::Password => "activation_password_title",
    });
    let (error, violations): (Option<String>, Vec<String>) = match problem {
        None => (None, Vec::new()),
        Some(StepProblem::CharterNotAccepted) => {
            (Some(text("activation_error_charter")), Vec::new())
        }
        Some(StepProblem::BadRecoveryEmail) => {
            (Some(text("activation_error_recovery_email")), Vec::new())
        }
        Some(StepProblem::BadMobile) => (Some(text("activation_error_mobile")), Vec::new()),
        Some(StepProblem::BadRedirect) => (Some(text("activation_error_redirect")), Vec::new()),
        Some(StepProblem::Codes { .. }) => (Some(text("activation_error_codes")), Vec::new()),
        Some(StepProblem::CodesNotSent) => {
            (Some(text("activation_error_codes_not_sent")), Vec::new())
        }
        Some(StepProblem::PasswordsDiffer) => {
            (Some(text("activation_error_passwords_differ")), Vec::new())
        }
        Some(StepProblem::Policy(v)) => (
            Some(text("activation_error_policy")),
            v.iter().map(|v| v.message(lang)).collect(),
        ),
    };
    let (email_code_error, mobile_code_error) = match problem {
        Some(StepProblem::Codes { email, mobile }) => (
            code_problem_text(state, lang, *email),
            code_problem_text(state, lang, *mobile),
        ),
        _ => (None, None),
    };
    let charter = state.services.activation.charter();
    let minutes = |d: Duration| d.as_secs().div_ceil(60);
    let recovery_policy = state.services.recovery.policy();
    state.page(
        status,
        "activation_step.html",
        lang,
        req,
        minijinja::context! {
            title => title,
            step => flow.step.as_str(),
            login => flow.login,
            error => error,
            notice => notice,
            violations => violations,
            charter_version => charter.version,
            charter_url => charter.url,
            charter_text => charter.text,
            directory_opt_in => flow.directory_opt_in,
            recovery_email => flow.recovery_email,
            mobile => flow.mobile,
            email_pending => flow.email_unproven(),
            mobile_pending => flow.mobile_unproven(),
            email_code_error => email_code_error,
            mobile_code_error => mobile_code_error,
            email_code_minutes => minutes(recovery_policy.link_ttl),
            mobile_code_minutes => minutes(recovery_policy.sms_code_ttl),
            // Montpellier's guide: the recovery address is the proposed forwarding address,
            // used only if the person ticks the box.
            forward => flow.mail_redirect.is_some(),
            mail_redirect => flow.mail_redirect.as_ref().or(flow.recovery_email.as_ref()),
            keep_copy => flow.keep_copy,
            rules => state.services.activation.password_rules(flow, lang),
        },
    )
}

/// `GET /activation/step`: the current step of the activation in progress.
pub async fn show_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let flow_id = req
        .cookie(FLOW_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    match state.services.activation.flow(&flow_id).await {
        Ok(flow) => step_page(&state, &req, lang, &flow, StatusCode::OK, (None, None)),
        Err(e) => {
            error_outcome(&state, &req, lang, &e).unwrap_or_else(|| state.unavailable(&req, lang))
        }
    }
}

/// `POST /activation/step`
pub async fn submit_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<StepForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = state.lang(&req, form.lang.as_deref());
    let flow_id = req
        .cookie(FLOW_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let Some(input) = form.into_input(lang) else {
        return see_other(format!("{}/activation/step", state.base()));
    };
    let ip = state.client_ip(&req);
    match state.services.activation.advance(&flow_id, input, ip).await {
        Ok(Advance::Next { flow_id }) => with_cookie(
            see_other(format!("{}/activation/step", state.base())),
            &flow_cookie(&state, flow_id),
        ),
        Ok(Advance::Rejected { flow_id, problem }) => {
            match state.services.activation.flow(&flow_id).await {
                Ok(flow) => with_cookie(
                    step_page(
                        &state,
                        &req,
                        lang,
                        &flow,
                        StatusCode::BAD_REQUEST,
                        (Some(&problem), None),
                    ),
                    &flow_cookie(&state, flow_id),
                ),
                Err(e) => error_outcome(&state, &req, lang, &e)
                    .unwrap_or_else(|| state.unavailable(&req, lang)),
            }
        }
        Ok(Advance::Resent { flow_id }) => match state.services.activation.flow(&flow_id).await {
            Ok(flow) => with_cookie(
                step_page(
                    &state,
                    &req,
                    lang,
                    &flow,
                    StatusCode::OK,
                    (
                        None,
                        Some(state.renderer.text(lang, "activation_codes_resent")),
                    ),
                ),
                &flow_cookie(&state, flow_id),
            ),
            Err(e) => error_outcome(&state, &req, lang, &e)
                .unwrap_or_else(|| state.unavailable(&req, lang)),
        },
        Ok(Advance::Done(activated)) => {
            let mut removal = flow_cookie(&state, String::new());
            removal.make_removal();
            with_cookie(
                activated_page(&state, &req, lang, &activated).await,
                &removal,
            )
        }
        // The form of another step (back button, forged post): show the current one.
        Err(ActivationError::WrongStep) => see_other(format!("{}/activation/step", state.base())),
        // The school's code stopped working while the activation went on (expired, or
        // replaced by a newer code): only the school can give a new one.
        Err(ActivationError::InvalidCode) => result_page(
            &state,
            &req,
            lang,
            StatusCode::BAD_REQUEST,
            ("activation_expired_title", "activation_error_code_expired"),
            None,
            Some("/activation/code"),
        ),
        Err(e) => {
            error_outcome(&state, &req, lang, &e).unwrap_or_else(|| state.unavailable(&req, lang))
        }
    }
}

/// The end of an activation: the person is logged in (an SSO session opened as a login
/// opens one), and the page shows the login, the mailbox and the redirect to check.
async fn activated_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    activated: &Activated,
) -> HttpResponse {
    let account = &activated.account;
    // Not "remember me": the seed's default, a session that ends with the browser.
    // The password was set just now: it is how this session was authenticated.
    let authentication =
        sesame_core::login::methods::Authentication::password_at(state.services.clock.now());
    let opened = match crate::pipeline::session::open_session(
        state,
        req,
        lang,
        account,
        false,
        authentication,
    )
    .await
    {
        Ok(o) => o,
        Err(page) => return page,
    };
    let redirect = activated.mail_redirect.as_ref();
    let mut response = state.page(
        StatusCode::OK,
        "activation_done.html",
        lang,
        req,
        minijinja::context! {
            login => account.login.as_str(),
            email => account.email.as_ref().map(|e| e.as_str().to_owned()),
            redirect => redirect.map(|r| r.address.as_str().to_owned()),
            redirect_verified => redirect.is_some_and(|r| r.verified),
            keep_copy => redirect.is_some_and(|r| r.keep_copy),
        },
    );
    if let Err(e) = response.add_cookie(&opened.cookie) {
        tracing::error!(error = %e, "could not set the SSO cookie after an activation");
    }
    response
}

// --- mail-redirect proof --------------------------------------------------------------

/// `GET /activation/redirect?token=…`
pub async fn show_redirect_proof(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<TokenQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let token: String = query
        .token
        .clone()
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    confirm_page(
        &state,
        &req,
        lang,
        (
            "activation_redirect_title",
            "activation_redirect_intro",
            "activation_redirect_submit",
        ),
        "/activation/redirect",
        &token,
    )
}

/// `POST /activation/redirect`
pub async fn submit_redirect_proof(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, form.lang.as_deref());
    let token = form.token.as_deref().unwrap_or_default();
    match state.services.activation.verify_redirect(token).await {
        Ok(login) => {
            let message = state
                .renderer
                .text(lang, "activation_redirect_done")
                .replace("{login}", &login);
            state.page(
                StatusCode::OK,
                "error.html",
                lang,
                &req,
                minijinja::context! {
                    title => state.renderer.text(lang, "activation_redirect_title"),
                    message => message,
                },
            )
        }
        Err(e) => error_outcome(&state, &req, lang, &e).unwrap_or_else(|| {
            result_page(
                &state,
                &req,
                lang,
                StatusCode::BAD_REQUEST,
                ("activation_expired_title", "activation_error_link"),
                None,
                Some("/activation"),
            )
        }),
    }
}
