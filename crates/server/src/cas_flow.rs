//! Issuing a service ticket and sending the browser back to the service
//! (CAS Protocol 3.0 §2.1.1 `service`, §2.1.2 `method=POST`, §2.2.4 response).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::account::Account;
use sesame_core::i18n::Lang;
use sesame_core::session::{session_handle, AttachedProtocol, Attachment, SsoSession};
use sesame_protocol::cas::tickets::TicketGrant;
use sesame_protocol::services::RegisteredService;

use crate::web::AppState;

/// What a session remembers of each ticket it issued, for single logout.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssuedTicket {
    /// Registry id of the service.
    pub service_id: String,
    /// The service URL the ticket was issued for.
    pub service: String,
    /// The ticket (the SAML `SessionIndex` of the logout request).
    pub ticket: String,
}

/// `service` with `ticket=<st>` added to its query.
pub fn service_url_with_ticket(service: &str, ticket: &str) -> Option<String> {
    let mut url = url::Url::parse(service).ok()?;
    url.query_pairs_mut().append_pair("ticket", ticket);
    Some(url.to_string())
}

/// Issues a service ticket for `service_url` from the session and answers with the redirect
/// (303 after a POST of credentials, 302 otherwise) or, for `method=POST`, a page that posts
/// the ticket to the service. `account` is the session's account as just read (and checked
/// active) by the caller: the ticket captures the attributes released to the service from
/// it, so that validating it reads no database. Without it, validation reads the account.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per login path; a struct would only rename them"
)]
pub async fn issue_and_redirect(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    service_url: &str,
    service: &RegisteredService,
    cookie_value: &str,
    session: &SsoSession,
    account: Option<&Account>,
    from_new_login: bool,
    method_post: bool,
) -> HttpResponse {
    let handle = session_handle(cookie_value);
    let attributes = account.map(|account| {
        sesame_protocol::attributes::cas_attributes(
            account,
            &service.attributes,
            &state.settings.cas.principal_scope,
        )
    });
    let grant = TicketGrant {
        service: service_url.to_owned(),
        service_id: service.id.clone(),
        account_id: session.account_id,
        login: session.login.to_string(),
        authenticated_at: session.authenticated_at,
        from_new_login,
        remember_me: session.remember_me,
        session_key: handle.clone(),
        proxies: Vec::new(),
        issued_at: state.services.clock.now(),
        attributes,
        methods: session.methods.methods(),
    };
    let ticket = match state.services.cas.issue_service_ticket(grant).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not issue a service ticket");
            return state.unavailable(req, lang);
        }
    };
    let issued = IssuedTicket {
        service_id: service.id.clone(),
        service: service_url.to_owned(),
        ticket: ticket.clone(),
    };
    let attached = Attachment::new(
        AttachedProtocol::Cas,
        serde_json::to_string(&issued).unwrap_or_default(),
    );
    if let Err(e) = state
        .services
        .sessions
        .attach(&handle, session, &attached)
        .await
    {
        tracing::error!(error = %e, "could not record a service for single logout");
        return state.unavailable(req, lang);
    }
    tracing::debug!(service.id = %service.id, user.login = ?session.login.as_str(), from_new_login, "service ticket issued");
    if method_post {
        return state.page(
            StatusCode::OK,
            "autopost.html",
            lang,
            req,
            minijinja::context! { action => service_url, ticket => ticket, service_name => service.name },
        );
    }
    let Some(location) = service_url_with_ticket(service_url, &ticket) else {
        return state.unavailable(req, lang);
    };
    let mut res = if from_new_login {
        HttpResponse::SeeOther()
    } else {
        HttpResponse::Found()
    };
    res.insert_header(("Location", location)).finish()
}

/// `service` without a ticket (gateway with no session).
pub fn redirect_without_ticket(service_url: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", service_url.to_owned()))
        .finish()
}

/// One back-channel logout request to deliver.
#[derive(Debug, Clone)]
pub struct LogoutDelivery {
    service_id: String,
    target: String,
    /// The form field that carries `body`: `logoutRequest` (CAS) or `logout_token` (OIDC).
    field: &'static str,
    body: String,
}

impl LogoutDelivery {
    /// A delivery of `body` in form field `field` to `target`, on behalf of `service_id`.
    pub fn new(service_id: String, target: String, field: &'static str, body: String) -> Self {
        Self {
            service_id,
            target,
            field,
            body,
        }
    }
}

/// The back-channel logout requests owed for what an ended session attached (CAS Protocol
/// 3.0 §2.3.3): one per ticket issued to a service whose `logout_type` is `back_channel`.
pub fn logout_deliveries(
    registry: &sesame_protocol::services::ServiceRegistry,
    now: time::OffsetDateTime,
    items: &[Attachment],
) -> Vec<LogoutDelivery> {
    let mut deliveries = Vec::new();
    for item in items.iter().filter(|i| i.protocol == AttachedProtocol::Cas) {
        let Ok(issued) = serde_json::from_str::<IssuedTicket>(&item.payload) else {
            continue;
        };
        let Some(service) = registry.get(&issued.service_id) else {
            continue;
        };
        if service.logout_type != sesame_protocol::services::LogoutType::BackChannel {
            continue;
        }
        let id = sesame_protocol::cas::slo::new_logout_request_id();
        deliveries.push(LogoutDelivery {
            service_id: service.id.clone(),
            target: service
                .logout_url
                .clone()
                .unwrap_or_else(|| issued.service.clone()),
            field: sesame_protocol::cas::slo::LOGOUT_REQUEST_FIELD,
            body: sesame_protocol::cas::slo::logout_request(&issued.ticket, now, &id),
        });
    }
    deliveries
}

/// Tries per request, and the pause before each retry.
const SLO_ATTEMPTS: u32 = 3;
const SLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Delivers logout requests: each gets up to three tries with a growing pause, a 5 s timeout
/// per try, and any 2xx answer counts as delivered.
pub async fn deliver_logouts(deliveries: Vec<LogoutDelivery>) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SLO_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the single-logout client");
            return;
        }
    };
    let sends = deliveries.into_iter().map(|d| {
        let client = client.clone();
        async move {
            for attempt in 1..=SLO_ATTEMPTS {
                let outcome = client
                    .post(&d.target)
                    .form(&[(d.field, d.body.as_str())])
                    .send()
                    .await;
                match outcome {
                    Ok(res) if res.status().is_success() => {
                        tracing::info!(service.id = %d.service_id, attempt, "single logout delivered");
                        return;
                    }
                    Ok(res) => tracing::warn!(service.id = %d.service_id, attempt, http.status = res.status().as_u16(), "single logout refused"),
                    Err(e) => tracing::warn!(service.id = %d.service_id, attempt, error = %e.without_url(), "single logout failed"),
                }
                if attempt < SLO_ATTEMPTS {
                    tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt))).await;
                }
            }
        }
    });
    futures::future::join_all(sends).await;
}

/// Ends what an ended SSO session gave out: revokes its OpenID Connect grants, then sends
/// the back-channel logout requests (CAS) and logout tokens (OIDC) in the background:
/// logging out never waits for a slow application.
pub async fn send_single_logout(
    services: &crate::services::Services,
    ended: &sesame_core::session::EndedSession,
) -> usize {
    let mut deliveries =
        logout_deliveries(&services.registry, services.clock.now(), &ended.attached);
    deliveries.extend(crate::oidc_flow::end_session(services, ended).await);
    let count = deliveries.len();
    if count > 0 {
        tokio::spawn(deliver_logouts(deliveries));
    }
    count
}

/// As [`send_single_logout`], but waits for the deliveries (the CLI exits right after).
pub async fn send_single_logout_now(
    services: &crate::services::Services,
    ended: &sesame_core::session::EndedSession,
) -> usize {
    let mut deliveries =
        logout_deliveries(&services.registry, services.clock.now(), &ended.attached);
    deliveries.extend(crate::oidc_flow::end_session(services, ended).await);
    let count = deliveries.len();
    deliver_logouts(deliveries).await;
    count
}
