//! CAS at the end of a login: a service ticket for the service, sent back in a redirect
//! (CAS Protocol 3.0 §2.1.1 `service`, §2.2.4) or posted (§2.1.2 `method=POST`); and at
//! the end of a session, a SAML `LogoutRequest` to every service that got a ticket and
//! asked for back-channel logout (§2.3.3).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sesame_core::account::Account;
use sesame_core::session::{AttachedProtocol, Attachment, EndedSession};
use time::OffsetDateTime;

use super::slo;
use super::tickets::{CasTickets, TicketGrant};
use crate::attributes::cas_attributes;
use crate::issuer::{
    attachments_of, BrowserResponse, IssueError, Issued, Issuer, IssuingSession, LogoutDelivery,
    LogoutEncoding, SingleLogout,
};
use crate::services::{LogoutType, RegisteredService, ServiceRegistry};

/// What a session remembers of each ticket it issued, for single logout (the payload of a
/// CAS [`Attachment`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedTicket {
    /// Registry id of the service.
    pub service_id: String,
    /// The service URL the ticket was issued for.
    pub service: String,
    /// The ticket (the SAML `SessionIndex` of the logout request).
    pub ticket: String,
}

/// Whom a service ticket goes to, for the session's record of it: the registered service and
/// the URL without its query or fragment. Tickets to one application (whatever page it sends
/// people back to) replace each other, so its latest session is the one single logout ends;
/// applications under one registry pattern (one entry for a whole domain) stay apart.
pub fn service_party(service_id: &str, service_url: &str) -> String {
    let end = service_url.find(['?', '#']).unwrap_or(service_url.len());
    format!("{service_id} {}", &service_url[..end])
}

/// A CAS login's request, as the issuer needs it.
#[derive(Debug, Clone, Copy)]
pub struct CasRequest<'a> {
    /// The `service` URL, as given.
    pub service_url: &'a str,
    /// The registered service it matched.
    pub service: &'a RegisteredService,
    /// `method=POST`.
    pub method_post: bool,
    /// The account as just read (and checked active) by the caller: the ticket captures the
    /// attributes released to the service, so that validating it reads no database. Without
    /// it, validation reads the account.
    pub account: Option<&'a Account>,
}

/// `service` with `ticket=<st>` added to its query.
pub fn service_url_with_ticket(service: &str, ticket: &str) -> Option<String> {
    let mut url = url::Url::parse(service).ok()?;
    url.query_pairs_mut().append_pair("ticket", ticket);
    Some(url.to_string())
}

/// CAS's issuer and single logout.
#[derive(Debug, Clone, Copy)]
pub struct CasIssuer<'a> {
    tickets: &'a CasTickets,
    registry: &'a ServiceRegistry,
    principal_scope: &'a str,
}

impl<'a> CasIssuer<'a> {
    /// An issuer over `tickets`, for the services of `registry`; `principal_scope` is the
    /// `eduPersonPrincipalName` domain.
    pub fn new(
        tickets: &'a CasTickets,
        registry: &'a ServiceRegistry,
        principal_scope: &'a str,
    ) -> Self {
        Self {
            tickets,
            registry,
            principal_scope,
        }
    }
}

#[async_trait]
impl Issuer for CasIssuer<'_> {
    type Request<'r> = CasRequest<'r>;

    /// A service ticket for the service. [`IssueError::Store`]: no ticket exists then;
    /// [`IssueError::BadTarget`]: the service URL cannot carry one.
    async fn issue<'r>(
        &self,
        session: IssuingSession<'_>,
        request: CasRequest<'r>,
    ) -> Result<Issued, IssueError> {
        let CasRequest {
            service_url,
            service,
            method_post,
            account,
        } = request;
        let sso = session.session;
        let attributes = account
            .map(|account| cas_attributes(account, &service.attributes, self.principal_scope));
        let grant = TicketGrant {
            service: service_url.to_owned(),
            service_id: service.id.clone(),
            account_id: sso.account_id,
            login: sso.login.to_string(),
            authenticated_at: sso.authenticated_at,
            from_new_login: session.from_new_login,
            remember_me: sso.remember_me,
            session_key: session.handle.to_owned(),
            proxies: Vec::new(),
            // Set by the ticket service from its clock.
            issued_at: OffsetDateTime::UNIX_EPOCH,
            attributes,
            methods: sso.methods.methods(),
        };
        let party = service_party(&service.id, service_url);
        let attachment_of = |ticket: &str| {
            let issued = IssuedTicket {
                service_id: service.id.clone(),
                service: service_url.to_owned(),
                ticket: ticket.to_owned(),
            };
            serde_json::to_string(&issued)
                .map(|payload| Attachment::new(AttachedProtocol::Cas, party.as_str(), payload))
                .map_err(|e| sesame_core::error::StoreError::Corrupt(e.to_string()))
        };
        // With the session's manager at hand, the ticket and the session's record of it are
        // written in one store step (one round trip on the CAS cycle's hot path).
        let (ticket, attachment) = match session.sessions {
            Some(sessions) => {
                let ticket = self
                    .tickets
                    .issue_recorded_service_ticket(grant, |ticket| {
                        attachment_of(ticket)
                            .map(|item| sessions.attachment_entry(session.handle, sso, &item))
                    })
                    .await?;
                (ticket, None)
            }
            None => {
                let ticket = self.tickets.issue_service_ticket(grant).await?;
                let attachment = attachment_of(&ticket)?;
                (ticket, Some(attachment))
            }
        };
        let response = if method_post {
            BrowserResponse::AutoPost {
                action: service_url.to_owned(),
                fields: vec![("ticket".to_owned(), ticket)],
                title: service.name.clone(),
            }
        } else {
            BrowserResponse::Redirect(
                service_url_with_ticket(service_url, &ticket).ok_or(IssueError::BadTarget)?,
            )
        };
        Ok(Issued {
            response,
            attachment,
        })
    }
}

impl CasIssuer<'_> {
    /// The back-channel logout requests owed for `ended` (CAS Protocol 3.0 §2.3.3): one per
    /// ticket issued to a service whose `logout_type` is `back_channel`.
    pub fn deliveries(&self, ended: &EndedSession, now: OffsetDateTime) -> Vec<LogoutDelivery> {
        attachments_of(ended, AttachedProtocol::Cas)
            .filter_map(|item| serde_json::from_str::<IssuedTicket>(&item.payload).ok())
            .filter_map(|issued| {
                let service = self.registry.get(&issued.service_id)?;
                (service.logout_type == LogoutType::BackChannel).then(|| LogoutDelivery {
                    party: service.id.clone(),
                    target: service
                        .logout_url
                        .clone()
                        .unwrap_or_else(|| issued.service.clone()),
                    encoding: LogoutEncoding::Form(slo::LOGOUT_REQUEST_FIELD),
                    body: slo::logout_request(&issued.ticket, now, &slo::new_logout_request_id()),
                })
            })
            .collect()
    }
}

#[async_trait]
impl SingleLogout for CasIssuer<'_> {
    fn protocol(&self) -> AttachedProtocol {
        AttachedProtocol::Cas
    }

    async fn logouts(&self, ended: &EndedSession, now: OffsetDateTime) -> Vec<LogoutDelivery> {
        self.deliveries(ended, now)
    }
}

#[cfg(test)]
mod tests {
    use super::service_party;

    #[test]
    fn tickets_to_one_application_share_a_party_whatever_page_they_return_to() {
        let moodle = service_party("ent", "https://moodle.ent.fr/login/index.php?authCAS=CAS");
        assert_eq!(
            moodle,
            service_party("ent", "https://moodle.ent.fr/login/index.php#top")
        );
        assert_eq!(moodle, "ent https://moodle.ent.fr/login/index.php");
        assert_ne!(
            moodle,
            service_party("ent", "https://mail.ent.fr/login/index.php?authCAS=CAS"),
            "another application under the same registry entry"
        );
        assert_ne!(
            moodle,
            service_party("moodle", "https://moodle.ent.fr/login/index.php"),
            "another registry entry"
        );
    }
}
