//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §3–4, RFC 8414; security
//! row A39): what Sesame supports, stated so that clients pick the safe options. The issuer
//! is reproduced exactly; endpoints are the issuer followed by fixed paths; only the code
//! flow, `S256`, and no request objects.

use serde::Serialize;

use super::clients::{SigningAlg, TokenEndpointAuthMethod};

/// Endpoint paths, appended to the issuer.
pub const AUTHORIZATION_PATH: &str = "/authorize";
/// Token endpoint path.
pub const TOKEN_PATH: &str = "/token";
/// UserInfo endpoint path.
pub const USERINFO_PATH: &str = "/userinfo";
/// JWKS path.
pub const JWKS_PATH: &str = "/jwks";
/// RP-initiated logout path.
pub const END_SESSION_PATH: &str = "/logout";
/// Token introspection (RFC 7662) path.
pub const INTROSPECTION_PATH: &str = "/introspect";
/// Token revocation (RFC 7009) path.
pub const REVOCATION_PATH: &str = "/revoke";

/// The discovery document (only the members Sesame sets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveryDocument {
    /// Exactly the configured issuer.
    pub issuer: String,
    /// `/authorize`.
    pub authorization_endpoint: String,
    /// `/token`.
    pub token_endpoint: String,
    /// `/userinfo`.
    pub userinfo_endpoint: String,
    /// `/jwks`.
    pub jwks_uri: String,
    /// `/logout`.
    pub end_session_endpoint: String,
    /// `/introspect` (RFC 7662).
    pub introspection_endpoint: String,
    /// `/revoke` (RFC 7009).
    pub revocation_endpoint: String,
    /// Scopes.
    pub scopes_supported: Vec<&'static str>,
    /// `["code"]` only.
    pub response_types_supported: Vec<&'static str>,
    /// `["query"]`.
    pub response_modes_supported: Vec<&'static str>,
    /// `authorization_code`, `refresh_token`.
    pub grant_types_supported: Vec<&'static str>,
    /// `["public"]`.
    pub subject_types_supported: Vec<&'static str>,
    /// `RS256`, `ES256`, `EdDSA`.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    /// The client authentication methods.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// The same methods, at the introspection endpoint (public clients excluded).
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// The same methods, at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms accepted in `private_key_jwt` client assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// `["S256"]` only.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// Claims that may appear in ID tokens and UserInfo.
    pub claims_supported: Vec<&'static str>,
    /// The `acr` values Sesame answers: a password, or the REFEDS MFA profile.
    pub acr_values_supported: Vec<&'static str>,
    /// Prompt values understood.
    pub prompt_values_supported: Vec<&'static str>,
    /// `false`: `claims` is ignored.
    pub claims_parameter_supported: bool,
    /// `false`.
    pub request_parameter_supported: bool,
    /// `false`: nothing is fetched (A38).
    pub request_uri_parameter_supported: bool,
    /// `true`: RFC 9207 `iss` in authorization responses.
    pub authorization_response_iss_parameter_supported: bool,
    /// `true`: OpenID Connect Back-Channel Logout 1.0.
    pub backchannel_logout_supported: bool,
    /// `true`: the logout token carries `sid`.
    pub backchannel_logout_session_supported: bool,
    /// `false`: front-channel logout is not offered (back-channel is).
    pub frontchannel_logout_supported: bool,
}

/// Why the issuer cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The issuer must be an `https` URL without query or fragment (Discovery §3; `http`
    /// only on a loopback host, for development).
    #[error("the issuer must be an https URL without query or fragment")]
    BadIssuer,
}

impl DiscoveryDocument {
    /// The document for `issuer` (e.g. `https://sso.example.org`; a trailing `/` is kept in
    /// `issuer` but not doubled in the endpoints).
    ///
    /// # Errors
    /// [`DiscoveryError::BadIssuer`].
    pub fn new(issuer: &str) -> Result<Self, DiscoveryError> {
        let url = url::Url::parse(issuer).map_err(|_| DiscoveryError::BadIssuer)?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback))
            || issuer.contains(['?', '#'])
            || !url.username().is_empty()
        {
            return Err(DiscoveryError::BadIssuer);
        }
        let base = issuer.trim_end_matches('/');
        let at = |path: &str| format!("{base}{path}");
        Ok(Self {
            issuer: issuer.to_owned(),
            authorization_endpoint: at(AUTHORIZATION_PATH),
            token_endpoint: at(TOKEN_PATH),
            userinfo_endpoint: at(USERINFO_PATH),
            jwks_uri: at(JWKS_PATH),
            end_session_endpoint: at(END_SESSION_PATH),
            introspection_endpoint: at(INTROSPECTION_PATH),
            revocation_endpoint: at(REVOCATION_PATH),
            scopes_supported: vec!["openid", "profile", "email", "groups", "offline_access"],
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: vec![
                "authorization_code",
                "refresh_token",
                "client_credentials",
            ],
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: [
                SigningAlg::RS256,
                SigningAlg::ES256,
                SigningAlg::EdDSA,
            ]
            .map(SigningAlg::as_str)
            .to_vec(),
            token_endpoint_auth_methods_supported: [
                TokenEndpointAuthMethod::ClientSecretBasic,
                TokenEndpointAuthMethod::ClientSecretPost,
                TokenEndpointAuthMethod::PrivateKeyJwt,
                TokenEndpointAuthMethod::None,
            ]
            .map(TokenEndpointAuthMethod::as_str)
            .to_vec(),
            introspection_endpoint_auth_methods_supported: CONFIDENTIAL_METHODS
                .map(TokenEndpointAuthMethod::as_str)
                .to_vec(),
            revocation_endpoint_auth_methods_supported: [
                TokenEndpointAuthMethod::ClientSecretBasic,
                TokenEndpointAuthMethod::ClientSecretPost,
                TokenEndpointAuthMethod::PrivateKeyJwt,
                TokenEndpointAuthMethod::None,
            ]
            .map(TokenEndpointAuthMethod::as_str)
            .to_vec(),
            token_endpoint_auth_signing_alg_values_supported: [
                SigningAlg::RS256,
                SigningAlg::ES256,
                SigningAlg::EdDSA,
            ]
            .map(SigningAlg::as_str)
            .to_vec(),
            code_challenge_methods_supported: vec![super::pkce::S256],
            claims_supported: vec![
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "sid",
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "email",
                "email_verified",
                "locale",
                "groups",
                "eduperson_affiliation",
            ],
            acr_values_supported: [
                sesame_core::login::methods::Assurance::SingleFactor,
                sesame_core::login::methods::Assurance::MultiFactor,
            ]
            .map(sesame_core::login::methods::Assurance::uri)
            .to_vec(),
            prompt_values_supported: vec!["none", "login", "consent", "select_account"],
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            authorization_response_iss_parameter_supported: true,
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            frontchannel_logout_supported: false,
        })
    }

    /// Lists only `algs` as ID token signing algorithms (those Sesame keeps keys for).
    #[must_use]
    pub fn with_signing_algorithms(mut self, algs: &[SigningAlg]) -> Self {
        self.id_token_signing_alg_values_supported = algs.iter().map(|a| a.as_str()).collect();
        self
    }
}

const CONFIDENTIAL_METHODS: [TokenEndpointAuthMethod; 3] = [
    TokenEndpointAuthMethod::ClientSecretBasic,
    TokenEndpointAuthMethod::ClientSecretPost,
    TokenEndpointAuthMethod::PrivateKeyJwt,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a39_document_is_exact_and_safe() {
        let doc = DiscoveryDocument::new("https://sso.example.org").unwrap();
        let json: serde_json::Value = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["issuer"], "https://sso.example.org");
        assert_eq!(
            json["response_types_supported"],
            serde_json::json!(["code"])
        );
        assert_eq!(
            json["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(json["request_uri_parameter_supported"], false);
        assert_eq!(json["request_parameter_supported"], false);
        assert_eq!(json["authorization_response_iss_parameter_supported"], true);
        let grants = json["grant_types_supported"].as_array().unwrap();
        assert!(!grants.iter().any(|g| g == "implicit" || g == "password"));
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "end_session_endpoint",
        ] {
            let url = json[key].as_str().unwrap();
            assert!(url.starts_with("https://sso.example.org/"), "{key}: {url}");
            assert!(!url["https://".len()..].contains("//"), "{key}: {url}");
        }
        assert!(!json["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "none" || a.as_str().is_some_and(|a| a.starts_with("HS"))));
        let with_slash = DiscoveryDocument::new("https://sso.example.org/idp/").unwrap();
        assert_eq!(with_slash.issuer, "https://sso.example.org/idp/");
        assert_eq!(
            with_slash.token_endpoint,
            "https://sso.example.org/idp/token"
        );
    }

    #[test]
    fn bad_issuers_are_refused() {
        for bad in [
            "http://sso.example.org",
            "https://sso.example.org?x=1",
            "https://sso.example.org#x",
            "https://u@sso.example.org",
            "sso.example.org",
            "",
        ] {
            assert_eq!(
                DiscoveryDocument::new(bad),
                Err(DiscoveryError::BadIssuer),
                "{bad:?}"
            );
        }
        assert!(DiscoveryDocument::new("http://127.0.0.1:8080").is_ok());
    }
}
