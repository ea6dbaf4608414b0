//! Property ("fuzz") targets of the protocol parsers and writers (issue 6): the service URL
//! parser and registry matcher, the CAS XML and JSON writers (read back by strict parsers),
//! the `/samlValidate` reader and the `id_token_hint` reader. They run in the ordinary unit
//! run with proptest's default 256 cases; `make fuzz` runs them with `PROPTEST_CASES` many
//! more. cargo-fuzz needs a nightly toolchain, which is not available here (docs/faults.md).
//! A failing input proptest finds is kept in `proptest-regressions/` and becomes a named
//! regression test below.

use proptest::prelude::{prop_assert, prop_assert_eq, prop_oneof, proptest, Just, Strategy};
use sesame_core::login::methods::AuthnMethod;
use sesame_protocol::cas::response::{
    service_response_failure, service_response_failure_json, service_response_success,
    service_response_success_json, Success,
};
use sesame_protocol::cas::saml::parse_saml_validate_request;
use sesame_protocol::cas::CasErrorCode;
use sesame_protocol::oidc::clients::SigningAlg;
use sesame_protocol::oidc::keys::{generate_signing_key, KeySet, VerifyOptions};
use sesame_protocol::services::{parse_service_url, RegisteredService, ServiceRegistry};
use time::OffsetDateTime;

const EXACT: &str = "https://app.example.com/cb";
const PREFIX: &str = "https://portal.example.org/moodle/";

fn service(id: &str, key: &str, url: &str) -> RegisteredService {
    toml::from_str(&format!(
        "id = \"{id}\"\nname = \"{id}\"\n{key} = \"{url}\"\n"
    ))
    .unwrap_or_else(|e| panic!("valid service definition: {e}"))
}

fn registry() -> ServiceRegistry {
    ServiceRegistry::new(vec![
        service("exact", "url", EXACT),
        service("prefix", "url_prefix", PREFIX),
    ])
    .unwrap_or_else(|e| panic!("valid registry: {e}"))
}

/// Pieces attackers put in URLs (A09): look-alike hosts, userinfo, encoded and raw dot
/// segments, backslashes, whitespace, schemes.
fn url_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://".to_owned()),
        Just("HTTPS://".to_owned()),
        Just("http://".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("/".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2E".to_owned()),
        Just("%252e".to_owned()),
        Just(";".to_owned()),
        Just("@".to_owned()),
        Just(":443".to_owned()),
        Just(":8443".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just("app.example.com".to_owned()),
        Just("portal.example.org".to_owned()),
        Just("evil.example".to_owned()),
        Just("moodle".to_owned()),
        Just("cb".to_owned()),
        Just("javascript:".to_owned()),
        Just("data:".to_owned()),
        "[a-zA-Z0-9._~-]{1,8}",
    ]
}

fn url_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(url_piece(), 1..12).prop_map(|parts| parts.concat())
}

/// What a match under the prefix registration must keep.
fn prefix_match_is_sound(candidate: &str) -> bool {
    let Ok(url) = parse_service_url(candidate) else {
        return false;
    };
    let path = url.path().to_ascii_lowercase();
    url.scheme() == "https"
        && url.host_str() == Some("portal.example.org")
        && url.port_or_known_default() == Some(443)
        && url.username().is_empty()
        && url.password().is_none()
        && path.starts_with("/moodle/")
        && !path.split('/').any(is_dot_segment)
}

/// A path segment that is `.` or `..` once percent-decoded, however many times encoded.
fn is_dot_segment(segment: &str) -> bool {
    let mut s = segment.to_owned();
    loop {
        let decoded = s.replace("%25", "%").replace("%2e", ".");
        if decoded == s {
            return s == "." || s == "..";
        }
        s = decoded;
    }
}

proptest! {
    #[test]
    fn prop_service_parser_and_matcher_never_panic(s in ".{0,200}") {
        let _ = parse_service_url(&s);
        let _ = registry().find(&s);
    }

    #[test]
    fn prop_only_the_exact_string_matches_an_exact_registration(s in url_like()) {
        let found = registry().find(&s).map(|r| r.id.clone());
        if found.as_deref() == Some("exact") {
            prop_assert_eq!(s.as_str(), EXACT);
        }
    }

    #[test]
    fn prop_edits_of_the_exact_string_never_match_it(
        at in 0usize..EXACT.len(),
        piece in url_piece(),
        delete in proptest::bool::ANY,
    ) {
        let mut edited = EXACT.to_owned();
        if delete {
            edited.remove(at);
        }
        edited.insert_str(at.min(edited.len()), &piece);
        let found = registry().find(&edited).map(|r| r.id.clone());
        prop_assert!(found.as_deref() != Some("exact") || edited == EXACT, "{edited:?}");
    }

    #[test]
    fn prop_a_prefix_match_keeps_the_origin_and_refuses_dot_segments(suffix in url_like()) {
        for candidate in [format!("{PREFIX}{suffix}"), suffix.clone()] {
            if registry().find(&candidate).map(|r| r.id.as_str() == "prefix").unwrap_or(false) {
                prop_assert!(prefix_match_is_sound(&candidate), "{candidate:?}");
            }
        }
    }
}

fn when() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Printable text: XML 1.0 characters without the controls a parser normalises (CR, TAB).
fn xml_text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn parse_strictly(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            ..roxmltree::ParsingOptions::default()
        },
    )
    .map_err(|e| format!("{e}: {xml}"))
}

fn text_of(doc: &roxmltree::Document<'_>, name: &str) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or_default().to_owned())
        .collect()
}

proptest! {
    #[test]
    fn prop_cas_xml_success_reads_back_exactly(
        user in xml_text(),
        mail in xml_text(),
        groups in proptest::collection::vec(xml_text(), 1..4),
        p3 in proptest::bool::ANY,
    ) {
        let attributes = vec![
            ("mail".to_owned(), vec![mail.clone()]),
            ("memberOf".to_owned(), groups.clone()),
        ];
        let success = Success {
            user: &user,
            attributes: &attributes,
            pgt_iou: None,
            proxies: &[],
            authentication_date: when(),
            from_new_login: true,
            long_term: false,
            methods: &[AuthnMethod::Pwd],
            with_attributes: p3,
        };
        let xml = service_response_success(&success);
        let doc = parse_strictly(&xml).map_err(proptest::test_runner::TestCaseError::fail)?;
        prop_assert_eq!(text_of(&doc, "user"), vec![user.clone()]);
        prop_assert!(text_of(&doc, "authenticationFailure").is_empty());
        if p3 {
            prop_assert_eq!(text_of(&doc, "mail"), vec![mail.clone()]);
            prop_assert_eq!(text_of(&doc, "memberOf"), groups.clone());
        }
        let json: serde_json::Value = serde_json::from_str(&service_response_success_json(&success))
            .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            json["serviceResponse"]["authenticationSuccess"]["user"].as_str(),
            Some(user.as_str())
        );
    }

    #[test]
    fn prop_cas_failure_echoes_only_as_text(message in xml_text()) {
        let xml = service_response_failure(CasErrorCode::InvalidTicket, &message);
        let doc = parse_strictly(&xml).map_err(proptest::test_runner::TestCaseError::fail)?;
        // Whatever the echoed ticket holds, the document is one failure and no success.
        prop_assert!(text_of(&doc, "user").is_empty());
        prop_assert!(text_of(&doc, "authenticationSuccess").is_empty());
        let failure = doc
            .descendants()
            .find(|n| n.tag_name().name() == "authenticationFailure");
        prop_assert!(failure.is_some());
        prop_assert_eq!(failure.and_then(|n| n.attribute("code")), Some("INVALID_TICKET"));
        let json: serde_json::Value =
            serde_json::from_str(&service_response_failure_json(CasErrorCode::InvalidTicket, &message))
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
        prop_assert!(json["serviceResponse"].get("authenticationSuccess").is_none());
        prop_assert_eq!(
            json["serviceResponse"]["authenticationFailure"]["code"].as_str(),
            Some("INVALID_TICKET")
        );
    }
}

fn envelope(artifact: &str) -> String {
    format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/><SOAP-ENV:Body>\
         <samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" MajorVersion=\"1\" MinorVersion=\"1\" RequestID=\"_1\" IssueInstant=\"2026-11-22T10:00:00Z\">\
         <samlp:AssertionArtifact>{artifact}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

/// SOAP-ish documents: random sequences of tags, entities, DOCTYPEs and text.
fn soapish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(
            "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                .to_owned()
        ),
        Just("</SOAP-ENV:Envelope>".to_owned()),
        Just("<SOAP-ENV:Body>".to_owned()),
        Just("</SOAP-ENV:Body>".to_owned()),
        Just("<samlp:AssertionArtifact>".to_owned()),
        Just("</samlp:AssertionArtifact>".to_owned()),
        Just("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>".to_owned()),
        Just("<!ENTITY a \"&a;&a;\">".to_owned()),
        Just("&e;".to_owned()),
        Just("&amp;".to_owned()),
        Just("<![CDATA[".to_owned()),
        Just("]]>".to_owned()),
        Just("<?xml version=\"1.0\"?>".to_owned()),
        "ST-[A-Za-z0-9]{1,50}",
        ".{0,10}",
    ];
    proptest::collection::vec(piece, 0..14).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn prop_saml_validate_reader_never_panics_and_refuses_entities(body in soapish()) {
        if let Ok(artifact) = parse_saml_validate_request(&body) {
            prop_assert!(!body.contains("<!DOCTYPE") && !body.contains("<!ENTITY"), "{body:?}");
            prop_assert!(!artifact.contains('&') && !artifact.contains('<'), "{artifact:?}");
        }
    }

    #[test]
    fn prop_saml_validate_reader_reads_any_ticket_artifact(ticket in "ST-[A-Za-z0-9-]{1,100}") {
        prop_assert_eq!(parse_saml_validate_request(&envelope(&ticket)).ok(), Some(ticket.clone()));
    }
}

static KEYS: std::sync::LazyLock<KeySet> = std::sync::LazyLock::new(|| {
    let now = when();
    let record = generate_signing_key(SigningAlg::ES256, now, now)
        .unwrap_or_else(|e| panic!("a signing key: {e}"));
    KeySet::new(&[record], now).unwrap_or_else(|e| panic!("a key set: {e}"))
});

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// JWT-shaped strings: headers with `none`, `HS256`, unknown or missing `kid`, random parts.
fn jwt_like() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just(b64(r#"{"alg":"none","typ":"JWT"}"#)),
        Just(b64(r#"{"alg":"HS256","kid":"k1"}"#)),
        Just(b64(r#"{"alg":"ES256","kid":"unknown"}"#)),
        Just(b64(r#"{"alg":"ES256"}"#)),
        Just(b64(r#"{"alg":"ES256","kid":"k","crit":["exp"]}"#)),
        "[A-Za-z0-9_-]{0,40}",
    ];
    let payload = prop_oneof![
        Just(b64(
            r#"{"iss":"https://sso.example.org","aud":"app","sub":"x"}"#
        )),
        "[A-Za-z0-9_-]{0,60}",
    ];
    (header, payload, "[A-Za-z0-9_.-]{0,90}").prop_map(|(h, p, s)| format!("{h}.{p}.{s}"))
}

proptest! {
    #[test]
    fn prop_id_token_hint_reader_refuses_what_no_published_key_signed(
        token in prop_oneof![jwt_like(), ".{0,300}"]
    ) {
        let keys = &*KEYS;
        let options = VerifyOptions {
            issuer: "https://sso.example.org".to_owned(),
            audience: None,
            check_exp: false,
        };
        prop_assert!(keys.verify::<serde_json::Value>(&token, &options).is_err(), "{token:?}");
    }
}
