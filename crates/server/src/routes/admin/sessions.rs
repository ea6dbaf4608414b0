//! `/admin/api/v1/accounts/{login}/sessions`: the live SSO sessions of an account; ending
//! them all (with single logout to the applications they were used for).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use sesame_core::api_keys::ApiScope;
use utoipa::ToSchema;

use super::{authorize, path_login, respond, rfc3339};
use crate::web::problem::{ApiError, Problem};
use crate::web::AppState;

/// Characters of a session handle shown: enough to tell sessions apart, not the handle that
/// tickets carry.
const SHOWN_HANDLE_CHARS: usize = 16;

/// A live SSO session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// A short, stable name for the session (a prefix of its public handle, never the cookie).
    pub id: String,
    /// When the password was entered (RFC 3339).
    pub authenticated_at: String,
    /// Last use (RFC 3339, to the minute).
    pub last_seen_at: String,
    /// Hard end (RFC 3339).
    pub expires_at: String,
    /// Opened with "remember me".
    pub remember_me: bool,
}

/// The live sessions of an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Login.
    pub login: String,
    /// Oldest login first.
    pub sessions: Vec<SessionView>,
}

/// What ending the sessions did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEndedView {
    /// Login.
    pub login: String,
    /// Live SSO sessions ended.
    pub sessions_ended: usize,
    /// Applications sent a single-logout request.
    pub applications_notified: usize,
}

/// The live SSO sessions of an account.
#[utoipa::path(
    get,
    path = "/admin/api/v1/accounts/{login}/sessions",
    tag = "sessions",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "The sessions", body = SessionList),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `sessions`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["sessions"]))
)]
pub async fn list_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(list(&state, &req, &login).await)
}

async fn list(state: &AppState, req: &HttpRequest, login: &str) -> Result<HttpResponse, ApiError> {
    authorize(state, req, Some(ApiScope::Sessions)).await?;
    let login = path_login(login)?;
    let (account, sessions) = state
        .services
        .admin
        .sessions(&login)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(SessionList {
        login: account.login.to_string(),
        sessions: sessions
            .into_iter()
            .map(|(handle, s)| SessionView {
                id: handle.chars().take(SHOWN_HANDLE_CHARS).collect(),
                authenticated_at: rfc3339(s.authenticated_at),
                last_seen_at: rfc3339(s.last_seen_at),
                expires_at: rfc3339(s.expires_at),
                remember_me: s.remember_me,
            })
            .collect(),
    }))
}

/// Ends every SSO session of the account on every instance ("log out everywhere") and sends
/// a logout request to the applications they were used for. The account stays usable.
#[utoipa::path(
    delete,
    path = "/admin/api/v1/accounts/{login}/sessions",
    tag = "sessions",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "Ended", body = SessionsEndedView),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `sessions`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["sessions"]))
)]
pub async fn end_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(end(&state, &req, &login).await)
}

async fn end(state: &AppState, req: &HttpRequest, login: &str) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::Sessions)).await?;
    let login = path_login(login)?;
    let done = crate::operations::end_sessions(&state.services, &login, &key.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(SessionsEndedView {
        login: done.account.login.to_string(),
        sessions_ended: done.sessions_ended,
        applications_notified: done.applications_notified,
    }))
}
