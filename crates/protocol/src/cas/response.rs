//! Validation and proxy responses: `/validate` (CAS 1.0, §2.4.2), `/serviceValidate` and
//! `/proxyValidate` (§2.5.2, §2.6.2), `/p3/serviceValidate` and `/p3/proxyValidate` (§2.8,
//! §2.9, attributes per appendix A), `/proxy` (§2.7.2), in XML and, for `format=JSON`
//! (§2.5.1), in the JSON shape Apereo CAS emits.
//!
//! Every value is escaped (XML) or serialized by `serde_json` (JSON): a ticket, user or
//! attribute value can never close an element or a string (security row A17). Attribute
//! names become element names; they are checked by the registry and sanitized again here.
//!
//! The `/samlValidate` (§4.2) reader and writers live in [`super::saml`] and are re-exported
//! here.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use super::saml::{
    parse_saml_validate_request, saml11_response_failure, saml11_response_success, Saml11Success,
    SamlValidateRequest,
};
use sesame_core::login::methods::AuthnMethod;

use super::tickets::TicketGrant;
use super::xml::{date_time_seconds, element, element_name, escape};
use super::CasErrorCode;

/// The CAS XML namespace.
pub const CAS_NAMESPACE: &str = "http://www.yale.edu/tp/cas";

/// `/validate` success: `yes<LF>user<LF>` (§2.4.2, with the user line every CAS 1.0 client
/// reads). A user containing a line break cannot be expressed: the failure is returned.
pub fn validate_v1_success(user: &str) -> String {
    if user.contains(['\n', '\r']) {
        return validate_v1_failure();
    }
    format!("yes\n{user}\n")
}

/// `/validate` failure: `no<LF><LF>`.
pub fn validate_v1_failure() -> String {
    "no\n\n".to_owned()
}

/// A successful validation, as the CAS 2.0 and 3.0 documents (XML and JSON) carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Success<'a> {
    /// `<cas:user>`.
    pub user: &'a str,
    /// Released attributes, name and values, in order (an attribute without values is left
    /// out). Only written when `with_attributes`.
    pub attributes: &'a [(String, Vec<String>)],
    /// The proxy-granting ticket IOU, when a PGT was delivered to `pgtUrl`.
    pub pgt_iou: Option<&'a str>,
    /// The proxy chain, most recent first (empty for a service ticket).
    pub proxies: &'a [String],
    /// When credentials were entered (`authenticationDate`).
    pub authentication_date: OffsetDateTime,
    /// Credentials were entered for this ticket (`isFromNewLogin`).
    pub from_new_login: bool,
    /// A "remember me" session (`longTermAuthenticationRequestTokenUsed`).
    pub long_term: bool,
    /// How the session was authenticated (`authenticationMethod`,
    /// `successfulAuthenticationHandlers`).
    pub methods: &'a [AuthnMethod],
    /// `true` at the CAS 3.0 endpoints (`/p3/…`): `<cas:attributes>` is written, with the
    /// three protocol attributes and the released ones; `false` at `/serviceValidate` and
    /// `/proxyValidate`.
    pub with_attributes: bool,
}

impl<'a> Success<'a> {
    /// The success for a validated `grant`.
    pub fn from_grant(
        grant: &'a TicketGrant,
        attributes: &'a [(String, Vec<String>)],
        pgt_iou: Option<&'a str>,
        with_attributes: bool,
    ) -> Self {
        Self {
            user: &grant.login,
            attributes,
            pgt_iou,
            proxies: &grant.proxies,
            authentication_date: grant.authenticated_at,
            from_new_login: grant.from_new_login,
            long_term: grant.remember_me,
            methods: grant.methods(),
            with_attributes,
        }
    }
}

fn bool_text(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

/// The `<cas:serviceResponse>` of a successful validation. Children follow the schema's order
/// (appendix A): user, attributes, proxyGrantingTicket, proxies.
pub fn service_response_success(success: &Success<'_>) -> String {
    let mut out = format!(
        "<cas:serviceResponse xmlns:cas=\"{CAS_NAMESPACE}\">\n    <cas:authenticationSuccess>\n        "
    );
    element(&mut out, "cas:user", success.user);
    if success.with_attributes {
        out.push_str("\n        <cas:attributes>");
        let mut line = |name: &str, value: &str| {
            out.push_str("\n            ");
            element(&mut out, &format!("cas:{}", element_name(name)), value);
        };
        line(
            "authenticationDate",
            &date_time_seconds(success.authentication_date),
        );
        line(
            "longTermAuthenticationRequestTokenUsed",
            bool_text(success.long_term),
        );
        line("isFromNewLogin", bool_text(success.from_new_login));
        for method in success.methods {
            line("authenticationMethod", method.as_str());
        }
        for method in success.methods {
            line("successfulAuthenticationHandlers", method.cas_handler());
        }
        for (name, values) in success.attributes {
            for value in values {
                line(name, value);
            }
        }
        out.push_str("\n        </cas:attributes>");
    }
    if let Some(iou) = success.pgt_iou {
        out.push_str("\n        ");
        element(&mut out, "cas:proxyGrantingTicket", iou);
    }
    if !success.proxies.is_empty() {
        out.push_str("\n        <cas:proxies>");
        for proxy in success.proxies {
            out.push_str("\n            ");
            element(&mut out, "cas:proxy", proxy);
        }
        out.push_str("\n        </cas:proxies>");
    }
    out.push_str("\n    </cas:authenticationSuccess>\n</cas:serviceResponse>\n");
    out
}

fn failure(kind: &str, code: CasErrorCode, message: &str) -> String {
    let mut out = format!("<cas:serviceResponse xmlns:cas=\"{CAS_NAMESPACE}\">\n    ");
    let _ = write!(
        out,
        "<cas:{kind} code=\"{}\">{}</cas:{kind}>",
        escape(code.as_str()),
        escape(message)
    );
    out.push_str("\n</cas:serviceResponse>\n");
    out
}

/// The `<cas:serviceResponse>` of a failed validation (§2.5.2).
pub fn service_response_failure(code: CasErrorCode, message: &str) -> String {
    failure("authenticationFailure", code, message)
}

/// `/proxy` success (§2.7.2): `<cas:proxySuccess><cas:proxyTicket>`.
pub fn proxy_success(proxy_ticket: &str) -> String {
    let mut out = format!(
        "<cas:serviceResponse xmlns:cas=\"{CAS_NAMESPACE}\">\n    <cas:proxySuccess>\n        "
    );
    element(&mut out, "cas:proxyTicket", proxy_ticket);
    out.push_str("\n    </cas:proxySuccess>\n</cas:serviceResponse>\n");
    out
}

/// `/proxy` failure (§2.7.2): `<cas:proxyFailure code="…">`.
pub fn proxy_failure(code: CasErrorCode, message: &str) -> String {
    failure("proxyFailure", code, message)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonEnvelope<T> {
    service_response: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSuccessBody<'a> {
    authentication_success: JsonSuccess<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSuccess<'a> {
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_granting_ticket: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    proxies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<Map<String, Value>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonFailureBody<'a> {
    authentication_failure: JsonFailure<'a>,
}

#[derive(Serialize)]
struct JsonFailure<'a> {
    code: &'static str,
    description: &'a str,
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail; an empty object would still be a failure
    // for any client.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// `format=JSON` success, in Apereo's shape:
/// `{"serviceResponse":{"authenticationSuccess":{"user":…,"proxyGrantingTicket":…,"proxies":[…],"attributes":{…}}}}`.
/// As in Apereo, every attribute is a list of values, the protocol attributes included
/// (`"isFromNewLogin":[true]`); absent members are left out.
pub fn service_response_success_json(success: &Success<'_>) -> String {
    let attributes = success.with_attributes.then(|| {
        let mut map = Map::new();
        map.insert(
            "authenticationDate".to_owned(),
            Value::Array(vec![Value::String(date_time_seconds(
                success.authentication_date,
            ))]),
        );
        map.insert(
            "longTermAuthenticationRequestTokenUsed".to_owned(),
            Value::Array(vec![Value::Bool(success.long_term)]),
        );
        map.insert(
            "isFromNewLogin".to_owned(),
            Value::Array(vec![Value::Bool(success.from_new_login)]),
        );
        if !success.methods.is_empty() {
            map.insert(
                "authenticationMethod".to_owned(),
                success
                    .methods
                    .iter()
                    .map(|m| Value::String(m.as_str().to_owned()))
                    .collect(),
            );
            map.insert(
                "successfulAuthenticationHandlers".to_owned(),
                success
                    .methods
                    .iter()
                    .map(|m| Value::String(m.cas_handler().to_owned()))
                    .collect(),
            );
        }
        for (name, values) in success.attributes {
            if values.is_empty() {
                continue;
            }
            map.insert(
                name.clone(),
                Value::Array(values.iter().cloned().map(Value::String).collect()),
            );
        }
        map
    });
    to_json(&JsonEnvelope {
        service_response: JsonSuccessBody {
            authentication_success: JsonSuccess {
                user: success.user,
                proxy_granting_ticket: success.pgt_iou,
                proxies: success.proxies,
                attributes,
            },
        },
    })
}

/// `format=JSON` failure:
/// `{"serviceResponse":{"authenticationFailure":{"code":…,"description":…}}}`.
pub fn service_response_failure_json(code: CasErrorCode, message: &str) -> String {
    to_json(&JsonEnvelope {
        service_response: JsonFailureBody {
            authentication_failure: JsonFailure {
                code: code.as_str(),
                description: message,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use roxmltree::Document;
    use time::macros::datetime;

    use super::*;

    const CAS: &str = CAS_NAMESPACE;

    fn children<'a, 'i>(node: roxmltree::Node<'a, 'i>) -> Vec<roxmltree::Node<'a, 'i>> {
        node.children()
            .filter(roxmltree::Node::is_element)
            .collect()
    }

    fn attributes() -> Vec<(String, Vec<String>)> {
        vec![
            ("mail".to_owned(), vec!["alice@example.org".to_owned()]),
            (
                "eduPersonAffiliation".to_owned(),
                vec!["staff".to_owned(), "member".to_owned()],
            ),
            ("sn".to_owned(), vec![r#"O'Brien <&> "x""#.to_owned()]),
            ("empty".to_owned(), vec![]),
        ]
    }

    #[test]
    fn cas_1_0() {
        assert_eq!(validate_v1_success("alice"), "yes\nalice\n");
        assert_eq!(validate_v1_failure(), "no\n\n");
        assert_eq!(validate_v1_success("alice\nyes"), "no\n\n");
    }

    #[test]
    fn v3_success_follows_the_schema() {
        let attrs = attributes();
        let proxies = vec!["https://p2/cb".to_owned(), "https://p1/cb".to_owned()];
        let xml = service_response_success(&Success {
            user: "alice",
            attributes: &attrs,
            pgt_iou: Some("PGTIOU-abc"),
            proxies: &proxies,
            authentication_date: datetime!(2026-03-02 09:30:10 +01:00),
            from_new_login: false,
            long_term: true,
            methods: &[AuthnMethod::Pwd],
            with_attributes: true,
        });
        let doc = Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert!(root.has_tag_name((CAS, "serviceResponse")));
        let success = children(root)[0];
        assert!(success.has_tag_name((CAS, "authenticationSuccess")));
        let names: Vec<_> = children(success)
            .iter()
            .map(|n| n.tag_name().name())
            .collect();
        assert_eq!(
            names,
            ["user", "attributes", "proxyGrantingTicket", "proxies"]
        );
        let attrs_node = children(success)[1];
        let text_of = |name: &str| -> Vec<String> {
            children(attrs_node)
                .iter()
                .filter(|n| n.has_tag_name((CAS, name)))
                .map(|n| n.text().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(text_of("authenticationDate"), ["2026-03-02T08:30:10Z"]);
        assert_eq!(text_of("longTermAuthenticationRequestTokenUsed"), ["true"]);
        assert_eq!(text_of("isFromNewLogin"), ["false"]);
        assert_eq!(text_of("eduPersonAffiliation"), ["staff", "member"]);
        assert_eq!(text_of("sn"), [r#"O'Brien <&> "x""#]);
        assert!(text_of("empty").is_empty());
        let proxy_texts: Vec<_> = children(children(success)[3])
            .iter()
            .map(|n| n.text().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(proxy_texts, proxies);
    }

    #[test]
    fn v2_success_has_no_attributes() {
        let grant = TicketGrant {
            service: "https://a/".to_owned(),
            service_id: "a".to_owned(),
            account_id: sesame_core::ids::AccountId::new_random(),
            login: "alice".to_owned(),
            authenticated_at: datetime!(2026-03-02 08:00 UTC),
            from_new_login: true,
            remember_me: false,
            session_key: "sso:x".to_owned(),
            proxies: Vec::new(),
            issued_at: datetime!(2026-03-02 08:00 UTC),
            attributes: None,
            methods: Vec::new(),
        };
        let attrs = attributes();
        let xml = service_response_success(&Success::from_grant(&grant, &attrs, None, false));
        let doc = Document::parse(&xml).unwrap();
        let success = children(doc.root_element())[0];
        let names: Vec<_> = children(success)
            .iter()
            .map(|n| n.tag_name().name())
            .collect();
        assert_eq!(names, ["user"]);
        assert_eq!(children(success)[0].text(), Some("alice"));

        let v3 = Success::from_grant(&grant, &attrs, Some("PGTIOU-1"), true);
        assert!(v3.with_attributes && v3.from_new_login && !v3.long_term);
        assert_eq!(v3.pgt_iou, Some("PGTIOU-1"));
    }

    /// Security row A17: an injected ticket in the failure message stays text.
    #[test]
    fn failure_escapes_injected_markup() {
        let ticket = "ST-1</cas:authenticationFailure><cas:authenticationSuccess><cas:user>admin</cas:user></cas:authenticationSuccess><cas:authenticationFailure code=\"x\">";
        let message = format!("Ticket '{ticket}' not recognized");
        let xml = service_response_failure(CasErrorCode::InvalidTicket, &message);
        let doc = Document::parse(&xml).unwrap();
        let elements: Vec<_> = doc
            .descendants()
            .filter(roxmltree::Node::is_element)
            .collect();
        assert_eq!(elements.len(), 2, "{xml}");
        let failure = elements[1];
        assert!(failure.has_tag_name((CAS, "authenticationFailure")));
        assert_eq!(failure.attribute("code"), Some("INVALID_TICKET"));
        assert_eq!(failure.text(), Some(message.as_str()));
        assert!(!doc
            .descendants()
            .any(|n| n.has_tag_name((CAS, "authenticationSuccess"))));
    }

    #[test]
    fn injected_values_in_a_success_stay_text() {
        let attrs = vec![
            (
                "mail></cas:attributes><cas:user>admin".to_owned(),
                vec!["x".to_owned()],
            ),
            ("ctrl".to_owned(), vec!["a\u{0}b\u{1b}".to_owned()]),
        ];
        let xml = service_response_success(&Success {
            user: "alice</cas:user><cas:user>admin",
            attributes: &attrs,
            pgt_iou: Some("PGTIOU-<x>"),
            proxies: &["https://p/?a=1&b=\"2\"".to_owned()],
            authentication_date: datetime!(2026-03-02 08:00 UTC),
            from_new_login: true,
            long_term: false,
            methods: &[AuthnMethod::Pwd],
            with_attributes: true,
        });
        let doc = Document::parse(&xml).unwrap();
        let users: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name((CAS, "user")))
            .collect();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].text(), Some("alice</cas:user><cas:user>admin"));
    }

    #[test]
    fn proxy_responses() {
        let doc_text = proxy_success("PT-abc");
        let doc = Document::parse(&doc_text).unwrap();
        let ticket = doc
            .descendants()
            .find(|n| n.has_tag_name((CAS, "proxyTicket")))
            .unwrap();
        assert_eq!(ticket.text(), Some("PT-abc"));
        assert!(ticket.parent().unwrap().has_tag_name((CAS, "proxySuccess")));

        let doc_text = proxy_failure(
            CasErrorCode::InvalidRequest,
            "'pgt' and 'targetService' parameters are both required",
        );
        let doc = Document::parse(&doc_text).unwrap();
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name((CAS, "proxyFailure")))
            .unwrap();
        assert_eq!(failure.attribute("code"), Some("INVALID_REQUEST"));
        assert_eq!(
            failure.text(),
            Some("'pgt' and 'targetService' parameters are both required")
        );
    }

    #[test]
    fn json_success_in_apereo_shape() {
        let attrs = attributes();
        let proxies = vec!["https://p1/cb".to_owned()];
        let json = service_response_success_json(&Success {
            user: "ali\"ce",
            attributes: &attrs,
            pgt_iou: Some("PGTIOU-1"),
            proxies: &proxies,
            authentication_date: datetime!(2026-03-02 08:00 UTC),
            from_new_login: true,
            long_term: false,
            methods: &[AuthnMethod::Pwd],
            with_attributes: true,
        });
        let value: Value = serde_json::from_str(&json).unwrap();
        let success = &value["serviceResponse"]["authenticationSuccess"];
        assert_eq!(success["user"], "ali\"ce");
        assert_eq!(success["proxyGrantingTicket"], "PGTIOU-1");
        assert_eq!(success["proxies"], serde_json::json!(["https://p1/cb"]));
        let a = &success["attributes"];
        assert_eq!(a["isFromNewLogin"], serde_json::json!([true]));
        assert_eq!(
            a["longTermAuthenticationRequestTokenUsed"],
            serde_json::json!([false])
        );
        assert_eq!(
            a["authenticationDate"],
            serde_json::json!(["2026-03-02T08:00:00Z"])
        );
        assert_eq!(
            a["eduPersonAffiliation"],
            serde_json::json!(["staff", "member"])
        );
        assert_eq!(a["sn"], serde_json::json!([r#"O'Brien <&> "x""#]));
        assert!(a.get("empty").is_none());
        assert_eq!(a["authenticationMethod"], serde_json::json!(["pwd"]));
        assert_eq!(
            a["successfulAuthenticationHandlers"],
            serde_json::json!(["SesamePwdAuthenticationHandler"])
        );

        let bare = service_response_success_json(&Success {
            user: "alice",
            attributes: &attrs,
            pgt_iou: None,
            proxies: &[],
            authentication_date: datetime!(2026-03-02 08:00 UTC),
            from_new_login: true,
            long_term: false,
            methods: &[AuthnMethod::Pwd],
            with_attributes: false,
        });
        assert_eq!(
            bare,
            r#"{"serviceResponse":{"authenticationSuccess":{"user":"alice"}}}"#
        );
    }

    /// Security row A17 with `format=JSON`: quotes cannot break out of the string.
    #[test]
    fn json_failure_round_trips_breaking_quotes() {
        let message = r#"Ticket 'ST-1"}},"authenticationSuccess":{"user":"admin' not recognized"#;
        let json = service_response_failure_json(CasErrorCode::InvalidTicket, message);
        let value: Value = serde_json::from_str(&json).unwrap();
        let response = value["serviceResponse"].as_object().unwrap();
        assert_eq!(response.len(), 1);
        let failure = &response["authenticationFailure"];
        assert_eq!(failure["code"], "INVALID_TICKET");
        assert_eq!(failure["description"], message);
    }
}
