//! Single logout (CAS Protocol 3.0 §2.3.3 and appendix C): the SAML 2.0 `LogoutRequest` that
//! Sesame POSTs, as the form field `logoutRequest`, to each service a user's SSO session
//! reached, when that session ends.
//!
//! The document is byte-for-byte in Apereo CAS's layout (one line, `samlp:`/`saml:` prefixes,
//! no whitespace inside `SessionIndex`), because phpCAS extracts the ticket with the regular
//! expression `<samlp:SessionIndex>(.*)</samlp:SessionIndex>`.

use sesame_core::random;
use time::OffsetDateTime;

use super::xml::{date_time_seconds, escape};

/// The name of the form field carrying the document.
pub const LOGOUT_REQUEST_FIELD: &str = "logoutRequest";

/// A fresh `ID` for a logout request: `LR-` and 32 random alphanumerics (an `xs:ID`).
pub fn new_logout_request_id() -> String {
    format!("LR-{}", random::alphanumeric(32))
}

/// The `LogoutRequest` for the service ticket `ticket_id` (`SessionIndex`), issued at
/// `issued_at` (`IssueInstant`, UTC, whole seconds as Apereo writes it), with document id `id`
/// (see [`new_logout_request_id`]). Every value is XML-escaped.
pub fn logout_request(ticket_id: &str, issued_at: OffsetDateTime, id: &str) -> String {
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{}\" Version=\"2.0\" \
         IssueInstant=\"{}\"><saml:NameID>@NOT_USED@</saml:NameID>\
         <samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>",
        escape(id),
        date_time_seconds(issued_at),
        escape(ticket_id)
    )
}

#[cfg(test)]
mod tests {
    use regex::Regex;
    use roxmltree::Document;
    use time::macros::datetime;

    use super::*;

    const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
    const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

    #[test]
    fn logout_request_in_apereo_layout() {
        let ticket = "ST-AbC123";
        let id = new_logout_request_id();
        let xml = logout_request(ticket, datetime!(2026-03-02 09:15:30.25 +01:00), &id);
        assert_eq!(
            xml,
            format!(
                "<samlp:LogoutRequest xmlns:samlp=\"{SAMLP}\" xmlns:saml=\"{SAML}\" ID=\"{id}\" \
                 Version=\"2.0\" IssueInstant=\"2026-03-02T08:15:30Z\"><saml:NameID>@NOT_USED@\
                 </saml:NameID><samlp:SessionIndex>ST-AbC123</samlp:SessionIndex>\
                 </samlp:LogoutRequest>"
            )
        );
        let doc = Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert!(root.has_tag_name((SAMLP, "LogoutRequest")));
        assert_eq!(root.attribute("ID"), Some(id.as_str()));
        let name_id = doc.descendants().find(|n| n.has_tag_name((SAML, "NameID")));
        assert_eq!(name_id.and_then(|n| n.text()), Some("@NOT_USED@"));
        // phpCAS's extraction.
        let php_cas = Regex::new("<samlp:SessionIndex>(.*)</samlp:SessionIndex>").unwrap();
        assert_eq!(&php_cas.captures(&xml).unwrap()[1], ticket);
    }

    #[test]
    fn values_are_escaped() {
        let xml = logout_request(
            "ST-1</samlp:SessionIndex><x>",
            datetime!(2026-03-02 08:00 UTC),
            "LR-\"1",
        );
        let doc = Document::parse(&xml).unwrap();
        let index = doc
            .descendants()
            .find(|n| n.has_tag_name((SAMLP, "SessionIndex")))
            .unwrap();
        assert_eq!(index.text(), Some("ST-1</samlp:SessionIndex><x>"));
        assert_eq!(doc.root_element().attribute("ID"), Some("LR-\"1"));
    }

    #[test]
    fn ids_are_distinct_xml_ids() {
        let a = new_logout_request_id();
        assert_ne!(a, new_logout_request_id());
        assert!(a.starts_with("LR-") && a.len() == 35);
    }
}
