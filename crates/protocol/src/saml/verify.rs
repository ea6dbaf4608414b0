//! Verifying the enveloped XML signature of what others send: requests posted by service
//! providers, federations' metadata aggregates. Only the form SAML allows (SAML 2.0 core
//! §5.4, as OpenSAML's signature profile checks it), so that what was signed is what is read:
//!
//! - the signature is a direct child of the element it signs, the only one there;
//! - it has one `Reference`, to that element's `ID`, and the `ID` is no other element's;
//! - transforms: enveloped signature and exclusive canonicalisation, nothing else (no XPath,
//!   no XSLT); canonicalisation of `SignedInfo` exclusive, without comments;
//! - RSA (SHA-256, 384, 512) or ECDSA (P-256, P-384); SHA-1 refused;
//! - checked with the keys the caller trusts (the SP's metadata, the federation's pinned
//!   certificate), never with a key the message carries in `KeyInfo`.

use aws_lc_rs::signature::{
    UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use roxmltree::Node;
use rustls_pki_types::CertificateDer;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq as _;

use super::c14n::canonicalize;
use super::redirect_signature::RedirectSignature;
use super::request::parse_document;
use super::signature::{ENVELOPED, EXC_C14N, RSA_SHA256, SHA256};
use super::SamlError;

/// The XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

fn bad(why: impl Into<String>) -> SamlError {
    SamlError::Signature(why.into())
}

/// The `ds:Signature` children of `element`.
fn signatures<'a, 'i>(element: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    element
        .children()
        .filter(|n| n.has_tag_name((DSIG_NS, "Signature")))
}

/// Whether `element` carries an enveloped signature (verified or not).
pub fn is_signed(element: Node<'_, '_>) -> bool {
    signatures(element).next().is_some()
}

/// The element children of `node`, in order.
fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, SamlError> {
    let mut found = elements(node).filter(|n| n.has_tag_name((DSIG_NS, name)));
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(bad(format!("no {name}"))),
        (Some(_), Some(_)) => Err(bad(format!("{name} twice"))),
    }
}

fn algorithm<'a>(node: Node<'a, '_>) -> &'a str {
    node.attribute("Algorithm").unwrap_or("")
}

/// The `PrefixList` of an exclusive canonicalisation's `InclusiveNamespaces`.
fn inclusive_prefixes<'a>(method: Node<'a, '_>) -> Vec<&'a str> {
    elements(method)
        .find(|n| n.has_tag_name((EXC_C14N, "InclusiveNamespaces")))
        .and_then(|n| n.attribute("PrefixList"))
        .map(|list| list.split_whitespace().collect())
        .unwrap_or_default()
}

fn digest(method: &str, bytes: &[u8]) -> Result<Vec<u8>, SamlError> {
    Ok(match method {
        SHA256 => Sha256::digest(bytes).to_vec(),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Sha384::digest(bytes).to_vec(),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Sha512::digest(bytes).to_vec(),
        other => return Err(bad(format!("digest algorithm {other} (SHA-2 only)"))),
    })
}

fn signature_algorithms(
    method: &str,
) -> Result<&'static [&'static dyn VerificationAlgorithm], SamlError> {
    Ok(match method {
        RSA_SHA256 => &[&RSA_PKCS1_2048_8192_SHA256],
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => &[&RSA_PKCS1_2048_8192_SHA384],
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => &[&RSA_PKCS1_2048_8192_SHA512],
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => &[&ECDSA_P256_SHA256_FIXED],
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => &[&ECDSA_P384_SHA384_FIXED],
        other => {
            return Err(bad(format!(
                "signature algorithm {other} (RSA or ECDSA with SHA-2 only)"
            )))
        }
    })
}

fn base64_text(node: Node<'_, '_>, what: &str) -> Result<Vec<u8>, SamlError> {
    let text: String = node
        .children()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .flat_map(|t| t.chars().filter(|c| !c.is_whitespace()))
        .collect();
    STANDARD
        .decode(text)
        .map_err(|_| bad(format!("{what} is not base64")))
}

/// Whether `signature` over `message` verifies with the public key of one of `certificates`
/// (DER), by one of `algorithms`.
pub(crate) fn verifies_with_any(
    certificates: &[Vec<u8>],
    algorithms: &[&'static dyn VerificationAlgorithm],
    message: &[u8],
    signature: &[u8],
) -> bool {
    certificates.iter().any(|der| {
        let certificate = CertificateDer::from(der.as_slice());
        webpki::EndEntityCert::try_from(&certificate).is_ok_and(|cert| {
            let spki = cert.subject_public_key_info();
            algorithms.iter().any(|algorithm| {
                UnparsedPublicKey::new(*algorithm, spki.as_ref())
                    .verify(message, signature)
                    .is_ok()
            })
        })
    })
}

/// Checks that `element` is signed, in the form above, by one of `certificates` (DER): the
/// element may then be read, and nothing outside it is covered.
///
/// # Errors
/// [`SamlError::Signature`] naming the first thing wrong: no signature, two, a reference to
/// anything but this element, a shared `ID`, a transform or algorithm outside the profile, a
/// digest that does not match, or a signature no trusted key verifies.
pub fn verify_enveloped(element: Node<'_, '_>, certificates: &[Vec<u8>]) -> Result<(), SamlError> {
    let mut found = signatures(element);
    let signature = match (found.next(), found.next()) {
        (Some(one), None) => one,
        (None, _) => return Err(bad("not signed")),
        (Some(_), Some(_)) => return Err(bad("two signatures")),
    };
    let id = element
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad("the signed element has no ID"))?;
    let same_id = element
        .document()
        .descendants()
        .filter(|n| {
            n.attributes()
                .any(|a| matches!(a.name(), "ID" | "Id" | "id") && a.value() == id)
        })
        .count();
    if same_id != 1 {
        return Err(bad(format!("the ID {id} is carried by {same_id} elements")));
    }
    let signed_info = child(signature, "SignedInfo")?;
    if elements(signature).next().map(|n| n.id()) != Some(signed_info.id()) {
        return Err(bad("SignedInfo is not the signature's first element"));
    }
    let c14n_method = child(signed_info, "CanonicalizationMethod")?;
    if algorithm(c14n_method) != EXC_C14N {
        return Err(bad(format!(
            "canonicalisation {} (exclusive, without comments, only)",
            algorithm(c14n_method)
        )));
    }
    let algorithms = signature_algorithms(algorithm(child(signed_info, "SignatureMethod")?))?;
    let reference = child(signed_info, "Reference")?;
    if reference.attribute("URI") != Some(&format!("#{id}")) {
        return Err(bad(format!(
            "the reference is to {:?}, not to the signed element #{id}",
            reference.attribute("URI").unwrap_or("")
        )));
    }
    let mut prefixes = Vec::new();
    if let Ok(transforms) = child(reference, "Transforms") {
        for transform in elements(transforms) {
            match algorithm(transform) {
                ENVELOPED if transform.has_tag_name((DSIG_NS, "Transform")) => {}
                EXC_C14N if transform.has_tag_name((DSIG_NS, "Transform")) => {
                    prefixes = inclusive_prefixes(transform);
                }
                other => return Err(bad(format!("transform {other} is not allowed"))),
            }
        }
    }
    let expected = base64_text(child(reference, "DigestValue")?, "DigestValue")?;
    let actual = digest(
        algorithm(child(reference, "DigestMethod")?),
        canonicalize(element, Some(signature.id()), &prefixes).as_bytes(),
    )?;
    if !bool::from(actual.as_slice().ct_eq(&expected)) {
        return Err(bad("the digest does not match: the element was changed"));
    }
    let signature_value = base64_text(child(signature, "SignatureValue")?, "SignatureValue")?;
    let canonical_signed_info = canonicalize(signed_info, None, &inclusive_prefixes(c14n_method));
    if verifies_with_any(
        certificates,
        algorithms,
        canonical_signed_info.as_bytes(),
        &signature_value,
    ) {
        Ok(())
    } else {
        Err(bad("does not verify with any trusted key"))
    }
}

/// The enveloped signature of a message posted by an SP (its root's), checked with the SP's
/// `certificates`: [`RedirectSignature::Absent`] if it carries none (the caller decides
/// whether the SP may send that), [`RedirectSignature::Verified`] if one of them verifies it.
///
/// # Errors
/// [`SamlError::Malformed`] if it is not XML within bounds; [`SamlError::Signature`] for a
/// signature that does not verify (see [`verify_enveloped`]).
pub fn verify_signed_message(
    xml: &str,
    certificates: &[Vec<u8>],
) -> Result<RedirectSignature, SamlError> {
    let doc = parse_document(xml)?;
    let root = doc.root_element();
    if !is_signed(root) {
        return Ok(RedirectSignature::Absent);
    }
    verify_enveloped(root, certificates).map(|()| RedirectSignature::Verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::keys::generate;
    use crate::saml::signature::{sign_enveloped, SigningKey};
    use crate::saml::xml::Element;

    fn key() -> (SigningKey, Vec<u8>) {
        let (pkcs8, cert) = generate("fed.test", time::OffsetDateTime::UNIX_EPOCH).unwrap();
        (SigningKey::from_pkcs8(&pkcs8, cert.clone()).unwrap(), cert)
    }

    fn signed(key: &SigningKey) -> String {
        let mut e = Element::new("md", "EntitiesDescriptor")
            .attr("ID", "_agg")
            .child(
                Element::new("md", "EntityDescriptor")
                    .attr("entityID", "https://sp.test")
                    .text("x"),
            );
        sign_enveloped(&mut e, 0, key).unwrap();
        e.canonical()
    }

    fn check(xml: &str, certs: &[Vec<u8>]) -> Result<(), SamlError> {
        let doc = roxmltree::Document::parse(xml).unwrap();
        verify_enveloped(doc.root_element(), certs)
    }

    #[test]
    fn what_sesame_signs_verifies_with_its_key_only_and_not_once_changed() {
        let (k, cert) = key();
        let (_, other) = key();
        let xml = signed(&k);
        assert_eq!(check(&xml, std::slice::from_ref(&cert)), Ok(()));
        let err = check(&xml, &[other]).unwrap_err();
        assert!(err.to_string().contains("trusted key"), "{err}");
        let changed = xml.replace("https://sp.test", "https://evil.test");
        let err = check(&changed, &[cert]).unwrap_err();
        assert!(err.to_string().contains("digest"), "{err}");
    }

    #[test]
    fn reformatting_that_canonicalisation_undoes_keeps_the_signature() {
        let (k, cert) = key();
        let xml = signed(&k)
            .replacen(
                "<md:EntitiesDescriptor ",
                "<?xml version=\"1.0\"?>\n<!-- fed -->\n<md:EntitiesDescriptor  ",
                1,
            )
            .replace(
                "entityID=\"https://sp.test\"",
                "entityID='https://sp.test' ",
            )
            .replace(">x<", "><!-- note -->x<");
        assert_eq!(check(&xml, &[cert]), Ok(()));
    }

    #[test]
    fn a87_wrapping_and_substitution_are_refused() {
        let (k, cert) = key();
        let xml = signed(&k);
        let certs = std::slice::from_ref(&cert);
        // The signed element moved under an unsigned one that now is the root.
        let wrapped = format!(
            r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="_evil">{xml}</md:EntitiesDescriptor>"#
        );
        assert_eq!(check(&wrapped, certs), Err(bad("not signed")));
        // A second element with the signed ID.
        let duplicated = xml.replace(
            "</md:EntitiesDescriptor>",
            r#"<md:EntityDescriptor ID="_agg" entityID="https://evil.test"/></md:EntitiesDescriptor>"#,
        );
        let err = check(&duplicated, certs).unwrap_err();
        assert!(err.to_string().contains("carried by 2"), "{err}");
        // The root's ID changed so that the reference names another element.
        let elsewhere = xml.replacen("ID=\"_agg\"", "ID=\"_root\"", 1);
        let err = check(&elsewhere, certs).unwrap_err();
        assert!(
            err.to_string().contains("not to the signed element"),
            "{err}"
        );
        // Unprofiled transforms and algorithms.
        for (from, to, why) in [
            (
                ENVELOPED,
                "http://www.w3.org/TR/1999/REC-xpath-19991116",
                "transform",
            ),
            (
                RSA_SHA256,
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                "signature algorithm",
            ),
            (
                SHA256,
                "http://www.w3.org/2000/09/xmldsig#sha1",
                "digest algorithm",
            ),
        ] {
            let err = check(&xml.replace(from, to), certs).unwrap_err();
            assert!(err.to_string().contains(why), "{to}: {err}");
        }
        let comments = xml.replacen(
            EXC_C14N,
            "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
            1,
        );
        assert!(check(&comments, certs).is_err());
    }
}
