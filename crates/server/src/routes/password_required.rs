//! `GET|POST /password/required`: the password change forced after an unblock, the
//! [`RequiredAction::ChangePassword`] step of a login parked by [`required_actions`] (no
//! session, no ticket, no code yet). The page takes the current password again (the one just
//! typed: a stolen parked-login cookie alone changes nothing) and the new one twice; once the
//! change is stored, [`required_actions::next_or_finish`] goes on to the next action or opens
//! the session.
//!
//! A few wrong current passwords drop the parked login (the login page's lockout then applies
//! again); the form carries a token derived from the parked login's cookie.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::account::Account;
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_core::random;
use sesame_lifecycle::helpdesk::PasswordChangeError;

use super::required_actions::{self, Parked, RequiredAction, PARKED_TTL};
use crate::routes::login::is_cross_site;
use crate::web::AppState;

/// Wrong current passwords allowed on one parked login.
const MAX_TRIES: u32 = 5;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/password/required", web::get().to(show_form))
        .route("/password/required", web::post().to(submit_form));
}

fn tries_key(parked: &Parked) -> String {
    format!("required-tries:{}", random::sha256_hex(parked.token()))
}

fn csrf_token(parked: &Parked) -> String {
    random::sha256_hex(&format!("required-csrf:{}", parked.token()))
}

/// The parked login at this step and its account, or the response to send instead.
async fn parked_with_account(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
) -> Result<(Parked, Account), HttpResponse> {
    let parked =
        required_actions::parked_at(state, req, lang, RequiredAction::ChangePassword).await?;
    match state
        .services
        .accounts_repo
        .find_by_id(parked.login.account_id)
        .await
    {
        Ok(Some(account)) => Ok((parked, account)),
        Ok(None) => Err(required_actions::expired(state, req, lang)),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while reading a parked login");
            Err(state.unavailable(req, lang))
        }
    }
}

/// Query of `GET /password/required`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
}

/// The form as posted.
#[derive(Deserialize)]
pub struct ChangeForm {
    csrf: Option<String>,
    lang: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
    confirm_password: Option<String>,
}

impl std::fmt::Debug for ChangeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeForm").finish_non_exhaustive()
    }
}

fn render(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    parked: &Parked,
    account: &Account,
    problem: Option<(String, Vec<String>)>,
) -> HttpResponse {
    let (error, violations) = match problem {
        Some((message, violations)) => (Some(message), violations),
        None => (None, Vec::new()),
    };
    let rules = state
        .services
        .accounts
        .policies()
        .for_affiliation(account.affiliation)
        .describe(lang);
    state.page(
        status,
        "password_required.html",
        lang,
        req,
        minijinja::context! {
            csrf => csrf_token(parked),
            rules => rules,
            error => error,
            violations => violations,
        },
    )
}

/// `GET /password/required`
pub async fn show_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    match parked_with_account(&state, &req, lang).await {
        Ok((parked, account)) => {
            render(&state, &req, lang, StatusCode::OK, &parked, &account, None)
        }
        Err(response) => response,
    }
}

/// `POST /password/required`
pub async fn submit_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ChangeForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = state.lang(&req, form.lang.as_deref());
    if is_cross_site(&state, &req) {
        return state.error_page(
            StatusCode::FORBIDDEN,
            lang,
            &req,
            "error_title",
            "error_form_expired",
        );
    }
    let (parked, account) = match parked_with_account(&state, &req, lang).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if form.csrf.as_deref() != Some(csrf_token(&parked).as_str()) {
        return required_actions::expired(&state, &req, lang);
    }
    let current = Password::new(form.current_password.as_deref().unwrap_or_default());
    let new = Password::new(form.new_password.as_deref().unwrap_or_default());
    let confirm = Password::new(form.confirm_password.as_deref().unwrap_or_default());
    if current.exceeds_hard_cap() || new.exceeds_hard_cap() || confirm.exceeds_hard_cap() {
        let msg = state.renderer.text(lang, "error_password_too_long");
        return render(
            &state,
            &req,
            lang,
            StatusCode::BAD_REQUEST,
            &parked,
            &account,
            Some((msg, Vec::new())),
        );
    }
    let outcome = state
        .services
        .helpdesk
        .desk
        .change_required_password(&account, &current, &new, &confirm, state.client_ip(&req))
        .await;
    let text = |key: &str| state.renderer.text(lang, key);
    let (status, message, violations) = match outcome {
        Ok((changed, ended)) => {
            // Sessions older than the block (see `change_required_password`) end with single
            // logout, as at a logout.
            for handle in ended {
                match state.services.sessions.take_attached(&handle).await {
                    Ok(attached) => {
                        let ended = sesame_core::session::EndedSession {
                            handle: handle.clone(),
                            account_id: changed.id,
                            attached,
                        };
                        crate::cas_flow::send_single_logout(&state.services, &ended).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not read the services of an ended session")
                    }
                }
                if let Err(e) = state.services.cas.revoke_session_tickets(&handle).await {
                    tracing::error!(error = %e, "could not revoke the proxy tickets of an ended session");
                }
            }
            if let Err(e) = state.services.store.delete(&tries_key(&parked)).await {
                tracing::warn!(error = %e, "could not forget the tries of a parked login");
            }
            return required_actions::next_or_finish(&state, &req, lang, parked).await;
        }
        Err(PasswordChangeError::WrongCurrent) => {
            let tries = state
                .services
                .store
                .reserve_attempt(&tries_key(&parked), state.services.clock.now(), PARKED_TTL)
                .await;
            match tries {
                Ok(r) if r.attempt < MAX_TRIES => {}
                Ok(_) => {
                    // Too many: the parked login is dropped; logging in again goes through
                    // the lockout rules.
                    required_actions::discard(&state, &parked).await;
                    return required_actions::expired(&state, &req, lang);
                }
                Err(e) => {
                    tracing::error!(error = %e, "store unavailable while counting tries");
                    return state.unavailable(&req, lang);
                }
            }
            (
                StatusCode::UNAUTHORIZED,
                text("password_change_required_wrong_current"),
                Vec::new(),
            )
        }
        Err(PasswordChangeError::Mismatch) => (
            StatusCode::BAD_REQUEST,
            text("password_change_required_mismatch"),
            Vec::new(),
        ),
        Err(PasswordChangeError::SameAsCurrent) => (
            StatusCode::BAD_REQUEST,
            text("password_change_required_same"),
            Vec::new(),
        ),
        Err(PasswordChangeError::Policy(v)) => (
            StatusCode::BAD_REQUEST,
            text("password_change_required_refused"),
            v.iter().map(|v| v.message(lang)).collect(),
        ),
        Err(PasswordChangeError::NotRequired) => {
            // Already changed (another tab): the login may go on.
            return required_actions::next_or_finish(&state, &req, lang, parked).await;
        }
        Err(PasswordChangeError::Busy) => {
            let mut res = state.error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                &req,
                "error_title",
                "error_busy",
            );
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("1"),
            );
            return res;
        }
        Err(PasswordChangeError::Helpdesk(e)) => {
            tracing::error!(error = %e, "forced password change failed");
            return state.unavailable(&req, lang);
        }
    };
    render(
        &state,
        &req,
        lang,
        status,
        &parked,
        &account,
        Some((message, violations)),
    )
}
