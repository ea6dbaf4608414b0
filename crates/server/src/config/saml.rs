//! `[saml]`: the SAML 2.0 identity provider (docs/saml.md): its entity ID and scope, the salt of
//! persistent identifiers, and the service providers allowed, each from its metadata file.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sesame_protocol::saml::categories::released_attributes;
use sesame_protocol::saml::encryption::EncryptionKey;
use sesame_protocol::saml::metadata::ServiceProvider;
use sesame_protocol::saml::providers::{NameIdFormat, SamlServiceProvider, SamlServiceProviders};

use super::secret::Secret;
use super::ConfigError;

/// Shortest salt of persistent identifiers, in bytes (as hex or text): 128 bits.
const MIN_SALT_BYTES: usize = 16;

/// `[saml]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlSettings {
    /// Serve SAML (metadata, single sign-on); off by default.
    pub enabled: bool,
    /// The identity provider's entity ID; empty: `<public_url>/saml/metadata`.
    pub entity_id: String,
    /// The institution's scope (`eduPersonPrincipalName`, scoped attributes, `Scope` in
    /// metadata); empty: `cas.principal_scope`, else the public URL's host.
    pub scope: String,
    /// The secret that makes persistent identifiers pairwise; required once SAML is on, and
    /// never to be changed (every SP would see new people).
    pub pairwise_salt: Secret,
    /// How long the published metadata is valid (`validUntil`), days.
    pub metadata_valid_days: u32,
    /// After `sesame keys rotate --alg SAML`, days the new key is in the metadata before it
    /// signs (federations' aggregates and SPs' caches must carry it first).
    pub key_activation_days: u32,
    /// An SP without an `attributes` list gets the bundles of its entity categories (REFEDS
    /// R&S, Personalized, Pseudonymous, Anonymous); under a Code of Conduct, only what its
    /// metadata requests.
    pub release_by_entity_category: bool,
    /// The service providers, as `[[saml.service_providers]]` tables.
    pub service_providers: Vec<SamlServiceProviderSetting>,
}

/// `[[saml.service_providers]]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlServiceProviderSetting {
    /// Its metadata (an `EntityDescriptor`), a local file.
    pub metadata_file: String,
    /// Its entity ID, checked against the metadata's (a wrong file is refused at start);
    /// empty: the metadata's.
    #[serde(default)]
    pub entity_id: String,
    /// The name the login page shows; empty: the entity ID.
    #[serde(default)]
    pub name: String,
    /// Attributes released, by friendly name (`mail`, `eduPersonPrincipalName`,
    /// `pairwise-id`…).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// `persistent` (pairwise) or `transient`.
    #[serde(default = "persistent")]
    pub name_id_format: String,
    /// Sign the whole response too, not only the assertion.
    #[serde(default)]
    pub sign_response: bool,
    /// Accept logins the SP did not ask for (IdP-initiated, `/saml/sso?providerId=…`).
    #[serde(default)]
    pub allow_unsolicited: bool,
    /// Require its requests to be signed even if its metadata does not say
    /// `AuthnRequestsSigned="true"` (they then come over HTTP-Redirect).
    #[serde(default)]
    pub require_signed_requests: bool,
    /// Encrypt assertions to the SP's key: unset, when its metadata gives one; `true`, always
    /// (refused at start without a key); `false`, never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt_assertions: Option<bool>,
}

fn persistent() -> String {
    "persistent".to_owned()
}

impl Default for SamlSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            entity_id: String::new(),
            scope: String::new(),
            pairwise_salt: Secret::default(),
            metadata_valid_days: 7,
            key_activation_days: 7,
            release_by_entity_category: true,
            service_providers: Vec::new(),
        }
    }
}

fn bad(key: &str, why: &str) -> ConfigError {
    ConfigError(format!("invalid value for `{key}`: {why}"))
}

impl SamlSettings {
    /// The service providers, their metadata read and checked.
    ///
    /// # Errors
    /// [`ConfigError`] naming the entry at fault: an unreadable or invalid metadata file, an
    /// entity ID other than the one configured, an unknown attribute or `NameID` format, two
    /// entries for one SP, one whose requests must be signed without a key to check them, or
    /// one whose assertions must be encrypted without a key to encrypt them.
    pub fn service_providers(&self) -> Result<SamlServiceProviders, ConfigError> {
        let mut providers = Vec::new();
        for (i, entry) in self.service_providers.iter().enumerate() {
            let key_name = format!("saml.service_providers[{i}]");
            let xml = std::fs::read_to_string(&entry.metadata_file).map_err(|e| {
                bad(
                    &format!("{key_name}.metadata_file"),
                    &format!("cannot read {}: {e}", entry.metadata_file),
                )
            })?;
            let metadata = ServiceProvider::parse(&xml).map_err(|e| {
                bad(
                    &format!("{key_name}.metadata_file"),
                    &format!("{}: {e}", entry.metadata_file),
                )
            })?;
            if !entry.entity_id.is_empty() && entry.entity_id != metadata.entity_id {
                return Err(bad(
                    &format!("{key_name}.entity_id"),
                    &format!(
                        "the metadata file describes {}, not {}",
                        metadata.entity_id, entry.entity_id
                    ),
                ));
            }
            let require_signed_requests = metadata.signs_requests || entry.require_signed_requests;
            if require_signed_requests && metadata.signing_certificates.is_empty() {
                return Err(bad(
                    &format!("{key_name}.metadata_file"),
                    &format!(
                        "{}'s requests must be signed, but its metadata gives no signing key",
                        metadata.entity_id
                    ),
                ));
            }
            for attribute in &entry.attributes {
                if attribute != "pairwise-id"
                    && sesame_protocol::attributes::saml_name(attribute).is_none()
                {
                    return Err(bad(
                        &format!("{key_name}.attributes"),
                        &format!("unknown attribute {attribute:?} (docs/saml.md lists them)"),
                    ));
                }
            }
            let name_id_format = match entry.name_id_format.as_str() {
                "persistent" => NameIdFormat::Persistent,
                "transient" => NameIdFormat::Transient,
                other => {
                    return Err(bad(
                        &format!("{key_name}.name_id_format"),
                        &format!("expected persistent or transient, not {other:?}"),
                    ))
                }
            };
            let encryption_key = match entry.encrypt_assertions {
                Some(false) => None,
                wanted => {
                    let key = metadata
                        .encryption_certificates
                        .iter()
                        .find_map(|der| EncryptionKey::from_certificate(der).ok());
                    if key.is_none() && wanted == Some(true) {
                        return Err(bad(
                            &format!("{key_name}.encrypt_assertions"),
                            &format!(
                                "{} has no usable RSA encryption key in its metadata",
                                metadata.entity_id
                            ),
                        ));
                    }
                    key.map(Arc::new)
                }
            };
            let attributes = released_attributes(
                &entry.attributes,
                self.release_by_entity_category,
                &metadata.entity_categories,
                &metadata.requested_attributes,
            );
            let name = if entry.name.trim().is_empty() {
                metadata.entity_id.clone()
            } else {
                entry.name.clone()
            };
            providers.push(SamlServiceProvider {
                metadata,
                name,
                attributes,
                name_id_format,
                sign_response: entry.sign_response,
                allow_unsolicited: entry.allow_unsolicited,
                require_signed_requests,
                encryption_key,
            });
        }
        SamlServiceProviders::new(providers)
            .map_err(|e| bad("saml.service_providers", &e.to_string()))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            if !self.service_providers.is_empty() {
                return Err(bad(
                    "saml.service_providers",
                    "service providers are set but `saml.enabled` is false",
                ));
            }
            return Ok(());
        }
        if self.pairwise_salt.expose().len() < MIN_SALT_BYTES {
            return Err(bad(
                "saml.pairwise_salt",
                "required once SAML is on: at least 16 random bytes (e.g. the output of \
                 `openssl rand -hex 32`), and never changed afterwards",
            ));
        }
        if self.metadata_valid_days == 0 || self.metadata_valid_days > 365 {
            return Err(bad(
                "saml.metadata_valid_days",
                "must be between 1 and 365 days",
            ));
        }
        if self.key_activation_days > 365 {
            return Err(bad("saml.key_activation_days", "at most 365 days"));
        }
        if !self.entity_id.is_empty() && url::Url::parse(&self.entity_id).is_err() {
            return Err(bad("saml.entity_id", "must be an absolute URI"));
        }
        self.service_providers().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SP_METADATA: &str = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.test/sp"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.test/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#;

    fn metadata_file(xml: &str) -> String {
        let path = std::env::temp_dir().join(format!(
            "sesame-sp-{}.xml",
            sesame_core::random::alphanumeric(10)
        ));
        std::fs::write(&path, xml).unwrap();
        path.display().to_string()
    }

    fn enabled(xml: &str) -> SamlSettings {
        SamlSettings {
            enabled: true,
            pairwise_salt: "0123456789abcdef0123".into(),
            service_providers: vec![SamlServiceProviderSetting {
                metadata_file: metadata_file(xml),
                entity_id: String::new(),
                name: String::new(),
                attributes: vec!["mail".to_owned(), "pairwise-id".to_owned()],
                name_id_format: "persistent".to_owned(),
                sign_response: false,
                allow_unsolicited: false,
                require_signed_requests: false,
                encrypt_assertions: None,
            }],
            ..SamlSettings::default()
        }
    }

    fn error(settings: &SamlSettings) -> String {
        settings.validate().unwrap_err().0
    }

    #[test]
    fn a_valid_service_provider_is_read_from_its_metadata() {
        let settings = enabled(SP_METADATA);
        settings.validate().unwrap();
        let providers = settings.service_providers().unwrap();
        let sp = providers.get("https://sp.test/sp").unwrap();
        assert_eq!(sp.name, "https://sp.test/sp");
        assert!(providers.get("https://sp.test/sp/").is_none());
    }

    #[test]
    fn each_mistake_is_refused_with_the_key_that_holds_it() {
        let mut s = enabled(SP_METADATA);
        s.pairwise_salt = "short".into();
        assert!(error(&s).contains("`saml.pairwise_salt`"), "{}", error(&s));

        let mut s = enabled(SP_METADATA);
        s.service_providers[0].entity_id = "https://other.test/sp".to_owned();
        assert!(error(&s).contains("`saml.service_providers[0].entity_id`"));

        let mut s = enabled(SP_METADATA);
        s.service_providers[0]
            .attributes
            .push("password".to_owned());
        assert!(error(&s).contains("`saml.service_providers[0].attributes`"));

        let mut s = enabled(SP_METADATA);
        s.service_providers[0].name_id_format = "emailAddress".to_owned();
        assert!(error(&s).contains("`saml.service_providers[0].name_id_format`"));

        let mut s = enabled(SP_METADATA);
        s.service_providers[0].metadata_file = "/nonexistent/sp.xml".to_owned();
        assert!(error(&s).contains("`saml.service_providers[0].metadata_file`"));

        // An SP whose requests must be signed, without a key to check them.
        let signed = SP_METADATA.replace(
            "<md:SPSSODescriptor ",
            "<md:SPSSODescriptor AuthnRequestsSigned=\"true\" ",
        );
        assert!(error(&enabled(&signed)).contains("no signing key"));
        let mut s = enabled(SP_METADATA);
        s.service_providers[0].require_signed_requests = true;
        assert!(error(&s).contains("no signing key"));
        let mut s = enabled(SP_METADATA);
        s.service_providers[0].encrypt_assertions = Some(true);
        assert!(error(&s).contains("`saml.service_providers[0].encrypt_assertions`"));

        let mut s = enabled(SP_METADATA);
        s.service_providers.push(s.service_providers[0].clone());
        assert!(error(&s).contains("two service providers"));

        let mut s = enabled(SP_METADATA);
        s.enabled = false;
        assert!(error(&s).contains("`saml.enabled` is false"));
    }
}
