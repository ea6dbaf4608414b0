//! The identity provider's signing key pair and the self-signed certificate that carries it in
//! metadata. Federations (RENATER, eduGAIN) trust the key published in the IdP's registered
//! metadata and ignore the certificate's issuer and dates (saml2int, the metadata
//! interoperability profile), so a self-signed certificate with a long life is the norm.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use time::{Duration, OffsetDateTime};

use super::SamlError;

/// How long a generated certificate is valid: its dates are not checked by relying parties,
/// and a key is replaced by rotation, not by expiry.
const CERTIFICATE_YEARS: i64 = 10;

/// A new RSA-2048 key pair (PKCS#8 DER) and a self-signed certificate for it (DER) naming
/// `host`, valid from `now`. RSA generation takes a noticeable time: call it off the async
/// executor.
///
/// # Errors
/// [`SamlError::Key`] if the key or the certificate cannot be made.
pub fn generate(host: &str, now: OffsetDateTime) -> Result<(Vec<u8>, Vec<u8>), SamlError> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048)
        .map_err(|e| SamlError::Key(format!("RSA key generation: {e}")))?;
    let pkcs8 = AsDer::as_der(&pair)
        .map_err(|e| SamlError::Key(format!("PKCS#8 encoding: {e}")))?
        .as_ref()
        .to_vec();
    let certificate = self_signed_certificate(&pkcs8, host, now)?;
    Ok((pkcs8, certificate))
}

/// The certificates (DER) of a PEM text, in order (a federation's metadata signing
/// certificates: several while it rolls its key).
///
/// # Errors
/// [`SamlError::Key`] if a PEM section is broken or there is no certificate.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, SamlError> {
    use rustls_pki_types::pem::PemObject as _;
    let certificates = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SamlError::Key(format!("PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(SamlError::Key("no PEM certificate".to_owned()));
    }
    Ok(certificates)
}

/// A self-signed certificate (DER) for the RSA key `pkcs8`, naming `host`, valid from `now`.
///
/// # Errors
/// [`SamlError::Key`] if the key is unusable or the certificate cannot be made.
pub fn self_signed_certificate(
    pkcs8: &[u8],
    host: &str,
    now: OffsetDateTime,
) -> Result<Vec<u8>, SamlError> {
    let key = |e: rcgen::Error| SamlError::Key(format!("certificate: {e}"));
    let pem = pem_private_key(pkcs8);
    let key_pair =
        rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).map_err(key)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(key)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(365 * CERTIFICATE_YEARS);
    let certificate = params.self_signed(&key_pair).map_err(key)?;
    Ok(certificate.der().to_vec())
}

/// PKCS#8 DER as PEM.
fn pem_private_key(pkcs8: &[u8]) -> String {
    pem("PRIVATE KEY", pkcs8)
}

/// A certificate (DER) as PEM, for operators and tools (`xmlsec1 --pubkey-cert-pem`).
pub fn certificate_pem(der: &[u8]) -> String {
    pem("CERTIFICATE", der)
}

/// `der` as PEM under `label`, in lines of 64 characters.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_and_its_certificate_names_the_host() {
        let (pkcs8, cert) = generate(
            "idp.example.edu",
            time::macros::datetime!(2026-12-07 06:00 UTC),
        )
        .unwrap();
        let key = super::super::signature::SigningKey::from_pkcs8(&pkcs8, cert.clone()).unwrap();
        assert_eq!(key.sign(b"x").unwrap().len(), 256);
        // The common name appears in the DER as a UTF8String or PrintableString.
        assert!(cert
            .windows("idp.example.edu".len())
            .any(|w| w == b"idp.example.edu"));
        assert!(certificate_pem(&cert).starts_with("-----BEGIN CERTIFICATE-----\n"));
    }
}
