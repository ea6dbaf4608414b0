//! CAS validation endpoints (CAS Protocol 3.0 §2.4–2.8):
//! `GET /cas/validate` (1.0), `GET /cas/serviceValidate`, `GET /cas/proxyValidate` (2.0),
//! `GET /cas/p3/serviceValidate`, `GET /cas/p3/proxyValidate` (3.0, with attributes),
//! `GET /cas/proxy`, `POST /cas/samlValidate` (SAML 1.1).
//!
//! Their query strings are read strictly ([`crate::cas_params`]): a repeated parameter, a
//! broken encoding or an oversized query or body is answered in CAS's own format, with
//! status 400 (413 for a body), never with the framework's plain text (A57).
//!
//! These are the hot path of every CAS login: one store round trip takes the ticket and reads
//! its session; the attributes come captured in the ticket, so the database is read only for
//! proxy tickets of services released attributes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures::StreamExt;
use sesame_protocol::cas::response::{self as cas_xml};
use sesame_protocol::cas::tickets::{CasError, CasErrorCode, TicketGrant, ValidationRequest};
use sesame_protocol::services::RegisteredService;

use crate::cas_params::{asks_for_json, CasParams, MalformedQuery};
use crate::proxy_callback;
use crate::web::error::{CasFailure, CasFormat, CAS_XML, SAML_XML};
use crate::web::AppState;

/// Parameters of the validation endpoints.
#[derive(Debug)]
pub struct ValidateQuery {
    service: Option<String>,
    ticket: Option<String>,
    renew: Option<String>,
    pgt_url: Option<String>,
    format: Option<String>,
}

impl ValidateQuery {
    /// The parameters of `req`'s query string, read strictly.
    fn read(req: &HttpRequest) -> Result<Self, MalformedQuery> {
        let params = CasParams::parse(req.query_string())?;
        let get = |name: &str| params.get(name).map(str::to_owned);
        Ok(Self {
            service: get("service"),
            ticket: get("ticket"),
            renew: get("renew"),
            pgt_url: get("pgtUrl"),
            format: get("format"),
        })
    }
}

/// Logs a malformed request by its kind only: its names and values are the sender's.
fn log_malformed(e: &MalformedQuery) {
    let kind = match e {
        MalformedQuery::TooLong => "too_long",
        MalformedQuery::Repeated(_) => "repeated_parameter",
        MalformedQuery::BadEncoding(_) => "bad_encoding",
    };
    tracing::info!(cas.problem = kind, "malformed CAS request refused");
}

/// The answer of `/serviceValidate`, `/proxyValidate` and `/p3/*` to a malformed query: a
/// CAS `INVALID_REQUEST` failure, in JSON if the query asks for it, with status 400.
fn malformed_validation(req: &HttpRequest, e: &MalformedQuery) -> HttpResponse {
    log_malformed(e);
    let format = if asks_for_json(req.query_string()) {
        CasFormat::ValidationJson
    } else {
        CasFormat::ValidationXml
    };
    CasFailure::new(format, CasErrorCode::InvalidRequest, e.to_string())
        .with_status(StatusCode::BAD_REQUEST)
        .error_response()
}

/// Which protocol version and ticket kinds an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    V2Service,
    V2Proxy,
    V3Service,
    V3Proxy,
}

impl Endpoint {
    fn accepts_proxy_tickets(self) -> bool {
        matches!(self, Self::V2Proxy | Self::V3Proxy)
    }
    fn releases_attributes(self) -> bool {
        matches!(self, Self::V3Service | Self::V3Proxy)
    }
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v == "true" || v == "1")
}

/// The outcome of validating a ticket, before it is written in some format.
struct Validated {
    grant: TicketGrant,
    service: RegisteredService,
    attributes: Vec<(String, Vec<String>)>,
    pgt_iou: Option<String>,
}

async fn validate_ticket(
    state: &AppState,
    ticket: Option<&str>,
    service: Option<&str>,
    renew: bool,
    accept_proxy_tickets: bool,
) -> Result<(TicketGrant, RegisteredService), CasError> {
    let outcome = check_ticket(state, ticket, service, renew, accept_proxy_tickets).await;
    crate::metrics::ticket_validated(&outcome);
    outcome
}

async fn check_ticket(
    state: &AppState,
    ticket: Option<&str>,
    service: Option<&str>,
    renew: bool,
    accept_proxy_tickets: bool,
) -> Result<(TicketGrant, RegisteredService), CasError> {
    let (Some(ticket), Some(service)) = (
        ticket.filter(|t| !t.is_empty()),
        service.filter(|s| !s.is_empty()),
    ) else {
        return Err(CasError::new(
            CasErrorCode::InvalidRequest,
            "ticket and service are required",
        ));
    };
    let request = ValidationRequest {
        ticket,
        service,
        renew,
        accept_proxy_tickets,
    };
    let (grant, session) = state.services.cas.validate_with_session(&request).await?;
    // The ticket is burned now; it is only good if its SSO session still lived when it was
    // taken (logout, block and expiry end every ticket issued from the session: A44, A54,
    // A55, C10; blocking closes the account's sessions in the store).
    match state.services.sessions.is_live_record(session.as_deref()) {
        Ok(true) => {}
        Ok(false) => {
            return Err(CasError::new(
                CasErrorCode::InvalidTicket,
                "the session that issued this ticket has ended",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "ticket validation: store unavailable");
            return Err(CasError::new(
                CasErrorCode::InternalError,
                "temporarily unavailable",
            ));
        }
    }
    // In embedded mode an operator's block (another process) cannot reach this process's
    // sessions: the database says whether the account may still use them (A54).
    if !crate::pipeline::session::account_still_usable(state, Some(grant.account_id)).await {
        return Err(CasError::new(
            CasErrorCode::InvalidTicket,
            "the account can no longer log in",
        ));
    }
    let Some(registered) = state.services.registry.get(&grant.service_id).cloned() else {
        return Err(CasError::new(
            CasErrorCode::InvalidService,
            "the service is no longer registered",
        ));
    };
    Ok((grant, registered))
}

async fn load_attributes(
    state: &AppState,
    grant: &TicketGrant,
    service: &RegisteredService,
) -> Result<Vec<(String, Vec<String>)>, CasError> {
    if service.attributes.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(captured) = &grant.attributes {
        return Ok(captured.clone());
    }
    let login = sesame_core::ids::LoginName::parse(&grant.login)
        .map_err(|_| CasError::new(CasErrorCode::InternalError, "stored login unreadable"))?;
    let account = match state.services.accounts_repo.find_by_login(&login).await {
        Ok(Some(a)) if a.state == sesame_core::account::AccountState::Active => a,
        Ok(_) => {
            return Err(CasError::new(
                CasErrorCode::InvalidTicket,
                "the account can no longer log in",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "ticket validation: database unavailable");
            return Err(CasError::new(
                CasErrorCode::InternalError,
                "temporarily unavailable",
            ));
        }
    };
    Ok(sesame_protocol::attributes::cas_attributes(
        &account,
        &service.attributes,
        &state.settings.cas.principal_scope,
    ))
}

async fn run_validation(
    state: &AppState,
    query: &ValidateQuery,
    endpoint: Endpoint,
) -> Result<Validated, CasError> {
    let (grant, service) = validate_ticket(
        state,
        query.ticket.as_deref(),
        query.service.as_deref(),
        is_true(query.renew.as_deref()),
        endpoint.accepts_proxy_tickets(),
    )
    .await?;
    let attributes = if endpoint.releases_attributes() {
        load_attributes(state, &grant, &service).await?
    } else {
        Vec::new()
    };
    let pgt_iou = match query.pgt_url.as_deref().filter(|u| !u.is_empty()) {
        Some(pgt_url) => Some(
            proxy_callback::grant_proxy_granting_ticket(state, &grant, &service, pgt_url).await?,
        ),
        None => None,
    };
    Ok(Validated {
        grant,
        service,
        attributes,
        pgt_iou,
    })
}

fn xml(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type(CAS_XML).body(body)
}

fn json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

async fn service_validate(state: &AppState, req: &HttpRequest, endpoint: Endpoint) -> HttpResponse {
    let query = match ValidateQuery::read(req) {
        Ok(q) => q,
        Err(e) => return malformed_validation(req, &e),
    };
    let query = &query;
    let as_json = query
        .format
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    match run_validation(state, query, endpoint).await {
        Ok(v) => {
            tracing::debug!(service.id = %v.service.id, user.login = ?v.grant.login, "service ticket validated");
            let success = cas_xml::Success {
                user: &v.grant.login,
                attributes: &v.attributes,
                pgt_iou: v.pgt_iou.as_deref(),
                proxies: &v.grant.proxies,
                authentication_date: v.grant.authenticated_at,
                from_new_login: v.grant.from_new_login,
                long_term: v.grant.remember_me,
                methods: v.grant.methods(),
                with_attributes: endpoint.releases_attributes(),
            };
            if as_json {
                json(cas_xml::service_response_success_json(&success))
            } else {
                xml(cas_xml::service_response_success(&success))
            }
        }
        Err(e) => {
            tracing::info!(cas.code = e.code.as_str(), "service ticket refused");
            let format = if as_json {
                CasFormat::ValidationJson
            } else {
                CasFormat::ValidationXml
            };
            CasFailure::new(format, e.code, e.message).error_response()
        }
    }
}

/// `GET /cas/serviceValidate`
pub async fn service_validate_v2(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    service_validate(&state, &req, Endpoint::V2Service).await
}

/// `GET /cas/proxyValidate`
pub async fn proxy_validate_v2(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    service_validate(&state, &req, Endpoint::V2Proxy).await
}

/// `GET /cas/p3/serviceValidate`
pub async fn service_validate_v3(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    service_validate(&state, &req, Endpoint::V3Service).await
}

/// `GET /cas/p3/proxyValidate`
pub async fn proxy_validate_v3(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    service_validate(&state, &req, Endpoint::V3Proxy).await
}

/// `GET /cas/validate` (CAS 1.0): `yes\nuser\n` or `no\n\n`.
pub async fn validate_v1(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let query = match ValidateQuery::read(&req) {
        Ok(q) => q,
        Err(e) => {
            log_malformed(&e);
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body(cas_xml::validate_v1_failure());
        }
    };
    let outcome = validate_ticket(
        &state,
        query.ticket.as_deref(),
        query.service.as_deref(),
        is_true(query.renew.as_deref()),
        false,
    )
    .await;
    let body = match outcome {
        Ok((grant, _)) => cas_xml::validate_v1_success(&grant.login),
        Err(e) => {
            tracing::info!(cas.code = e.code.as_str(), "CAS 1.0 ticket refused");
            cas_xml::validate_v1_failure()
        }
    };
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// `GET /cas/proxy`: a proxy ticket for `targetService` from a proxy-granting ticket.
pub async fn proxy(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let params = match CasParams::parse(req.query_string()) {
        Ok(p) => p,
        Err(e) => {
            log_malformed(&e);
            return CasFailure::new(
                CasFormat::ProxyXml,
                CasErrorCode::InvalidRequest,
                e.to_string(),
            )
            .with_status(StatusCode::BAD_REQUEST)
            .error_response();
        }
    };
    let (Some(pgt), Some(target)) = (
        params.get("pgt").filter(|p| !p.is_empty()),
        params.get("targetService").filter(|t| !t.is_empty()),
    ) else {
        return CasFailure::new(
            CasFormat::ProxyXml,
            CasErrorCode::InvalidRequest,
            "pgt and targetService are required",
        )
        .error_response();
    };
    let Some(service) = state.services.registry.find(target) else {
        return CasFailure::new(
            CasFormat::ProxyXml,
            CasErrorCode::UnauthorizedService,
            "targetService is not a registered service",
        )
        .error_response();
    };
    match state
        .services
        .cas
        .issue_proxy_ticket(pgt, target, &service.id)
        .await
    {
        Ok(pt) => xml(cas_xml::proxy_success(&pt)),
        Err(e) => CasFailure::new(CasFormat::ProxyXml, e.code, e.message).error_response(),
    }
}

/// Reads a request body of at most `limit` bytes: `Ok(None)` when it is longer (announced or
/// sent), without reading the rest.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Option<Vec<u8>>, actix_web::error::PayloadError> {
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `POST /cas/samlValidate?TARGET=service` with a SAML 1.1 request body. A malformed query,
/// an unreadable body or one over [`MAX_SAML_REQUEST_BYTES`] gets a SAML failure too.
///
/// [`MAX_SAML_REQUEST_BYTES`]: sesame_protocol::cas::saml::MAX_SAML_REQUEST_BYTES
pub async fn saml_validate(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    use sesame_protocol::cas::saml::MAX_SAML_REQUEST_BYTES;
    let now = state.services.clock.now();
    let failure = |code: CasErrorCode, message: String| {
        CasFailure::new(CasFormat::Saml11(now), code, message)
    };
    let target = match CasParams::parse(req.query_string()) {
        Ok(params) => params.get("TARGET").map(str::to_owned),
        Err(e) => {
            log_malformed(&e);
            return failure(CasErrorCode::InvalidRequest, e.to_string())
                .with_status(StatusCode::BAD_REQUEST)
                .error_response();
        }
    };
    let body = match read_body(&req, payload, MAX_SAML_REQUEST_BYTES).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            tracing::info!(cas.problem = "too_large", "malformed CAS request refused");
            return failure(
                CasErrorCode::InvalidRequest,
                format!("the request is over {MAX_SAML_REQUEST_BYTES} bytes"),
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .error_response();
        }
        Err(e) => {
            tracing::info!(error = %e, "samlValidate: the body could not be read");
            return failure(
                CasErrorCode::InvalidRequest,
                "the request body could not be read".to_owned(),
            )
            .with_status(StatusCode::BAD_REQUEST)
            .error_response();
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return failure(CasErrorCode::InvalidRequest, "body is not UTF-8".to_owned())
            .error_response();
    };
    let request = match cas_xml::SamlValidateRequest::parse(text) {
        Ok(r) => r,
        Err(e) => return failure(e.code, e.message).error_response(),
    };
    let ticket = request.ticket.clone();
    let outcome = async {
        let (grant, service) =
            validate_ticket(&state, Some(&ticket), target.as_deref(), false, false).await?;
        let attributes = load_attributes(&state, &grant, &service).await?;
        Ok::<_, CasError>((grant, attributes))
    }
    .await;
    match outcome {
        Ok((grant, attributes)) => {
            let issuer = format!("{}/cas", state.base());
            HttpResponse::Ok()
                .content_type(SAML_XML)
                .body(cas_xml::saml11_response_success(
                    &cas_xml::Saml11Success::from_grant(
                        &grant,
                        &issuer,
                        request.request_id.as_deref(),
                        &attributes,
                        now,
                    ),
                ))
        }
        Err(e) => failure(e.code, e.message).error_response(),
    }
}
