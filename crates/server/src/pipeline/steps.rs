//! Actions a person must take after a correct login and before anything is issued (SSO
//! session, CAS ticket, OpenID Connect code): accept a new version of the IT charter. ADR 0010
//! explains the design.
//!
//! Before any action, [`intercept`] stops the login of an account whose password an unblock
//! voided: that password may be the one a phisher typed, so it proves nothing and leads to no
//! password choice. A correct one only gets the page saying how to set a new password through
//! a verified channel (reset link, SMS code, helpdesk code); no login is parked.
//!
//! When one is due, the login is *parked*: no SSO session is opened. What the login proved
//! (the account, "remember me", the `/cas/login` query naming the service or the OpenID
//! Connect request) is kept in the ephemeral store under the SHA-256 of a random token; the
//! token travels in an HttpOnly, SameSite=Strict cookie (`__Host-` prefixed and Secure over
//! HTTPS) and the entry lives 15 minutes. Each action's page checks that its action is the
//! current one (otherwise it sends the browser to the current one's page), does its step,
//! then calls [`next_or_finish`]: the parked entry is taken
//! (once), the due actions are asked again, and the browser goes to the next page or the
//! login completes through `session::open_session_and_continue`, exactly as a login without actions
//! would (session, C11 re-check, ticket, redirect). Skipping a page gets nothing: there is no
//! session until the last step.
//!
//! Adding an action is one variant of [`RequiredAction`], one check in [`due_actions`] and
//! one page that ends with [`next_or_finish`].

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::account::{Account, AccountState};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::error::{RepoError, StoreError};
use sesame_core::i18n::Lang;
use sesame_core::ids::AccountId;
use sesame_core::random;
use sesame_lifecycle::activation::error::ActivationError;

use super::entry::LoginQuery;
use super::session::{inactive_account_page, open_session_and_continue};
use crate::web::AppState;

/// How long a parked login waits for its actions.
pub const PARKED_TTL: Duration = Duration::from_secs(15 * 60);

/// Something to do before a login completes, in the order they are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequiredAction {
    /// Accept the IT charter in force (`[lifecycle.charter] version` changed, `/charter`).
    AcceptCharter,
}

impl RequiredAction {
    /// The page that takes the action.
    fn path(self) -> &'static str {
        match self {
            Self::AcceptCharter => "/charter",
        }
    }
}

/// Why the required actions of a login could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum RequiredActionsError {
    /// The database could not say whether a password change is required.
    #[error("database: {0}")]
    Repo(#[from] RepoError),
    /// The activation service could not say whether the charter is pending.
    #[error("charter: {0}")]
    Charter(#[from] ActivationError),
    /// The ephemeral store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A parked login could not be written or read back.
    #[error("parked login: {0}")]
    Encoding(#[from] serde_json::Error),
    /// The cookie carrying the parked login's token could not be set.
    #[error("cookie: {0}")]
    Cookie(#[from] actix_web::error::HttpError),
}

/// A login waiting for its required actions, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParkedLogin {
    /// The account that logged in.
    pub account_id: AccountId,
    /// Its login.
    pub login: String,
    /// "Remember me" was ticked.
    pub remember_me: bool,
    /// The query string of the `/cas/login` POST (service, OpenID Connect request…).
    pub query: String,
    /// What remains to do, in order; the first is the page the browser is on.
    pub actions: Vec<RequiredAction>,
}

/// The parked login of this browser, as an action's page reads it.
#[derive(Debug)]
pub struct Parked {
    /// The token of the cookie: the entry's key and the seed of the pages' form tokens.
    token: String,
    /// What the login proved and what remains.
    pub login: ParkedLogin,
}

impl Parked {
    /// The cookie's token (per parked login, unknown to other sites).
    pub fn token(&self) -> &str {
        &self.token
    }
}

fn parked_key(token: &str) -> String {
    format!("required:{}", random::sha256_hex(token))
}

fn cookie_name(state: &AppState) -> &'static str {
    // `__Host-`: over HTTPS the browser refuses the cookie unless it is Secure, host-only and
    // for `/`, so a sibling domain cannot plant a parked login of its own.
    if state.settings.is_https() {
        "__Host-sesame_required"
    } else {
        "sesame_required"
    }
}

fn required_cookie(state: &AppState, value: String) -> Cookie<'static> {
    // Strict: the cookie is set by our own login POST and only read by our own pages, so no
    // cross-site request ever needs it, and a cross-site form cannot act on a parked login.
    Cookie::build(cookie_name(state), value)
        .path("/")
        .http_only(true)
        .secure(state.settings.is_https())
        .same_site(SameSite::Strict)
        .finish()
}

fn remove_cookie(state: &AppState, response: &mut HttpResponse) {
    let mut removal = required_cookie(state, String::new());
    removal.make_removal();
    if let Err(e) = response.add_cookie(&removal) {
        tracing::warn!(error = %e, "could not remove the required-action cookie");
    }
}

/// The actions due for `account`, in order.
///
/// # Errors
/// Database or activation errors: the caller fails closed.
pub async fn due_actions(
    state: &AppState,
    account: &Account,
) -> Result<Vec<RequiredAction>, RequiredActionsError> {
    let mut actions = Vec::new();
    if state
        .services
        .activation
        .charter_pending(account.id)
        .await?
    {
        actions.push(RequiredAction::AcceptCharter);
    }
    Ok(actions)
}

/// Stores `parked` under a new token and sends the browser to its first action's page.
async fn park(
    state: &AppState,
    parked: &ParkedLogin,
) -> Result<HttpResponse, RequiredActionsError> {
    let token = random::token();
    let json = serde_json::to_string(parked)?;
    state
        .services
        .store
        .put(&parked_key(&token), &json, PARKED_TTL)
        .await?;
    let next = parked.actions.first().map_or("/cas/login", |a| a.path());
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}{next}", state.base())))
        .finish();
    response.add_cookie(&required_cookie(state, token))?;
    Ok(response)
}

/// Called by the login once the credentials are right: `Some(response)` when the login
/// stops here (the password was voided by an unblock: the page on setting a new one) or an
/// action is due (the login is parked and the browser sent to the first action's page),
/// `None` to go on and open the session.
pub async fn intercept(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    remember_me: bool,
) -> Option<HttpResponse> {
    match state
        .services
        .helpdesk
        .desk
        .password_change_required(account)
        .await
    {
        Ok(false) => {}
        Ok(true) => return Some(password_reset_required(state, req, lang, account).await),
        Err(e) => {
            // Fail closed: the login does not complete without knowing.
            tracing::error!(error = %e, "cannot tell whether the password was voided");
            return Some(state.unavailable(req, lang));
        }
    }
    let actions = match due_actions(state, account).await {
        Ok(a) => a,
        Err(e) => {
            // Fail closed: the login does not complete without knowing.
            tracing::error!(error = %e, "cannot tell whether a required action is due");
            return Some(state.unavailable(req, lang));
        }
    };
    if actions.is_empty() {
        return None;
    }
    let parked = ParkedLogin {
        account_id: account.id,
        login: account.login.as_str().to_owned(),
        remember_me,
        query: req.query_string().to_owned(),
        actions,
    };
    Some(match park(state, &parked).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot park a login");
            state.unavailable(req, lang)
        }
    })
}

/// The parked login of this browser, if any (not consumed).
///
/// # Errors
/// Store errors, or an entry that cannot be read back.
pub async fn parked(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<Parked>, RequiredActionsError> {
    let Some(cookie) = req.cookie(cookie_name(state)) else {
        return Ok(None);
    };
    let token = cookie.value().to_owned();
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let Some(json) = state.services.store.get(&parked_key(&token)).await? else {
        return Ok(None);
    };
    let login = serde_json::from_str(&json)?;
    Ok(Some(Parked { token, login }))
}

/// The parked login of this browser when `action` is the one it is at; otherwise the
/// response to send: the page of the step it is at (a page visited out of turn, say with the
/// back button, neither acts nor drops the parked login), the expired page when there is no
/// parked login, or unavailable when the store fails.
pub async fn parked_at(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    action: RequiredAction,
) -> Result<Parked, HttpResponse> {
    match parked(state, req).await {
        Ok(Some(p)) => match p.login.actions.first() {
            Some(current) if *current == action => Ok(p),
            Some(current) => Err(HttpResponse::SeeOther()
                .insert_header(("Location", format!("{}{}", state.base(), current.path())))
                .finish()),
            None => Err(expired(state, req, lang)),
        },
        Ok(None) => Err(expired(state, req, lang)),
        Err(e) => {
            tracing::error!(error = %e, "could not read a parked login");
            Err(state.unavailable(req, lang))
        }
    }
}

/// Drops a parked login (too many wrong answers): logging in again goes through the
/// login page's lockout rules.
pub async fn discard(state: &AppState, parked: &Parked) {
    if let Err(e) = state
        .services
        .store
        .delete(&parked_key(&parked.token))
        .await
    {
        tracing::warn!(error = %e, "could not drop a parked login");
    }
}

/// Called by an action's page once its step is done: goes to the next due action, or
/// completes the login. The parked entry is taken atomically, so one parked login never
/// completes two logins, and the due actions are asked again rather than trusted from the
/// entry, so a step done elsewhere (another tab) is skipped and none is ever missed.
pub async fn next_or_finish(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    parked: Parked,
) -> HttpResponse {
    let taken = match state.services.store.take(&parked_key(&parked.token)).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while resuming a login");
            return state.unavailable(req, lang);
        }
    };
    let Some(mut login) = taken.and_then(|json| serde_json::from_str::<ParkedLogin>(&json).ok())
    else {
        // Already taken (a second submission) or gone.
        return expired(state, req, lang);
    };
    let account = match state
        .services
        .accounts_repo
        .find_by_id(login.account_id)
        .await
    {
        Ok(Some(a)) => a,
        Ok(None) => return expired(state, req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while resuming a login");
            return state.unavailable(req, lang);
        }
    };
    // The account may have been blocked while the page was open: no further step for it.
    if account.state != AccountState::Active {
        let mut response = inactive_account_page(state, req, lang, account.state);
        remove_cookie(state, &mut response);
        return response;
    }
    login.actions = match due_actions(state, &account).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether a required action is due");
            return state.unavailable(req, lang);
        }
    };
    if !login.actions.is_empty() {
        return match park(state, &login).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot park a login");
                state.unavailable(req, lang)
            }
        };
    }
    // The query was accepted by the login POST that parked it, so it parses again.
    let query = LoginQuery::parse(&login.query).unwrap_or_default();
    let service = query.registered_service(state);
    let mut response = open_session_and_continue(
        state,
        req,
        lang,
        &account,
        login.remember_me,
        &query,
        service.as_ref(),
    )
    .await;
    remove_cookie(state, &mut response);
    response
}

/// The page for a parked login that is gone (expired, used up or dropped); the cookie that
/// named it goes too.
pub fn expired(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    let mut response = state.error_page(
        StatusCode::FORBIDDEN,
        lang,
        req,
        "error_title",
        "required_action_expired",
    );
    remove_cookie(state, &mut response);
    response
}

/// The answer to a correct password that an unblock voided: nothing is issued or parked,
/// and the page says how to set a new password through a verified channel. Recorded as a
/// `login.refused_state` (reason `password_reset_required`).
async fn password_reset_required(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
) -> HttpResponse {
    let event = AuditEvent::new(
        AuditKind::LoginRefusedState,
        state.services.clock.now(),
        "self",
    )
    .login(account.login.as_str())
    .account(account.id)
    .ip(state.client_ip(req))
    .detail(serde_json::json!({ "reason": "password_reset_required" }));
    if let Err(e) = state.services.audit.record(event).await {
        tracing::error!(error = %e, "could not record a refused login");
        return state.unavailable(req, lang);
    }
    state.page(
        StatusCode::FORBIDDEN,
        "password_reset_required.html",
        lang,
        req,
        minijinja::context! {
            login => account.login.as_str(),
            identity_check => state.services.activation.resets_by_identity(account.affiliation),
        },
    )
}
