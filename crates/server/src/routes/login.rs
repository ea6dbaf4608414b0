//! `GET|POST /cas/login`: the central login page and the CAS credential requestor and
//! acceptor (CAS Protocol 3.0 §2.1–2.2: `service`, `renew`, `gateway`, `method=POST`).

use sesame_core::login::methods::Assurance;
use sesame_core::login::requirement::{AuthnRequirement, Verdict};

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::authn::{LoginAttempt, LoginChannel};
use sesame_core::credentials::Password;
use sesame_core::error::AuthError;
use sesame_core::i18n::Lang;
use sesame_core::session::SsoSession;
use sesame_lifecycle::activation::error::ActivationError;

use sesame_core::login::transaction::LoginTransaction;

use crate::pipeline::entry::{self, LoginQuery};
use crate::pipeline::session::{current_session, current_session_with_account};
use crate::pipeline::{issue, oidc, saml, step_up, steps};
use crate::web::csrf::{FormPurpose, LOGIN_TICKET};
use crate::web::{AppState, LANG_COOKIE};

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: Option<String>,
    password: Option<String>,
    lt: Option<String>,
    remember_me: Option<String>,
    lang: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `GET /cas/login`
pub async fn show_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let mut response = match query.service.as_deref() {
        Some(service_url) => match state.services.registry.find(service_url).cloned() {
            // An unregistered or malformed service gets an error page: no ticket, no
            // redirect (security spec A08, A09).
            None => state.error_page(
                StatusCode::FORBIDDEN,
                lang,
                &req,
                "service_not_allowed_title",
                "service_not_allowed_text",
            ),
            Some(service) => {
                // CAS `renew` asks for a fresh login: no session satisfies it, so none is
                // read; otherwise the one policy decides. A service that requires a second
                // factor (or `authn_method=mfa`) asks for the REFEDS MFA assurance.
                let requirement = AuthnRequirement {
                    fresh: query.renew(),
                    assurance: (service.require_mfa || query.mfa_asked())
                        .then_some(Assurance::MultiFactor),
                    ..AuthnRequirement::any()
                };
                let now = state.services.clock.now();
                let session = if requirement.fresh || !service.sso {
                    None
                } else {
                    match current_session_with_account(&state, &req).await {
                        Some((c, s, a)) => {
                            // An affiliation that requires a factor, once its grace is over,
                            // asks it of every service.
                            let requirement = if step_up::policy_requires_mfa(&state, &a).await {
                                AuthnRequirement {
                                    assurance: Some(Assurance::MultiFactor),
                                    ..requirement
                                }
                            } else {
                                requirement
                            };
                            let verdict = requirement.evaluate(&s.methods, now);
                            Some((c, s, a, verdict))
                        }
                        None => None,
                    }
                };
                match session {
                    Some((cookie, session, account, Verdict::Satisfied)) => {
                        issue::issue_and_redirect(
                            &state,
                            &req,
                            lang,
                            service_url,
                            &service,
                            &cookie,
                            &session,
                            Some(&account),
                            false,
                            query.method_post(),
                        )
                        .await
                    }
                    // Known, but with the password only: a code, not the password again.
                    Some((_, session, _, Verdict::StepUp)) if !query.gateway() => {
                        let continuation = query.continuation(&state, now).await;
                        step_up::step_up(&state, &req, lang, &session, continuation).await
                    }
                    _ if query.gateway() && !query.renew() => {
                        issue::redirect_without_ticket(service_url)
                    }
                    _ => login_form(&state, &req, lang, StatusCode::OK, None, "").await,
                }
            }
        },
        None => match (query.renew(), current_session(&state, &req).await) {
            // Already logged in (another tab): the parked request is answered from the session.
            (false, Some(session)) if query.oidc_request().is_some() => {
                let id = query.oidc_request().unwrap_or_default();
                oidc::resume(&state, &req, id, Some(session)).await
            }
            // A SAML request posted without the cookie (SameSite), or answered in another tab.
            (false, Some(_)) if query.saml_request().is_some() => {
                let id = query.saml_request().unwrap_or_default();
                match current_session_with_account(&state, &req).await {
                    Some((cookie, session, account)) => {
                        saml::complete(&state, &req, lang, id, &cookie, &session, &account, false)
                            .await
                    }
                    None => login_form(&state, &req, lang, StatusCode::OK, None, "").await,
                }
            }
            (false, Some(_)) if query.local_next(&state).is_some() => HttpResponse::SeeOther()
                .insert_header(("Location", query.local_next(&state).unwrap_or_default()))
                .finish(),
            (false, Some((cookie, session))) => {
                logged_in_page(&state, &req, lang, &cookie, &session)
            }
            _ => login_form(&state, &req, lang, StatusCode::OK, None, "").await,
        },
    };
    remember_lang(&state, &mut response, query.lang.as_deref());
    response
}

/// Sticks an explicit language choice in a cookie.
fn remember_lang(state: &AppState, response: &mut HttpResponse, explicit: Option<&str>) {
    if let Some(lang) = explicit.and_then(Lang::from_tag) {
        let cookie = actix_web::cookie::Cookie::build(LANG_COOKIE, lang.tag())
            .path("/")
            .http_only(true)
            .secure(state.settings.is_https())
            .same_site(actix_web::cookie::SameSite::Lax)
            .max_age(CookieDuration::days(365))
            .finish();
        if let Err(e) = response.add_cookie(&cookie) {
            tracing::warn!(error = %e, "could not set the language cookie");
        }
    }
}

fn logged_in_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    cookie: &str,
    session: &SsoSession,
) -> HttpResponse {
    state.page(
        StatusCode::OK,
        "logged_in.html",
        lang,
        req,
        minijinja::context! {
            login => session.login.as_str(),
            csrf => FormPurpose::Logout.token(cookie),
        },
    )
}

/// What a refused login's form shows besides its message (dead ends, security spec
/// decision 1 and issue 13 point 11).
#[derive(Debug, Default)]
struct FailureHints {
    /// "Attention : encore 2 essais…": the same for known and unknown logins.
    warning: Option<String>,
    /// After a wrong login or password: the way to a first activation.
    offer_activation: bool,
    /// After a lock: that a password reset lifts it, and where to find help.
    locked: bool,
}

async fn login_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
    username: &str,
) -> HttpResponse {
    login_form_with(
        state,
        req,
        lang,
        status,
        error,
        FailureHints::default(),
        username,
    )
    .await
}

async fn login_form_with(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
    hints: FailureHints,
    username: &str,
) -> HttpResponse {
    let lt = match LOGIN_TICKET.issue(state.services.store.as_ref()).await {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a login form: store unavailable");
            return state.unavailable(req, lang);
        }
    };
    // Tell people which application they are logging in to (registered ones only reach here).
    let continuation = LoginQuery::parse(req.query_string())
        .unwrap_or_default()
        .continuation(state, state.services.clock.now())
        .await;
    let (service_name, hint) = entry::display(state, &continuation).await;
    // OpenID Connect `login_hint`: a suggestion, only when nothing was typed.
    let username = if username.is_empty() {
        hint.unwrap_or_default()
    } else {
        username.to_owned()
    };
    let form_action = match req.query_string() {
        "" => format!("{}/cas/login", state.base()),
        q => format!("{}/cas/login?{q}", state.base()),
    };
    state.page(
        status,
        "login.html",
        lang,
        req,
        minijinja::context! {
            lt => lt,
            error => error,
            warning => hints.warning,
            offer_activation => hints.offer_activation,
            locked => hints.locked,
            username => username,
            form_action => form_action,
            passkey_action => form_action.replacen("/cas/login", "/login/passkey", 1),
            passkeys => state.services.passkeys.is_enabled(),
            service_name => service_name,
        },
    )
}

/// `POST /cas/login`
pub async fn submit_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    // The service is checked before the credentials: an unregistered one never gets a
    // ticket, whatever the password.
    if let Some(url) = query.service.as_deref() {
        if state.services.registry.find(url).is_none() {
            let lang = state.lang(&req, form.lang.as_deref());
            return state.error_page(
                StatusCode::FORBIDDEN,
                lang,
                &req,
                "service_not_allowed_title",
                "service_not_allowed_text",
            );
        }
    }
    let lang = state.lang(&req, form.lang.as_deref());
    let username = form.username.unwrap_or_default();
    let shown_username: String = username.chars().take(256).collect();
    // The login ticket is single-use: a replayed or forged form is refused before any
    // credential is looked at.
    let lt_valid = match LOGIN_TICKET
        .take(state.services.store.as_ref(), form.lt.as_deref())
        .await
    {
        Ok(valid) => valid,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while checking a login ticket");
            return state.unavailable(&req, lang);
        }
    };
    if !lt_valid {
        let msg = state.renderer.text(lang, "error_form_expired");
        return login_form(
            &state,
            &req,
            lang,
            StatusCode::FORBIDDEN,
            Some(msg),
            &shown_username,
        )
        .await;
    }
    if username.trim().is_empty() {
        let msg = state.renderer.text(lang, "error_missing_fields");
        return login_form(&state, &req, lang, StatusCode::BAD_REQUEST, Some(msg), "").await;
    }
    let remember_me = form
        .remember_me
        .as_deref()
        .is_some_and(|v| v == "true" || v == "on");
    let password = Password::new(form.password.as_deref().unwrap_or_default());
    let attempt = LoginAttempt {
        login: username.clone(),
        password: password.clone(),
        client_ip: state.client_ip(&req),
        device: state.presented_device(&req),
        channel: LoginChannel::Web,
    };
    let outcome = state.services.authenticator.login(attempt).await;
    crate::metrics::login(&outcome);
    if matches!(outcome, Err(AuthError::ActivationCode)) {
        return activation_from_login(&state, &req, lang, &username, &password).await;
    }
    match outcome {
        Ok(authenticated) => {
            // What the login is for is read from its URL once, here; from now on the login
            // transaction carries it, through any step, to the session and the answer.
            let now = state.services.clock.now();
            let mut tx = LoginTransaction::new(query.continuation(&state, now).await, now);
            tx.remember_me = remember_me;
            steps::after_password(&state, &req, lang, &authenticated.account, tx).await
        }
        Err(err) => login_failure(&state, &req, lang, err, &shown_username).await,
    }
}

/// The password typed was the unused activation code of this provisioned account (the ENT
/// 77 guide has people type it on the login page): the activation starts with it, as if the
/// person had used the code form, and the browser goes to its first step. Only the holder of
/// the code gets here; should the activation refuse after all (its own limits, a code
/// replaced meanwhile), the answer is the code form's, or the generic one.
async fn activation_from_login(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    username: &str,
    code: &Password,
) -> HttpResponse {
    let ip = state.client_ip(req);
    match state
        .services
        .activation
        .start_with_code(username, code.expose(), ip)
        .await
    {
        Ok(flow_id) => {
            let mut response = HttpResponse::SeeOther()
                .insert_header(("Location", format!("{}/activation/step", state.base())))
                .finish();
            if let Err(e) = response.add_cookie(&state.activation_flow_cookie(flow_id)) {
                tracing::error!(error = %e, "could not set the activation cookie");
            }
            response
        }
        Err(ActivationError::Throttled { until }) => {
            let message = state
                .renderer
                .text(lang, "activation_error_throttled")
                .replace("{time}", &state.local_time(until));
            login_form(
                state,
                req,
                lang,
                StatusCode::TOO_MANY_REQUESTS,
                Some(message),
                username,
            )
            .await
        }
        Err(ActivationError::Unavailable(e)) => {
            tracing::error!(error = %e, "activation from the login page failed: storage unavailable");
            state.unavailable(req, lang)
        }
        Err(e) => {
            tracing::info!(error = %e, "activation code typed at login refused by the activation");
            login_failure(
                state,
                req,
                lang,
                AuthError::InvalidCredentials {
                    attempts_left: None,
                },
                username,
            )
            .await
        }
    }
}

async fn login_failure(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    err: AuthError,
    username: &str,
) -> HttpResponse {
    if matches!(err, AuthError::Blocked) {
        // Only a correct password gets here: it may learn that the account is blocked, and
        // where to ask for help.
        return crate::pipeline::session::blocked_page(state, req, lang);
    }
    let text = |key: &str| state.renderer.text(lang, key);
    let mut hints = FailureHints::default();
    let (status, message, retry_after) = match err {
        AuthError::InvalidCredentials { attempts_left } => {
            // Every wrong login or password, known or not, offers the first activation and
            // the same warnings: nothing here depends on the account.
            hints.offer_activation = true;
            hints.warning = attempts_left.map(|n| {
                text(if n == 1 {
                    "login_last_attempt_warning"
                } else {
                    "login_attempts_left_warning"
                })
                .replace("{n}", &n.to_string())
            });
            (
                StatusCode::UNAUTHORIZED,
                text("error_invalid_credentials"),
                None,
            )
        }
        // Only reached when the activation refused after all: the generic answer.
        AuthError::ActivationCode => {
            hints.offer_activation = true;
            (
                StatusCode::UNAUTHORIZED,
                text("error_invalid_credentials"),
                None,
            )
        }
        AuthError::Locked { until } => {
            hints.locked = true;
            (
                StatusCode::UNAUTHORIZED,
                text("error_locked").replace("{time}", &state.local_time(until)),
                None,
            )
        }
        AuthError::Throttled { until } => {
            let secs = (until - state.services.clock.now()).whole_seconds().max(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                text("error_throttled").replace("{time}", &state.local_time(until)),
                Some(secs.to_string()),
            )
        }
        AuthError::Blocked => (StatusCode::FORBIDDEN, text("error_blocked"), None),
        AuthError::Disabled => (StatusCode::FORBIDDEN, text("error_disabled"), None),
        AuthError::PasswordTooLong => (
            StatusCode::BAD_REQUEST,
            text("error_password_too_long"),
            None,
        ),
        AuthError::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            text("error_busy"),
            Some("1".to_owned()),
        ),
        AuthError::Store(e) => {
            tracing::error!(error = %e, "login failed: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                text("error_unavailable"),
                Some("5".to_owned()),
            )
        }
        AuthError::Repo(e) => {
            tracing::error!(error = %e, "login failed: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                text("error_unavailable"),
                Some("5".to_owned()),
            )
        }
        AuthError::Hashing(e) => {
            tracing::error!(error = %e, "login failed: hashing error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                text("error_unavailable"),
                None,
            )
        }
    };
    let mut res = if status == StatusCode::SERVICE_UNAVAILABLE {
        // The store may be the thing that failed: do not try to issue a new form.
        state.page(
            status,
            "error.html",
            lang,
            req,
            minijinja::context! { title => text("error_title"), message => message },
        )
    } else {
        login_form_with(state, req, lang, status, Some(message), hints, username).await
    };
    if let Some(secs) = retry_after {
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs) {
            res.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, v);
        }
    }
    res
}

/// `POST /login/passkey/options`: a passwordless login's ceremony, for the login page's
/// script (a ceremony per click: the page itself stays a plain form).
pub async fn passkey_options(state: web::Data<AppState>) -> HttpResponse {
    if !state.services.passkeys.is_enabled() {
        return HttpResponse::NotFound().finish();
    }
    match state.services.passkeys.begin_login(PASSWORDLESS).await {
        Ok(ceremony) => match serde_json::from_str::<serde_json::Value>(&ceremony.options_json) {
            Ok(options) => HttpResponse::Ok().json(serde_json::json!({
                "ceremony": ceremony.id,
                "options": options,
            })),
            Err(e) => {
                tracing::error!(error = %e, "passkey options are not JSON");
                HttpResponse::InternalServerError().finish()
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "could not begin a passkey login");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "5"))
                .finish()
        }
    }
}

/// The ceremonies of the login page's passkey button.
const PASSWORDLESS: &str = "login";

/// The login page's passkey form.
#[derive(Debug, Deserialize)]
pub struct PasskeyLoginForm {
    lt: Option<String>,
    lang: Option<String>,
    ceremony: Option<String>,
    credential: Option<String>,
}

/// `POST /login/passkey`: a login with a passkey alone. The key must be registered, answer
/// the ceremony the page asked for, and its authenticator must have verified the person
/// (PIN, fingerprint, face): then the key is two factors (`hwk`/`swk` and `user`) and the
/// login goes on as a password login would (the account's state, the voided password, the
/// charter, what the login is for).
pub async fn submit_passkey(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    form: web::Form<PasskeyLoginForm>,
) -> HttpResponse {
    use sesame_core::audit::{AuditEvent, AuditKind};
    use sesame_core::login::methods::AuthnMethod;
    use sesame_mfa::passkeys::PasskeyError;

    let form = form.into_inner();
    let lang = state.lang(&req, form.lang.as_deref());
    if let Some(url) = query.service.as_deref() {
        if state.services.registry.find(url).is_none() {
            return state.error_page(
                StatusCode::FORBIDDEN,
                lang,
                &req,
                "service_not_allowed_title",
                "service_not_allowed_text",
            );
        }
    }
    match LOGIN_TICKET
        .take(state.services.store.as_ref(), form.lt.as_deref())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let msg = state.renderer.text(lang, "error_form_expired");
            return login_form(&state, &req, lang, StatusCode::FORBIDDEN, Some(msg), "").await;
        }
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while checking a login ticket");
            return state.unavailable(&req, lang);
        }
    }
    let refused = |reason: String| {
        let (state, req) = (state.clone(), req.clone());
        async move {
            tracing::info!(%reason, "a passkey login was refused");
            let msg = state.renderer.text(lang, "passkey_login_refused");
            login_form(&state, &req, lang, StatusCode::UNAUTHORIZED, Some(msg), "").await
        }
    };
    let checked = state
        .services
        .passkeys
        .finish_login(
            PASSWORDLESS,
            form.ceremony.as_deref().unwrap_or_default(),
            form.credential.as_deref().unwrap_or_default(),
        )
        .await;
    let key = match checked {
        Ok(key) if key.user_verified => key,
        Ok(_) => return refused("the authenticator did not verify the person".to_owned()).await,
        Err(
            e @ (PasskeyError::CeremonyExpired
            | PasskeyError::Malformed(_)
            | PasskeyError::Refused(_)
            | PasskeyError::UnknownKey),
        ) => return refused(e.to_string()).await,
        Err(e) => {
            tracing::error!(error = %e, "cannot check a passkey login");
            return state.unavailable(&req, lang);
        }
    };
    let account = match state
        .services
        .accounts_repo
        .find_by_id(key.account_id)
        .await
    {
        Ok(Some(a)) => a,
        Ok(None) => return refused("the key's account is gone".to_owned()).await,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable at a passkey login");
            return state.unavailable(&req, lang);
        }
    };
    let now = state.services.clock.now();
    let event = AuditEvent::new(
        if account.state == sesame_core::account::AccountState::Active {
            AuditKind::LoginSucceeded
        } else {
            AuditKind::LoginRefusedState
        },
        now,
        "self",
    )
    .login(account.login.as_str())
    .account(account.id)
    .ip(state.client_ip(&req))
    .detail(serde_json::json!({ "with": "passkey", "factor": key.factor_id }));
    if let Err(e) = state.services.audit.record(event).await {
        tracing::error!(error = %e, "could not record a passkey login");
        return state.unavailable(&req, lang);
    }
    if account.state != sesame_core::account::AccountState::Active {
        // The key proves who is there: they may learn the account's state and where to ask.
        return crate::pipeline::session::inactive_account_page(&state, &req, lang, account.state);
    }
    let method = if key.synced {
        AuthnMethod::Swk
    } else {
        AuthnMethod::Hwk
    };
    let tx = LoginTransaction::new(query.continuation(&state, now).await, now);
    steps::after_first_factor(
        &state,
        &req,
        lang,
        &account,
        tx,
        &[method, AuthnMethod::User],
        now,
    )
    .await
}
