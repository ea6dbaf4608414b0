//! OpenID Connect at the end of an SSO session: the grants it made are revoked and each
//! client with a `backchannel_logout_uri` gets a signed logout token (OpenID Connect
//! Back-Channel Logout 1.0 §2.5), through the same delivery as CAS single logout.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sesame_core::session::EndedSession;
use sesame_protocol::oidc::tokens::session_id;

use crate::cas_flow::LogoutDelivery;
use crate::services::Services;

/// The form field of a back-channel logout request (§2.5).
pub const LOGOUT_TOKEN_FIELD: &str = "logout_token";

/// What a session remembers of a client it issued a code to.
#[derive(Debug, Serialize, Deserialize)]
pub struct OidcAttachment {
    /// The client.
    pub oidc_client: String,
}

impl OidcAttachment {
    /// The attachment text for `client_id` (the same for every code, so a set keeps one).
    pub fn for_client(client_id: &str) -> String {
        serde_json::json!({ "oidc_client": client_id }).to_string()
    }
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
        .filter_map(|item| serde_json::from_str::<OidcAttachment>(item).ok())
        .map(|a| a.oidc_client)
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
