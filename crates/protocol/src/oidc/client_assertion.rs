//! Client authentication with `private_key_jwt` (OpenID Connect Core 1.0 §9, RFC 7523 §2.2
//! and §3, RFC 7521 §4.2): the client signs a short-lived JWT with its private key; Sesame
//! verifies it with the public keys registered for the client (`jwks` in its
//! configuration).
//!
//! * Only `RS256` (RSA of 2048 bits or more), `ES256` (P-256) and `EdDSA` (Ed25519) are
//!   accepted; never `none`, never an HMAC (`client_secret_jwt` is not supported).
//! * `iss` and `sub` must both be the `client_id`; `aud` must be, or contain, the token
//!   endpoint URL or the issuer identifier (both are allowed by OpenID Connect Core §9 and
//!   RFC 7523 §3 item 3).
//! * `exp` is required, must lie in the future and at most [`MAX_ASSERTION_LIFETIME_SECS`]
//!   ahead (which bounds how long its `jti` must be remembered); `iat` and `nbf`, when
//!   present, may not lie more than [`CLOCK_SKEW_SECS`] in the future.
//! * `jti` is required; the caller remembers it until `exp` and refuses a replay
//!   (RFC 7523 §3 item 7).
//! * A registered JWKS holds public keys only: one with private members (`d`, `p`, `k`…) is
//!   refused at load, so a leaked private key in the configuration is noticed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::clients::{OidcClient, TokenEndpointAuthMethod};
use super::keys::{audience_contains, signature_only};

/// Longest client assertion looked at, in bytes.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;

/// Furthest in the future an assertion's `exp` may lie, in seconds.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

/// How far in the future a client's `iat` or `nbf` may lie (its clock may run ahead).
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Longest `jti`, in characters.
pub const MAX_JTI_CHARS: usize = 256;

/// Smallest RSA modulus accepted in a client JWKS, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// JWK members that only private or symmetric keys have (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The claims of an accepted client assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionClaims {
    /// Issuer: the `client_id`.
    pub iss: String,
    /// Subject: the `client_id`.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Unique id, for replay detection.
    pub jti: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

/// What is wrong with a client's registered JWKS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksProblem {
    /// Not a JSON object with a `keys` array.
    #[error("must be a JSON Web Key Set: {{\"keys\":[…]}}")]
    NotAJwks,
    /// A key has private or symmetric key members.
    #[error("key {0} contains private or secret key material; register public keys only")]
    PrivateKeyMaterial(usize),
    /// A key of a supported type whose parameters cannot be read.
    #[error("key {0} is malformed")]
    BadKey(usize),
    /// An RSA key shorter than [`MIN_RSA_BITS`].
    #[error("key {0} is an RSA key shorter than {MIN_RSA_BITS} bits")]
    WeakKey(usize),
    /// No key usable to verify RS256, ES256 or EdDSA signatures.
    #[error("no signing key for RS256 (RSA), ES256 (EC P-256) or EdDSA (OKP Ed25519)")]
    NoUsableKey,
}

/// Why a client assertion was refused. Each maps to `invalid_client`; the detail is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAssertionError {
    /// The client does not authenticate with `private_key_jwt`.
    #[error("the client does not use private_key_jwt")]
    NotPrivateKeyJwt,
    /// The client's registered JWKS is unusable.
    #[error("the client's jwks: {0}")]
    BadJwks(JwksProblem),
    /// Not a JWS compact serialization, or an unreadable header or payload.
    #[error("malformed assertion")]
    Malformed,
    /// `alg` is not RS256, ES256 or EdDSA.
    #[error("unsupported alg")]
    UnsupportedAlg,
    /// No registered key fits the header's `kid` and `alg`.
    #[error("no registered key matches")]
    NoMatchingKey,
    /// The signature does not verify with any matching key.
    #[error("bad signature")]
    BadSignature,
    /// `iss` or `sub` is not the `client_id`.
    #[error("iss and sub must be the client_id")]
    WrongIssuer,
    /// `aud` holds neither the token endpoint nor the issuer.
    #[error("aud must contain the token endpoint or the issuer")]
    WrongAudience,
    /// `exp` is missing or not a number.
    #[error("exp is required")]
    MissingExp,
    /// `exp` has passed.
    #[error("expired")]
    Expired,
    /// `exp` lies too far ahead.
    #[error("exp is more than {MAX_ASSERTION_LIFETIME_SECS} s ahead")]
    TooLong,
    /// `iat` or `nbf` lies in the future.
    #[error("not yet valid")]
    NotYetValid,
    /// `jti` is missing, empty or too long.
    #[error("jti is required")]
    MissingJti,
}

/// One registered public key.
#[derive(Clone)]
pub(crate) struct ClientKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

fn decoded_len(b64: Option<&Value>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(b64?.as_str()?).ok()
}

/// The signature algorithm a JWK serves, if any (`None`: skipped, e.g. an encryption key).
fn key_alg(i: usize, obj: &Map<String, Value>) -> Result<Option<Algorithm>, JwksProblem> {
    let member = |name: &str| obj.get(name).and_then(Value::as_str);
    if member("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let alg = match (member("kty"), member("crv")) {
        (Some("RSA"), _) => {
            let n = decoded_len(obj.get("n")).ok_or(JwksProblem::BadKey(i))?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return Err(JwksProblem::WeakKey(i));
            }
            Algorithm::RS256
        }
        (Some("EC"), Some("P-256")) => {
            let x = decoded_len(obj.get("x")).ok_or(JwksProblem::BadKey(i))?;
            let y = decoded_len(obj.get("y")).ok_or(JwksProblem::BadKey(i))?;
            if x.len() != 32 || y.len() != 32 {
                return Err(JwksProblem::BadKey(i));
            }
            Algorithm::ES256
        }
        (Some("OKP"), Some("Ed25519")) => {
            let x = decoded_len(obj.get("x")).ok_or(JwksProblem::BadKey(i))?;
            if x.len() != 32 {
                return Err(JwksProblem::BadKey(i));
            }
            Algorithm::EdDSA
        }
        _ => return Ok(None),
    };
    let declared = member("alg");
    let name = match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "EdDSA",
    };
    Ok(declared.is_none_or(|d| d == name).then_some(alg))
}

/// The usable keys of a client JWKS (see [`JwksProblem`] for what is refused). Keys of other
/// types, algorithms or uses are skipped.
///
/// # Errors
/// [`JwksProblem`] when the set is malformed, holds private material, a weak or unreadable
/// key, or no usable key.
pub(crate) fn parse_client_jwks(text: &str) -> Result<Vec<ClientKey>, JwksProblem> {
    let doc: Value = serde_json::from_str(text).map_err(|_| JwksProblem::NotAJwks)?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksProblem::NotAJwks)?;
    let mut keys = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let obj = entry.as_object().ok_or(JwksProblem::BadKey(i))?;
        if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
            return Err(JwksProblem::PrivateKeyMaterial(i));
        }
        let Some(alg) = key_alg(i, obj)? else {
            continue;
        };
        let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|_| JwksProblem::BadKey(i))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| JwksProblem::BadKey(i))?;
        let kid = obj.get("kid").and_then(Value::as_str).map(str::to_owned);
        keys.push(ClientKey { kid, alg, key });
    }
    if keys.is_empty() {
        return Err(JwksProblem::NoUsableKey);
    }
    Ok(keys)
}

/// Checks a client assertion presented by `client` at the token endpoint `token_endpoint` of
/// the issuer `issuer`, at `now` (see the module documentation). The caller must still
/// refuse a `jti` it has seen before, until `exp`.
///
/// # Errors
/// [`ClientAssertionError`] saying why the assertion is refused.
pub fn verify_client_assertion(
    assertion: &str,
    client: &OidcClient,
    token_endpoint: &str,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<AssertionClaims, ClientAssertionError> {
    use ClientAssertionError as E;
    if client.token_endpoint_auth_method != TokenEndpointAuthMethod::PrivateKeyJwt {
        return Err(E::NotPrivateKeyJwt);
    }
    let keys = parse_client_jwks(client.jwks.as_deref().unwrap_or_default()).map_err(E::BadJwks)?;
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(E::Malformed);
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| E::Malformed)?;
    if header.crit.is_some() {
        return Err(E::Malformed);
    }
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
    ) {
        return Err(E::UnsupportedAlg);
    }
    let of_alg = keys.iter().filter(|k| k.alg == header.alg);
    let candidates: Vec<&ClientKey> = match &header.kid {
        Some(kid) => {
            let named: Vec<&ClientKey> = of_alg
                .clone()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect();
            if named.is_empty() {
                of_alg.filter(|k| k.kid.is_none()).collect()
            } else {
                named
            }
        }
        None => of_alg.collect(),
    };
    if candidates.is_empty() {
        return Err(E::NoMatchingKey);
    }
    let validation = signature_only(header.alg);
    let claims: Value = candidates
        .iter()
        .find_map(|k| jsonwebtoken::decode::<Value>(assertion, &k.key, &validation).ok())
        .ok_or(E::BadSignature)?
        .claims;

    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let client_id = client.client_id.as_str();
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(E::WrongIssuer);
    }
    let aud = claims.get("aud");
    if !audience_contains(aud, token_endpoint) && !audience_contains(aud, issuer) {
        return Err(E::WrongAudience);
    }
    let now = now.unix_timestamp();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(E::MissingExp)?;
    if exp <= now {
        return Err(E::Expired);
    }
    if exp > now.saturating_add(MAX_ASSERTION_LIFETIME_SECS) {
        return Err(E::TooLong);
    }
    for name in ["iat", "nbf"] {
        match claims.get(name) {
            None => {}
            Some(v) => match v.as_i64() {
                Some(t) if t <= now.saturating_add(CLOCK_SKEW_SECS) => {}
                Some(_) => return Err(E::NotYetValid),
                None => return Err(E::Malformed),
            },
        }
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.chars().count() <= MAX_JTI_CHARS)
        .ok_or(E::MissingJti)?;
    let aud = match aud {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(AssertionClaims {
        iss: client_id.to_owned(),
        sub: client_id.to_owned(),
        aud,
        jti: jti.to_owned(),
        exp,
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use sesame_core::ports::SigningKeyRecord;
    use time::macros::datetime;

    use super::*;
    use crate::oidc::clients::tests::confidential;
    use crate::oidc::clients::SigningAlg;
    use crate::oidc::keys::tests::records;
    use crate::oidc::keys::{encoding_key, generate_signing_key, parse_alg};

    const ISS: &str = "https://sso.example.org";
    const TOKEN: &str = "https://sso.example.org/oidc/token";
    const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

    fn jwks(records: &[SigningKeyRecord]) -> String {
        let keys: Vec<Value> = records
            .iter()
            .map(|r| serde_json::from_str(&r.public_jwk).unwrap())
            .collect();
        json!({ "keys": keys }).to_string()
    }

    fn client(records: &[SigningKeyRecord]) -> OidcClient {
        OidcClient {
            client_secret_sha256: None,
            token_endpoint_auth_method: TokenEndpointAuthMethod::PrivateKeyJwt,
            jwks: Some(jwks(records)),
            ..confidential("jwt-app")
        }
    }

    fn good_claims() -> Value {
        json!({
            "iss": "jwt-app", "sub": "jwt-app", "aud": TOKEN, "jti": "j-1",
            "iat": NOW.unix_timestamp(), "exp": NOW.unix_timestamp() + 60
        })
    }

    fn sign_with(record: &SigningKeyRecord, kid: Option<&str>, claims: &Value) -> String {
        let alg = parse_alg(&record.alg).unwrap();
        let key = encoding_key(alg, &record.private_pkcs8_der).unwrap();
        let mut header = Header::new(match alg {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
        });
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn sign(record: &SigningKeyRecord, claims: &Value) -> String {
        sign_with(record, Some(&record.kid), claims)
    }

    fn verify(
        assertion: &str,
        client: &OidcClient,
    ) -> Result<AssertionClaims, ClientAssertionError> {
        verify_client_assertion(assertion, client, TOKEN, ISS, NOW)
    }

    #[test]
    fn a_good_assertion_is_accepted_for_each_algorithm() {
        let keys = records();
        let client = client(&keys);
        for record in &keys {
            let claims = verify(&sign(record, &good_claims()), &client).unwrap();
            assert_eq!(
                claims,
                AssertionClaims {
                    iss: "jwt-app".to_owned(),
                    sub: "jwt-app".to_owned(),
                    aud: vec![TOKEN.to_owned()],
                    jti: "j-1".to_owned(),
                    exp: NOW.unix_timestamp() + 60,
                }
            );
            // Without kid, and with the issuer (in an array) as audience.
            let mut c = good_claims();
            c["aud"] = json!(["https://other.example", ISS]);
            assert!(verify(&sign_with(record, None, &c), &client).is_ok());
        }
    }

    #[test]
    fn wrong_audience_issuer_or_subject_is_refused() {
        let keys = records();
        let client = client(&keys);
        let record = &keys[1];
        for (member, value, expected) in [
            (
                "aud",
                json!("https://sso.example.org/oidc/userinfo"),
                ClientAssertionError::WrongAudience,
            ),
            ("aud", json!([]), ClientAssertionError::WrongAudience),
            ("iss", json!("other"), ClientAssertionError::WrongIssuer),
            ("sub", json!("other"), ClientAssertionError::WrongIssuer),
            ("jti", json!(""), ClientAssertionError::MissingJti),
            ("exp", json!("soon"), ClientAssertionError::MissingExp),
        ] {
            let mut c = good_claims();
            c[member] = value;
            assert_eq!(
                verify(&sign(record, &c), &client),
                Err(expected),
                "{member}"
            );
        }
        for member in ["aud", "iss", "sub", "jti", "exp"] {
            let mut c = good_claims();
            c.as_object_mut().unwrap().remove(member);
            assert!(verify(&sign(record, &c), &client).is_err(), "{member}");
        }
    }

    #[test]
    fn times_are_checked() {
        let keys = records();
        let client = client(&keys);
        let record = &keys[2];
        let now = NOW.unix_timestamp();
        for (exp, iat, expected) in [
            (now, now - 60, Err(ClientAssertionError::Expired)),
            (now - 1, now - 60, Err(ClientAssertionError::Expired)),
            (
                now + MAX_ASSERTION_LIFETIME_SECS + 1,
                now,
                Err(ClientAssertionError::TooLong),
            ),
            (
                now + 60,
                now + CLOCK_SKEW_SECS + 1,
                Err(ClientAssertionError::NotYetValid),
            ),
            (
                now + MAX_ASSERTION_LIFETIME_SECS,
                now + CLOCK_SKEW_SECS,
                Ok(()),
            ),
        ] {
            let mut c = good_claims();
            c["exp"] = json!(exp);
            c["iat"] = json!(iat);
            assert_eq!(verify(&sign(record, &c), &client).map(|_| ()), expected);
        }
    }

    #[test]
    fn foreign_keys_and_forbidden_algorithms_are_refused() {
        let keys = records();
        let client = client(&keys);
        // Signed by another key, with the registered kid or without one.
        let mut intruder = generate_signing_key(SigningAlg::ES256, NOW, NOW).unwrap();
        intruder.kid.clone_from(&keys[1].kid);
        assert_eq!(
            verify(&sign(&intruder, &good_claims()), &client),
            Err(ClientAssertionError::BadSignature)
        );
        assert_eq!(
            verify(&sign_with(&intruder, None, &good_claims()), &client),
            Err(ClientAssertionError::BadSignature)
        );
        // An unknown kid.
        assert_eq!(
            verify(&sign_with(&keys[1], Some("nope"), &good_claims()), &client),
            Err(ClientAssertionError::NoMatchingKey)
        );
        // A key the client registered no key of that type for.
        let es_only = self::client(&keys[1..2]);
        assert_eq!(
            verify(&sign(&keys[2], &good_claims()), &es_only),
            Err(ClientAssertionError::NoMatchingKey)
        );
        // alg none, with and without signature.
        let good = sign(&keys[1], &good_claims());
        let parts: Vec<&str> = good.split('.').collect();
        let none = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, keys[1].kid));
        for sig in ["", parts[2]] {
            assert!(verify(&format!("{none}.{}.{sig}", parts[1]), &client).is_err());
        }
        // HS256 with the public key as secret.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys[0].kid.clone());
        let hs = jsonwebtoken::encode(
            &header,
            &good_claims(),
            &EncodingKey::from_secret(keys[0].public_jwk.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            verify(&hs, &client),
            Err(ClientAssertionError::UnsupportedAlg)
        );
        // Tampered payload.
        let mut c = good_claims();
        c["sub"] = json!("x");
        let payload = URL_SAFE_NO_PAD.encode(c.to_string());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&tampered, &client),
            Err(ClientAssertionError::BadSignature)
        );
        assert_eq!(verify("a.b", &client), Err(ClientAssertionError::Malformed));
        // A client that does not use private_key_jwt.
        assert_eq!(
            verify(&good, &confidential("jwt-app")),
            Err(ClientAssertionError::NotPrivateKeyJwt)
        );
    }

    #[test]
    fn client_jwks_are_checked() {
        let keys = records();
        assert_eq!(parse_client_jwks(&jwks(&keys)).unwrap().len(), 3);
        assert_eq!(parse_client_jwks("[]").err(), Some(JwksProblem::NotAJwks));
        assert_eq!(parse_client_jwks("{").err(), Some(JwksProblem::NotAJwks));
        assert_eq!(
            parse_client_jwks(r#"{"keys":[]}"#).err(),
            Some(JwksProblem::NoUsableKey)
        );
        // Encryption keys and other algorithms are skipped.
        let mut enc: Value = serde_json::from_str(&keys[0].public_jwk).unwrap();
        enc["use"] = json!("enc");
        let mut ps: Value = serde_json::from_str(&keys[0].public_jwk).unwrap();
        ps["alg"] = json!("PS256");
        let p384 = json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA"});
        assert_eq!(
            parse_client_jwks(&json!({"keys":[enc, ps, p384]}).to_string()).err(),
            Some(JwksProblem::NoUsableKey)
        );
        let mut private: Value = serde_json::from_str(&keys[1].public_jwk).unwrap();
        private["d"] = json!("AAAA");
        assert_eq!(
            parse_client_jwks(&json!({"keys":[private]}).to_string()).err(),
            Some(JwksProblem::PrivateKeyMaterial(0))
        );
        let oct = json!({"kty":"oct","k":"c2VjcmV0"});
        assert_eq!(
            parse_client_jwks(&json!({"keys":[oct]}).to_string()).err(),
            Some(JwksProblem::PrivateKeyMaterial(0))
        );
        let weak = json!({"kty":"RSA","n": URL_SAFE_NO_PAD.encode([0xC5u8; 128]),"e":"AQAB"});
        assert_eq!(
            parse_client_jwks(&json!({"keys":[weak]}).to_string()).err(),
            Some(JwksProblem::WeakKey(0))
        );
        let short = json!({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"});
        assert_eq!(
            parse_client_jwks(&json!({"keys":[short]}).to_string()).err(),
            Some(JwksProblem::BadKey(0))
        );
    }
}
