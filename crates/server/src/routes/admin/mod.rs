//! The admin HTTP API, `/admin/api/v1/…`, for provisioning systems and helpdesk tools
//! (docs/admin-api.md). Every call presents an API key as `Authorization: Bearer …` and needs
//! the scope its operation names; every write is audited with the key's name as actor
//! (`api:<name>`). The operations are the ones the `sesame` command line runs
//! ([`crate::operations`], `sesame_lifecycle::admin`).
//!
//! Errors are RFC 9457 problem objects ([`Problem`]). The key is never logged: only
//! its id and name once it is accepted.

pub mod accounts;
pub mod helpdesk;
pub mod imports;
pub mod openapi;
pub mod second_factors;
pub mod sessions;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use sesame_core::api_keys::{ApiKeyError, ApiKeyRecord, ApiScope};
use sesame_core::ids::LoginName;

use crate::web::problem::{ApiError, Problem};
use crate::web::AppState;

/// Where the API lives.
pub const BASE_PATH: &str = "/admin/api/v1";

/// Largest JSON body of an account call.
const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The realm of the `WWW-Authenticate` challenges.
const REALM: &str = "sesame-admin";

/// Registers the API's routes (on the public listener or on `admin_api.listen`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(BASE_PATH)
            .app_data(web::PayloadConfig::new(JSON_BODY_LIMIT))
            .route("/openapi.json", web::get().to(openapi::get_openapi))
            .route("/accounts", web::post().to(accounts::create_account))
            .route("/accounts/{login}", web::get().to(accounts::get_account))
            .route(
                "/accounts/{login}",
                web::patch().to(accounts::update_account),
            )
            .route(
                "/accounts/{login}/disable",
                web::post().to(accounts::disable_account),
            )
            .route(
                "/accounts/{login}/block",
                web::post().to(accounts::block_account),
            )
            .route(
                "/accounts/{login}/unblock",
                web::post().to(accounts::unblock_account),
            )
            .route(
                "/accounts/{login}/audit",
                web::get().to(accounts::list_audit_events),
            )
            .route(
                "/accounts/{login}/sessions",
                web::get().to(sessions::list_sessions),
            )
            .route(
                "/accounts/{login}/sessions",
                web::delete().to(sessions::end_sessions),
            )
            .route(
                "/accounts/{login}/second-factors",
                web::get().to(second_factors::list_second_factors),
            )
            .route(
                "/accounts/{login}/second-factors",
                web::delete().to(second_factors::remove_second_factors),
            )
            .route(
                "/accounts/{login}/reset-link",
                web::post().to(helpdesk::send_reset_link),
            )
            .route(
                "/accounts/{login}/activation-link",
                web::post().to(helpdesk::send_activation_link),
            )
            .route("/helpdesk/requests", web::get().to(helpdesk::list_requests))
            .route(
                "/helpdesk/requests/{reference}",
                web::get().to(helpdesk::get_request),
            )
            .route(
                "/helpdesk/requests/{reference}/close",
                web::post().to(helpdesk::close_request),
            )
            .route("/imports", web::post().to(imports::create_import))
            .default_service(web::to(not_found)),
    );
}

/// What answers on the admin listener outside the API, and inside it for unknown paths.
pub async fn not_found() -> HttpResponse {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").response()
}

/// The key of this request, if it is valid and has `scope` (any valid key when `None`).
///
/// # Errors
/// What to answer: 401 with a `WWW-Authenticate` challenge for a missing, unknown,
/// revoked or expired key; 403 for a missing scope; 503 if the database fails.
pub(crate) async fn authorize(
    state: &AppState,
    req: &HttpRequest,
    scope: Option<ApiScope>,
) -> Result<ApiKeyRecord, ApiError> {
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(presented) = presented.filter(|p| !p.is_empty()) else {
        return Err(ApiError::challenged(
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send an API key as Authorization: Bearer <key>",
            ),
            format!("Bearer realm=\"{REALM}\""),
        ));
    };
    let key = match state.services.api_keys.authenticate(presented).await {
        Ok(key) => key,
        Err(ApiKeyError::Repo(e)) => return Err(e.into()),
        Err(e) => {
            // The reason, never the key.
            tracing::info!(reason = %e, "admin API key refused");
            return Err(ApiError::challenged(
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
                format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{e}\""
                ),
            ));
        }
    };
    tracing::debug!(api_key.id = %key.id, api_key.name = %key.name, "admin API key accepted");
    if let Some(scope) = scope {
        if !key.allows(scope) {
            tracing::info!(api_key.id = %key.id, api_key.scope = %scope, "admin API key lacks a scope");
            return Err(ApiError::challenged(
                Problem::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("this key does not have the scope {scope}"),
                ),
                format!(
                    "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
                ),
            ));
        }
    }
    Ok(key)
}

/// The login of the path.
///
/// # Errors
/// 404: a string that is no valid login names no account.
pub(crate) fn path_login(raw: &str) -> Result<LoginName, ApiError> {
    LoginName::parse(raw)
        .map_err(|_| Problem::new(StatusCode::NOT_FOUND, "not_found", "no such account").into())
}

/// A JSON body of type `T`; an empty body reads as `{}` when `empty_ok`.
///
/// # Errors
/// 400 naming what is wrong.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8], empty_ok: bool) -> Result<T, ApiError> {
    let body = if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")).into())
}

/// RFC 3339, as every time in the API is written.
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A response from a handler's result.
pub(crate) fn respond(result: Result<HttpResponse, ApiError>) -> HttpResponse {
    result.unwrap_or_else(|e| e.response())
}
