//! `/samlValidate` (CAS Protocol 3.0 §4.2): the SAML 1.1 request a client POSTs, and the
//! SAML 1.1 response in the shape Apereo CAS writes (SOAP envelope, `samlp:Response`, an
//! `Assertion` with `Conditions`, `AuthenticationStatement` and `AttributeStatement`).
//!
//! The request is read with a pull parser that refuses any DOCTYPE (so no entity can be
//! declared: no external entity, no billion laughs), resolves only the five predefined
//! entities and character references, reads nothing but the given string, and refuses bodies
//! larger than [`MAX_SAML_REQUEST_BYTES`] before parsing (security row A18).

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use sesame_core::random;
use time::{Duration, OffsetDateTime};

use super::tickets::TicketGrant;
use super::xml::{date_time_millis, date_time_seconds, element, escape};
use super::{CasError, CasErrorCode};

/// Largest `/samlValidate` body accepted (a real one is under 1 KiB).
pub const MAX_SAML_REQUEST_BYTES: usize = 64 * 1024;

/// SAML 1.0/1.1 protocol namespace.
pub const SAML1_PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:1.0:protocol";
/// SAML 1.0/1.1 assertion namespace.
pub const SAML1_ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:1.0:assertion";
/// SOAP 1.1 envelope namespace.
pub const SOAP_ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Namespace Apereo CAS gives released attributes (`AttributeNamespace`).
pub const CAS_ATTRIBUTE_NS: &str = "http://www.ja-sig.org/products/cas/";
/// Authentication method of a password login (SAML 1.1 §7.1).
pub const AUTHN_METHOD_PASSWORD: &str = "urn:oasis:names:tc:SAML:1.0:am:password";
/// Subject confirmation method of CAS assertions.
pub const CONFIRMATION_METHOD_ARTIFACT: &str = "urn:oasis:names:tc:SAML:1.0:cm:artifact";
/// Apereo's default assertion validity (`NotOnOrAfter - NotBefore`): 30 seconds.
pub const ASSERTION_VALIDITY: Duration = Duration::seconds(30);

/// What Sesame needs from a `/samlValidate` request (§4.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlValidateRequest {
    /// The `samlp:AssertionArtifact`: the service ticket.
    pub ticket: String,
    /// The request's `RequestID`, echoed as `InResponseTo` (as Apereo does), if present.
    pub request_id: Option<String>,
}

fn bad_request(message: &str) -> CasError {
    CasError::new(CasErrorCode::InvalidRequest, message)
}

fn request_id_of(start: &BytesStart<'_>) -> Result<Option<String>, CasError> {
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|_| bad_request("malformed SAML request"))?;
        if attribute.key.as_ref() == b"RequestID" {
            let value = attribute
                .unescape_value()
                .map_err(|_| bad_request("malformed SAML request"))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// Reads the ticket (`samlp:AssertionArtifact`) from a `/samlValidate` body (§4.2.2–4.2.4).
/// See [`SamlValidateRequest::parse`] to get the `RequestID` as well.
///
/// # Errors
/// As [`SamlValidateRequest::parse`].
pub fn parse_saml_validate_request(body: &str) -> Result<String, CasError> {
    SamlValidateRequest::parse(body).map(|request| request.ticket)
}

impl SamlValidateRequest {
    /// Reads the ticket (`samlp:AssertionArtifact`, in the SAML 1.0 protocol namespace) and
    /// the `RequestID` from a `/samlValidate` body (§4.2.2–4.2.4).
    ///
    /// # Errors
    /// `INVALID_REQUEST` for a body over [`MAX_SAML_REQUEST_BYTES`], any DOCTYPE, an
    /// undeclared entity, malformed XML, or not exactly one non-empty `AssertionArtifact`.
    pub fn parse(body: &str) -> Result<Self, CasError> {
        parse_request(body)
    }
}

fn parse_request(body: &str) -> Result<SamlValidateRequest, CasError> {
    if body.len() > MAX_SAML_REQUEST_BYTES {
        return Err(bad_request("SAML request too large"));
    }
    let mut reader = NsReader::from_str(body);
    let mut ticket: Option<String> = None;
    let mut request_id = None;
    let mut in_artifact = false;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|_| bad_request("malformed SAML request"))?;
        let in_protocol_ns =
            matches!(ns, ResolveResult::Bound(n) if n.as_ref() == SAML1_PROTOCOL_NS.as_bytes());
        match event {
            Event::DocType(_) => {
                return Err(bad_request("DOCTYPE declarations are not accepted"));
            }
            Event::Start(start) | Event::Empty(start)
                if in_protocol_ns && start.local_name().as_ref() == b"Request" =>
            {
                request_id = request_id_of(&start)?;
            }
            Event::Start(start)
                if in_protocol_ns && start.local_name().as_ref() == b"AssertionArtifact" =>
            {
                if ticket.is_some() || in_artifact {
                    return Err(bad_request("more than one AssertionArtifact"));
                }
                in_artifact = true;
                ticket = Some(String::new());
            }
            Event::Empty(start)
                if in_protocol_ns && start.local_name().as_ref() == b"AssertionArtifact" =>
            {
                return Err(bad_request("empty AssertionArtifact"));
            }
            Event::End(end) if in_artifact && end.local_name().as_ref() == b"AssertionArtifact" => {
                in_artifact = false;
            }
            Event::Start(_) if in_artifact => {
                return Err(bad_request("unexpected element in AssertionArtifact"));
            }
            Event::Text(text) if in_artifact => {
                let text = text
                    .xml10_content()
                    .map_err(|_| bad_request("malformed SAML request"))?;
                if let Some(t) = ticket.as_mut() {
                    t.push_str(&text);
                }
            }
            Event::CData(data) if in_artifact => {
                let text = data
                    .xml10_content()
                    .map_err(|_| bad_request("malformed SAML request"))?;
                if let Some(t) = ticket.as_mut() {
                    t.push_str(&text);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|_| bad_request("malformed SAML request"))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference
                            .decode()
                            .map_err(|_| bad_request("malformed SAML request"))?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| bad_request("undeclared entity"))?
                            .to_owned()
                    }
                };
                if in_artifact {
                    if let Some(t) = ticket.as_mut() {
                        t.push_str(&resolved);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let ticket = ticket
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad_request("no AssertionArtifact in the SAML request"))?;
    Ok(SamlValidateRequest { ticket, request_id })
}

/// Everything a successful `/samlValidate` response states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saml11Success<'a> {
    /// The assertion's `Issuer` (Sesame's host name).
    pub issuer: &'a str,
    /// The `TARGET` service URL: the response's `Recipient` and the `Audience`.
    pub service: &'a str,
    /// The request's `RequestID`, as `InResponseTo`.
    pub in_response_to: Option<&'a str>,
    /// The authenticated user (`NameIdentifier`).
    pub user: &'a str,
    /// When credentials were entered (`AuthenticationInstant`, `authenticationDate`).
    pub authenticated_at: OffsetDateTime,
    /// Credentials were entered for this ticket (`isFromNewLogin`).
    pub is_from_new_login: bool,
    /// A "remember me" session: adds `longTermAuthenticationRequestTokenUsed = true` (§4.2.5.1;
    /// like Apereo, the attribute is only present when true).
    pub remember_me: bool,
    /// Released attributes (an attribute without values is left out).
    pub attributes: &'a [(String, Vec<String>)],
    /// `IssueInstant` of the response and the assertion.
    pub issue_instant: OffsetDateTime,
    /// `Conditions/@NotBefore`.
    pub not_before: OffsetDateTime,
    /// `Conditions/@NotOnOrAfter`.
    pub not_on_or_after: OffsetDateTime,
}

impl<'a> Saml11Success<'a> {
    /// The success for a validated `grant` at `now`, with Apereo's timing: issued and valid
    /// from `now`, for [`ASSERTION_VALIDITY`].
    pub fn from_grant(
        grant: &'a TicketGrant,
        issuer: &'a str,
        in_response_to: Option<&'a str>,
        attributes: &'a [(String, Vec<String>)],
        now: OffsetDateTime,
    ) -> Self {
        Self {
            issuer,
            service: &grant.service,
            in_response_to,
            user: &grant.login,
            authenticated_at: grant.authenticated_at,
            is_from_new_login: grant.from_new_login,
            remember_me: grant.remember_me,
            attributes,
            issue_instant: now,
            not_before: now,
            not_on_or_after: now + ASSERTION_VALIDITY,
        }
    }
}

/// A SAML/XML id: `_` and 32 random alphanumerics (an `xs:ID`, ≈ 190 bits).
fn new_saml_id() -> String {
    format!("_{}", random::alphanumeric(32))
}

fn response_open(
    out: &mut String,
    issue_instant: OffsetDateTime,
    recipient: Option<&str>,
    in_response_to: Option<&str>,
) {
    out.push_str(&format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"{SOAP_ENVELOPE_NS}\"><SOAP-ENV:Header/><SOAP-ENV:Body>\
         <Response xmlns=\"{SAML1_PROTOCOL_NS}\" xmlns:saml=\"{SAML1_ASSERTION_NS}\" \
         xmlns:samlp=\"{SAML1_PROTOCOL_NS}\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" IssueInstant=\"{}\" \
         MajorVersion=\"1\" MinorVersion=\"1\"",
        date_time_millis(issue_instant)
    ));
    if let Some(recipient) = recipient {
        out.push_str(&format!(" Recipient=\"{}\"", escape(recipient)));
    }
    if let Some(in_response_to) = in_response_to {
        out.push_str(&format!(" InResponseTo=\"{}\"", escape(in_response_to)));
    }
    out.push_str(&format!(" ResponseID=\"{}\">", new_saml_id()));
}

const RESPONSE_CLOSE: &str = "</Response></SOAP-ENV:Body></SOAP-ENV:Envelope>";

fn subject(out: &mut String, user: &str) {
    out.push_str("<Subject>");
    element(out, "NameIdentifier", user);
    out.push_str("<SubjectConfirmation>");
    element(out, "ConfirmationMethod", CONFIRMATION_METHOD_ARTIFACT);
    out.push_str("</SubjectConfirmation></Subject>");
}

fn attribute(out: &mut String, name: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    out.push_str(&format!(
        "<Attribute AttributeName=\"{}\" AttributeNamespace=\"{CAS_ATTRIBUTE_NS}\">",
        escape(name)
    ));
    for value in values {
        element(out, "AttributeValue", value);
    }
    out.push_str("</Attribute>");
}

/// The SOAP-wrapped SAML 1.1 success response (§4.2.5).
pub fn saml11_response_success(success: &Saml11Success<'_>) -> String {
    let mut out = String::with_capacity(2048);
    response_open(
        &mut out,
        success.issue_instant,
        Some(success.service),
        success.in_response_to,
    );
    out.push_str("<Status><StatusCode Value=\"samlp:Success\"></StatusCode></Status>");
    out.push_str(&format!(
        "<Assertion xmlns=\"{SAML1_ASSERTION_NS}\" AssertionID=\"{}\" IssueInstant=\"{}\" \
         Issuer=\"{}\" MajorVersion=\"1\" MinorVersion=\"1\">",
        new_saml_id(),
        date_time_millis(success.issue_instant),
        escape(success.issuer)
    ));
    out.push_str(&format!(
        "<Conditions NotBefore=\"{}\" NotOnOrAfter=\"{}\"><AudienceRestrictionCondition>",
        date_time_millis(success.not_before),
        date_time_millis(success.not_on_or_after)
    ));
    element(&mut out, "Audience", success.service);
    out.push_str("</AudienceRestrictionCondition></Conditions>");

    out.push_str(&format!(
        "<AuthenticationStatement AuthenticationInstant=\"{}\" AuthenticationMethod=\"{AUTHN_METHOD_PASSWORD}\">",
        date_time_millis(success.authenticated_at)
    ));
    subject(&mut out, success.user);
    out.push_str("</AuthenticationStatement>");

    out.push_str("<AttributeStatement>");
    subject(&mut out, success.user);
    for (name, values) in success.attributes {
        attribute(&mut out, name, values);
    }
    attribute(
        &mut out,
        "authenticationDate",
        &[date_time_seconds(success.authenticated_at)],
    );
    attribute(
        &mut out,
        "isFromNewLogin",
        &[success.is_from_new_login.to_string()],
    );
    if success.remember_me {
        attribute(
            &mut out,
            "longTermAuthenticationRequestTokenUsed",
            &["true".to_owned()],
        );
    }
    attribute(
        &mut out,
        "samlAuthenticationStatementAuthMethod",
        &[AUTHN_METHOD_PASSWORD.to_owned()],
    );
    out.push_str("</AttributeStatement></Assertion>");
    out.push_str(RESPONSE_CLOSE);
    out
}

/// The SOAP-wrapped SAML 1.1 failure, as Apereo's failure view: no assertion, status
/// `samlp:RequestDenied` (`samlp:Responder` for `INTERNAL_ERROR`, a fault on Sesame's side),
/// and `message` as the `StatusMessage`. `issue_instant` is the response's `IssueInstant`.
pub fn saml11_response_failure(
    code: CasErrorCode,
    message: &str,
    issue_instant: OffsetDateTime,
) -> String {
    let status = if code == CasErrorCode::InternalError {
        "samlp:Responder"
    } else {
        "samlp:RequestDenied"
    };
    let mut out = String::with_capacity(1024);
    response_open(&mut out, issue_instant, None, None);
    out.push_str(&format!(
        "<Status><StatusCode Value=\"{status}\"></StatusCode>"
    ));
    element(&mut out, "StatusMessage", message);
    out.push_str("</Status>");
    out.push_str(RESPONSE_CLOSE);
    out
}

#[cfg(test)]
mod tests {
    use roxmltree::Document;
    use time::macros::datetime;

    use super::*;

    /// As phpCAS and the Java client send it (§4.2.4).
    const APEREO_STYLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
	<SOAP-ENV:Header/>
	<SOAP-ENV:Body>
		<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1" RequestID="_192.168.16.51.1024506224022" IssueInstant="2002-06-19T17:03:44.022Z">
			<samlp:AssertionArtifact>ST-1-u4hrm3td92cLxpCvrjylcas.example.com</samlp:AssertionArtifact>
		</samlp:Request>
	</SOAP-ENV:Body>
</SOAP-ENV:Envelope>"#;

    #[test]
    fn parses_the_specification_example() {
        assert_eq!(
            parse_saml_validate_request(APEREO_STYLE).unwrap(),
            "ST-1-u4hrm3td92cLxpCvrjylcas.example.com"
        );
        let request = SamlValidateRequest::parse(APEREO_STYLE).unwrap();
        assert_eq!(request.ticket, "ST-1-u4hrm3td92cLxpCvrjylcas.example.com");
        assert_eq!(
            request.request_id.as_deref(),
            Some("_192.168.16.51.1024506224022")
        );
        // Another prefix, same namespace; character references resolve.
        let other = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><p:Request xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol" RequestID="r&amp;1"><p:AssertionArtifact>ST-&#65;bc</p:AssertionArtifact></p:Request></e:Body></e:Envelope>"#;
        let request = SamlValidateRequest::parse(other).unwrap();
        assert_eq!(request.ticket, "ST-Abc");
        assert_eq!(request.request_id.as_deref(), Some("r&1"));
    }

    #[test]
    fn refuses_what_is_not_one_artifact_in_the_protocol_namespace() {
        let wrong_ns =
            r#"<Request xmlns="urn:example"><AssertionArtifact>ST-1</AssertionArtifact></Request>"#;
        let none = r#"<Request xmlns="urn:oasis:names:tc:SAML:1.0:protocol"/>"#;
        let empty = r#"<p:AssertionArtifact xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol">  </p:AssertionArtifact>"#;
        let two = r#"<r xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol"><p:AssertionArtifact>ST-1</p:AssertionArtifact><p:AssertionArtifact>ST-2</p:AssertionArtifact></r>"#;
        let broken =
            r#"<p:AssertionArtifact xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol">ST-1</p:Other>"#;
        for body in [wrong_ns, none, empty, two, broken, "", "not xml"] {
            let err = parse_saml_validate_request(body).unwrap_err();
            assert_eq!(err.code, CasErrorCode::InvalidRequest, "{body}");
        }
        let big = format!("{}{}", APEREO_STYLE, " ".repeat(MAX_SAML_REQUEST_BYTES));
        assert!(parse_saml_validate_request(&big).is_err());
    }

    /// Security row A18: external entities.
    #[test]
    fn refuses_external_entities() {
        let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>
<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" RequestID="x"><samlp:AssertionArtifact>&xxe;</samlp:AssertionArtifact></samlp:Request>
</SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
        let err = parse_saml_validate_request(xxe).unwrap_err();
        assert_eq!(err.code, CasErrorCode::InvalidRequest);
        assert!(err.message.contains("DOCTYPE"));
        let external_dtd = r#"<!DOCTYPE r SYSTEM "http://169.254.169.254/latest"><r/>"#;
        assert!(parse_saml_validate_request(external_dtd).is_err());
        // An entity used without any declaration is refused too.
        let undeclared = r#"<p:AssertionArtifact xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol">&xxe;</p:AssertionArtifact>"#;
        assert_eq!(
            parse_saml_validate_request(undeclared).unwrap_err().code,
            CasErrorCode::InvalidRequest
        );
    }

    /// Security row A18: billion laughs.
    #[test]
    fn refuses_billion_laughs() {
        let mut dtd = String::from("<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
        for i in 1..10 {
            let prev = if i == 1 {
                "lol".to_owned()
            } else {
                format!("lol{}", i - 1)
            };
            dtd.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&{prev};").repeat(10)
            ));
        }
        dtd.push_str("]>");
        let body = format!(
            "{dtd}<p:AssertionArtifact xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\">&lol9;</p:AssertionArtifact>"
        );
        let err = parse_saml_validate_request(&body).unwrap_err();
        assert!(err.message.contains("DOCTYPE"));
    }

    fn attrs() -> Vec<(String, Vec<String>)> {
        vec![
            ("mail".to_owned(), vec!["alice@example.org".to_owned()]),
            (
                "eduPersonAffiliation".to_owned(),
                vec!["staff".to_owned(), "member".to_owned()],
            ),
            ("x\"><y".to_owned(), vec!["<&>".to_owned()]),
        ]
    }

    #[test]
    fn success_response_in_apereo_shape() {
        let attributes = attrs();
        let now = datetime!(2026-03-02 08:00:00.5 UTC);
        let xml = saml11_response_success(&Saml11Success {
            issuer: "sso.example.org",
            service: "https://app.example.org/cb?a=1&b=2",
            in_response_to: Some("_req\"1"),
            user: "alice",
            authenticated_at: datetime!(2026-03-02 07:59:58 UTC),
            is_from_new_login: true,
            remember_me: true,
            attributes: &attributes,
            issue_instant: now,
            not_before: now,
            not_on_or_after: now + ASSERTION_VALIDITY,
        });
        let doc = Document::parse(&xml).unwrap();
        let find = |ns: &str, name: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name((ns, name)))
                .unwrap_or_else(|| panic!("{name} in {xml}"))
        };
        let response = find(SAML1_PROTOCOL_NS, "Response");
        assert_eq!(response.attribute("InResponseTo"), Some("_req\"1"));
        assert_eq!(
            response.attribute("Recipient"),
            Some("https://app.example.org/cb?a=1&b=2")
        );
        assert!(response.attribute("ResponseID").unwrap().starts_with('_'));
        assert_eq!(
            find(SAML1_PROTOCOL_NS, "StatusCode").attribute("Value"),
            Some("samlp:Success")
        );
        let conditions = find(SAML1_ASSERTION_NS, "Conditions");
        assert_eq!(
            conditions.attribute("NotBefore"),
            Some("2026-03-02T08:00:00.500Z")
        );
        assert_eq!(
            conditions.attribute("NotOnOrAfter"),
            Some("2026-03-02T08:00:30.500Z")
        );
        assert_eq!(
            find(SAML1_ASSERTION_NS, "Audience").text(),
            Some("https://app.example.org/cb?a=1&b=2")
        );
        let authn = find(SAML1_ASSERTION_NS, "AuthenticationStatement");
        assert_eq!(
            authn.attribute("AuthenticationInstant"),
            Some("2026-03-02T07:59:58.000Z")
        );
        assert_eq!(
            find(SAML1_ASSERTION_NS, "NameIdentifier").text(),
            Some("alice")
        );
        let values = |name: &str| -> Vec<String> {
            doc.descendants()
                .filter(|n| {
                    n.has_tag_name((SAML1_ASSERTION_NS, "Attribute"))
                        && n.attribute("AttributeName") == Some(name)
                })
                .flat_map(|n| n.children().filter(roxmltree::Node::is_element))
                .map(|v| v.text().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(values("eduPersonAffiliation"), ["staff", "member"]);
        assert_eq!(values("x\"><y"), ["<&>"]);
        assert_eq!(values("longTermAuthenticationRequestTokenUsed"), ["true"]);
        assert_eq!(values("isFromNewLogin"), ["true"]);
        assert_eq!(values("authenticationDate"), ["2026-03-02T07:59:58Z"]);
        let assertion = find(SAML1_ASSERTION_NS, "Assertion");
        assert_eq!(assertion.attribute("Issuer"), Some("sso.example.org"));
        assert_ne!(
            assertion.attribute("AssertionID"),
            response.attribute("ResponseID")
        );
    }

    #[test]
    fn success_from_grant_omits_remember_me_when_false() {
        let grant = TicketGrant {
            service: "https://app.example.org/".to_owned(),
            service_id: "app".to_owned(),
            account_id: sesame_core::ids::AccountId::new_random(),
            login: "bob".to_owned(),
            authenticated_at: datetime!(2026-03-02 08:00 UTC),
            from_new_login: false,
            remember_me: false,
            session_key: "sso:x".to_owned(),
            proxies: Vec::new(),
            issued_at: datetime!(2026-03-02 08:00 UTC),
            attributes: None,
            methods: Vec::new(),
        };
        let now = datetime!(2026-03-02 08:00:01 UTC);
        let success = Saml11Success::from_grant(&grant, "sso.example.org", None, &[], now);
        assert_eq!(
            success.not_on_or_after - success.not_before,
            ASSERTION_VALIDITY
        );
        let xml = saml11_response_success(&success);
        let doc = Document::parse(&xml).unwrap();
        assert!(!xml.contains("longTermAuthenticationRequestTokenUsed"));
        assert!(doc
            .descendants()
            .all(|n| n.attribute("InResponseTo").is_none()));
    }

    #[test]
    fn failure_response_is_well_formed_and_escaped() {
        let message = "Ticket 'ST-1</StatusMessage></Status><Assertion>' not recognized";
        let xml = saml11_response_failure(
            CasErrorCode::InvalidTicket,
            message,
            datetime!(2026-03-02 08:00 UTC),
        );
        let doc = Document::parse(&xml).unwrap();
        assert!(!doc
            .descendants()
            .any(|n| n.has_tag_name((SAML1_ASSERTION_NS, "Assertion"))
                || n.has_tag_name((SAML1_PROTOCOL_NS, "Assertion"))));
        let code = doc
            .descendants()
            .find(|n| n.has_tag_name((SAML1_PROTOCOL_NS, "StatusCode")))
            .unwrap();
        assert_eq!(code.attribute("Value"), Some("samlp:RequestDenied"));
        let status_message = doc
            .descendants()
            .find(|n| n.has_tag_name((SAML1_PROTOCOL_NS, "StatusMessage")))
            .unwrap();
        assert_eq!(status_message.text(), Some(message));
        let internal = saml11_response_failure(
            CasErrorCode::InternalError,
            "try again",
            datetime!(2026-03-02 08:00 UTC),
        );
        assert!(Document::parse(&internal).is_ok());
        assert!(internal.contains("Value=\"samlp:Responder\""));
    }
}
