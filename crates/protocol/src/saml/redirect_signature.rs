//! The signature of a message sent over the HTTP-Redirect binding (SAML 2.0 bindings
//! §3.4.4.1): not inside the XML but in the query string, over the octets
//! `SAMLRequest=…&RelayState=…&SigAlg=…` (or `SAMLResponse=…`) exactly as they were URL-encoded by the sender. It is
//! checked against the keys of the service provider's metadata, never a key the message
//! names.

use aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::signature::RSA_SHA256;
use super::verify::verifies_with_any;
use super::SamlError;

/// What the query string says of its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectSignature {
    /// The query carries no signature.
    Absent,
    /// It carries one, and one of the SP's keys verifies it.
    Verified,
}

fn bad(why: &str) -> SamlError {
    SamlError::Signature(why.to_owned())
}

/// The value of `name` in `query`, as sent (still URL-encoded), if it is there once.
fn raw_param<'q>(query: &'q str, name: &str) -> Result<Option<&'q str>, SamlError> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            if found.is_some() {
                return Err(bad(&format!("{name} appears twice")));
            }
            found = Some(value);
        }
    }
    Ok(found)
}

fn decoded(raw: &str) -> String {
    url::form_urlencoded::parse(format!("v={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Checks the signature of the Redirect-binding `query` (the raw query string) with the SP's
/// signing `certificates` (DER).
///
/// # Errors
/// [`SamlError::Signature`] when a signature is there but uses another algorithm than
/// RSA-SHA256, is not base64, or verifies with none of the certificates' keys.
pub fn verify(query: &str, certificates: &[Vec<u8>]) -> Result<RedirectSignature, SamlError> {
    let Some(signature) = raw_param(query, "Signature")? else {
        return Ok(RedirectSignature::Absent);
    };
    // A request, or a response (a logout response comes back the same way).
    let (message, value) = match raw_param(query, "SAMLRequest")? {
        Some(v) => ("SAMLRequest", v),
        None => (
            "SAMLResponse",
            raw_param(query, "SAMLResponse")?
                .ok_or_else(|| bad("no SAMLRequest or SAMLResponse"))?,
        ),
    };
    let relay = raw_param(query, "RelayState")?;
    let alg = raw_param(query, "SigAlg")?.ok_or_else(|| bad("a Signature without SigAlg"))?;
    if decoded(alg) != RSA_SHA256 {
        return Err(bad(&format!(
            "signature algorithm {} (RSA-SHA256 only)",
            decoded(alg)
        )));
    }
    let mut signed = format!("{message}={value}");
    if let Some(relay) = relay {
        signed.push_str("&RelayState=");
        signed.push_str(relay);
    }
    signed.push_str("&SigAlg=");
    signed.push_str(alg);
    let signature_bytes = STANDARD
        .decode(decoded(signature).trim())
        .map_err(|_| bad("Signature is not base64"))?;
    let verified = verifies_with_any(
        certificates,
        &[&RSA_PKCS1_2048_8192_SHA256],
        signed.as_bytes(),
        &signature_bytes,
    );
    if verified {
        Ok(RedirectSignature::Verified)
    } else {
        Err(bad("does not verify with the service provider's keys"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::keys::generate;
    use crate::saml::signature::SigningKey;

    fn signed_query(key: &SigningKey, relay: Option<&str>) -> String {
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let mut query = format!("SAMLRequest={}", enc("fVLLbsIwEPyVyPeQB1Co+Q=="));
        if let Some(r) = relay {
            query.push_str(&format!("&RelayState={}", enc(r)));
        }
        query.push_str(&format!("&SigAlg={}", enc(RSA_SHA256)));
        let signature = key.sign(query.as_bytes()).unwrap();
        format!("{query}&Signature={}", enc(&STANDARD.encode(signature)))
    }

    fn sp_key() -> (SigningKey, Vec<u8>) {
        let (pkcs8, cert) = generate("sp.test", time::OffsetDateTime::UNIX_EPOCH).unwrap();
        (SigningKey::from_pkcs8(&pkcs8, cert.clone()).unwrap(), cert)
    }

    #[test]
    fn a_query_signed_by_the_sps_key_verifies_and_nothing_else_does() {
        let (key, cert) = sp_key();
        let (_, other_cert) = sp_key();
        let query = signed_query(&key, Some("https://sp.test/page?a=b"));
        assert_eq!(
            verify(&query, std::slice::from_ref(&cert)).unwrap(),
            RedirectSignature::Verified
        );
        assert_eq!(
            verify(&query, &[other_cert.clone(), cert.clone()]).unwrap(),
            RedirectSignature::Verified,
            "any of the metadata's keys"
        );
        assert!(verify(&query, &[other_cert]).is_err(), "another key");
        assert!(verify(&query, &[]).is_err(), "no key in the metadata");
        // The RelayState is covered: changing or dropping it breaks the signature.
        let changed = query.replace("page%3Fa%3Db", "evil");
        assert!(verify(&changed, std::slice::from_ref(&cert)).is_err());
        let dropped = query.replace("&RelayState=https%3A%2F%2Fsp.test%2Fpage%3Fa%3Db", "");
        assert_ne!(dropped, query);
        assert!(verify(&dropped, std::slice::from_ref(&cert)).is_err());
        // Without a signature: absent, for the caller to decide.
        assert_eq!(
            verify("SAMLRequest=abc&RelayState=x", std::slice::from_ref(&cert)).unwrap(),
            RedirectSignature::Absent
        );
        // SHA-1 is refused, and a parameter given twice.
        let sha1 = query.replace("rsa-sha256", "rsa-sha1");
        assert!(verify(&sha1, std::slice::from_ref(&cert)).is_err());
        let twice = format!("{query}&SAMLRequest=abc");
        assert!(verify(&twice, &[cert]).is_err());
    }
}
