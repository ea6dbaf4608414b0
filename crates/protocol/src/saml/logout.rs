//! Single logout (SAML 2.0 profiles §4.4): a service provider's `LogoutRequest`, read within
//! the same bounds as an `AuthnRequest`, and Sesame's `LogoutResponse`, sent back over
//! HTTP-Redirect (the query signed) or HTTP-POST (the XML signed); and, when a session ends,
//! Sesame's own signed `LogoutRequest`s to the session's other SPs over SOAP
//! ([`SamlLogout`]).

use std::io::Write as _;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sesame_core::session::{AttachedProtocol, EndedSession};
use time::OffsetDateTime;

use super::issuer::IssuedAssertion;
use super::key_store::SamlKeySet;
use super::metadata::LogoutService;
use super::providers::{SamlServiceProvider, SamlServiceProviders};
use super::request::parse_document;
use super::signature::{sign_enveloped, SigningKey, RSA_SHA256};
use super::xml::Element;
use super::{
    format_instant, new_id, parse_instant, SamlError, ASSERTION_NS, BINDING_REDIRECT, PROTOCOL_NS,
};
use crate::issuer::{
    attachments_of, BrowserResponse, LogoutDelivery, LogoutEncoding, SingleLogout,
};

/// Second-level status: the session ended here, but not every SP of it was told.
pub const STATUS_PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";

/// A service provider's logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// Its `ID` (`InResponseTo` of the response).
    pub id: String,
    /// When it was made.
    pub issue_instant: OffsetDateTime,
    /// The SP's entity ID.
    pub issuer: String,
    /// Where it was sent, if it says.
    pub destination: Option<String>,
    /// The person, as the SP knows them (`NameID`).
    pub name_id: String,
    /// The sessions it names (`SessionIndex`); none: all of that person's at this SP.
    pub session_indexes: Vec<String>,
}

impl LogoutRequest {
    /// Reads a `LogoutRequest` from its XML.
    ///
    /// # Errors
    /// [`SamlError::Malformed`] if it is not XML (DTDs refused), not a SAML 2.0
    /// `LogoutRequest`, or lacks its `ID`, `IssueInstant`, `Issuer` or `NameID` (an encrypted
    /// `NameID` is not read: Sesame never sends one).
    pub fn parse(xml: &str) -> Result<Self, SamlError> {
        let doc = parse_document(xml)?;
        let root = doc.root_element();
        if !root.has_tag_name((PROTOCOL_NS, "LogoutRequest")) {
            return Err(SamlError::Malformed(
                "not a SAML 2.0 LogoutRequest".to_owned(),
            ));
        }
        let required = |name: &str| {
            root.attribute(name)
                .map(str::to_owned)
                .ok_or_else(|| SamlError::Malformed(format!("LogoutRequest without {name}")))
        };
        if required("Version")? != "2.0" {
            return Err(SamlError::Unsupported(
                "SAML version other than 2.0".to_owned(),
            ));
        }
        let text_of = |ns: &str, name: &str| {
            root.children()
                .find(|n| n.has_tag_name((ns, name)))
                .and_then(|n| n.text())
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        Ok(Self {
            id: required("ID")?,
            issue_instant: parse_instant(&required("IssueInstant")?)?,
            issuer: text_of(ASSERTION_NS, "Issuer")
                .ok_or_else(|| SamlError::Malformed("LogoutRequest without Issuer".to_owned()))?,
            destination: root.attribute("Destination").map(str::to_owned),
            name_id: text_of(ASSERTION_NS, "NameID")
                .ok_or_else(|| SamlError::Malformed("LogoutRequest without NameID".to_owned()))?,
            session_indexes: root
                .children()
                .filter(|n| n.has_tag_name((PROTOCOL_NS, "SessionIndex")))
                .filter_map(|n| n.text())
                .map(|t| t.trim().to_owned())
                .collect(),
        })
    }
}

/// A `LogoutResponse` to `in_response_to`, for `destination`, saying `status` (and
/// `sub_status`), unsigned (the binding decides how it is signed).
pub fn logout_response(
    idp: &str,
    destination: &str,
    in_response_to: &str,
    status: &str,
    sub_status: Option<&str>,
    now: OffsetDateTime,
) -> Element {
    let mut code = Element::new("samlp", "StatusCode").attr("Value", status);
    if let Some(sub) = sub_status {
        code = code.child(Element::new("samlp", "StatusCode").attr("Value", sub));
    }
    Element::new("samlp", "LogoutResponse")
        .attr("ID", new_id())
        .attr("Version", "2.0")
        .attr("IssueInstant", format_instant(now))
        .attr("Destination", destination)
        .attr("InResponseTo", in_response_to)
        .child(Element::new("saml", "Issuer").text(idp))
        .child(Element::new("samlp", "Status").child(code))
}

/// `response` for the HTTP-POST binding: signed (enveloped, after the `Issuer`), base64.
///
/// # Errors
/// [`SamlError::Key`] if signing fails.
pub fn post_encoded(mut response: Element, key: &SigningKey) -> Result<String, SamlError> {
    sign_enveloped(&mut response, 1, key)?;
    Ok(STANDARD.encode(response.canonical().as_bytes()))
}

/// `location` with `response` as the HTTP-Redirect binding carries it (SAML 2.0 bindings
/// §3.4.4): `SAMLResponse` (DEFLATE, base64), `RelayState`, `SigAlg` and the `Signature` of
/// those octets.
///
/// # Errors
/// [`SamlError::Malformed`] if `location` is not a URL; [`SamlError::Key`] if compressing or
/// signing fails.
pub fn redirect_url(
    location: &str,
    response: &Element,
    relay_state: Option<&str>,
    key: &SigningKey,
) -> Result<String, SamlError> {
    redirect_binding(location, "SAMLResponse", response, relay_state, key)
}

fn redirect_binding(
    location: &str,
    parameter: &str,
    message: &Element,
    relay_state: Option<&str>,
    key: &SigningKey,
) -> Result<String, SamlError> {
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater
        .write_all(message.canonical().as_bytes())
        .map_err(|e| SamlError::Key(format!("DEFLATE: {e}")))?;
    let deflated = deflater
        .finish()
        .map_err(|e| SamlError::Key(format!("DEFLATE: {e}")))?;
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mut signed = format!("{parameter}={}", encode(&STANDARD.encode(deflated)));
    if let Some(relay) = relay_state {
        signed.push_str(&format!("&RelayState={}", encode(relay)));
    }
    signed.push_str(&format!("&SigAlg={}", encode(RSA_SHA256)));
    let signature = key.sign(signed.as_bytes())?;
    let url = url::Url::parse(location)
        .map_err(|_| SamlError::Malformed(format!("not a URL: {location}")))?;
    let separator = if url.query().is_some() { '&' } else { '?' };
    Ok(format!(
        "{location}{separator}{signed}&Signature={}",
        encode(&STANDARD.encode(signature))
    ))
}

/// What a logout message is, for the parameter that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// `SAMLRequest`.
    Request,
    /// `SAMLResponse`.
    Response,
}

/// `message` sent through the browser to `service` (`location` for a request,
/// `response_location` for a response), signed for its binding: a redirect whose query is
/// signed (HTTP-Redirect), else a page posting the signed XML (HTTP-POST); `RelayState` kept.
///
/// # Errors
/// [`SamlError::Malformed`] if the location is not a URL; [`SamlError::Key`] if signing fails.
pub fn through_browser(
    service: &LogoutService,
    carried: Carried,
    message: Element,
    relay_state: Option<&str>,
    key: &SigningKey,
    title: &str,
) -> Result<BrowserResponse, SamlError> {
    let (parameter, location) = match carried {
        Carried::Request => ("SAMLRequest", &service.location),
        Carried::Response => ("SAMLResponse", &service.response_location),
    };
    if service.binding == BINDING_REDIRECT {
        return redirect_binding(location, parameter, &message, relay_state, key)
            .map(BrowserResponse::Redirect);
    }
    let mut fields = vec![(parameter.to_owned(), post_encoded(message, key)?)];
    if let Some(relay) = relay_state {
        fields.push(("RelayState".to_owned(), relay.to_owned()));
    }
    Ok(BrowserResponse::AutoPost {
        action: location.clone(),
        fields,
        title: title.to_owned(),
    })
}

/// An SP's answer to a logout request Sesame sent it through the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponseMessage {
    /// The SP's entity ID.
    pub issuer: String,
    /// The request it answers.
    pub in_response_to: Option<String>,
    /// Its top-level status.
    pub status: String,
}

impl LogoutResponseMessage {
    /// Reads a `LogoutResponse` from its XML.
    ///
    /// # Errors
    /// [`SamlError::Malformed`] if it is not XML (DTDs refused) or not a SAML 2.0
    /// `LogoutResponse` with its `Issuer`.
    pub fn parse(xml: &str) -> Result<Self, SamlError> {
        let doc = parse_document(xml)?;
        let root = doc.root_element();
        if !root.has_tag_name((PROTOCOL_NS, "LogoutResponse")) {
            return Err(SamlError::Malformed(
                "not a SAML 2.0 LogoutResponse".to_owned(),
            ));
        }
        let issuer = root
            .children()
            .find(|n| n.has_tag_name((ASSERTION_NS, "Issuer")))
            .and_then(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SamlError::Malformed("LogoutResponse without Issuer".to_owned()))?
            .to_owned();
        let status = root
            .children()
            .find(|n| n.has_tag_name((PROTOCOL_NS, "Status")))
            .and_then(|s| {
                s.children()
                    .find(|n| n.has_tag_name((PROTOCOL_NS, "StatusCode")))
            })
            .and_then(|c| c.attribute("Value"))
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            issuer,
            in_response_to: root.attribute("InResponseTo").map(str::to_owned),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::redirect_signature::{verify, RedirectSignature};
    use crate::saml::signature::tests::test_key;

    #[test]
    fn a_logout_request_is_read_with_its_name_and_sessions() {
        let xml = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_l1" Version="2.0" IssueInstant="2026-12-07T10:00:00Z" Destination="https://idp.test/saml/slo"><saml:Issuer>https://sp.test</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">abc</saml:NameID><samlp:SessionIndex>_s1</samlp:SessionIndex></samlp:LogoutRequest>"#;
        let request = LogoutRequest::parse(xml).unwrap();
        assert_eq!(request.issuer, "https://sp.test");
        assert_eq!(request.name_id, "abc");
        assert_eq!(request.session_indexes, ["_s1"]);
        assert!(LogoutRequest::parse(&xml.replace("saml:NameID", "saml:Other")).is_err());
        assert!(LogoutRequest::parse(&xml.replace("LogoutRequest", "AuthnRequest")).is_err());
    }

    #[test]
    fn a_front_channel_request_names_the_person_as_the_sp_knows_them_and_is_signed() {
        let key = test_key();
        let given = IssuedAssertion {
            name_id: "pairwise-1".to_owned(),
            format: crate::saml::NAMEID_PERSISTENT.to_owned(),
            session_index: "_s9".to_owned(),
        };
        let (id, request) = logout_request(
            "https://idp.test/saml/metadata",
            "https://sp.test",
            "https://sp.test/slo",
            &given,
            OffsetDateTime::UNIX_EPOCH,
        );
        let xml = request.canonical();
        assert!(xml.contains(&format!("ID=\"{id}\"")), "{xml}");
        assert!(
            xml.contains(">pairwise-1</saml:NameID>") && xml.contains(">_s9</samlp:SessionIndex>")
        );
        let service = LogoutService {
            binding: BINDING_REDIRECT.to_owned(),
            location: "https://sp.test/slo".to_owned(),
            response_location: "https://sp.test/slo-answer".to_owned(),
        };
        let Ok(BrowserResponse::Redirect(url)) = through_browser(
            &service,
            Carried::Request,
            request,
            Some("chain"),
            &key,
            "SP",
        ) else {
            panic!("a redirect");
        };
        let query = url.split_once('?').unwrap().1;
        assert!(query.starts_with("SAMLRequest="), "{query}");
        let certificate = STANDARD.decode(key.certificate_base64()).unwrap();
        assert_eq!(
            verify(query, std::slice::from_ref(&certificate)).unwrap(),
            RedirectSignature::Verified
        );
    }

    #[test]
    fn an_sps_logout_response_is_read_with_what_it_answers() {
        let xml = r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0" IssueInstant="2026-12-07T10:00:00Z" InResponseTo="_q"><saml:Issuer>https://sp.test</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#;
        let response = LogoutResponseMessage::parse(xml).unwrap();
        assert_eq!(response.issuer, "https://sp.test");
        assert_eq!(response.in_response_to.as_deref(), Some("_q"));
        assert_eq!(response.status, crate::saml::STATUS_SUCCESS);
        assert!(LogoutResponseMessage::parse(&xml.replace("saml:Issuer", "saml:Other")).is_err());
        assert!(LogoutResponseMessage::parse(&xml.replace("LogoutResponse", "Response")).is_err());
    }

    #[test]
    fn a_redirect_response_carries_a_signature_its_receiver_verifies() {
        let key = test_key();
        let response = logout_response(
            "https://idp.test/saml/metadata",
            "https://sp.test/slo",
            "_l1",
            crate::saml::STATUS_SUCCESS,
            None,
            OffsetDateTime::UNIX_EPOCH,
        );
        let url = redirect_url("https://sp.test/slo?x=1", &response, Some("r"), &key).unwrap();
        let query = url.split_once('?').unwrap().1;
        // What an SP checks: the same octets, with the IdP's certificate.
        let certificate = STANDARD.decode(key.certificate_base64()).unwrap();
        assert_eq!(
            verify(query, std::slice::from_ref(&certificate)).unwrap(),
            RedirectSignature::Verified
        );
        let changed = query.replace("RelayState=r", "RelayState=s");
        assert!(verify(&changed, &[certificate]).is_err());
    }
}

/// The SOAP binding (SAML 2.0 bindings §3.2): back-channel logout requests.
pub const BINDING_SOAP: &str = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP";

/// A signed `LogoutRequest` for the SP `sp`, naming the person as that SP was told
/// (`given`) and the session index, in a SOAP 1.1 envelope (the signature covers the request
/// in its exclusive canonical form, whatever wraps it).
///
/// # Errors
/// [`SamlError::Key`] if signing fails.
pub fn soap_logout_request(
    idp: &str,
    sp: &str,
    destination: &str,
    given: &IssuedAssertion,
    now: OffsetDateTime,
    key: &SigningKey,
) -> Result<String, SamlError> {
    let (_, mut request) = logout_request(idp, sp, destination, given, now);
    sign_enveloped(&mut request, 1, key)?;
    Ok(format!(
        r#"<soap11:Envelope xmlns:soap11="http://schemas.xmlsoap.org/soap/envelope/"><soap11:Body>{}</soap11:Body></soap11:Envelope>"#,
        request.canonical()
    ))
}

/// An unsigned `LogoutRequest` to the SP `sp` at `destination`, naming the person as that SP
/// was told (`given`) and the session index, with its `ID`.
pub fn logout_request(
    idp: &str,
    sp: &str,
    destination: &str,
    given: &IssuedAssertion,
    now: OffsetDateTime,
) -> (String, Element) {
    let id = new_id();
    let request = Element::new("samlp", "LogoutRequest")
        .attr("ID", id.clone())
        .attr("Version", "2.0")
        .attr("IssueInstant", format_instant(now))
        .attr("Destination", destination)
        .attr(
            "NotOnOrAfter",
            format_instant(now + time::Duration::minutes(5)),
        )
        .child(Element::new("saml", "Issuer").text(idp))
        .child(
            Element::new("saml", "NameID")
                .attr("Format", given.format.clone())
                .attr("NameQualifier", idp)
                .attr("SPNameQualifier", sp)
                .text(given.name_id.clone()),
        )
        .child(Element::new("samlp", "SessionIndex").text(given.session_index.clone()));
    (id, request)
}

/// An SP of an ended session that is told through the browser: no SOAP service, but an
/// HTTP-Redirect or HTTP-POST one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrontChannelParty {
    /// Its entity ID.
    pub sp: String,
    /// What it was given.
    pub given: IssuedAssertion,
}

/// SAML's part in ending a session: a signed `LogoutRequest` over SOAP to every SP of the
/// session that offers a SOAP single logout service. SPs that offer only front-channel
/// bindings are told through the browser when it is at hand ([`front_channel_parties`]:
/// a logout in this browser), not when a session ends elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct SamlLogout<'a> {
    /// The identity provider's entity ID.
    pub entity_id: &'a str,
    /// The signing keys.
    pub keys: &'a SamlKeySet,
    /// The service providers.
    pub providers: &'a SamlServiceProviders,
}

/// The SPs of `ended` to tell through the browser (no SOAP service, but an HTTP-Redirect or
/// HTTP-POST one), in the order they were given assertions.
pub fn front_channel_parties(
    providers: &SamlServiceProviders,
    ended: &EndedSession,
) -> Vec<FrontChannelParty> {
    attachments_of(ended, AttachedProtocol::Saml)
        .filter_map(|item| {
            let sp = providers.get(&item.party)?;
            if soap_service(&sp).is_some() {
                return None;
            }
            sp.metadata.browser_logout_service()?;
            let given = serde_json::from_str::<IssuedAssertion>(&item.payload).ok()?;
            Some(FrontChannelParty {
                sp: sp.metadata.entity_id.clone(),
                given,
            })
        })
        .collect()
}

/// Whether the SP `party` can be told of a logout at all: over the back channel, or through
/// the browser.
pub fn reachable(providers: &SamlServiceProviders, party: &str) -> bool {
    providers.get(party).is_some_and(|sp| {
        soap_service(&sp).is_some() || sp.metadata.browser_logout_service().is_some()
    })
}

fn soap_service(sp: &SamlServiceProvider) -> Option<&str> {
    sp.metadata
        .logout_services
        .iter()
        .find(|s| s.binding == BINDING_SOAP)
        .map(|s| s.location.as_str())
}

#[async_trait]
impl SingleLogout for SamlLogout<'_> {
    fn protocol(&self) -> AttachedProtocol {
        AttachedProtocol::Saml
    }

    async fn logouts(&self, ended: &EndedSession, now: OffsetDateTime) -> Vec<LogoutDelivery> {
        let Some(key) = self.keys.current(now) else {
            tracing::error!("no SAML key may sign: no logout request sent");
            return Vec::new();
        };
        attachments_of(ended, AttachedProtocol::Saml)
            .filter_map(|item| {
                let sp = self.providers.get(&item.party)?;
                let target = soap_service(&sp)?;
                let given = serde_json::from_str::<IssuedAssertion>(&item.payload).ok()?;
                match soap_logout_request(
                    self.entity_id,
                    &sp.metadata.entity_id,
                    target,
                    &given,
                    now,
                    &key.key,
                ) {
                    Ok(body) => Some(LogoutDelivery {
                        party: sp.metadata.entity_id.clone(),
                        target: target.to_owned(),
                        encoding: LogoutEncoding::Soap,
                        body,
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, "could not sign a SAML logout request");
                        None
                    }
                }
            })
            .collect()
    }
}
