//! CAS validation endpoints (CAS Protocol 3.0 §2.4–2.8):
//! `GET /cas/validate` (1.0), `GET /cas/serviceValidate`, `GET /cas/proxyValidate` (2.0),
//! `GET /cas/p3/serviceValidate`, `GET /cas/p3/proxyValidate` (3.0, with attributes),
//! `GET /cas/proxy`, `POST /cas/samlValidate` (SAML 1.1).
//!
//! These are the hot path of every CAS login: one store round trip takes the ticket and reads
//! its session; the attributes come captured in the ticket, so the database is read only for
//! proxy tickets of services released attributes.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use sesame_core::account::Account;
use sesame_protocol::cas::response::{self as cas_xml};
use sesame_protocol::cas::tickets::{CasError, CasErrorCode, TicketGrant, ValidationRequest};
use sesame_protocol::services::RegisteredService;

use crate::proxy_callback;
use crate::web::AppState;

/// Parameters of the validation endpoints.
#[derive(Debug, Deserialize)]
pub struct ValidateQuery {
    service: Option<String>,
    ticket: Option<String>,
    renew: Option<String>,
    #[serde(rename = "pgtUrl")]
    pgt_url: Option<String>,
    format: Option<String>,
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
    if !crate::routes::login::account_still_usable(state, Some(grant.account_id)).await {
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
    Ok(released_attributes(
        &account,
        &service.attributes,
        &state.settings.cas.principal_scope,
    ))
}

/// The attributes a service is allowed, by their usual LDAP / eduPerson / SUPANN names.
/// `scope` is the `eduPersonPrincipalName` domain; empty means the domain of the account's
/// institutional e-mail.
pub fn released_attributes(
    account: &Account,
    allowed: &[String],
    scope: &str,
) -> Vec<(String, Vec<String>)> {
    let scope = if scope.is_empty() {
        account
            .email
            .as_ref()
            .and_then(|e| e.as_str().split_once('@'))
            .map(|(_, domain)| domain.to_owned())
    } else {
        Some(scope.to_owned())
    };
    let mut out = Vec::new();
    for name in allowed {
        let values = match name.as_str() {
            "uid" | "supannAliasLogin" => vec![account.login.to_string()],
            "eduPersonPrincipalName" => scope
                .iter()
                .map(|d| format!("{}@{d}", account.login))
                .collect(),
            "mail" | "email" => account.email.iter().map(ToString::to_string).collect(),
            "givenName" => vec![account.given_name.clone()],
            "sn" => vec![account.family_name.clone()],
            "cn" | "displayName" => vec![format!("{} {}", account.given_name, account.family_name)],
            "eduPersonAffiliation" => vec![account.affiliation.to_string()],
            _ => Vec::new(),
        };
        if !values.is_empty() {
            out.push((name.clone(), values));
        }
    }
    out
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
    HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(body)
}

fn json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

async fn service_validate(
    state: &AppState,
    query: &ValidateQuery,
    endpoint: Endpoint,
) -> HttpResponse {
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
            if as_json {
                json(cas_xml::service_response_failure_json(e.code, &e.message))
            } else {
                xml(cas_xml::service_response_failure(e.code, &e.message))
            }
        }
    }
}

/// `GET /cas/serviceValidate`
pub async fn service_validate_v2(
    state: web::Data<AppState>,
    query: web::Query<ValidateQuery>,
) -> HttpResponse {
    service_validate(&state, &query, Endpoint::V2Service).await
}

/// `GET /cas/proxyValidate`
pub async fn proxy_validate_v2(
    state: web::Data<AppState>,
    query: web::Query<ValidateQuery>,
) -> HttpResponse {
    service_validate(&state, &query, Endpoint::V2Proxy).await
}

/// `GET /cas/p3/serviceValidate`
pub async fn service_validate_v3(
    state: web::Data<AppState>,
    query: web::Query<ValidateQuery>,
) -> HttpResponse {
    service_validate(&state, &query, Endpoint::V3Service).await
}

/// `GET /cas/p3/proxyValidate`
pub async fn proxy_validate_v3(
    state: web::Data<AppState>,
    query: web::Query<ValidateQuery>,
) -> HttpResponse {
    service_validate(&state, &query, Endpoint::V3Proxy).await
}

/// `GET /cas/validate` (CAS 1.0): `yes\nuser\n` or `no\n\n`.
pub async fn validate_v1(
    state: web::Data<AppState>,
    query: web::Query<ValidateQuery>,
) -> HttpResponse {
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

/// Parameters of `/cas/proxy`.
#[derive(Debug, Deserialize)]
pub struct ProxyQuery {
    pgt: Option<String>,
    #[serde(rename = "targetService")]
    target_service: Option<String>,
}

/// `GET /cas/proxy`: a proxy ticket for `targetService` from a proxy-granting ticket.
pub async fn proxy(state: web::Data<AppState>, query: web::Query<ProxyQuery>) -> HttpResponse {
    let (Some(pgt), Some(target)) = (
        query.pgt.as_deref().filter(|p| !p.is_empty()),
        query.target_service.as_deref().filter(|t| !t.is_empty()),
    ) else {
        return xml(cas_xml::proxy_failure(
            CasErrorCode::InvalidRequest,
            "pgt and targetService are required",
        ));
    };
    let Some(service) = state.services.registry.find(target) else {
        return xml(cas_xml::proxy_failure(
            CasErrorCode::UnauthorizedService,
            "targetService is not a registered service",
        ));
    };
    match state
        .services
        .cas
        .issue_proxy_ticket(pgt, target, &service.id)
        .await
    {
        Ok(pt) => xml(cas_xml::proxy_success(&pt)),
        Err(e) => xml(cas_xml::proxy_failure(e.code, &e.message)),
    }
}

/// Parameters of `/cas/samlValidate`.
#[derive(Debug, Deserialize)]
pub struct SamlQuery {
    #[serde(rename = "TARGET")]
    target: Option<String>,
}

/// `POST /cas/samlValidate?TARGET=service` with a SAML 1.1 request body.
pub async fn saml_validate(
    state: web::Data<AppState>,
    query: web::Query<SamlQuery>,
    body: web::Bytes,
) -> HttpResponse {
    let now = state.services.clock.now();
    let respond = |xml_body: String| {
        HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(xml_body)
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return respond(cas_xml::saml11_response_failure(
            CasErrorCode::InvalidRequest,
            "body is not UTF-8",
            now,
        ));
    };
    let request = match cas_xml::SamlValidateRequest::parse(text) {
        Ok(r) => r,
        Err(e) => return respond(cas_xml::saml11_response_failure(e.code, &e.message, now)),
    };
    let ticket = request.ticket.clone();
    let outcome = async {
        let (grant, service) =
            validate_ticket(&state, Some(&ticket), query.target.as_deref(), false, false).await?;
        let attributes = load_attributes(&state, &grant, &service).await?;
        Ok::<_, CasError>((grant, attributes))
    }
    .await;
    match outcome {
        Ok((grant, attributes)) => {
            let issuer = format!("{}/cas", state.base());
            respond(cas_xml::saml11_response_success(
                &cas_xml::Saml11Success::from_grant(
                    &grant,
                    &issuer,
                    request.request_id.as_deref(),
                    &attributes,
                    now,
                ),
            ))
        }
        Err(e) => respond(cas_xml::saml11_response_failure(e.code, &e.message, now)),
    }
}
