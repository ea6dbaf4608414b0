//! The proxy callback (CAS Protocol 3.0 §2.5.4): before a proxy-granting ticket exists for a
//! service, Sesame calls the service's `pgtUrl` over https with a certificate that verifies,
//! and only a 200 answer makes the ticket count.
//!
//! The callback is an outbound request chosen by a client, so it is fenced (A16): the URL
//! must belong to the same registered service, which must allow proxying; https only, unless
//! the host is listed in `cas.proxy_callback_http_hosts`; the host must not resolve to a
//! loopback, private, link-local or otherwise internal address (same exception); redirects
//! are never followed.

use std::net::IpAddr;
use std::time::Duration;

use sesame_protocol::cas::tickets::{CasError, CasErrorCode, TicketGrant};
use sesame_protocol::services::{parse_service_url, RegisteredService};

use crate::web::AppState;

const CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);

fn refuse(message: &str) -> CasError {
    CasError::new(CasErrorCode::InvalidProxyCallback, message)
}

/// An address a callback must never reach.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64.0.0/10
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// Calls `pgt_url` and, on a 200, returns the PGT's IOU for the validation response.
///
/// # Errors
/// `INVALID_PROXY_CALLBACK` when the URL is not acceptable or the call fails;
/// `UNAUTHORIZED_SERVICE_PROXY` when the service may not proxy.
pub async fn grant_proxy_granting_ticket(
    state: &AppState,
    grant: &TicketGrant,
    service: &RegisteredService,
    pgt_url: &str,
) -> Result<String, CasError> {
    if !service.allow_proxy {
        return Err(CasError::new(
            CasErrorCode::UnauthorizedServiceProxy,
            "this service is not allowed to proxy",
        ));
    }
    let url = parse_service_url(pgt_url).map_err(|_| refuse("pgtUrl is not an acceptable URL"))?;
    match state.services.registry.find(pgt_url) {
        Some(s) if s.id == service.id => {}
        _ => return Err(refuse("pgtUrl does not belong to the service")),
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let dev_host = state
        .settings
        .cas
        .proxy_callback_http_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&host));
    if url.scheme() != "https" && !dev_host {
        return Err(refuse("pgtUrl must be https"));
    }
    let internal_allowed = dev_host
        || state
            .settings
            .cas
            .proxy_callback_internal_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&host));
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| refuse("pgtUrl host does not resolve"))?
        .collect();
    if addrs.is_empty() || (!internal_allowed && addrs.iter().any(|a| is_internal(a.ip()))) {
        return Err(refuse("pgtUrl resolves to an internal address"));
    }

    let (pgt, pgt_iou) = state
        .services
        .cas
        .issue_proxy_granting_ticket(TicketGrant {
            proxies: std::iter::once(pgt_url.to_owned())
                .chain(grant.proxies.iter().cloned())
                .collect(),
            ..grant.clone()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not store a proxy-granting ticket");
            CasError::new(CasErrorCode::InternalError, "temporarily unavailable")
        })?;
    let mut callback = url.clone();
    callback
        .query_pairs_mut()
        .append_pair("pgtIou", &pgt_iou)
        .append_pair("pgtId", &pgt);
    // Pin the connection to the addresses checked above, so DNS cannot change between the
    // check and the call.
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CALLBACK_TIMEOUT)
        .https_only(!dev_host);
    for addr in &addrs {
        client = client.resolve(&host, *addr);
    }
    if !state.settings.cas.proxy_callback_ca_file.is_empty() {
        match std::fs::read(&state.settings.cas.proxy_callback_ca_file)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()))
        {
            Ok(certs) => {
                for cert in certs {
                    client = client.add_root_certificate(cert);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read cas.proxy_callback_ca_file");
                return Err(refuse("proxy callback failed"));
            }
        }
    }
    let outcome = match client.build() {
        Ok(client) => client.get(callback).send().await.map(|r| r.status()),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the proxy callback client");
            return Err(refuse("proxy callback failed"));
        }
    };
    match outcome {
        Ok(status) if status == reqwest::StatusCode::OK => Ok(pgt_iou),
        other => {
            // The service may have seen the PGT: it must not work.
            if let Err(e) = state.services.cas.revoke_proxy_granting_ticket(&pgt).await {
                tracing::error!(error = %e, "could not revoke a proxy-granting ticket after a failed callback");
            }
            match other {
                Ok(status) => {
                    tracing::info!(service.id = %service.id, http.status = status.as_u16(), "proxy callback refused")
                }
                Err(e) => {
                    tracing::info!(service.id = %service.id, error = %e.without_url(), "proxy callback failed")
                }
            }
            Err(refuse("proxy callback failed"))
        }
    }
}
