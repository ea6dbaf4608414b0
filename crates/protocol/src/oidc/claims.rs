//! The claims of the JWTs Sesame signs, as plain serde data (times as Unix seconds):
//!
//! * [`IdTokenClaims`]: the ID token (OpenID Connect Core 1.0 §2, §3.1.3.6, §5.1);
//! * [`LogoutTokenClaims`]: the logout token of OpenID Connect Back-Channel Logout 1.0 §2.4.
//!
//! Access tokens are opaque, not JWTs (see `tokens.rs`). Signing and verifying these is
//! [`super::keys::KeySet`]'s business.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `events` member a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Claims of an ID token (OpenID Connect Core 1.0 §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer: Sesame's public base URL.
    pub iss: String,
    /// Subject: the account's stable identifier.
    pub sub: String,
    /// Audience: the client's `client_id`.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issue time, Unix seconds.
    pub iat: i64,
    /// When the person authenticated, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The `nonce` of the authentication request, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Authentication context class reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication methods references (RFC 8176), omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Access token hash ([`super::keys::at_hash`]), when issued with an access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Session id (Front-/Back-Channel Logout 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Authorized party: the `client_id` the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Other claims (profile, e-mail, groups…), released according to the scopes. Must not
    /// repeat the names above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The empty JSON object of the back-channel logout event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

/// The `events` claim of a logout token: `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutEvents {
    /// The back-channel logout event (always present).
    #[serde(rename = "http://schemas.openid.net/event/backchannel-logout")]
    pub backchannel_logout: EmptyObject,
}

/// Claims of a logout token (OpenID Connect Back-Channel Logout 1.0 §2.4): never a `nonce`;
/// `sub`, `sid` or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    /// Issuer: Sesame's public base URL.
    pub iss: String,
    /// The account logged out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience: the client's `client_id`.
    pub aud: String,
    /// Issue time, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds (short: §2.4 recommends at most two minutes).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The session logged out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The back-channel logout event.
    pub events: LogoutEvents,
}

impl LogoutTokenClaims {
    /// A logout token's claims, with the back-channel logout event.
    pub fn new(
        iss: String,
        sub: Option<String>,
        aud: String,
        iat: i64,
        exp: i64,
        jti: String,
        sid: Option<String>,
    ) -> Self {
        Self {
            iss,
            sub,
            aud,
            iat,
            exp,
            jti,
            sid,
            events: LogoutEvents::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn id_token_claims_omit_absent_members_and_flatten_extras() {
        let mut extra = Map::new();
        extra.insert("email".to_owned(), json!("ada@example.org"));
        extra.insert("groups".to_owned(), json!(["staff"]));
        let claims = IdTokenClaims {
            iss: "https://sso.example.org".to_owned(),
            sub: "42".to_owned(),
            aud: "moodle".to_owned(),
            exp: 1_900_000_300,
            iat: 1_900_000_000,
            auth_time: Some(1_899_999_990),
            nonce: Some("n-0S6_WzA2Mj".to_owned()),
            acr: None,
            amr: Vec::new(),
            at_hash: None,
            sid: Some("s".to_owned()),
            azp: None,
            extra,
        };
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            value,
            json!({
                "iss": "https://sso.example.org", "sub": "42", "aud": "moodle",
                "exp": 1_900_000_300, "iat": 1_900_000_000, "auth_time": 1_899_999_990,
                "nonce": "n-0S6_WzA2Mj", "sid": "s",
                "email": "ada@example.org", "groups": ["staff"]
            })
        );
        let back: IdTokenClaims = serde_json::from_value(value).unwrap();
        assert_eq!(back, claims);
        let with_amr = IdTokenClaims {
            amr: vec!["pwd".to_owned()],
            ..claims
        };
        assert_eq!(
            serde_json::to_value(&with_amr).unwrap()["amr"],
            json!(["pwd"])
        );
    }

    #[test]
    fn logout_token_claims_carry_the_event_and_no_nonce() {
        let claims = LogoutTokenClaims::new(
            "https://sso.example.org".to_owned(),
            Some("42".to_owned()),
            "moodle".to_owned(),
            1,
            121,
            "j".to_owned(),
            None,
        );
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            value,
            json!({
                "iss": "https://sso.example.org", "sub": "42", "aud": "moodle",
                "iat": 1, "exp": 121, "jti": "j",
                "events": { "http://schemas.openid.net/event/backchannel-logout": {} }
            })
        );
        assert_eq!(
            value["events"][BACKCHANNEL_LOGOUT_EVENT],
            json!({}),
            "the event member is an empty object"
        );
        assert_eq!(
            serde_json::from_value::<LogoutTokenClaims>(value).unwrap(),
            claims
        );
        assert!(serde_json::from_value::<LogoutTokenClaims>(json!({
            "iss": "i", "aud": "a", "iat": 1, "exp": 2, "jti": "j", "events": {}
        }))
        .is_err());
    }
}
