//! The service providers allowed to use Sesame over SAML: each one's metadata (its entity ID,
//! its assertion consumer services, its keys) and what the institution releases to it.
//!
//! An SP is found by its exact entity ID, never by a prefix or a look-alike; a response goes
//! only to one of its metadata's consumer services (`ServiceProvider::consumer_for`).

use std::collections::HashMap;
use std::sync::Arc;

use super::encryption::EncryptionKey;

use super::metadata::ServiceProvider;
use super::{SamlError, NAMEID_PERSISTENT, NAMEID_TRANSIENT};

/// The subject's name an SP gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameIdFormat {
    /// Opaque, stable, different for every SP (pairwise), never the login.
    Persistent,
    /// Opaque, new at each assertion.
    Transient,
}

impl NameIdFormat {
    /// Its URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Persistent => NAMEID_PERSISTENT,
            Self::Transient => NAMEID_TRANSIENT,
        }
    }

    /// The format named `uri`, if Sesame issues it (`unspecified` is the SP's default).
    pub fn from_uri(uri: &str) -> Option<Option<Self>> {
        match uri {
            NAMEID_PERSISTENT => Some(Some(Self::Persistent)),
            NAMEID_TRANSIENT => Some(Some(Self::Transient)),
            "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" => Some(None),
            _ => None,
        }
    }
}

/// One service provider allowed to log people in.
#[derive(Debug, Clone)]
pub struct SamlServiceProvider {
    /// Its metadata.
    pub metadata: ServiceProvider,
    /// The name the login page shows.
    pub name: String,
    /// The attributes released to it, by friendly name (`mail`, `eduPersonPrincipalName`).
    pub attributes: Vec<String>,
    /// The `NameID` it gets unless its request asks for the other.
    pub name_id_format: NameIdFormat,
    /// Sign the whole `Response` as well as the assertion.
    pub sign_response: bool,
    /// Accept unsolicited (IdP-initiated) logins to it.
    pub allow_unsolicited: bool,
    /// Its requests must be signed (its metadata's `AuthnRequestsSigned`, or the
    /// deployment's choice), and so come over HTTP-Redirect, whose signature is checked.
    pub require_signed_requests: bool,
    /// Encrypt its assertions to this key (from its metadata); `None`: sent signed only.
    pub encryption_key: Option<Arc<EncryptionKey>>,
}

/// The registry of SAML service providers.
#[derive(Debug, Clone, Default)]
pub struct SamlServiceProviders {
    by_entity_id: HashMap<String, SamlServiceProvider>,
}

impl SamlServiceProviders {
    /// The registry of `providers`.
    ///
    /// # Errors
    /// [`SamlError::Malformed`] when two share an entity ID.
    pub fn new(providers: Vec<SamlServiceProvider>) -> Result<Self, SamlError> {
        let mut by_entity_id = HashMap::new();
        for sp in providers {
            let id = sp.metadata.entity_id.clone();
            if by_entity_id.insert(id.clone(), sp).is_some() {
                return Err(SamlError::Malformed(format!(
                    "two service providers have the entity ID {id}"
                )));
            }
        }
        Ok(Self { by_entity_id })
    }

    /// The SP whose entity ID is exactly `entity_id`.
    pub fn get(&self, entity_id: &str) -> Option<&SamlServiceProvider> {
        self.by_entity_id.get(entity_id)
    }

    /// Whether any SP is registered.
    pub fn is_empty(&self) -> bool {
        self.by_entity_id.is_empty()
    }
}
