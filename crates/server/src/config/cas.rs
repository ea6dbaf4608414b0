//! `[cas]`: CAS tickets and registered services.

use serde::{Deserialize, Serialize};
use sesame_protocol::cas::tickets::CasTicketPolicy;
use sesame_protocol::services::RegisteredService;

/// `[cas]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasSettings {
    /// Lifetime of a service ticket, seconds.
    pub service_ticket_ttl_secs: u64,
    /// Lifetime of a proxy ticket, seconds.
    pub proxy_ticket_ttl_secs: u64,
    /// Lifetime of a proxy-granting ticket, seconds.
    pub proxy_granting_ticket_ttl_secs: u64,
    /// Hosts whose `pgtUrl` may be plain http (development only).
    pub proxy_callback_http_hosts: Vec<String>,
    /// Hosts whose `pgtUrl` may resolve to internal addresses (https still required).
    pub proxy_callback_internal_hosts: Vec<String>,
    /// Extra trusted CA certificates (PEM file) for `pgtUrl` callbacks; empty: the public
    /// web PKI only.
    pub proxy_callback_ca_file: String,
    /// Domain of `eduPersonPrincipalName` (`login@scope`); empty: the institutional
    /// e-mail's domain.
    pub principal_scope: String,
    /// The applications allowed to use Sesame over CAS.
    pub services: Vec<RegisteredService>,
}

impl CasSettings {
    /// The ticket lifetimes.
    pub fn ticket_policy(&self) -> CasTicketPolicy {
        CasTicketPolicy {
            service_ticket_ttl_secs: self.service_ticket_ttl_secs,
            proxy_ticket_ttl_secs: self.proxy_ticket_ttl_secs,
            proxy_granting_ticket_ttl_secs: self.proxy_granting_ticket_ttl_secs,
        }
    }
}
