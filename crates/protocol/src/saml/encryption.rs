//! Encrypted assertions (XML Encryption 1.1; SAML 2.0 core §2.3.4) for service providers whose
//! metadata gives an encryption key: the assertion, signed first, is encrypted with a fresh
//! AES-256-GCM key, itself encrypted to the SP's RSA key with RSA-OAEP (MGF1 with SHA-1, the
//! `rsa-oaep-mgf1p` every SAML implementation reads). Only the SP can read the attributes,
//! even when the browser, a proxy or a log keeps the posted response.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls_pki_types::CertificateDer;

use super::xml::Element;
use super::SamlError;

/// AES-256-GCM (XML Encryption 1.1 §5.2.4).
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
/// RSA-OAEP with MGF1 over SHA-1 (XML Encryption 1.0 §5.4.2).
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
/// SHA-1, the OAEP digest of `rsa-oaep-mgf1p`.
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// What is encrypted: an element.
pub const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";

/// A service provider's encryption key, from its metadata's certificate.
pub struct EncryptionKey {
    key: OaepPublicEncryptingKey,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey").finish_non_exhaustive()
    }
}

impl EncryptionKey {
    /// The RSA key of the X.509 certificate `der` (its dates and issuer are not looked at:
    /// metadata is what the SP is trusted by).
    ///
    /// # Errors
    /// [`SamlError::Key`] if it is not a certificate with an RSA key of at least 2048 bits.
    pub fn from_certificate(der: &[u8]) -> Result<Self, SamlError> {
        let certificate = CertificateDer::from(der);
        let parsed = webpki::EndEntityCert::try_from(&certificate)
            .map_err(|e| SamlError::Key(format!("encryption certificate: {e}")))?;
        let spki = parsed.subject_public_key_info();
        let public = PublicEncryptingKey::from_der(spki.as_ref())
            .map_err(|e| SamlError::Key(format!("encryption key (RSA expected): {e}")))?;
        if public.key_size_bytes() < 256 {
            return Err(SamlError::Key(
                "encryption keys of fewer than 2048 bits".to_owned(),
            ));
        }
        let key = OaepPublicEncryptingKey::new(public)
            .map_err(|_| SamlError::Key("encryption key unusable for RSA-OAEP".to_owned()))?;
        Ok(Self { key })
    }
}

/// `plaintext` (an element's canonical bytes) as the `EncryptedData` of an
/// `<saml:EncryptedAssertion>` (or another `wrapper`), readable with `key`'s private half.
///
/// # Errors
/// [`SamlError::Key`] if the system's random generator or the cipher fails.
pub fn encrypt(
    wrapper: Element,
    plaintext: &[u8],
    key: &EncryptionKey,
) -> Result<Element, SamlError> {
    let fail = |what: &str| SamlError::Key(format!("encryption: {what}"));
    let random = SystemRandom::new();
    let mut content_key = [0u8; 32];
    random
        .fill(&mut content_key)
        .map_err(|_| fail("random key"))?;
    let mut nonce = [0u8; NONCE_LEN];
    random.fill(&mut nonce).map_err(|_| fail("random nonce"))?;
    let sealing = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &content_key).map_err(|_| fail("content key"))?,
    );
    let mut sealed = plaintext.to_vec();
    sealing
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        )
        .map_err(|_| fail("AES-GCM"))?;
    // XML Encryption 1.1 §5.2.4: the cipher value is the nonce, the ciphertext, the tag.
    let mut cipher_value = nonce.to_vec();
    cipher_value.extend_from_slice(&sealed);

    let mut wrapped_key = vec![0u8; key.key.ciphertext_size()];
    let wrapped = key
        .key
        .encrypt(&OAEP_SHA1_MGF1SHA1, &content_key, &mut wrapped_key, None)
        .map_err(|_| fail("RSA-OAEP"))?;
    let wrapped = STANDARD.encode(wrapped);

    let encrypted_key = Element::new("xenc", "EncryptedKey")
        .child(
            Element::new("xenc", "EncryptionMethod")
                .attr("Algorithm", RSA_OAEP_MGF1P)
                .child(Element::new("ds", "DigestMethod").attr("Algorithm", SHA1)),
        )
        .child(
            Element::new("xenc", "CipherData")
                .child(Element::new("xenc", "CipherValue").text(wrapped)),
        );
    let data = Element::new("xenc", "EncryptedData")
        .attr("Type", TYPE_ELEMENT)
        .child(Element::new("xenc", "EncryptionMethod").attr("Algorithm", AES256_GCM))
        .child(Element::new("ds", "KeyInfo").child(encrypted_key))
        .child(
            Element::new("xenc", "CipherData")
                .child(Element::new("xenc", "CipherValue").text(STANDARD.encode(cipher_value))),
        );
    Ok(wrapper.child(data))
}
