//! Responses to `AuthnRequest`s (SAML 2.0 core §3.3.3, the Web Browser SSO profile §4.1.4.2):
//! a signed assertion about the person for one service provider, or a status saying why not.

use time::{Duration, OffsetDateTime};

use super::encryption::{encrypt, EncryptionKey};
use super::signature::{sign_enveloped, SigningKey};
use super::xml::Element;
use super::{
    format_instant, new_id, SamlError, ATTRNAME_BASIC, ATTRNAME_URI, NAMEID_PERSISTENT,
    STATUS_SUCCESS,
};

/// How long an assertion may be presented (`NotOnOrAfter`): it is consumed at once by the
/// browser's automatic POST.
pub const ASSERTION_LIFETIME: Duration = Duration::minutes(5);
/// Clock skew allowed to service providers before `NotBefore`.
pub const CLOCK_SKEW: Duration = Duration::minutes(1);

/// The subject's name for one service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameId {
    /// Its format (persistent, transient).
    pub format: String,
    /// Its value.
    pub value: String,
}

/// An attribute released: its `urn:oid:` name, friendly name and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedAttribute {
    /// `Name`: a URI (`urn:oid:…`), or a plain name in the basic format for the SPs whose own
    /// specification names attributes so (the GAR).
    pub name: String,
    /// `FriendlyName` (`mail`, `eduPersonPrincipalName`).
    pub friendly_name: String,
    /// Its values.
    pub values: Vec<String>,
    /// Each value is a persistent `NameID` with these qualifiers (`eduPersonTargetedID`),
    /// not text.
    pub as_name_id: Option<NameIdQualifiers>,
}

/// The name format `name` is written in (SAML 2.0 core §2.7.3.1): URI for `urn:oid:` and
/// other URIs, basic for a plain name.
fn name_format(name: &str) -> &'static str {
    if name.contains(':') {
        ATTRNAME_URI
    } else {
        ATTRNAME_BASIC
    }
}

/// The qualifiers of a `NameID` written as an attribute value: the identity provider's and
/// the service provider's entity IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameIdQualifiers {
    /// `NameQualifier`.
    pub idp: String,
    /// `SPNameQualifier`.
    pub sp: String,
}

/// What a successful response says.
#[derive(Debug, Clone)]
pub struct Assertion<'a> {
    /// The identity provider's entity ID (`Issuer`).
    pub idp: &'a str,
    /// The service provider's entity ID (`Audience`, `SPNameQualifier`).
    pub sp: &'a str,
    /// The assertion consumer service URL (`Destination`, `Recipient`).
    pub consumer_url: &'a str,
    /// The request answered (`InResponseTo`); `None` for an unsolicited response.
    pub in_response_to: Option<&'a str>,
    /// The subject.
    pub name_id: NameId,
    /// When the person authenticated (`AuthnInstant`).
    pub authn_instant: OffsetDateTime,
    /// The session this login belongs to, as the service provider will name it in a logout
    /// request (`SessionIndex`).
    pub session_index: &'a str,
    /// The authentication context class (`AuthnContextClassRef`).
    pub authn_context: &'a str,
    /// The attributes released to this service provider.
    pub attributes: &'a [ReleasedAttribute],
    /// Now.
    pub now: OffsetDateTime,
}

/// A `Response` carrying `assertion`, the assertion signed with `key` (then encrypted for
/// `encrypt_for`, when given), and the whole response signed too when `sign_response` (some
/// service providers ask for both).
///
/// # Errors
/// [`SamlError::Key`] if signing or encryption fails.
pub fn success(
    assertion: &Assertion<'_>,
    key: &SigningKey,
    sign_response: bool,
    encrypt_for: Option<&EncryptionKey>,
) -> Result<String, SamlError> {
    let a = assertion;
    let now = format_instant(a.now);
    let until = format_instant(a.now + ASSERTION_LIFETIME);
    let mut confirmation = Element::new("saml", "SubjectConfirmationData")
        .attr("NotOnOrAfter", until.clone())
        .attr("Recipient", a.consumer_url);
    if let Some(request) = a.in_response_to {
        confirmation.set_attr("InResponseTo", request);
    }
    let subject = Element::new("saml", "Subject")
        .child(
            Element::new("saml", "NameID")
                .attr("Format", a.name_id.format.clone())
                .attr("NameQualifier", a.idp)
                .attr("SPNameQualifier", a.sp)
                .text(a.name_id.value.clone()),
        )
        .child(
            Element::new("saml", "SubjectConfirmation")
                .attr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
                .child(confirmation),
        );
    let conditions = Element::new("saml", "Conditions")
        .attr("NotBefore", format_instant(a.now - CLOCK_SKEW))
        .attr("NotOnOrAfter", until)
        .child(
            Element::new("saml", "AudienceRestriction")
                .child(Element::new("saml", "Audience").text(a.sp)),
        );
    let authn = Element::new("saml", "AuthnStatement")
        .attr("AuthnInstant", format_instant(a.authn_instant))
        .attr("SessionIndex", a.session_index)
        .child(
            Element::new("saml", "AuthnContext")
                .child(Element::new("saml", "AuthnContextClassRef").text(a.authn_context)),
        );
    let mut signed = Element::new("saml", "Assertion")
        .attr("ID", new_id())
        .attr("IssueInstant", now.clone())
        .attr("Version", "2.0")
        .child(Element::new("saml", "Issuer").text(a.idp))
        .child(subject)
        .child(conditions)
        .child(authn);
    if !a.attributes.is_empty() {
        signed = signed.child(Element::new("saml", "AttributeStatement").children(
            a.attributes.iter().map(|attribute| {
                Element::new("saml", "Attribute")
                    .attr("Name", attribute.name.clone())
                    .attr("NameFormat", name_format(&attribute.name))
                    .attr("FriendlyName", attribute.friendly_name.clone())
                    .children(attribute.values.iter().map(|v| {
                        let value = Element::new("saml", "AttributeValue");
                        match &attribute.as_name_id {
                            None => value.text(v.clone()),
                            Some(q) => value.child(
                                Element::new("saml", "NameID")
                                    .attr("Format", NAMEID_PERSISTENT)
                                    .attr("NameQualifier", q.idp.clone())
                                    .attr("SPNameQualifier", q.sp.clone())
                                    .text(v.clone()),
                            ),
                        }
                    }))
            }),
        ));
    }
    // The signature goes right after the Issuer (the assertion schema's order).
    sign_enveloped(&mut signed, 1, key)?;
    let response = response(
        a.idp,
        a.consumer_url,
        a.in_response_to,
        &now,
        STATUS_SUCCESS,
        None,
    );
    let response_with_assertion = match encrypt_for {
        Some(sp_key) => response.child(encrypt(
            Element::new("saml", "EncryptedAssertion"),
            signed.canonical().as_bytes(),
            sp_key,
        )?),
        None => response.child(signed),
    };
    let mut response = response_with_assertion;
    if sign_response {
        sign_enveloped(&mut response, 1, key)?;
    }
    Ok(response.canonical())
}

/// A `Response` without assertion, saying why (`status`, and a second-level `sub_status` such
/// as `NoPassive`), signed with `key`.
///
/// # Errors
/// [`SamlError::Key`] if signing fails.
pub fn failure(
    idp: &str,
    consumer_url: &str,
    in_response_to: Option<&str>,
    status: &str,
    sub_status: Option<&str>,
    now: OffsetDateTime,
    key: &SigningKey,
) -> Result<String, SamlError> {
    let mut response = response(
        idp,
        consumer_url,
        in_response_to,
        &format_instant(now),
        status,
        sub_status,
    );
    sign_enveloped(&mut response, 1, key)?;
    Ok(response.canonical())
}

fn response(
    idp: &str,
    consumer_url: &str,
    in_response_to: Option<&str>,
    now: &str,
    status: &str,
    sub_status: Option<&str>,
) -> Element {
    let mut code = Element::new("samlp", "StatusCode").attr("Value", status);
    if let Some(sub) = sub_status {
        code = code.child(Element::new("samlp", "StatusCode").attr("Value", sub));
    }
    let mut response = Element::new("samlp", "Response")
        .attr("ID", new_id())
        .attr("Version", "2.0")
        .attr("IssueInstant", now)
        .attr("Destination", consumer_url)
        .child(Element::new("saml", "Issuer").text(idp))
        .child(Element::new("samlp", "Status").child(code));
    if let Some(request) = in_response_to {
        response.set_attr("InResponseTo", request);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::signature::tests::test_key;
    use crate::saml::{ASSERTION_NS, PROTOCOL_NS, STATUS_RESPONDER};

    fn sample<'a>(attributes: &'a [ReleasedAttribute]) -> Assertion<'a> {
        Assertion {
            idp: "https://idp.test/saml/metadata",
            sp: "https://sp.test/shibboleth",
            consumer_url: "https://sp.test/Shibboleth.sso/SAML2/POST",
            in_response_to: Some("_r1"),
            name_id: NameId {
                format: NAMEID_PERSISTENT.to_owned(),
                value: "pairwise-1".to_owned(),
            },
            authn_instant: time::macros::datetime!(2026-12-07 05:59 UTC),
            session_index: "_s1",
            authn_context: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
            attributes,
            now: time::macros::datetime!(2026-12-07 06:00 UTC),
        }
    }

    #[test]
    fn a_success_carries_a_signed_assertion_for_the_audience_and_recipient() {
        let attributes = [ReleasedAttribute {
            name: "urn:oid:0.9.2342.19200300.100.1.3".to_owned(),
            friendly_name: "mail".to_owned(),
            values: vec!["ada@univ.test".to_owned(), "a&b<c>@univ.test".to_owned()],
            as_name_id: None,
        }];
        let xml = success(&sample(&attributes), &test_key(), false, None).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert!(root.has_tag_name((PROTOCOL_NS, "Response")));
        assert_eq!(root.attribute("InResponseTo"), Some("_r1"));
        let text_of = |name: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name((ASSERTION_NS, name)))
                .and_then(|n| n.text())
        };
        assert_eq!(text_of("Audience"), Some("https://sp.test/shibboleth"));
        assert_eq!(text_of("NameID"), Some("pairwise-1"));
        let assertion = doc
            .descendants()
            .find(|n| n.has_tag_name((ASSERTION_NS, "Assertion")))
            .unwrap();
        let children: Vec<_> = assertion
            .children()
            .filter(roxmltree::Node::is_element)
            .map(|n| n.tag_name().name())
            .collect();
        assert_eq!(
            children,
            [
                "Issuer",
                "Signature",
                "Subject",
                "Conditions",
                "AuthnStatement",
                "AttributeStatement"
            ]
        );
        let values: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name((ASSERTION_NS, "AttributeValue")))
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(values, ["ada@univ.test", "a&b<c>@univ.test"]);
        let confirmation = doc
            .descendants()
            .find(|n| n.has_tag_name((ASSERTION_NS, "SubjectConfirmationData")))
            .unwrap();
        assert_eq!(
            confirmation.attribute("Recipient"),
            Some("https://sp.test/Shibboleth.sso/SAML2/POST")
        );
        assert_eq!(
            confirmation.attribute("NotOnOrAfter"),
            Some("2026-12-07T06:05:00Z")
        );
        // The response itself is not signed unless asked.
        assert_eq!(
            root.children()
                .filter(|n| n.tag_name().name() == "Signature")
                .count(),
            0
        );
        let both = success(&sample(&attributes), &test_key(), true, None).unwrap();
        assert_eq!(both.matches("<ds:Signature ").count(), 2, "{both}");
    }

    #[test]
    fn uris_are_named_in_the_uri_format_and_plain_names_in_the_basic_one() {
        let attribute = |name: &str| ReleasedAttribute {
            name: name.to_owned(),
            friendly_name: name.to_owned(),
            values: vec!["v".to_owned()],
            as_name_id: None,
        };
        let attributes = [
            attribute("urn:oid:0.9.2342.19200300.100.1.3"),
            attribute("GARPersonIdentifiant"),
        ];
        let xml = success(&sample(&attributes), &test_key(), false, None).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let formats: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name((ASSERTION_NS, "Attribute")))
            .map(|n| (n.attribute("Name"), n.attribute("NameFormat")))
            .collect();
        assert_eq!(
            formats,
            [
                (
                    Some("urn:oid:0.9.2342.19200300.100.1.3"),
                    Some(ATTRNAME_URI)
                ),
                (Some("GARPersonIdentifiant"), Some(ATTRNAME_BASIC)),
            ]
        );
    }

    #[test]
    fn a_failure_says_why_and_carries_no_assertion() {
        let xml = failure(
            "https://idp.test/saml/metadata",
            "https://sp.test/acs",
            Some("_r1"),
            STATUS_RESPONDER,
            Some("urn:oasis:names:tc:SAML:2.0:status:NoPassive"),
            time::macros::datetime!(2026-12-07 06:00 UTC),
            &test_key(),
        )
        .unwrap();
        assert!(!xml.contains("Assertion"));
        assert!(xml.contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"));
    }
}
