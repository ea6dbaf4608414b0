//! The OpenID Provider: discovery and keys, `/authorize` with the login page and consent,
//! the token endpoint, UserInfo, introspection, revocation and logout. The rules live in
//! `sesame_protocol::oidc`; this maps them to HTTP.

pub mod authorize;
pub mod discovery;
pub mod logout;
pub mod resource;
pub mod token;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use base64::Engine;
use sesame_protocol::oidc::client_assertion::verify_client_assertion;
use sesame_protocol::oidc::clients::{ClientRegistry, OidcClient, TokenEndpointAuthMethod};
use sesame_protocol::oidc::discovery::TOKEN_PATH;
use sesame_protocol::oidc::MAX_PARAMETER_BYTES;

use crate::web::error::OAuthError;
use crate::web::AppState;

/// `client_assertion_type` of RFC 7523 §2.2.
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A form body or query string, with repeats kept so they can be refused (RFC 6749 §3.2).
#[derive(Debug, Default)]
pub struct FormParams(Vec<(String, String)>);

impl FormParams {
    /// Parses `application/x-www-form-urlencoded` bytes.
    pub fn parse(bytes: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The value of `name` if it appears once with a non-empty value.
    pub fn one(&self, name: &str) -> Option<&str> {
        let mut values = self.0.iter().filter(|(k, v)| k == name && !v.is_empty());
        match (values.next(), values.next()) {
            (Some((_, v)), None) => Some(v.as_str()),
            _ => None,
        }
    }

    /// The name of a parameter that is repeated or too long, if any.
    pub fn malformed(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, v))| {
            let repeated = self.0[..i].iter().any(|(k2, _)| k2 == k);
            (repeated || v.len() > MAX_PARAMETER_BYTES).then_some(k.as_str())
        })
    }
}

/// An OAuth error body (RFC 6749 §5.2).
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    OAuthError::new(status, error, description).error_response()
}

/// Why a client could not be authenticated.
#[derive(Debug)]
pub enum ClientAuthFailure {
    /// `invalid_client`, HTTP 401 (with `WWW-Authenticate` when Basic was tried).
    Invalid {
        /// Basic was used.
        basic: bool,
    },
    /// `invalid_request`: more than one method, or a malformed one.
    BadRequest(&'static str),
    /// The store failed (assertion replay check).
    Unavailable,
}

impl ClientAuthFailure {
    /// The response to send.
    pub fn response(&self) -> HttpResponse {
        match self {
            Self::Invalid { basic } => {
                let error = OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication failed",
                );
                if *basic {
                    error.with_basic_challenge().error_response()
                } else {
                    error.error_response()
                }
            }
            Self::BadRequest(description) => {
                oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
            }
            Self::Unavailable => oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again later",
            ),
        }
    }
}

/// `client_id:client_secret` of an `Authorization: Basic` header, each form-decoded
/// (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Option<Result<(String, String), ()>> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let parsed = (|| {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| ())?;
        let raw = String::from_utf8(raw).map_err(|_| ())?;
        let (id, secret) = raw.split_once(':').ok_or(())?;
        let decode = |s: &str| -> String {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Ok((decode(id), decode(secret)))
    })();
    Some(parsed)
}

/// The unverified `iss` of a JWT, to find whose key should verify it.
fn unverified_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_owned)
}

/// Authenticates the client of a token, introspection or revocation request by the one
/// method it registered (OpenID Connect Core §9): a client registered for
/// `client_secret_basic` cannot switch to `client_secret_post`, and a public client only
/// names itself.
pub async fn authenticate_client<'a>(
    state: &'a AppState,
    req: &HttpRequest,
    params: &FormParams,
) -> Result<&'a OidcClient, ClientAuthFailure> {
    let oidc = &state.services.oidc;
    let registry: &ClientRegistry = &oidc.clients;
    let basic = basic_credentials(req);
    let post_secret = params.one("client_secret");
    let assertion = params.one("client_assertion");
    let methods = usize::from(basic.is_some())
        + usize::from(post_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(ClientAuthFailure::BadRequest(
            "use exactly one client authentication method",
        ));
    }
    let named = params.one("client_id");
    let invalid = ClientAuthFailure::Invalid {
        basic: basic.is_some(),
    };
    if let Some(basic) = basic {
        let Ok((id, secret)) = basic else {
            return Err(invalid);
        };
        if named.is_some_and(|n| n != id) {
            return Err(ClientAuthFailure::BadRequest(
                "client_id differs from the authenticated client",
            ));
        }
        return match registry.get(&id) {
            Some(c)
                if c.token_endpoint_auth_method == TokenEndpointAuthMethod::ClientSecretBasic
                    && ClientRegistry::verify_secret(c, &secret) =>
            {
                Ok(c)
            }
            _ => Err(invalid),
        };
    }
    if let Some(secret) = post_secret {
        return match named.and_then(|id| registry.get(id)) {
            Some(c)
                if c.token_endpoint_auth_method == TokenEndpointAuthMethod::ClientSecretPost
                    && ClientRegistry::verify_secret(c, secret) =>
            {
                Ok(c)
            }
            _ => Err(invalid),
        };
    }
    if let Some(assertion) = assertion {
        if params.one("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
            return Err(ClientAuthFailure::BadRequest(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        let Some(client) = unverified_issuer(assertion)
            .filter(|iss| named.is_none_or(|n| n == iss))
            .and_then(|iss| registry.get(&iss))
            .filter(|c| c.token_endpoint_auth_method == TokenEndpointAuthMethod::PrivateKeyJwt)
        else {
            return Err(invalid);
        };
        let now = state.services.clock.now();
        let token_endpoint = format!("{}{TOKEN_PATH}", state.base());
        let Ok(claims) =
            verify_client_assertion(assertion, client, &token_endpoint, state.base(), now)
        else {
            return Err(invalid);
        };
        // Each assertion is used once (RFC 7523 §3 item 7): its jti is remembered until it
        // expires.
        let ttl = std::time::Duration::from_secs(
            u64::try_from(claims.exp.saturating_sub(now.unix_timestamp()))
                .unwrap_or(0)
                .saturating_add(60),
        );
        let key = format!(
            "oidc:assertion-jti:{}:{}",
            client.client_id,
            sesame_core::random::sha256_hex(&claims.jti)
        );
        return match state.services.store.put_new(&key, "1", ttl).await {
            Ok(true) => Ok(client),
            Ok(false) => Err(invalid),
            Err(e) => {
                tracing::error!(error = %e, "store unavailable while checking a client assertion");
                Err(ClientAuthFailure::Unavailable)
            }
        };
    }
    match named.and_then(|id| registry.get(id)) {
        Some(c) if c.public && c.token_endpoint_auth_method == TokenEndpointAuthMethod::None => {
            Ok(c)
        }
        _ => Err(invalid),
    }
}

/// A request that carries its bearer token twice (header and form field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSentTwice;

/// The bearer token of a request: `Authorization: Bearer …` (RFC 6750 §2.1) or, for POST,
/// an `access_token` form field (§2.2). Both at once is a malformed request.
pub fn bearer_token(
    req: &HttpRequest,
    form: Option<&FormParams>,
) -> Result<Option<String>, TokenSentTwice> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let field = form.and_then(|f| f.one("access_token")).map(str::to_owned);
    match (header, field) {
        (Some(_), Some(_)) => Err(TokenSentTwice),
        (Some(t), None) | (None, Some(t)) => Ok(Some(t)),
        (None, None) => Ok(None),
    }
}
