//! `GET|POST /login/second-factor`: the [`StepId::SecondFactor`] step of a login transaction,
//! after a correct password, for a person who enrolled a second factor: a code from their
//! authenticator application, or one of their recovery codes. Once it passes, the transaction
//! records an `otp` factor with its time (the session's `amr` then says `pwd otp mfa`) and
//! [`steps::next_or_finish`] goes on. A person with a passkey or security key may use it
//! instead (`static/webauthn.js` posts its answer here): the factor recorded is then `hwk`
//! or `swk`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::i18n::Lang;
use sesame_core::login::methods::{AuthnMethod, AuthnRecord};
use sesame_core::login::steps::StepId;
use sesame_core::login::transaction::Continuation;
use sesame_mfa::factors::Verification;

use crate::pipeline::{steps, transaction};
use crate::web::AppState;

/// `?lang=`
#[derive(Debug, Deserialize)]
pub struct SecondFactorQuery {
    lang: Option<String>,
}

/// The code form, or the key's answer (`ceremony`, `credential`).
#[derive(Deserialize)]
pub struct SecondFactorForm {
    code: Option<String>,
    lang: Option<String>,
    ceremony: Option<String>,
    credential: Option<String>,
    /// "Ne plus demander sur cet appareil" (`on`), when `[mfa] remember_browser_days` allows.
    remember_browser: Option<String>,
}

impl std::fmt::Debug for SecondFactorForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorForm").finish_non_exhaustive()
    }
}

/// The key ceremonies of a login's second-factor step are the account's own.
fn step_purpose(account: sesame_core::ids::AccountId) -> String {
    format!("step:{account}")
}

async fn page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: Option<sesame_core::ids::AccountId>,
    status: StatusCode,
    error: Option<String>,
    warning: Option<String>,
) -> HttpResponse {
    // A person with a key is offered it beside the code field: a ceremony per page shown.
    let mut ceremony = None;
    if let Some(account) = account.filter(|_| state.services.passkeys.is_enabled()) {
        let keys = &state.services.passkeys;
        let begun = match keys.has_keys(account).await {
            Ok(true) => keys.begin_login(&step_purpose(account)).await.map(Some),
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        match begun {
            Ok(c) => ceremony = c,
            // The code still works: the key is offered on the next page shown.
            Err(e) => tracing::warn!(error = %e, "could not offer a passkey at the second factor"),
        }
    }
    state.page(
        status,
        "login_second_factor.html",
        lang,
        req,
        minijinja::context! {
            error => error,
            warning => warning,
            passkey_options => ceremony.as_ref().map(|c| c.options_json.clone()),
            remember_label => state.services.remembered_browsers.is_enabled().then(|| {
                state
                    .renderer
                    .text(lang, "remember_browser")
                    .replace("{n}", &state.services.remembered_browsers.days().to_string())
            }),
            passkey_ceremony => ceremony.as_ref().map(|c| c.id.clone()),
        },
    )
}

/// `GET /login/second-factor`
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SecondFactorQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    match transaction::parked_at(&state, &req, lang, StepId::SecondFactor).await {
        Ok(parked) => {
            page(
                &state,
                &req,
                lang,
                parked.tx.identified,
                StatusCode::OK,
                None,
                None,
            )
            .await
        }
        Err(response) => response,
    }
}

/// `POST /login/second-factor`
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SecondFactorForm>,
) -> HttpResponse {
    let lang = state.lang(&req, form.lang.as_deref());
    let mut parked = match transaction::parked_at(&state, &req, lang, StepId::SecondFactor).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let text = |key: &str| state.renderer.text(lang, key);
    let identified = parked.tx.identified;
    if let (Some(ceremony), Some(credential), Some(account)) = (
        form.ceremony.as_deref(),
        form.credential.as_deref().filter(|c| !c.is_empty()),
        identified,
    ) {
        let mut response =
            with_key(&state, &req, lang, parked, account, ceremony, credential).await;
        if form.remember_browser.as_deref() == Some("on") {
            remember_browser(&state, &req, account, &mut response).await;
        }
        return response;
    }
    let typed = form.code.as_deref().unwrap_or_default();
    if typed.trim().is_empty() {
        let msg = text("second_factor_error_missing");
        return page(
            &state,
            &req,
            lang,
            identified,
            StatusCode::BAD_REQUEST,
            Some(msg),
            None,
        )
        .await;
    }
    let account = match parked.tx.identified {
        Some(id) => state.services.accounts_repo.find_by_id(id).await,
        None => Ok(None),
    };
    let account = match account {
        Ok(Some(a)) => a,
        Ok(None) => return transaction::expired(&state, &req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable at the second factor");
            return state.unavailable(&req, lang);
        }
    };
    let verification = match state
        .services
        .second_factors
        .verify(account.id, typed)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            // Fail closed: a factor that cannot be checked lets nobody in.
            tracing::error!(error = %e, "cannot check a second factor");
            return state.unavailable(&req, lang);
        }
    };
    let now = state.services.clock.now();
    let event = |kind: AuditKind, detail: serde_json::Value| {
        AuditEvent::new(kind, now, "self")
            .login(account.login.as_str())
            .account(account.id)
            .ip(state.client_ip(&req))
            .detail(detail)
    };
    let recovery_codes_left = match verification {
        Verification::RecoveryCode { left } => Some(left),
        _ => None,
    };
    let (record, answer) = match verification {
        Verification::Totp => (
            event(
                AuditKind::MfaSucceeded,
                serde_json::json!({ "with": "totp" }),
            ),
            None,
        ),
        Verification::RecoveryCode { left } => (
            event(
                AuditKind::MfaSucceeded,
                serde_json::json!({ "with": "recovery_code", "left": left }),
            ),
            None,
        ),
        Verification::Wrong { attempts_left } => {
            let warning = text(if attempts_left == 1 {
                "login_last_attempt_warning"
            } else {
                "login_attempts_left_warning"
            })
            .replace("{n}", &attempts_left.to_string());
            (
                event(
                    AuditKind::MfaFailed,
                    serde_json::json!({ "attempts_left": attempts_left }),
                ),
                Some(
                    page(
                        &state,
                        &req,
                        lang,
                        identified,
                        StatusCode::UNAUTHORIZED,
                        Some(text("second_factor_error_wrong")),
                        Some(warning),
                    )
                    .await,
                ),
            )
        }
        Verification::Locked { until } => {
            // The login ends here: starting again goes through the password and the lock.
            transaction::discard(&state, &parked).await;
            let message =
                text("second_factor_error_locked").replace("{time}", &state.local_time(until));
            let page = state.page(
                StatusCode::TOO_MANY_REQUESTS,
                "error.html",
                lang,
                &req,
                minijinja::context! { title => text("error_title"), message => message },
            );
            (
                event(
                    AuditKind::MfaFailed,
                    serde_json::json!({ "locked_until": until.unix_timestamp() }),
                ),
                Some(transaction::without_cookie(&state, page)),
            )
        }
    };
    if let Err(e) = state.services.audit.record(record).await {
        tracing::error!(error = %e, "could not record a second-factor answer");
        return state.unavailable(&req, lang);
    }
    if let Some(answer) = answer {
        return answer;
    }
    if let Some(left) = recovery_codes_left {
        // A recovery code stands in for the phone: the person hears of each use.
        if let Err(e) = crate::operations::notify_second_factor_change(
            &state.services,
            &account,
            "recovery_code_used",
            lang,
            state.client_ip(&req),
            Some(left),
        )
        .await
        {
            tracing::error!(error = %e, "could not queue the notice of a recovery code used");
        }
    }
    parked
        .tx
        .factors
        .push(AuthnRecord::new(AuthnMethod::Otp, now));
    let mut response = steps::next_or_finish(&state, &req, lang, parked).await;
    // Not after a recovery code: the person is replacing a lost factor, not settling here.
    if recovery_codes_left.is_none() && form.remember_browser.as_deref() == Some("on") {
        remember_browser(&state, &req, account.id, &mut response).await;
    }
    response
}

/// Adds the cookie of a browser remembered for the second factor to the answer, once the
/// factor passed and the person ticked the box; only when the login went on (a redirect), not
/// on a refusal or an error page.
async fn remember_browser(
    state: &AppState,
    req: &HttpRequest,
    account: sesame_core::ids::AccountId,
    response: &mut HttpResponse,
) {
    if !response.status().is_redirection() {
        return;
    }
    if let Some(cookie) = state.remember_for_second_factor(req, account).await {
        if let Err(e) = response.add_cookie(&cookie) {
            tracing::warn!(error = %e, "could not set the cookie of a remembered browser");
        }
    }
}

/// The second factor given by a key: its answer is checked against the ceremony of this
/// account's step, and must be one of this account's keys.
async fn with_key(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    mut parked: transaction::Parked,
    account: sesame_core::ids::AccountId,
    ceremony: &str,
    credential: &str,
) -> HttpResponse {
    let now = state.services.clock.now();
    let checked = state
        .services
        .passkeys
        .finish_login(&step_purpose(account), ceremony, credential)
        .await;
    let login = match state.services.accounts_repo.find_by_id(account).await {
        Ok(Some(a)) => a.login,
        Ok(None) => return transaction::expired(state, req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable at the second factor");
            return state.unavailable(req, lang);
        }
    };
    let event = |kind: AuditKind, detail: serde_json::Value| {
        AuditEvent::new(kind, now, "self")
            .login(login.as_str())
            .account(account)
            .ip(state.client_ip(req))
            .detail(detail)
    };
    let (record, method) = match checked {
        Ok(key) if key.account_id == account => {
            let method = if key.synced {
                AuthnMethod::Swk
            } else {
                AuthnMethod::Hwk
            };
            (
                event(
                    AuditKind::MfaSucceeded,
                    serde_json::json!({ "with": "passkey", "factor": key.factor_id }),
                ),
                Some(method),
            )
        }
        Ok(_) | Err(sesame_mfa::passkeys::PasskeyError::UnknownKey) => (
            event(
                AuditKind::MfaFailed,
                serde_json::json!({ "with": "passkey", "reason": "not this account's key" }),
            ),
            None,
        ),
        Err(
            e @ (sesame_mfa::passkeys::PasskeyError::CeremonyExpired
            | sesame_mfa::passkeys::PasskeyError::Malformed(_)
            | sesame_mfa::passkeys::PasskeyError::Refused(_)),
        ) => (
            event(
                AuditKind::MfaFailed,
                serde_json::json!({ "with": "passkey", "reason": e.to_string() }),
            ),
            None,
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot check a passkey");
            return state.unavailable(req, lang);
        }
    };
    if let Err(e) = state.services.audit.record(record).await {
        tracing::error!(error = %e, "could not record a second-factor answer");
        return state.unavailable(req, lang);
    }
    let Some(method) = method else {
        let msg = state.renderer.text(lang, "passkey_error_refused");
        return page(
            state,
            req,
            lang,
            Some(account),
            StatusCode::UNAUTHORIZED,
            Some(msg),
            None,
        )
        .await;
    };
    parked.tx.factors.push(AuthnRecord::new(method, now));
    steps::next_or_finish(state, req, lang, parked).await
}

/// The reminder's form: `now` (add a factor now: the login ends on the account page's
/// second-factor section) or `later`.
#[derive(Debug, Deserialize)]
pub struct ReminderForm {
    choice: Option<String>,
    lang: Option<String>,
}

/// `GET /login/second-factor-reminder`: the [`StepId::SecondFactorReminder`] step, for a
/// person whose affiliation requires a second factor they have not added, while the grace
/// lasts.
pub async fn show_reminder(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SecondFactorQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let parked =
        match transaction::parked_at(&state, &req, lang, StepId::SecondFactorReminder).await {
            Ok(p) => p,
            Err(response) => return response,
        };
    let account = match parked.tx.identified {
        Some(id) => state.services.accounts_repo.find_by_id(id).await,
        None => Ok(None),
    };
    let account = match account {
        Ok(Some(a)) => a,
        Ok(None) => return transaction::expired(&state, &req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable at the second-factor reminder");
            return state.unavailable(&req, lang);
        }
    };
    let (logins_left, until) =
        match crate::pipeline::step_up::policy_decision(&state, &account).await {
            Ok(sesame_mfa::policy::MfaDecision::EnrolSoon { logins_left, until }) => {
                (logins_left, until)
            }
            Ok(_) => (None, None),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the second-factor policy");
                return state.unavailable(&req, lang);
            }
        };
    let text = |key: &str| state.renderer.text(lang, key);
    let left = logins_left.map(|n| text("mfa_reminder_logins").replace("{n}", &n.to_string()));
    let until = until.map(|d| {
        text("mfa_reminder_until").replace(
            "{date}",
            &format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()),
        )
    });
    state.page(
        StatusCode::OK,
        "login_second_factor_reminder.html",
        lang,
        &req,
        minijinja::context! { logins_left => left, until => until },
    )
}

/// `POST /login/second-factor-reminder`
pub async fn submit_reminder(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ReminderForm>,
) -> HttpResponse {
    let lang = state.lang(&req, form.lang.as_deref());
    let mut parked =
        match transaction::parked_at(&state, &req, lang, StepId::SecondFactorReminder).await {
            Ok(p) => p,
            Err(response) => return response,
        };
    if form.choice.as_deref() == Some("now") {
        // The login ends on the page where a factor is added; the application the person was
        // going to is reached again from there, with the code.
        parked.tx.continuation = Continuation::Local {
            next: "/account/second-factor".to_owned(),
        };
    }
    // Read: not asked again in this login (the login is counted at its end).
    parked.tx.acknowledged.push(StepId::SecondFactorReminder);
    steps::next_or_finish(&state, &req, lang, parked).await
}
