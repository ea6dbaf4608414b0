//! The service providers allowed to use Sesame over SAML: each one's metadata (its entity ID,
//! its assertion consumer services, its keys) and what the institution releases to it.
//!
//! An SP is found by its exact entity ID, never by a prefix or a look-alike; a response goes
//! only to one of its metadata's consumer services (`ServiceProvider::consumer_for`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

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

/// Service providers by entity ID.
type ProvidersById = HashMap<String, Arc<SamlServiceProvider>>;

/// The registry of SAML service providers: those of the configuration, and those federations'
/// aggregates bring (replaced whole at each verified refresh, one set per source). A
/// configured SP wins over a federation's entry of the same entity ID.
#[derive(Debug, Default)]
pub struct SamlServiceProviders {
    configured: HashMap<String, Arc<SamlServiceProvider>>,
    federated: RwLock<BTreeMap<String, Arc<ProvidersById>>>,
}

impl SamlServiceProviders {
    /// The registry of the configured `providers`.
    ///
    /// # Errors
    /// [`SamlError::Malformed`] when two share an entity ID.
    pub fn new(providers: Vec<SamlServiceProvider>) -> Result<Self, SamlError> {
        let mut configured = HashMap::new();
        for sp in providers {
            let id = sp.metadata.entity_id.clone();
            if configured.insert(id.clone(), Arc::new(sp)).is_some() {
                return Err(SamlError::Malformed(format!(
                    "two service providers have the entity ID {id}"
                )));
            }
        }
        Ok(Self {
            configured,
            federated: RwLock::default(),
        })
    }

    /// The SP whose entity ID is exactly `entity_id`.
    pub fn get(&self, entity_id: &str) -> Option<Arc<SamlServiceProvider>> {
        if let Some(sp) = self.configured.get(entity_id) {
            return Some(Arc::clone(sp));
        }
        let federated = self
            .federated
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        federated
            .values()
            .find_map(|set| set.get(entity_id))
            .map(Arc::clone)
    }

    /// Puts `providers` in place of what the source `source` brought before.
    pub fn replace_federated(&self, source: &str, providers: Vec<SamlServiceProvider>) {
        let set: HashMap<_, _> = providers
            .into_iter()
            .map(|sp| (sp.metadata.entity_id.clone(), Arc::new(sp)))
            .collect();
        self.federated
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(source.to_owned(), Arc::new(set));
    }

    /// How many SPs the source `source` brought.
    pub fn federated_count(&self, source: &str) -> usize {
        self.federated
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(source)
            .map_or(0, |set| set.len())
    }
}
