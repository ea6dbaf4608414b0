//! OpenID Connect at the end of an SSO session: the grants it made are revoked and each
//! client with a `backchannel_logout_uri` gets a signed logout token (OpenID Connect
//! Back-Channel Logout 1.0 §2.5), through the same delivery as CAS single logout.

use std::collections::BTreeSet;

use sesame_core::session::{AttachedProtocol, Attachment, EndedSession};
use sesame_protocol::oidc::tokens::session_id;

use crate::cas_flow::LogoutDelivery;
use crate::services::Services;

/// The form field of a back-channel logout request (§2.5).
pub const LOGOUT_TOKEN_FIELD: &str = "logout_token";

/// What a session remembers of a client it issued a code to: the client (the same for
/// every code, so the session's set keeps one).
pub fn attachment_for_client(client_id: &str) -> Attachment {
    Attachment::new(AttachedProtocol::Oidc, client_id)
}

/// Revokes the grants of an ended session and returns the logout-token deliveries owed.
pub async fn end_session(services: &Services, ended: &EndedSession) -> Vec<LogoutDelivery> {
    let oidc = &services.oidc;
    match oidc.tokens.revoke_session(&ended.handle).await {
        Ok(()) => {}
        Err(e) => tracing::error!(error = %e, "could not revoke the grants of an ended session"),
    }
    let clients: BTreeSet<String> = ended
        .attached
        .iter()
        .filter(|item| item.protocol == AttachedProtocol::Oidc)
        .map(|a| a.payload.clone())
        .collect();
    let sid = session_id(&ended.handle);
    let sub = ended.account_id.to_string();
    let mut deliveries = Vec::new();
    for client_id in clients {
        let Some(client) = oidc.clients.get(&client_id) else {
            continue;
        };
        let Some(target) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        match oidc.tokens.logout_token(client, &sub, &sid) {
            Ok(token) => deliveries.push(LogoutDelivery::new(
                client.client_id.clone(),
                target,
                LOGOUT_TOKEN_FIELD,
                token,
            )),
            Err(e) => {
                tracing::error!(error = %e, client.id = %client.client_id, "could not sign a logout token")
            }
        }
    }
    deliveries
}
