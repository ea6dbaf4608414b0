//! `/admin/api/v1/accounts…`: create, read, update, disable, block and unblock accounts, and
//! read their audit events.
#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the IntoParams type it expands `params(...)` into"
)]

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use sesame_core::account::{Account, AccountProfile};
use sesame_core::api_keys::ApiScope;
use sesame_core::audit::AuditEvent;
use sesame_core::ids::{Affiliation, Email, LoginName, MobilePhone};
use sesame_lifecycle::admin::{person_name, AccountRequest, AccountUpdate};
use utoipa::{IntoParams, ToSchema};

use super::{authorize, json_body, path_login, respond, rfc3339};
use crate::operations::SessionsEnded;
use crate::web::problem::{ApiError, Problem};
use crate::web::AppState;

/// An account as the API shows it. The national ID and birth date are never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// Stable identifier (the OpenID Connect `sub`).
    pub id: String,
    /// Login.
    pub login: String,
    /// Institutional e-mail.
    pub email: Option<String>,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// `staff`, `faculty`, `student`, `pupil`, `parent` or `affiliate`.
    pub affiliation: String,
    /// `provisioned`, `active`, `blocked` or `disabled`.
    pub state: String,
    /// Identifier in the HR or student system.
    pub hr_id: Option<String>,
    /// Personal e-mail for activation and recovery.
    pub recovery_email: Option<ContactView>,
    /// Mobile phone for recovery.
    pub mobile: Option<ContactView>,
    /// Until when the login is temporarily locked after failed attempts (RFC 3339).
    pub locked_until: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A recovery contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    /// The address or number.
    pub address: String,
    /// Whether its owner proved they receive at it.
    pub verified: bool,
}

impl AccountView {
    fn new(account: &Account, profile: &AccountProfile, locked_until: Option<String>) -> Self {
        Self {
            id: account.id.to_string(),
            login: account.login.to_string(),
            email: account.email.as_ref().map(ToString::to_string),
            given_name: account.given_name.clone(),
            family_name: account.family_name.clone(),
            affiliation: account.affiliation.as_str().to_owned(),
            state: account.state.as_str().to_owned(),
            hr_id: profile.hr_id.as_ref().map(ToString::to_string),
            recovery_email: profile.recovery_email.as_ref().map(|c| ContactView {
                address: c.address.to_string(),
                verified: c.verified,
            }),
            mobile: profile.mobile.as_ref().map(|c| ContactView {
                address: c.address.to_string(),
                verified: c.verified,
            }),
            locked_until,
            created_at: rfc3339(account.created_at),
            updated_at: rfc3339(account.updated_at),
        }
    }
}

/// `POST /admin/api/v1/accounts`: a new account, in state `provisioned`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreate {
    /// Login, e.g. `jean.dupont`.
    pub login: String,
    /// Institutional e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// `staff`, `faculty`, `student`, `pupil`, `parent` or `affiliate`.
    pub affiliation: String,
    /// Personal e-mail for activation and recovery (stored as not verified).
    #[serde(default)]
    pub recovery_email: Option<String>,
    /// Mobile phone for recovery (stored as not verified).
    #[serde(default)]
    pub mobile: Option<String>,
}

/// `PATCH /admin/api/v1/accounts/{login}`: each field present is written; `null` removes the
/// e-mail, recovery e-mail or mobile. Absent fields are left as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    /// New given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// New family name.
    #[serde(default)]
    pub family_name: Option<String>,
    /// New institutional e-mail, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// New affiliation.
    #[serde(default)]
    pub affiliation: Option<String>,
    /// New recovery e-mail (not verified), or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub recovery_email: Option<Option<String>>,
    /// New mobile (not verified), or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub mobile: Option<Option<String>>,
}

/// A field that is present, possibly `null` (absent fields stay `None` through `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `POST /admin/api/v1/accounts/{login}/block`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// Why: `phishing`, `suspicious` or `other` (the default).
    #[serde(default)]
    pub reason: Option<String>,
    /// A few words for the helpdesk (kept with the block, never shown to the person; at
    /// most 500 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// The state an account is in after an action, and what the action ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateChange {
    /// Login.
    pub login: String,
    /// `provisioned`, `active`, `blocked` or `disabled`.
    pub state: String,
    /// Live SSO sessions ended.
    pub sessions_ended: usize,
    /// Applications sent a single-logout request.
    pub applications_notified: usize,
}

impl From<SessionsEnded> for StateChange {
    fn from(done: SessionsEnded) -> Self {
        Self {
            login: done.account.login.to_string(),
            state: done.account.state.as_str().to_owned(),
            sessions_ended: done.sessions_ended,
            applications_notified: done.applications_notified,
        }
    }
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    /// RFC 3339.
    pub at: String,
    /// Dotted name, e.g. `login.failed`, `account.state_changed`.
    pub kind: String,
    /// `self`, `cli`, `api:<key name>`, or a service.
    pub actor: String,
    /// Client address, when there was one.
    pub ip: Option<String>,
    /// Details (never secrets).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            at: rfc3339(e.at),
            kind: e.kind,
            actor: e.actor,
            ip: e.ip,
            detail: e.detail,
        }
    }
}

/// The audit events of an account, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvents {
    /// Login.
    pub login: String,
    /// Newest first.
    pub events: Vec<AuditEventView>,
}

/// `?limit=` of the audit events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many events, newest first (default 50, at most 1000).
    pub limit: Option<i64>,
}

fn bad_field(field: &str, e: &dyn std::fmt::Display) -> ApiError {
    Problem::bad_request(format!("{field}: {e}")).into()
}

fn email(field: &str, raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| bad_field(field, &e))
}

fn mobile(raw: &str) -> Result<MobilePhone, ApiError> {
    MobilePhone::parse(raw).map_err(|e| bad_field("mobile", &e))
}

fn affiliation(raw: &str) -> Result<Affiliation, ApiError> {
    raw.parse::<Affiliation>()
        .map_err(|e| bad_field("affiliation", &e))
}

fn name(field: &str, raw: &str) -> Result<String, ApiError> {
    person_name(raw).map_err(|e| bad_field(field, &e))
}

async fn view(state: &AppState, login: &LoginName) -> Result<AccountView, ApiError> {
    let found = state
        .services
        .admin
        .get(login)
        .await
        .map_err(ApiError::from)?;
    let locked_until = state
        .services
        .accounts
        .locked_until(login.as_str())
        .await
        .map_err(ApiError::from)?;
    Ok(AccountView::new(
        &found.account,
        &found.profile,
        locked_until.map(rfc3339),
    ))
}

/// Creates an account, in state `provisioned`.
#[utoipa::path(
    post,
    path = "/admin/api/v1/accounts",
    tag = "accounts",
    request_body = AccountCreate,
    responses(
        (status = 201, description = "Created; `Location` names it", body = AccountView),
        (status = 400, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `accounts:write`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The login or e-mail is taken", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:write"]))
)]
pub async fn create_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    respond(create(&state, &req, &body).await)
}

async fn create(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::AccountsWrite)).await?;
    let input: AccountCreate = json_body(body, false)?;
    let request = AccountRequest {
        login: LoginName::parse(&input.login).map_err(|e| bad_field("login", &e))?,
        email: input
            .email
            .as_deref()
            .map(|e| email("email", e))
            .transpose()?,
        given_name: name("given_name", &input.given_name)?,
        family_name: name("family_name", &input.family_name)?,
        affiliation: affiliation(&input.affiliation)?,
        recovery_email: input
            .recovery_email
            .as_deref()
            .map(|e| email("recovery_email", e))
            .transpose()?,
        mobile: input.mobile.as_deref().map(mobile).transpose()?,
        // A provisioning system's addresses are proven by the person later.
        contacts_verified: false,
    };
    let created = state
        .services
        .admin
        .create(request, &key.actor())
        .await
        .map_err(ApiError::from)?;
    let view = AccountView::new(&created.account, &created.profile, None);
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("{}/accounts/{}", super::BASE_PATH, created.account.login),
        ))
        .json(view))
}

/// An account, its profile and its temporary lock.
#[utoipa::path(
    get,
    path = "/admin/api/v1/accounts/{login}",
    tag = "accounts",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `accounts:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:read"]))
)]
pub async fn get_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(get(&state, &req, &login).await)
}

async fn get(state: &AppState, req: &HttpRequest, login: &str) -> Result<HttpResponse, ApiError> {
    authorize(state, req, Some(ApiScope::AccountsRead)).await?;
    let login = path_login(login)?;
    Ok(HttpResponse::Ok().json(view(state, &login).await?))
}

/// Changes names, e-mail, affiliation or recovery contacts.
#[utoipa::path(
    patch,
    path = "/admin/api/v1/accounts/{login}",
    tag = "accounts",
    params(("login" = String, Path, description = "The account's login")),
    request_body = AccountPatch,
    responses(
        (status = 200, description = "The account as it now is", body = AccountView),
        (status = 400, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `accounts:write`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The e-mail is taken", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:write"]))
)]
pub async fn update_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    respond(update(&state, &req, &login, &body).await)
}

async fn update(
    state: &AppState,
    req: &HttpRequest,
    login: &str,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::AccountsWrite)).await?;
    let login = path_login(login)?;
    let patch: AccountPatch = json_body(body, false)?;
    let update = AccountUpdate {
        given_name: patch
            .given_name
            .as_deref()
            .map(|n| name("given_name", n))
            .transpose()?,
        family_name: patch
            .family_name
            .as_deref()
            .map(|n| name("family_name", n))
            .transpose()?,
        email: patch
            .email
            .map(|e| e.as_deref().map(|e| email("email", e)).transpose())
            .transpose()?,
        affiliation: patch.affiliation.as_deref().map(affiliation).transpose()?,
        recovery_email: patch
            .recovery_email
            .map(|e| e.as_deref().map(|e| email("recovery_email", e)).transpose())
            .transpose()?,
        mobile: patch
            .mobile
            .map(|m| m.as_deref().map(mobile).transpose())
            .transpose()?,
    };
    state
        .services
        .admin
        .update(&login, update, &key.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(view(state, &login).await?))
}

/// Disables an account (the person left): it cannot log in, its sessions end and its
/// applications are sent a logout request.
#[utoipa::path(
    post,
    path = "/admin/api/v1/accounts/{login}/disable",
    tag = "accounts",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "Disabled", body = StateChange),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `accounts:write`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:write"]))
)]
pub async fn disable_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(disable(&state, &req, &login).await)
}

async fn disable(
    state: &AppState,
    req: &HttpRequest,
    login: &str,
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::AccountsWrite)).await?;
    let login = path_login(login)?;
    let done = crate::operations::disable_account(&state.services, &login, &key.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(StateChange::from(done)))
}

/// Blocks an account (compromise, abuse): its sessions end at once on every instance, its
/// applications are sent a logout request, and it cannot log in until unblocked.
#[utoipa::path(
    post,
    path = "/admin/api/v1/accounts/{login}/block",
    tag = "accounts",
    params(("login" = String, Path, description = "The account's login")),
    request_body(content = BlockRequest, description = "Optional: the reason", content_type = "application/json"),
    responses(
        (status = 200, description = "Blocked", body = StateChange),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `accounts:write`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A disabled account cannot be blocked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:write"]))
)]
pub async fn block_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    respond(block(&state, &req, &login, &body).await)
}

async fn block(
    state: &AppState,
    req: &HttpRequest,
    login: &str,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::AccountsWrite)).await?;
    let login = path_login(login)?;
    let request: BlockRequest = json_body(body, true)?;
    let reason = match request.reason.as_deref() {
        None => sesame_core::helpdesk::BlockReason::Other,
        Some(raw) => raw.parse().map_err(|_| {
            ApiError::from(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "reason must be phishing, suspicious or other",
            ))
        })?,
    };
    let done = crate::operations::block_account(
        &state.services,
        &login,
        reason,
        request.note.as_deref(),
        &key.actor(),
    )
    .await
    .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(StateChange::from(done)))
}

/// Unblocks a blocked account (back to active). Its former password opens nothing until a new
/// one is set through a verified channel (a reset link, an SMS code, a helpdesk code).
#[utoipa::path(
    post,
    path = "/admin/api/v1/accounts/{login}/unblock",
    tag = "accounts",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "Unblocked; its former password opens nothing until a new one is set through a verified channel (reset link, SMS code, helpdesk code)", body = StateChange),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `accounts:write`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account is not blocked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:write"]))
)]
pub async fn unblock_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(unblock(&state, &req, &login).await)
}

async fn unblock(
    state: &AppState,
    req: &HttpRequest,
    login: &str,
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::AccountsWrite)).await?;
    let login = path_login(login)?;
    let account = crate::operations::unblock_account(&state.services, &login, &key.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(StateChange {
        login: account.login.to_string(),
        state: account.state.as_str().to_owned(),
        sessions_ended: 0,
        applications_notified: 0,
    }))
}

/// The audit events of an account, newest first: logins, failures, locks, changes and who
/// made them.
#[utoipa::path(
    get,
    path = "/admin/api/v1/accounts/{login}/audit",
    tag = "accounts",
    params(("login" = String, Path, description = "The account's login"), AuditQuery),
    responses(
        (status = 200, description = "The events", body = AuditEvents),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `accounts:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:read"]))
)]
pub async fn list_audit_events(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(audit(&state, &req, &login).await)
}

async fn audit(state: &AppState, req: &HttpRequest, login: &str) -> Result<HttpResponse, ApiError> {
    authorize(state, req, Some(ApiScope::AccountsRead)).await?;
    let login = path_login(login)?;
    let query = web::Query::<AuditQuery>::from_query(req.query_string())
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let account = state
        .services
        .accounts
        .get(&login)
        .await
        .map_err(ApiError::from)?;
    let events = state
        .services
        .audit
        .recent(Some(account.login.as_str()), limit)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(AuditEvents {
        login: account.login.to_string(),
        events: events.into_iter().map(AuditEventView::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_tells_an_absent_field_from_a_null_one() {
        let patch: AccountPatch =
            serde_json::from_str(r#"{"email": null, "given_name": "Anne"}"#).unwrap();
        assert_eq!(patch.email, Some(None));
        assert_eq!(patch.recovery_email, None);
        assert_eq!(patch.given_name.as_deref(), Some("Anne"));
        assert!(serde_json::from_str::<AccountPatch>(r#"{"password": "x"}"#).is_err());
    }
}
