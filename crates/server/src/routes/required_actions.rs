//! Actions a person must take after a successful login and before going on to the service:
//! today, accepting a new version of the IT charter. Other actions (a forced password change)
//! are meant to join [`RequiredAction`].
//!
//! When one is due, the login is *parked*: no SSO session is opened yet. What the login
//! proved (the account, "remember me", the `/cas/login` query naming the service or OpenID
//! Connect request) is kept in the store under a random id held in a cookie; the action's
//! page reads it, and once every action is done the login completes as it would have
//! (session, ticket, redirect). Skipping the page gets nothing: there is no session.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::account::{Account, AccountState};
use sesame_core::i18n::Lang;
use sesame_core::ids::AccountId;
use sesame_core::random;

use crate::routes::login::{complete_login, LoginQuery};
use crate::web::AppState;

/// The cookie holding the id of a parked login.
pub const REQUIRED_COOKIE: &str = "sesame_required";
/// How long a parked login waits for its actions.
const PARKED_TTL: Duration = Duration::from_secs(15 * 60);

/// Something to do before a login completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequiredAction {
    /// Accept the IT charter in force (`[lifecycle.charter] version` changed).
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

/// A login waiting for its required actions.
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
    /// What remains to do, in order.
    pub actions: Vec<RequiredAction>,
}

fn parked_key(id: &str) -> String {
    format!("required:{}", random::sha256_hex(id))
}

fn required_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build(REQUIRED_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(state.settings.is_https())
        .same_site(SameSite::Lax)
        .finish()
}

/// The actions due for `account`.
async fn due_actions(state: &AppState, account: &Account) -> Result<Vec<RequiredAction>, String> {
    let mut actions = Vec::new();
    if state
        .services
        .activation
        .charter_pending(account.id)
        .await
        .map_err(|e| e.to_string())?
    {
        actions.push(RequiredAction::AcceptCharter);
    }
    Ok(actions)
}

async fn park(
    state: &AppState,
    parked: &ParkedLogin,
) -> Result<HttpResponse, sesame_core::error::StoreError> {
    let id = random::token();
    let json = serde_json::to_string(parked)
        .map_err(|e| sesame_core::error::StoreError::Corrupt(e.to_string()))?;
    state
        .services
        .store
        .put(&parked_key(&id), &json, PARKED_TTL)
        .await?;
    let next = parked.actions.first().map_or("/cas/login", |a| a.path());
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}{next}", state.base())))
        .finish();
    if let Err(e) = response.add_cookie(&required_cookie(state, id)) {
        tracing::error!(error = %e, "could not set the required-action cookie");
    }
    Ok(response)
}

/// Called by the login once the credentials are right: `Some(response)` when an action is
/// due (the login is parked and the browser sent to the action's page), `None` to go on.
pub async fn intercept(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    remember_me: bool,
    login_query: &str,
) -> Option<HttpResponse> {
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
        query: login_query.to_owned(),
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
pub async fn parked(state: &AppState, req: &HttpRequest) -> Option<ParkedLogin> {
    let id = req.cookie(REQUIRED_COOKIE)?.value().to_owned();
    if id.is_empty() || id.len() > 128 {
        return None;
    }
    match state.services.store.get(&parked_key(&id)).await {
        Ok(Some(json)) => serde_json::from_str(&json).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "store unavailable while reading a parked login");
            None
        }
    }
}

/// Records `done` as taken and goes on: to the next action, or completes the login. The
/// parked entry is taken (atomically), so the same one never completes two logins.
pub async fn resume(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    done: RequiredAction,
) -> HttpResponse {
    let Some(id) = req.cookie(REQUIRED_COOKIE).map(|c| c.value().to_owned()) else {
        return expired(state, req, lang);
    };
    let taken = match state.services.store.take(&parked_key(&id)).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while resuming a login");
            return state.unavailable(req, lang);
        }
    };
    let Some(mut parked) = taken.and_then(|json| serde_json::from_str::<ParkedLogin>(&json).ok())
    else {
        return expired(state, req, lang);
    };
    parked.actions.retain(|a| *a != done);
    if !parked.actions.is_empty() {
        return match park(state, &parked).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot park a login");
                state.unavailable(req, lang)
            }
        };
    }
    // The account may have been blocked while the page was open.
    let account = match state
        .services
        .accounts_repo
        .find_by_id(parked.account_id)
        .await
    {
        Ok(Some(a)) if a.state == AccountState::Active => a,
        Ok(_) => return expired(state, req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while resuming a login");
            return state.unavailable(req, lang);
        }
    };
    let query = LoginQuery::parse(&parked.query).unwrap_or_default();
    let service = query.registered_service(state);
    let mut response = complete_login(
        state,
        req,
        lang,
        &query,
        service,
        account,
        parked.remember_me,
    )
    .await;
    let mut removal = required_cookie(state, String::new());
    removal.make_removal();
    if let Err(e) = response.add_cookie(&removal) {
        tracing::warn!(error = %e, "could not remove the required-action cookie");
    }
    response
}

/// The page for a parked login that is gone (expired, used, account no longer active).
pub fn expired(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    state.error_page(
        StatusCode::BAD_REQUEST,
        lang,
        req,
        "error_title",
        "charter_expired",
    )
}
