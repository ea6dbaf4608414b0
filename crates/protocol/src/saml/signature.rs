//! Enveloped XML signatures over what Sesame writes (XML-DSig 1.0 as SAML uses it: RSA-SHA256,
//! SHA-256 digest, exclusive canonicalisation, the signature inside the element it signs and
//! referencing it by its `ID`). Signing needs no general canonicaliser: the element and the
//! `SignedInfo` are written in their canonical form by [`super::xml`].

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::xml::Element;
use super::SamlError;

/// Exclusive canonicalisation without comments.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// RSA with SHA-256.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// SHA-256 digests.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// The enveloped-signature transform.
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// The identity provider's signing key: an RSA key pair and the X.509 certificate that
/// carries its public key in metadata (federations trust the key in the metadata, not the
/// certificate's dates or issuer).
pub struct SigningKey {
    pair: RsaKeyPair,
    certificate_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A key from its PKCS#8 DER private key and its certificate (DER).
    ///
    /// # Errors
    /// [`SamlError::Key`] if the private key is not an RSA key of at least 2048 bits.
    pub fn from_pkcs8(
        private_pkcs8_der: &[u8],
        certificate_der: Vec<u8>,
    ) -> Result<Self, SamlError> {
        let pair = RsaKeyPair::from_pkcs8(private_pkcs8_der)
            .map_err(|e| SamlError::Key(format!("RSA private key: {e}")))?;
        if pair.public_modulus_len() < 256 {
            return Err(SamlError::Key(
                "RSA keys of fewer than 2048 bits".to_owned(),
            ));
        }
        Ok(Self {
            pair,
            certificate_der,
        })
    }

    /// The certificate, base64 (as `ds:X509Certificate` carries it).
    pub fn certificate_base64(&self) -> String {
        STANDARD.encode(&self.certificate_der)
    }

    /// `ds:KeyInfo` naming this key by its certificate.
    pub fn key_info(&self) -> Element {
        Element::new("ds", "KeyInfo").child(
            Element::new("ds", "X509Data")
                .child(Element::new("ds", "X509Certificate").text(self.certificate_base64())),
        )
    }

    /// RSA-SHA256 (PKCS#1 v1.5) signature of `message`.
    ///
    /// # Errors
    /// [`SamlError::Key`] if the signature cannot be made.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SamlError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|e| SamlError::Key(format!("signing: {e}")))?;
        Ok(signature)
    }
}

/// Signs `element` (which must carry its `ID`) with an enveloped signature, inserted as its
/// child at `position` (SAML's schemas put it right after the `Issuer`, or first in
/// metadata).
///
/// # Errors
/// [`SamlError::Key`] if signing fails; [`SamlError::Malformed`] if `element` has no `ID`.
pub fn sign_enveloped(
    element: &mut Element,
    position: usize,
    key: &SigningKey,
) -> Result<(), SamlError> {
    let id = element
        .attribute("ID")
        .ok_or_else(|| SamlError::Malformed("a signed element needs an ID".to_owned()))?
        .to_owned();
    // The enveloped-signature transform takes the signature out again before digesting, so
    // the digest is that of the element as it is now.
    let digest = Sha256::digest(element.canonical().as_bytes());
    let signed_info = Element::new("ds", "SignedInfo")
        .child(Element::new("ds", "CanonicalizationMethod").attr("Algorithm", EXC_C14N))
        .child(Element::new("ds", "SignatureMethod").attr("Algorithm", RSA_SHA256))
        .child(
            Element::new("ds", "Reference")
                .attr("URI", format!("#{id}"))
                .child(
                    Element::new("ds", "Transforms")
                        .child(Element::new("ds", "Transform").attr("Algorithm", ENVELOPED))
                        .child(Element::new("ds", "Transform").attr("Algorithm", EXC_C14N)),
                )
                .child(Element::new("ds", "DigestMethod").attr("Algorithm", SHA256))
                .child(Element::new("ds", "DigestValue").text(STANDARD.encode(digest))),
        );
    let signature_value = key.sign(signed_info.canonical().as_bytes())?;
    let signature = Element::new("ds", "Signature")
        .child(signed_info)
        .child(Element::new("ds", "SignatureValue").text(STANDARD.encode(signature_value)))
        .child(key.key_info());
    element.insert(position, signature);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

    use super::*;

    /// A key for tests: a fresh RSA pair and a self-signed certificate.
    pub(crate) fn test_key() -> SigningKey {
        let (pkcs8, cert) =
            super::super::keys::generate("idp.test", time::macros::datetime!(2026-12-07 06:00 UTC))
                .unwrap();
        SigningKey::from_pkcs8(&pkcs8, cert).unwrap()
    }

    #[test]
    fn the_signature_covers_the_element_and_verifies_with_the_certificate_key() {
        let key = test_key();
        let mut assertion = Element::new("saml", "Assertion")
            .attr("ID", "_abc")
            .child(Element::new("saml", "Issuer").text("https://idp.test"))
            .child(Element::new("saml", "Subject").text("ada"));
        let unsigned = assertion.canonical();
        sign_enveloped(&mut assertion, 1, &key).unwrap();
        let signed = assertion.canonical();
        let doc = roxmltree::Document::parse(&signed).unwrap();
        let signature = doc
            .descendants()
            .find(|n| n.has_tag_name(("http://www.w3.org/2000/09/xmldsig#", "Signature")))
            .unwrap();
        assert_eq!(
            signature.prev_sibling_element().unwrap().tag_name().name(),
            "Issuer"
        );
        let digest = doc
            .descendants()
            .find(|n| n.tag_name().name() == "DigestValue")
            .and_then(|n| n.text())
            .unwrap();
        assert_eq!(digest, STANDARD.encode(Sha256::digest(unsigned.as_bytes())));
        let value = doc
            .descendants()
            .find(|n| n.tag_name().name() == "SignatureValue")
            .and_then(|n| n.text())
            .unwrap();
        let start = signed.find("<ds:SignedInfo>").unwrap();
        let end = signed.find("</ds:SignedInfo>").unwrap() + "</ds:SignedInfo>".len();
        // As the apex of its canonical form, SignedInfo declares the ds prefix itself.
        let signed_info = signed[start..end].replacen(
            "<ds:SignedInfo>",
            "<ds:SignedInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">",
            1,
        );
        let public = key.pair.public_key().as_ref().to_vec();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(signed_info.as_bytes(), &STANDARD.decode(value).unwrap())
            .expect("the signature verifies");
    }
}
