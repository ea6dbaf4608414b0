//! SAML 2.0 identity provider (issue 16; docs/saml.md): the Web Browser SSO profile, without
//! HTTP or storage.
//!
//! - [`request`]: `AuthnRequest`s decoded from the HTTP-Redirect and HTTP-POST bindings within
//!   bounds (size, inflation, node count), DTDs and entities refused;
//!   [`redirect_signature`]: the Redirect binding's query-string signature, checked against
//!   the SP's metadata keys;
//! - [`metadata`]: the identity provider's signed metadata; service providers' metadata read,
//!   and the assertion consumer service chosen only among the metadata's own;
//!   [`providers`]: the registry of SPs, by exact entity ID; [`categories`]: what entity
//!   categories release;
//! - [`issuer`]: the pipeline's SAML issuer (persistent pairwise or transient `NameID`,
//!   attributes from the release table); [`response`]: signed assertions and failure
//!   statuses; [`encryption`]: assertions encrypted to an SP's key;
//! - [`signature`], [`xml`], [`keys`], [`key_store`]: enveloped RSA-SHA256 signatures over XML
//!   Sesame writes in exclusive canonical form, and the signing keys (generated, stored,
//!   rotated).
//!
//! - [`logout`]: an SP's `LogoutRequest` and Sesame's signed `LogoutResponse`, and Sesame's
//!   logout requests to SPs;
//! - [`verify`] over [`c14n`]: enveloped XML signatures of what others send (requests over
//!   HTTP-POST, aggregates), in SAML's profile only (ADR 0015);
//! - [`aggregate`]: a federation's signed metadata aggregate, verified with its pinned key.

pub mod aggregate;
pub mod c14n;
pub mod categories;
pub mod encryption;
pub mod issuer;
pub mod key_store;
pub mod keys;
pub mod logout;
pub mod metadata;
pub mod providers;
pub mod redirect_signature;
pub mod request;
pub mod response;
pub mod signature;
pub mod verify;
pub mod xml;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// The SAML 2.0 protocol namespace.
pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// The SAML 2.0 assertion namespace.
pub const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// The SAML 2.0 metadata namespace.
pub const METADATA_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// The HTTP-Redirect binding.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// The HTTP-POST binding.
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
/// Persistent (pairwise, opaque, stable) name identifiers.
pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
/// Transient (one per session) name identifiers.
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
/// Attribute names that are URIs (`urn:oid:…`).
pub const ATTRNAME_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
/// The basic attribute name format: a plain name (the GAR's `GARPersonIdentifiant`).
pub const ATTRNAME_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
/// Top-level status: success.
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// Top-level status: the request was wrong.
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
/// Top-level status: the identity provider cannot answer it.
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";

/// Why a SAML message could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    /// Not a message Sesame can read: its encoding, its XML, or a missing part.
    #[error("malformed SAML message: {0}")]
    Malformed(String),
    /// A well-formed message asking for what Sesame does not do.
    #[error("unsupported SAML request: {0}")]
    Unsupported(String),
    /// The assertion consumer service asked for is not one of the service provider's
    /// metadata (or not one with the HTTP-POST binding): nothing is sent anywhere.
    #[error("assertion consumer service not in the service provider's metadata")]
    UnknownConsumer,
    /// The signing key is unusable or signing failed.
    #[error("SAML signing key: {0}")]
    Key(String),
    /// A signature is missing where the service provider must sign, or does not verify
    /// with any of its metadata's keys.
    #[error("SAML signature: {0}")]
    Signature(String),
}

/// A message a service provider sends the identity provider (`AuthnRequest`,
/// `LogoutRequest`): what is checked of every one before it is acted on (the SP it names, where
/// it was sent, when it was made).
pub trait SpMessage: Sized {
    /// Reads it from its XML.
    ///
    /// # Errors
    /// [`SamlError`] if it is not such a message.
    fn read(xml: &str) -> Result<Self, SamlError>;
    /// The SP's entity ID (its `Issuer`).
    fn issuer(&self) -> &str;
    /// Where it says it was sent (`Destination`), if it says.
    fn destination(&self) -> Option<&str>;
    /// When it was made (`IssueInstant`).
    fn issue_instant(&self) -> OffsetDateTime;
}

impl SpMessage for request::AuthnRequest {
    fn read(xml: &str) -> Result<Self, SamlError> {
        Self::parse(xml)
    }
    fn issuer(&self) -> &str {
        &self.issuer
    }
    fn destination(&self) -> Option<&str> {
        self.destination.as_deref()
    }
    fn issue_instant(&self) -> OffsetDateTime {
        self.issue_instant
    }
}

impl SpMessage for logout::LogoutRequest {
    fn read(xml: &str) -> Result<Self, SamlError> {
        Self::parse(xml)
    }
    fn issuer(&self) -> &str {
        &self.issuer
    }
    fn destination(&self) -> Option<&str> {
        self.destination.as_deref()
    }
    fn issue_instant(&self) -> OffsetDateTime {
        self.issue_instant
    }
}

/// A new message or assertion `ID`: 32 random alphanumerics (≈ 190 bits) behind `_` (an
/// `xs:ID` must not start with a digit).
pub fn new_id() -> String {
    format!("_{}", sesame_core::random::alphanumeric(32))
}

/// An instant as SAML writes it: UTC, whole seconds, `Z`.
pub fn format_instant(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// Reads an `xs:dateTime` of a message (RFC 3339, as every SAML implementation writes it).
///
/// # Errors
/// [`SamlError::Malformed`] if it is not one.
pub fn parse_instant(text: &str) -> Result<OffsetDateTime, SamlError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map_err(|_| SamlError::Malformed(format!("not an instant: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_written_in_utc_and_read_back() {
        let at = time::macros::datetime!(2026-12-07 07:00:30.5 +01:00);
        assert_eq!(format_instant(at), "2026-12-07T06:00:30Z");
        assert_eq!(
            parse_instant("2026-12-07T06:00:30Z")
                .unwrap()
                .unix_timestamp(),
            at.unix_timestamp()
        );
        assert_eq!(
            parse_instant("2026-12-07T06:00:30.123Z")
                .unwrap()
                .unix_timestamp(),
            at.unix_timestamp()
        );
        assert!(parse_instant("07/12/2026").is_err());
    }

    #[test]
    fn ids_are_names_and_unique() {
        let (a, b) = (new_id(), new_id());
        assert!(a.starts_with('_') && a.len() == 33, "{a}");
        assert_ne!(a, b);
    }
}
