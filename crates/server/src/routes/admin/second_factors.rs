//! `/admin/api/v1/accounts/{login}/second-factors`: the second factors of an account (names and
//! dates, never a secret), and removing them all for a person who lost their phone, once the
//! helpdesk tool checked who is asking (scope `helpdesk`, as the console's removal).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use sesame_core::api_keys::ApiScope;
use utoipa::ToSchema;

use super::{authorize, path_login, respond, rfc3339};
use crate::operations::FactorResetError;
use crate::web::problem::{ApiError, Problem};
use crate::web::AppState;

/// One second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorView {
    /// Its id.
    pub id: String,
    /// `totp` (an authenticator application) or `passkey` (a passkey or security key).
    pub kind: String,
    /// The person's name for it.
    pub label: String,
    /// When it was added (RFC 3339).
    pub created_at: String,
    /// When it last passed a login (RFC 3339), if it has.
    pub last_used_at: Option<String>,
}

/// The second factors of an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorList {
    /// Login.
    pub login: String,
    /// Oldest first.
    pub factors: Vec<SecondFactorView>,
    /// Unused recovery codes.
    pub recovery_codes_left: usize,
}

/// What removing them did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorsRemoved {
    /// Login.
    pub login: String,
    /// Factors removed (their recovery codes too).
    pub removed: usize,
}

fn reset_problem(e: FactorResetError) -> ApiError {
    match e {
        FactorResetError::UnknownAccount(_) => ApiError::from(Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such account",
        )),
        FactorResetError::Unavailable(cause) => ApiError::from(Problem::unavailable(&cause)),
    }
}

/// The second factors of an account.
#[utoipa::path(
    get,
    path = "/admin/api/v1/accounts/{login}/second-factors",
    tag = "helpdesk",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "The factors", body = SecondFactorList),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `helpdesk`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["helpdesk"]))
)]
pub async fn list_second_factors(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(list(&state, &req, &login).await)
}

async fn list(state: &AppState, req: &HttpRequest, login: &str) -> Result<HttpResponse, ApiError> {
    authorize(state, req, Some(ApiScope::Helpdesk)).await?;
    let login = path_login(login)?;
    let account = state
        .services
        .accounts_repo
        .find_by_login(&login)
        .await
        .map_err(|e| ApiError::from(Problem::unavailable(&e)))?
        .ok_or_else(|| {
            ApiError::from(Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such account",
            ))
        })?;
    let factors = &state.services.second_factors;
    let listed = factors
        .list(account.id)
        .await
        .map_err(|e| ApiError::from(Problem::unavailable(&e)))?;
    let recovery_codes_left = if listed.is_empty() {
        0
    } else {
        factors
            .recovery_codes_left(account.id)
            .await
            .map_err(|e| ApiError::from(Problem::unavailable(&e)))?
    };
    Ok(HttpResponse::Ok().json(SecondFactorList {
        login: account.login.to_string(),
        factors: listed
            .into_iter()
            .map(|f| SecondFactorView {
                id: f.id,
                kind: f.kind.as_str().to_owned(),
                label: f.label,
                created_at: rfc3339(f.created_at),
                last_used_at: f.last_used_at.map(rfc3339),
            })
            .collect(),
        recovery_codes_left,
    }))
}

/// Removes every second factor and recovery code of the account (a lost phone, once the
/// person's identity is checked); audited as `mfa.removed` by the key, and mailed to the
/// person. The next login asks for the password only.
#[utoipa::path(
    delete,
    path = "/admin/api/v1/accounts/{login}/second-factors",
    tag = "helpdesk",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "Removed", body = SecondFactorsRemoved),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `helpdesk`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["helpdesk"]))
)]
pub async fn remove_second_factors(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(remove(&state, &req, &login).await)
}

async fn remove(
    state: &AppState,
    req: &HttpRequest,
    login: &str,
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::Helpdesk)).await?;
    let login = path_login(login)?;
    let (account, removed) =
        crate::operations::reset_second_factors(&state.services, &login, &key.actor())
            .await
            .map_err(reset_problem)?;
    Ok(HttpResponse::Ok().json(SecondFactorsRemoved {
        login: account.login.to_string(),
        removed,
    }))
}
