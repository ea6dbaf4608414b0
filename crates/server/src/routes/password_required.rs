//! `GET|POST /password/required`: the password change forced after an unblock. A login whose
//! account must change its password is *parked* by the login page (no session, no ticket,
//! no code); this page takes the current password again and the new one twice, and only once
//! the change is stored does it open the session and continue where the login was going.
//!
//! The parked login lives in the store under the SHA-256 of a random token carried by an
//! HttpOnly, SameSite=Strict cookie; it expires after 15 minutes and allows a few wrong
//! current passwords before it is dropped (the login page's lockout then applies again).

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::account::Account;
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_core::ids::AccountId;
use sesame_core::random;
use sesame_lifecycle::helpdesk::PasswordChangeError;

use crate::routes::login::{is_cross_site, RequiredAction};
use crate::web::AppState;

/// How long a parked login waits for its required action.
const PARKED_TTL: Duration = Duration::from_secs(15 * 60);
/// Wrong current passwords allowed on one parked login.
const MAX_TRIES: u32 = 5;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/password/required", web::get().to(show_form))
        .route("/password/required", web::post().to(submit_form));
}

/// A correct login waiting for its required actions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParkedLogin {
    /// The account.
    pub account_id: AccountId,
    /// "Remember me" as ticked on the login form.
    pub remember_me: bool,
    /// The query string of the login (service, renew, authz…), to continue with.
    pub query: String,
}

fn parked_key(token: &str) -> String {
    format!("parked-login:{}", random::sha256_hex(token))
}

fn tries_key(token: &str) -> String {
    format!("parked-login-tries:{}", random::sha256_hex(token))
}

fn cookie_name(state: &AppState) -> &'static str {
    if state.settings.is_https() {
        "__Host-sesame_parked"
    } else {
        "sesame_parked"
    }
}

fn parked_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build(cookie_name(state), value)
        .path("/")
        .http_only(true)
        .secure(state.settings.is_https())
        .same_site(SameSite::Strict)
        .finish()
}

fn csrf_token(token: &str) -> String {
    random::sha256_hex(&format!("parked-login-csrf:{token}"))
}

/// Parks a correct login and sends the browser to the page of its first required action.
pub async fn park(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    remember_me: bool,
    action: RequiredAction,
) -> HttpResponse {
    let token = random::token();
    let parked = ParkedLogin {
        account_id: account.id,
        remember_me,
        query: req.query_string().to_owned(),
    };
    let stored = match serde_json::to_string(&parked) {
        Ok(json) => state
            .services
            .store
            .put(&parked_key(&token), &json, PARKED_TTL)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = stored {
        tracing::error!(error = %e, "could not park a login");
        return state.unavailable(req, lang);
    }
    let path = match action {
        RequiredAction::ChangePassword => "/password/required",
    };
    let mut res = HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!("{}{path}?lang={}", state.base(), lang.tag()),
        ))
        .finish();
    if let Err(e) = res.add_cookie(&parked_cookie(state, token)) {
        tracing::error!(error = %e, "could not set the parked-login cookie");
        return state.unavailable(req, lang);
    }
    res
}

/// The parked login of this browser and its account, if both still exist.
async fn parked_login(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(String, ParkedLogin, Account)>, String> {
    let Some(cookie) = req.cookie(cookie_name(state)) else {
        return Ok(None);
    };
    let token = cookie.value().to_owned();
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let Some(raw) = state
        .services
        .store
        .get(&parked_key(&token))
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let parked: ParkedLogin = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
    let account = state
        .services
        .accounts_repo
        .find_by_id(parked.account_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(account.map(|a| (token, parked, a)))
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

fn expired(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    let mut res = state.error_page(
        StatusCode::FORBIDDEN,
        lang,
        req,
        "password_change_required_title",
        "password_change_required_expired",
    );
    let mut removal = parked_cookie(state, String::new());
    removal.make_removal();
    if let Err(e) = res.add_cookie(&removal) {
        tracing::warn!(error = %e, "could not clear the parked-login cookie");
    }
    res
}

fn render(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    token: &str,
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
            csrf => csrf_token(token),
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
    match parked_login(&state, &req).await {
        Ok(Some((token, _, account))) => {
            render(&state, &req, lang, StatusCode::OK, &token, &account, None)
        }
        Ok(None) => expired(&state, &req, lang),
        Err(e) => {
            tracing::error!(error = %e, "could not read a parked login");
            state.unavailable(&req, lang)
        }
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
    let (token, parked, account) = match parked_login(&state, &req).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired(&state, &req, lang),
        Err(e) => {
            tracing::error!(error = %e, "could not read a parked login");
            return state.unavailable(&req, lang);
        }
    };
    if form.csrf.as_deref() != Some(csrf_token(&token).as_str()) {
        return expired(&state, &req, lang);
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
            &token,
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
            return finish(&state, &req, lang, &token, &parked).await;
        }
        Err(PasswordChangeError::WrongCurrent) => {
            let tries = state
                .services
                .store
                .reserve_attempt(&tries_key(&token), state.services.clock.now(), PARKED_TTL)
                .await;
            match tries {
                Ok(r) if r.attempt < MAX_TRIES => {}
                Ok(_) => {
                    // Too many: the parked login is dropped; logging in again goes through
                    // the lockout rules.
                    if let Err(e) = state.services.store.delete(&parked_key(&token)).await {
                        tracing::warn!(error = %e, "could not drop a parked login");
                    }
                    return expired(&state, &req, lang);
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
            return finish(&state, &req, lang, &token, &parked).await;
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
        &token,
        &account,
        Some((message, violations)),
    )
}

/// The required action is done: the parked login is taken (once: a second submission finds
/// nothing) and continues as a fresh login would have.
async fn finish(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    token: &str,
    parked: &ParkedLogin,
) -> HttpResponse {
    match state.services.store.take(&parked_key(token)).await {
        Ok(Some(_)) => {}
        Ok(None) => return expired(state, req, lang),
        Err(e) => {
            tracing::error!(error = %e, "could not take a parked login");
            return state.unavailable(req, lang);
        }
    }
    if let Err(e) = state.services.store.delete(&tries_key(token)).await {
        tracing::warn!(error = %e, "could not forget the tries of a parked login");
    }
    let account = match state
        .services
        .accounts_repo
        .find_by_id(parked.account_id)
        .await
    {
        Ok(Some(a)) => a,
        Ok(None) => return expired(state, req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while finishing a login");
            return state.unavailable(req, lang);
        }
    };
    let mut res = crate::routes::login::resume_parked_login(
        state,
        req,
        lang,
        &account,
        parked.remember_me,
        &parked.query,
    )
    .await;
    let mut removal = parked_cookie(state, String::new());
    removal.make_removal();
    if let Err(e) = res.add_cookie(&removal) {
        tracing::warn!(error = %e, "could not clear the parked-login cookie");
    }
    res
}
