//! `[oidc]`: the OpenID Connect provider.

use serde::{Deserialize, Serialize};
use sesame_protocol::oidc::clients::{OidcClient, SigningAlg};
use sesame_protocol::oidc::grants::TokenPolicy;

/// `[oidc]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Lifetime of an access token (a JWT, RFC 9068), seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of an ID token, seconds.
    pub id_token_ttl_secs: u64,
    /// A refresh token unused for this long expires, seconds.
    pub refresh_token_ttl_secs: u64,
    /// A chain of refresh tokens ends this long after the login, seconds.
    pub refresh_token_max_secs: u64,
    /// Algorithms Sesame keeps a signing key for (`RS256` always).
    pub signing_algorithms: Vec<SigningAlg>,
    /// How long after `sesame keys rotate` the new key starts signing, seconds: every
    /// instance reloads the keys (and publishes the new one) within this time.
    pub key_activation_delay_secs: u64,
    /// How often each instance rereads the signing keys, seconds.
    pub key_reload_secs: u64,
    /// The relying parties, as `[[oidc.clients]]` tables (see docs/oidc.md).
    pub clients: Vec<OidcClient>,
}

impl OidcSettings {
    /// Lifetimes for the token service.
    pub fn token_policy(&self) -> TokenPolicy {
        TokenPolicy {
            access_token_ttl: std::time::Duration::from_secs(self.access_token_ttl_secs),
            refresh_token_ttl: std::time::Duration::from_secs(self.refresh_token_ttl_secs),
            refresh_family_max: std::time::Duration::from_secs(self.refresh_token_max_secs),
        }
    }

    /// How long a retired key stays published: longer than any token it signed lives.
    pub fn retired_key_publication(&self) -> std::time::Duration {
        // ID tokens are what the keys sign; a client may have its own lifetime.
        let longest = self
            .clients
            .iter()
            .filter_map(|c| c.id_token_ttl_secs)
            .fold(self.id_token_ttl_secs, u64::max);
        std::time::Duration::from_secs(longest.saturating_add(3600))
    }
}
