//! Metadata (SAML 2.0 metadata; the metadata interoperability profile): the identity
//! provider's own, as service providers and federations register it, and the service
//! providers' as they publish it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use time::OffsetDateTime;

use super::request::parse_document;
use super::signature::{sign_enveloped, SigningKey};
use super::xml::Element;
use super::{
    format_instant, new_id, SamlError, BINDING_POST, BINDING_REDIRECT, METADATA_NS,
    NAMEID_PERSISTENT, NAMEID_TRANSIENT, PROTOCOL_NS,
};

/// What the identity provider's metadata says.
#[derive(Debug, Clone)]
pub struct IdpDescription<'a> {
    /// Its entity ID.
    pub entity_id: &'a str,
    /// The single sign-on endpoint (both bindings).
    pub sso_url: &'a str,
    /// The single logout endpoint (both bindings).
    pub slo_url: &'a str,
    /// The institution's scope (`eduPersonPrincipalName` domain), published as `shibmd:Scope`.
    pub scope: &'a str,
    /// Its display name, per language (`mdui:DisplayName`).
    pub display_names: &'a [(&'a str, &'a str)],
    /// Until when the metadata may be used (`validUntil`).
    pub valid_until: OffsetDateTime,
    /// The logo the federation's discovery service shows (`mdui:Logo`): URL, width, height.
    pub logo: Option<(&'a str, u32, u32)>,
    /// A page about the service (`mdui:InformationURL`).
    pub information_url: Option<&'a str>,
    /// The institution (`md:Organization`): its name and web site.
    pub organization: Option<(&'a str, &'a str)>,
    /// Who to write to (`md:ContactPerson`): `technical`, `support` or `administrative`, and
    /// an address.
    pub contacts: &'a [(&'a str, &'a str)],
}

/// The identity provider's metadata, signed with `key`, publishing the certificates of `key`
/// and of `others` (the next key before it signs, the previous one while what it signed may
/// still be checked).
///
/// # Errors
/// [`SamlError::Key`] if signing fails.
pub fn idp_metadata(
    idp: &IdpDescription<'_>,
    key: &SigningKey,
    others: &[&SigningKey],
) -> Result<String, SamlError> {
    let mut ui = Element::new("mdui", "UIInfo");
    for (lang, name) in idp.display_names {
        ui = ui.child(
            Element::new("mdui", "DisplayName")
                .attr("xml:lang", *lang)
                .text(*name),
        );
    }
    if let Some(url) = idp.information_url {
        for (lang, _) in idp.display_names {
            ui = ui.child(
                Element::new("mdui", "InformationURL")
                    .attr("xml:lang", *lang)
                    .text(url),
            );
        }
    }
    if let Some((url, width, height)) = idp.logo {
        ui = ui.child(
            Element::new("mdui", "Logo")
                .attr("height", height.to_string())
                .attr("width", width.to_string())
                .text(url),
        );
    }
    let descriptor = Element::new("md", "IDPSSODescriptor")
        .attr("protocolSupportEnumeration", PROTOCOL_NS)
        .child(
            Element::new("md", "Extensions")
                .child(
                    Element::new("shibmd", "Scope")
                        .attr("regexp", "false")
                        .text(idp.scope),
                )
                .child(ui),
        )
        .children(std::iter::once(key).chain(others.iter().copied()).map(|k| {
            Element::new("md", "KeyDescriptor")
                .attr("use", "signing")
                .child(k.key_info())
        }))
        .children([BINDING_REDIRECT, BINDING_POST].map(|binding| {
            Element::new("md", "SingleLogoutService")
                .attr("Binding", binding)
                .attr("Location", idp.slo_url)
        }))
        .child(Element::new("md", "NameIDFormat").text(NAMEID_PERSISTENT))
        .child(Element::new("md", "NameIDFormat").text(NAMEID_TRANSIENT))
        .children([BINDING_REDIRECT, BINDING_POST].map(|binding| {
            Element::new("md", "SingleSignOnService")
                .attr("Binding", binding)
                .attr("Location", idp.sso_url)
        }));
    let mut entity = Element::new("md", "EntityDescriptor")
        .attr("ID", new_id())
        .attr("entityID", idp.entity_id)
        .attr("validUntil", format_instant(idp.valid_until))
        .child(descriptor);
    if let Some((name, url)) = idp.organization {
        let mut organization = Element::new("md", "Organization");
        for element in ["OrganizationName", "OrganizationDisplayName"] {
            for (lang, _) in idp.display_names {
                organization = organization.child(
                    Element::new("md", element)
                        .attr("xml:lang", *lang)
                        .text(name),
                );
            }
        }
        for (lang, _) in idp.display_names {
            organization = organization.child(
                Element::new("md", "OrganizationURL")
                    .attr("xml:lang", *lang)
                    .text(url),
            );
        }
        entity = entity.child(organization);
    }
    entity = entity.children(idp.contacts.iter().map(|(kind, address)| {
        let mailto = if address.starts_with("mailto:") {
            (*address).to_owned()
        } else {
            format!("mailto:{address}")
        };
        Element::new("md", "ContactPerson")
            .attr("contactType", *kind)
            .child(Element::new("md", "EmailAddress").text(mailto))
    }));
    sign_enveloped(&mut entity, 0, key)?;
    Ok(entity.canonical())
}

/// An assertion consumer service of a service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerService {
    /// Its binding.
    pub binding: String,
    /// Its URL.
    pub location: String,
    /// Its index.
    pub index: u16,
    /// `isDefault`, if given.
    pub is_default: Option<bool>,
}

/// A service provider, as its metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProvider {
    /// Its entity ID.
    pub entity_id: String,
    /// Its assertion consumer services, in document order.
    pub consumers: Vec<ConsumerService>,
    /// Certificates (DER) it signs with.
    pub signing_certificates: Vec<Vec<u8>>,
    /// Certificates (DER) it wants assertions encrypted to.
    pub encryption_certificates: Vec<Vec<u8>>,
    /// It signs its requests (`AuthnRequestsSigned`).
    pub signs_requests: bool,
    /// It wants assertions signed (`WantAssertionsSigned`).
    pub wants_assertions_signed: bool,
    /// Its single logout services, in document order.
    pub logout_services: Vec<LogoutService>,
    /// Its entity categories (`mdattr:EntityAttributes`,
    /// `http://macedir.org/entity-category`), as the federation registered them.
    pub entity_categories: Vec<String>,
    /// The attributes it requests (`RequestedAttribute` names, `urn:oid:…`).
    pub requested_attributes: Vec<String>,
}

/// The entity attributes namespace (SAML V2.0 Metadata Extension for Entity Attributes).
const MDATTR_NS: &str = "urn:oasis:names:tc:SAML:metadata:attribute";
/// The entity attribute carrying entity categories.
const ENTITY_CATEGORY: &str = "http://macedir.org/entity-category";

/// The entity categories of an `EntityDescriptor`.
fn entity_categories(entity: roxmltree::Node<'_, '_>) -> Vec<String> {
    entity
        .children()
        .filter(|n| n.has_tag_name((METADATA_NS, "Extensions")))
        .flat_map(|e| e.children())
        .filter(|n| n.has_tag_name((MDATTR_NS, "EntityAttributes")))
        .flat_map(|e| e.children())
        .filter(|n| {
            n.has_tag_name((super::ASSERTION_NS, "Attribute"))
                && n.attribute("Name") == Some(ENTITY_CATEGORY)
        })
        .flat_map(|a| a.children())
        .filter(|n| n.has_tag_name((super::ASSERTION_NS, "AttributeValue")))
        .filter_map(|v| v.text())
        .map(|t| t.trim().to_owned())
        .collect()
}

/// A single logout service of a service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutService {
    /// Its binding.
    pub binding: String,
    /// Where requests go.
    pub location: String,
    /// Where responses go (`ResponseLocation`, else `Location`).
    pub response_location: String,
}

impl ServiceProvider {
    /// Reads a service provider's metadata: an `EntityDescriptor` with an `SPSSODescriptor`
    /// for SAML 2.0.
    ///
    /// # Errors
    /// [`SamlError::Malformed`] if it is not such metadata, has no HTTP-POST assertion
    /// consumer service, or a certificate is not base64.
    pub fn parse(xml: &str) -> Result<Self, SamlError> {
        let doc = parse_document(xml)?;
        Self::from_entity(doc.root_element())
    }

    /// Reads a service provider from its `EntityDescriptor`, alone or in an aggregate.
    ///
    /// # Errors
    /// As [`ServiceProvider::parse`].
    pub fn from_entity(root: roxmltree::Node<'_, '_>) -> Result<Self, SamlError> {
        if !root.has_tag_name((METADATA_NS, "EntityDescriptor")) {
            return Err(SamlError::Malformed(
                "not SAML metadata of one entity (EntityDescriptor)".to_owned(),
            ));
        }
        let entity_id = root
            .attribute("entityID")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SamlError::Malformed("EntityDescriptor without entityID".to_owned()))?
            .to_owned();
        let descriptor = root
            .children()
            .find(|n| {
                n.has_tag_name((METADATA_NS, "SPSSODescriptor"))
                    && n.attribute("protocolSupportEnumeration")
                        .is_some_and(|p| p.split_whitespace().any(|p| p == PROTOCOL_NS))
            })
            .ok_or_else(|| {
                SamlError::Malformed(format!("{entity_id}: no SAML 2.0 SPSSODescriptor"))
            })?;
        let flag = |name: &str| matches!(descriptor.attribute(name), Some("true" | "1"));
        let mut sp = Self {
            entity_id,
            consumers: Vec::new(),
            signing_certificates: Vec::new(),
            encryption_certificates: Vec::new(),
            signs_requests: flag("AuthnRequestsSigned"),
            wants_assertions_signed: flag("WantAssertionsSigned"),
            logout_services: Vec::new(),
            entity_categories: entity_categories(root),
            requested_attributes: descriptor
                .descendants()
                .filter(|n| n.has_tag_name((METADATA_NS, "RequestedAttribute")))
                .filter_map(|n| n.attribute("Name"))
                .map(str::to_owned)
                .collect(),
        };
        for node in descriptor.children().filter(roxmltree::Node::is_element) {
            if node.has_tag_name((METADATA_NS, "KeyDescriptor")) {
                let certificates = node
                    .descendants()
                    .filter(|n| {
                        n.has_tag_name(("http://www.w3.org/2000/09/xmldsig#", "X509Certificate"))
                    })
                    .filter_map(|n| n.text());
                for certificate in certificates {
                    let compact: String = certificate.split_whitespace().collect();
                    let der = STANDARD.decode(compact).map_err(|_| {
                        SamlError::Malformed(format!(
                            "{}: a certificate is not base64",
                            sp.entity_id
                        ))
                    })?;
                    // A KeyDescriptor without `use` is for both.
                    match node.attribute("use") {
                        Some("signing") => sp.signing_certificates.push(der),
                        Some("encryption") => sp.encryption_certificates.push(der),
                        _ => {
                            sp.signing_certificates.push(der.clone());
                            sp.encryption_certificates.push(der);
                        }
                    }
                }
            } else if node.has_tag_name((METADATA_NS, "SingleLogoutService")) {
                if let (Some(binding), Some(location)) =
                    (node.attribute("Binding"), node.attribute("Location"))
                {
                    sp.logout_services.push(LogoutService {
                        binding: binding.to_owned(),
                        location: location.to_owned(),
                        response_location: node
                            .attribute("ResponseLocation")
                            .unwrap_or(location)
                            .to_owned(),
                    });
                }
            } else if node.has_tag_name((METADATA_NS, "AssertionConsumerService")) {
                let (Some(binding), Some(location), Some(index)) = (
                    node.attribute("Binding"),
                    node.attribute("Location"),
                    node.attribute("index").and_then(|i| i.parse().ok()),
                ) else {
                    return Err(SamlError::Malformed(format!(
                        "{}: an AssertionConsumerService lacks its Binding, Location or index",
                        sp.entity_id
                    )));
                };
                sp.consumers.push(ConsumerService {
                    binding: binding.to_owned(),
                    location: location.to_owned(),
                    index,
                    is_default: node.attribute("isDefault").map(|d| d == "true" || d == "1"),
                });
            }
        }
        if !sp.consumers.iter().any(|c| c.binding == BINDING_POST) {
            return Err(SamlError::Malformed(format!(
                "{}: no AssertionConsumerService with the HTTP-POST binding",
                sp.entity_id
            )));
        }
        Ok(sp)
    }

    /// Its single logout service through the browser: the first with the HTTP-Redirect
    /// binding, else the first with HTTP-POST; `None` when it offers neither. Requests go to
    /// its `location`, responses to its `response_location`.
    pub fn browser_logout_service(&self) -> Option<&LogoutService> {
        self.logout_services
            .iter()
            .find(|s| s.binding == BINDING_REDIRECT)
            .or_else(|| {
                self.logout_services
                    .iter()
                    .find(|s| s.binding == BINDING_POST)
            })
    }

    /// Where the response to a request goes: the consumer service the request names by URL
    /// (which must be one of the metadata's, exactly) or by index, else the default one
    /// (SAML 2.0 metadata §2.2.3: `isDefault="true"`, else the first not marked `false`,
    /// else the first); only HTTP-POST ones qualify.
    ///
    /// # Errors
    /// [`SamlError::UnknownConsumer`] if the request names one the metadata does not have,
    /// or one with another binding: nothing is sent there.
    pub fn consumer_for(
        &self,
        url: Option<&str>,
        index: Option<u16>,
    ) -> Result<&ConsumerService, SamlError> {
        let post = || self.consumers.iter().filter(|c| c.binding == BINDING_POST);
        let found = match (url, index) {
            (Some(url), _) => post().find(|c| c.location == url),
            (None, Some(index)) => post().find(|c| c.index == index),
            (None, None) => post()
                .find(|c| c.is_default == Some(true))
                .or_else(|| post().find(|c| c.is_default != Some(false)))
                .or_else(|| post().next()),
        };
        found.ok_or(SamlError::UnknownConsumer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::signature::tests::test_key;

    const SP: &str = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://sp.test/shibboleth">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol urn:oasis:names:tc:SAML:1.1:protocol" AuthnRequestsSigned="1">
    <md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
      AAEC
      AwQ=
    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>BQY=</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://sp.test/Shibboleth.sso/SAML2/Artifact" index="0"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.test/Shibboleth.sso/SAML2/POST" index="1"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.test/other/POST" index="2" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#;

    #[test]
    fn a_service_providers_metadata_is_read() {
        let sp = ServiceProvider::parse(SP).unwrap();
        assert_eq!(sp.entity_id, "https://sp.test/shibboleth");
        assert!(sp.signs_requests && !sp.wants_assertions_signed);
        assert_eq!(sp.signing_certificates, vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(
            sp.encryption_certificates,
            vec![vec![0, 1, 2, 3, 4], vec![5, 6]]
        );
        assert_eq!(sp.consumers.len(), 3);
    }

    #[test]
    fn the_consumer_service_is_one_of_the_metadatas_post_endpoints_or_none() {
        let sp = ServiceProvider::parse(SP).unwrap();
        let at = |url, index| sp.consumer_for(url, index).map(|c| c.location.as_str());
        assert_eq!(
            at(None, None),
            Ok("https://sp.test/other/POST"),
            "isDefault"
        );
        assert_eq!(
            at(Some("https://sp.test/Shibboleth.sso/SAML2/POST"), None),
            Ok("https://sp.test/Shibboleth.sso/SAML2/POST")
        );
        assert_eq!(
            at(None, Some(1)),
            Ok("https://sp.test/Shibboleth.sso/SAML2/POST")
        );
        for (url, index) in [
            (Some("https://evil.test/acs"), None),
            (Some("https://sp.test/Shibboleth.sso/SAML2/POST/"), None),
            (Some("https://sp.test/Shibboleth.sso/SAML2/Artifact"), None),
            (None, Some(0)),
            (None, Some(9)),
        ] {
            assert_eq!(
                at(url, index),
                Err(SamlError::UnknownConsumer),
                "{url:?} {index:?}"
            );
        }
    }

    #[test]
    fn metadata_that_is_not_a_service_provider_is_refused() {
        for xml in [
            r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>"#,
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>"#,
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://x/a" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
        ] {
            assert!(
                matches!(ServiceProvider::parse(xml), Err(SamlError::Malformed(_))),
                "{xml}"
            );
        }
    }

    #[test]
    fn the_identity_providers_metadata_is_signed_and_publishes_its_key() {
        let key = test_key();
        let xml = idp_metadata(
            &IdpDescription {
                entity_id: "https://idp.test/saml/metadata",
                sso_url: "https://idp.test/saml/SSO",
                slo_url: "https://idp.test/saml/SLO",
                scope: "univ.test",
                display_names: &[("fr", "Université de test"), ("en", "Test University")],
                valid_until: time::macros::datetime!(2027-01-01 00:00 UTC),
                logo: Some(("https://idp.test/logo.png", 80, 60)),
                information_url: Some("https://idp.test/aide"),
                organization: Some(("Université de test", "https://univ.test")),
                contacts: &[
                    ("technical", "dsi@univ.test"),
                    ("support", "mailto:aide@univ.test"),
                ],
            },
            &key,
            &[],
        )
        .unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(
            root.attribute("entityID"),
            Some("https://idp.test/saml/metadata")
        );
        assert_eq!(root.attribute("validUntil"), Some("2027-01-01T00:00:00Z"));
        assert_eq!(
            root.first_element_child().unwrap().tag_name().name(),
            "Signature"
        );
        assert!(xml.contains(&key.certificate_base64()));
        let sso: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "SingleSignOnService")
            .map(|n| n.attribute("Binding").unwrap())
            .collect();
        assert_eq!(sso, [BINDING_REDIRECT, BINDING_POST]);
        // What the federation's registry and discovery service read.
        let logo = doc
            .descendants()
            .find(|n| n.has_tag_name(("urn:oasis:names:tc:SAML:metadata:ui", "Logo")))
            .unwrap();
        assert_eq!(
            (
                logo.attribute("width"),
                logo.attribute("height"),
                logo.text()
            ),
            (Some("80"), Some("60"), Some("https://idp.test/logo.png"))
        );
        let children: Vec<_> = root
            .children()
            .filter(roxmltree::Node::is_element)
            .map(|n| n.tag_name().name())
            .collect();
        assert_eq!(
            children,
            [
                "Signature",
                "IDPSSODescriptor",
                "Organization",
                "ContactPerson",
                "ContactPerson"
            ],
            "the schema's order"
        );
        let contacts: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "EmailAddress")
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(contacts, ["mailto:dsi@univ.test", "mailto:aide@univ.test"]);
    }

    #[test]
    fn entity_categories_and_requested_attributes_are_read() {
        let xml = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:mdattr="urn:oasis:names:tc:SAML:metadata:attribute" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" entityID="https://sp.test/sp">
  <md:Extensions><mdattr:EntityAttributes>
    <saml:Attribute Name="http://macedir.org/entity-category" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
      <saml:AttributeValue>http://refeds.org/category/research-and-scholarship</saml:AttributeValue>
      <saml:AttributeValue>https://refeds.org/category/code-of-conduct/v2</saml:AttributeValue>
    </saml:Attribute>
    <saml:Attribute Name="http://macedir.org/entity-category-support"><saml:AttributeValue>other</saml:AttributeValue></saml:Attribute>
  </mdattr:EntityAttributes></md:Extensions>
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.test/acs" index="0"/>
    <md:AttributeConsumingService index="0"><md:ServiceName xml:lang="en">Test</md:ServiceName>
      <md:RequestedAttribute Name="urn:oid:0.9.2342.19200300.100.1.3" isRequired="true"/>
    </md:AttributeConsumingService>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#;
        let sp = ServiceProvider::parse(xml).unwrap();
        assert_eq!(
            sp.entity_categories,
            [
                "http://refeds.org/category/research-and-scholarship",
                "https://refeds.org/category/code-of-conduct/v2"
            ]
        );
        assert_eq!(
            sp.requested_attributes,
            ["urn:oid:0.9.2342.19200300.100.1.3"]
        );
    }
}
