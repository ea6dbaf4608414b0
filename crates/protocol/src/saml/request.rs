//! `AuthnRequest`s as they arrive (SAML 2.0 core §3.4.1; bindings §3.4 HTTP-Redirect and
//! §3.5 HTTP-POST): decoded within bounds, parsed with DTDs refused, and read into what the
//! identity provider decides on. Nothing here trusts the request: the service provider is
//! looked up by its `Issuer` and the assertion consumer service checked against its metadata
//! by the caller ([`super::metadata::ServiceProvider::consumer_for`]).

use std::io::Read as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use time::OffsetDateTime;

use super::{parse_instant, SamlError, ASSERTION_NS, PROTOCOL_NS};

/// Largest encoded message accepted (either binding), before decoding.
pub const MAX_ENCODED_BYTES: usize = 64 * 1024;
/// Largest XML a request may inflate or decode to: a deflate bomb stops here.
pub const MAX_XML_BYTES: usize = 64 * 1024;
/// Most XML nodes a request may have.
const MAX_NODES: u32 = 2_000;

/// What a service provider asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    /// Its `ID` (the response's `InResponseTo`).
    pub id: String,
    /// When the service provider made it.
    pub issue_instant: OffsetDateTime,
    /// The service provider's entity ID (its `Issuer`).
    pub issuer: String,
    /// Where it says it was sent (`Destination`), if it says.
    pub destination: Option<String>,
    /// The assertion consumer service asked for by URL…
    pub consumer_url: Option<String>,
    /// …or by index into the service provider's metadata.
    pub consumer_index: Option<u16>,
    /// The binding asked for the response (`ProtocolBinding`).
    pub protocol_binding: Option<String>,
    /// A fresh login is required (`ForceAuthn`).
    pub force_authn: bool,
    /// No page may be shown (`IsPassive`).
    pub is_passive: bool,
    /// The name identifier format asked for (`NameIDPolicy/@Format`).
    pub name_id_format: Option<String>,
    /// `NameIDPolicy/@AllowCreate`.
    pub allow_create: bool,
    /// The authentication context classes asked for (`RequestedAuthnContext`), and whether
    /// at least one of them is required (`Comparison="exact"` or `minimum`; others are read
    /// as `exact`).
    pub requested_contexts: Vec<String>,
    /// It carries an XML signature (POST binding; verified, or refused, by the caller).
    pub signed: bool,
}

/// The XML of a request sent over HTTP-Redirect: `SAMLRequest` is base64 of the raw DEFLATE
/// of the XML.
///
/// # Errors
/// [`SamlError::Malformed`] if it is too long, not base64, not DEFLATE, or inflates beyond
/// [`MAX_XML_BYTES`].
pub fn redirect_xml(saml_request: &str) -> Result<String, SamlError> {
    let deflated = decode_base64(saml_request)?;
    let mut xml = Vec::new();
    let read = flate2::read::DeflateDecoder::new(deflated.as_slice())
        .take(MAX_XML_BYTES as u64 + 1)
        .read_to_end(&mut xml)
        .map_err(|_| SamlError::Malformed("SAMLRequest is not DEFLATE".to_owned()))?;
    if read > MAX_XML_BYTES {
        return Err(SamlError::Malformed(format!(
            "SAMLRequest inflates beyond {MAX_XML_BYTES} bytes"
        )));
    }
    String::from_utf8(xml).map_err(|_| SamlError::Malformed("SAMLRequest is not UTF-8".to_owned()))
}

/// The XML of a request sent over HTTP-POST: `SAMLRequest` is base64 of the XML.
///
/// # Errors
/// [`SamlError::Malformed`] if it is too long or not base64 of UTF-8.
pub fn post_xml(saml_request: &str) -> Result<String, SamlError> {
    let xml = decode_base64(saml_request)?;
    if xml.len() > MAX_XML_BYTES {
        return Err(SamlError::Malformed(format!(
            "SAMLRequest beyond {MAX_XML_BYTES} bytes"
        )));
    }
    String::from_utf8(xml).map_err(|_| SamlError::Malformed("SAMLRequest is not UTF-8".to_owned()))
}

fn decode_base64(encoded: &str) -> Result<Vec<u8>, SamlError> {
    if encoded.len() > MAX_ENCODED_BYTES {
        return Err(SamlError::Malformed(format!(
            "SAMLRequest beyond {MAX_ENCODED_BYTES} bytes"
        )));
    }
    // Senders wrap lines; the binding allows it.
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(compact)
        .map_err(|_| SamlError::Malformed("SAMLRequest is not base64".to_owned()))
}

/// Parses SAML XML with DTDs (and so entity declarations) refused and the node count bounded.
///
/// # Errors
/// [`SamlError::Malformed`] if it is not well-formed XML within those bounds.
pub(crate) fn parse_document(xml: &str) -> Result<roxmltree::Document<'_>, SamlError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| SamlError::Malformed(format!("XML: {e}")))
}

impl AuthnRequest {
    /// Reads an `AuthnRequest` from its XML.
    ///
    /// # Errors
    /// [`SamlError::Malformed`] if it is not XML, not an `AuthnRequest` of SAML 2.0, or lacks
    /// its `ID`, `IssueInstant` or `Issuer`; [`SamlError::Unsupported`] for a version other
    /// than 2.0.
    pub fn parse(xml: &str) -> Result<Self, SamlError> {
        let doc = parse_document(xml)?;
        let root = doc.root_element();
        if !root.has_tag_name((PROTOCOL_NS, "AuthnRequest")) {
            return Err(SamlError::Malformed(
                "not a SAML 2.0 AuthnRequest".to_owned(),
            ));
        }
        let required = |name: &str| {
            root.attribute(name)
                .map(str::to_owned)
                .ok_or_else(|| SamlError::Malformed(format!("AuthnRequest without {name}")))
        };
        if required("Version")? != "2.0" {
            return Err(SamlError::Unsupported(
                "SAML version other than 2.0".to_owned(),
            ));
        }
        let id = required("ID")?;
        let issue_instant = parse_instant(&required("IssueInstant")?)?;
        let issuer = root
            .children()
            .find(|n| n.has_tag_name((ASSERTION_NS, "Issuer")))
            .and_then(|n| n.text())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SamlError::Malformed("AuthnRequest without Issuer".to_owned()))?
            .to_owned();
        let flag = |name: &str| matches!(root.attribute(name), Some("true" | "1"));
        let consumer_index = match root.attribute("AssertionConsumerServiceIndex") {
            Some(index) => Some(index.parse::<u16>().map_err(|_| {
                SamlError::Malformed("AssertionConsumerServiceIndex is not an index".to_owned())
            })?),
            None => None,
        };
        let policy = root
            .children()
            .find(|n| n.has_tag_name((PROTOCOL_NS, "NameIDPolicy")));
        let requested_contexts = root
            .children()
            .find(|n| n.has_tag_name((PROTOCOL_NS, "RequestedAuthnContext")))
            .map(|context| {
                context
                    .children()
                    .filter(|n| n.has_tag_name((ASSERTION_NS, "AuthnContextClassRef")))
                    .filter_map(|n| n.text())
                    .map(|t| t.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            id,
            issue_instant,
            issuer,
            destination: root.attribute("Destination").map(str::to_owned),
            consumer_url: root
                .attribute("AssertionConsumerServiceURL")
                .map(str::to_owned),
            consumer_index,
            protocol_binding: root.attribute("ProtocolBinding").map(str::to_owned),
            force_authn: flag("ForceAuthn"),
            is_passive: flag("IsPassive"),
            name_id_format: policy
                .and_then(|p| p.attribute("Format"))
                .map(str::to_owned),
            allow_create: policy
                .is_some_and(|p| matches!(p.attribute("AllowCreate"), Some("true" | "1"))),
            requested_contexts,
            signed: root
                .children()
                .any(|n| n.has_tag_name(("http://www.w3.org/2000/09/xmldsig#", "Signature"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const REQUEST: &str = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="2026-12-07T06:00:00Z" Destination="https://idp.test/saml/SSO" AssertionConsumerServiceURL="https://sp.test/acs" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" ForceAuthn="true"><saml:Issuer> https://sp.test/metadata </saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/><samlp:RequestedAuthnContext Comparison="exact"><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>"#;

    fn deflate(xml: &[u8]) -> String {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(xml).unwrap();
        STANDARD.encode(encoder.finish().unwrap())
    }

    #[test]
    fn a_request_over_either_binding_reads_the_same() {
        let from_redirect =
            AuthnRequest::parse(&redirect_xml(&deflate(REQUEST.as_bytes())).unwrap()).unwrap();
        let from_post = AuthnRequest::parse(&post_xml(&STANDARD.encode(REQUEST)).unwrap()).unwrap();
        assert_eq!(from_redirect, from_post);
        let r = from_post;
        assert_eq!(r.id, "_r1");
        assert_eq!(r.issuer, "https://sp.test/metadata");
        assert_eq!(r.consumer_url.as_deref(), Some("https://sp.test/acs"));
        assert_eq!(r.consumer_index, None);
        assert!(r.force_authn && !r.is_passive && r.allow_create && !r.signed);
        assert_eq!(
            r.name_id_format.as_deref(),
            Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
        );
        assert_eq!(
            r.requested_contexts,
            ["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"]
        );
        assert_eq!(r.issue_instant.unix_timestamp(), 1_796_623_200);
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_bound() {
        let bomb = deflate(&vec![b' '; 50 * MAX_XML_BYTES]);
        assert!(bomb.len() < MAX_ENCODED_BYTES, "the bomb itself is small");
        let err = redirect_xml(&bomb).unwrap_err();
        assert!(err.to_string().contains("inflates beyond"), "{err}");
    }

    #[test]
    fn dtds_and_entities_are_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0" IssueInstant="2026-12-07T06:00:00Z"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">&x;</saml:Issuer></samlp:AuthnRequest>"#;
        assert!(matches!(
            AuthnRequest::parse(xxe),
            Err(SamlError::Malformed(_))
        ));
        let billion = format!(
            "<!DOCTYPE r [<!ENTITY a \"{}\">]><r>&a;&a;</r>",
            "x".repeat(10)
        );
        assert!(AuthnRequest::parse(&billion).is_err());
    }

    #[test]
    fn what_is_not_a_saml_2_authn_request_is_refused_with_a_reason() {
        for (xml, reason) in [
            ("not xml", "XML"),
            (
                r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>"#,
                "not a SAML 2.0 AuthnRequest",
            ),
            (
                r#"<AuthnRequest ID="_r" Version="2.0" IssueInstant="2026-12-07T06:00:00Z"/>"#,
                "not a SAML 2.0 AuthnRequest",
            ),
            (
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" Version="2.0" IssueInstant="2026-12-07T06:00:00Z"/>"#,
                "without ID",
            ),
            (
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0" IssueInstant="2026-12-07T06:00:00Z"/>"#,
                "without Issuer",
            ),
            (
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0" IssueInstant="yesterday"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">sp</saml:Issuer></samlp:AuthnRequest>"#,
                "instant",
            ),
        ] {
            let err = AuthnRequest::parse(xml).unwrap_err();
            assert!(err.to_string().contains(reason), "{xml}: {err}");
        }
        let v1 = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="1.1" IssueInstant="2026-12-07T06:00:00Z"/>"#;
        assert!(matches!(
            AuthnRequest::parse(v1),
            Err(SamlError::Unsupported(_))
        ));
        assert!(redirect_xml("%%%").is_err());
        assert!(post_xml(&"A".repeat(MAX_ENCODED_BYTES + 4)).is_err());
    }
}
