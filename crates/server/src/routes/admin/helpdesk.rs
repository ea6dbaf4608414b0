//! The helpdesk's calls: mail an account a password-reset or activation link, and the
//! assistance requests people send from the public form (list, read, close). All need the
//! `helpdesk` scope.
#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the IntoParams type it expands `params(...)` into"
)]

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::api_keys::ApiScope;
use sesame_core::helpdesk::{AssistanceRequest, RequestFilter};
use sesame_core::mail::mask_email;
use utoipa::{IntoParams, ToSchema};

use super::{authorize, json_body, path_login, respond, rfc3339};
use crate::web::problem::{ApiError, Problem};
use crate::web::AppState;

/// Largest `limit` of a list of requests.
const MAX_LIST: i64 = 500;

/// A link mailed to the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkSent {
    /// Login.
    pub login: String,
    /// Where it went, masked (`j***@example.org`): enough to tell the person where to look.
    pub sent_to: String,
}

/// How a request was closed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosureView {
    /// RFC 3339.
    pub closed_at: String,
    /// `cli`, `api:<key name>`, `helpdesk:<agent login>`.
    pub closed_by: String,
    /// What was done.
    pub note: Option<String>,
}

/// An assistance request, as the person typed it (nothing in it is verified).
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistanceRequestView {
    /// The reference given to the person, e.g. `AS-7K2M9QXD`.
    pub reference: String,
    /// `open` or `closed`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
    /// Who the person says they are: `staff`, `student`, `pupil` or `parent`.
    pub requester: String,
    /// Their name.
    pub name: String,
    /// The login or institutional address the person gives as theirs (empty if none: a
    /// parent or pupil may have none).
    pub institutional_email: String,
    /// The login of the account with that login or address, when there is one.
    pub account_login: Option<String>,
    /// Another, personal address to answer to (empty if a phone is given).
    pub personal_email: String,
    /// A phone number to call back (empty if an address is given).
    pub phone: String,
    /// Staff or student number, to check identity on the phone (empty if not asked).
    pub identity_hint: String,
    /// A pupil's school and class, or a parent's child's.
    pub school: String,
    /// A parent's child's name.
    pub child_name: String,
    /// The problem, in the person's words.
    pub description: String,
    /// Language of the form (`fr`, `en`): the answer's language.
    pub lang: String,
    /// Set once it was closed.
    pub closure: Option<ClosureView>,
}

/// A list of requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistanceRequestList {
    /// Newest first.
    pub requests: Vec<AssistanceRequestView>,
}

/// `?status=&limit=` of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestListQuery {
    /// `open` (the default), `closed` or `all`.
    pub status: Option<String>,
    /// How many, newest first (default 50, at most 500).
    pub limit: Option<i64>,
}

/// `POST …/{reference}/close`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// What was done (kept with the request; at most 2000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// What closing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Closed {
    /// The reference.
    pub reference: String,
    /// `false` when it was already closed (the first closure and its note are kept).
    pub newly_closed: bool,
}

/// Mails the account a password-reset link to its **verified** recovery address (any older
/// link stops working). The link is never in the response: it reaches only the person.
#[utoipa::path(
    post,
    path = "/admin/api/v1/accounts/{login}/reset-link",
    tag = "helpdesk",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 202, description = "Queued for the person's recovery address", body = LinkSent),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `helpdesk`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_recovery_address`: none, or not verified; `bad_transition`: the account is not active", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["helpdesk"]))
)]
pub async fn send_reset_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(reset_link(&state, &req, &login).await)
}

async fn reset_link(
    state: &AppState,
    req: &HttpRequest,
    login: &str,
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::Helpdesk)).await?;
    let login = path_login(login)?;
    let to =
        crate::operations::send_reset_link(&state.services, state.base(), &login, &key.actor())
            .await
            .map_err(ApiError::from)?;
    Ok(HttpResponse::Accepted().json(LinkSent {
        login: login.to_string(),
        sent_to: mask_email(to.as_str()),
    }))
}

/// Mails a provisioned account a new activation link to its recovery address (any older
/// link stops working).
#[utoipa::path(
    post,
    path = "/admin/api/v1/accounts/{login}/activation-link",
    tag = "helpdesk",
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 202, description = "Queued for the person's recovery address", body = LinkSent),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `helpdesk`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_recovery_address`; `bad_transition`: not provisioned, or its affiliation may not activate by link", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["helpdesk"]))
)]
pub async fn send_activation_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    respond(activation_link(&state, &req, &login).await)
}

async fn activation_link(
    state: &AppState,
    req: &HttpRequest,
    login: &str,
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::Helpdesk)).await?;
    let login = path_login(login)?;
    let to = crate::operations::send_activation_link(&state.services, &login, &key.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Accepted().json(LinkSent {
        login: login.to_string(),
        sent_to: mask_email(to.as_str()),
    }))
}

async fn request_view(
    state: &AppState,
    r: AssistanceRequest,
) -> Result<AssistanceRequestView, ApiError> {
    let account_login = match r.account_id {
        Some(id) => state
            .services
            .accounts_repo
            .find_by_id(id)
            .await
            .map_err(ApiError::from)?
            .map(|a| a.login.to_string()),
        None => None,
    };
    Ok(AssistanceRequestView {
        status: if r.is_open() { "open" } else { "closed" }.to_owned(),
        created_at: rfc3339(r.created_at),
        account_login,
        closure: r.closure.map(|c| ClosureView {
            closed_at: rfc3339(c.closed_at),
            closed_by: c.closed_by,
            note: c.note,
        }),
        reference: r.reference,
        requester: r.kind.as_str().to_owned(),
        name: r.name,
        institutional_email: r.login_or_email,
        personal_email: r.personal_email,
        phone: r.phone,
        identity_hint: r.number,
        school: r.school,
        child_name: r.child_name,
        description: r.description,
        lang: r.lang,
    })
}

/// The assistance requests, newest first.
#[utoipa::path(
    get,
    path = "/admin/api/v1/helpdesk/requests",
    tag = "helpdesk",
    params(RequestListQuery),
    responses(
        (status = 200, description = "The requests", body = AssistanceRequestList),
        (status = 400, description = "A bad `status` or `limit`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `helpdesk`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["helpdesk"]))
)]
pub async fn list_requests(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    respond(list(&state, &req).await)
}

async fn list(state: &AppState, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    authorize(state, req, Some(ApiScope::Helpdesk)).await?;
    let query = web::Query::<RequestListQuery>::from_query(req.query_string())
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let filter = match query.status.as_deref() {
        None => RequestFilter::Open,
        Some(s) => s
            .parse::<RequestFilter>()
            .map_err(|_| Problem::bad_request("status: expected open, closed or all"))?,
    };
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIST);
    let requests = state
        .services
        .helpdesk
        .assistance
        .list(filter, limit)
        .await
        .map_err(ApiError::from)?;
    let mut views = Vec::with_capacity(requests.len());
    for r in requests {
        views.push(request_view(state, r).await?);
    }
    Ok(HttpResponse::Ok().json(AssistanceRequestList { requests: views }))
}

/// One assistance request.
#[utoipa::path(
    get,
    path = "/admin/api/v1/helpdesk/requests/{reference}",
    tag = "helpdesk",
    params(("reference" = String, Path, description = "The request's reference, e.g. AS-7K2M9QXD")),
    responses(
        (status = 200, description = "The request", body = AssistanceRequestView),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `helpdesk`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["helpdesk"]))
)]
pub async fn get_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    reference: web::Path<String>,
) -> HttpResponse {
    respond(show(&state, &req, &reference).await)
}

async fn show(
    state: &AppState,
    req: &HttpRequest,
    reference: &str,
) -> Result<HttpResponse, ApiError> {
    authorize(state, req, Some(ApiScope::Helpdesk)).await?;
    let request = state
        .services
        .helpdesk
        .assistance
        .show(reference)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(request_view(state, request).await?))
}

/// Closes an assistance request once it is dealt with, with a note of what was done.
#[utoipa::path(
    post,
    path = "/admin/api/v1/helpdesk/requests/{reference}/close",
    tag = "helpdesk",
    params(("reference" = String, Path, description = "The request's reference")),
    request_body = CloseRequest,
    responses(
        (status = 200, description = "Closed (or already closed)", body = Closed),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `helpdesk`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The note is too long or holds control characters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["helpdesk"]))
)]
pub async fn close_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    reference: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    respond(close(&state, &req, &reference, &body).await)
}

async fn close(
    state: &AppState,
    req: &HttpRequest,
    reference: &str,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let key = authorize(state, req, Some(ApiScope::Helpdesk)).await?;
    let input: CloseRequest = json_body(body, true)?;
    let newly_closed = state
        .services
        .helpdesk
        .assistance
        .close(reference, input.note.as_deref(), &key.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(Closed {
        reference: reference.trim().to_ascii_uppercase(),
        newly_closed,
    }))
}
