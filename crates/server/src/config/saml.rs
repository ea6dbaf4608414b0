//! `[saml]`: the SAML 2.0 identity provider (docs/saml.md): its entity ID and scope, the salt of
//! persistent identifiers, and the service providers allowed, each from its metadata file.

use std::sync::Arc;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sesame_core::ids::Affiliation;
use sesame_protocol::saml::categories::released_attributes;
use sesame_protocol::saml::encryption::EncryptionKey;
use sesame_protocol::saml::issuer::{GarPersonIdentifier, GAR_ENT_ID, ISSUER_ATTRIBUTES};
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
    /// The logo the federation's discovery service shows next to the institution's name
    /// (`mdui:Logo`, an `https://` URL); empty: none.
    pub logo_url: String,
    /// Its width in pixels.
    pub logo_width: u32,
    /// Its height in pixels.
    pub logo_height: u32,
    /// A page about the sign-in service (`mdui:InformationURL`); empty: none.
    pub information_url: String,
    /// The institution's web site (`md:Organization`); empty: the public URL.
    pub organization_url: String,
    /// The technical contact's address (`md:ContactPerson`); federations require one.
    pub technical_contact: String,
    /// The support contact's address (the helpdesk people write to).
    pub support_contact: String,
    /// The administrative contact's address.
    pub administrative_contact: String,
    /// An SP without an `attributes` list gets the bundles of its entity categories (REFEDS
    /// R&S, Personalized, Pseudonymous, Anonymous); under a Code of Conduct, only what its
    /// metadata requests.
    pub release_by_entity_category: bool,
    /// `eduPersonEntitlement` values by affiliation (`student = ["urn:mace:dir:entitlement:common-lib-terms"]`),
    /// released to SPs whose list names `eduPersonEntitlement`.
    pub entitlements: BTreeMap<Affiliation, Vec<String>>,
    /// `eduPersonAssurance` values (REFEDS Assurance Framework URIs) the institution asserts
    /// of everyone, released to SPs whose list names `eduPersonAssurance` (and to REFEDS
    /// Personalized and Pseudonymous SPs); empty: none.
    pub assurance: Vec<String>,
    /// The institution's SUPANN code, released as `supannEtablissement` (`{UAI}0751717J`);
    /// empty: none.
    pub supann_etablissement: String,
    /// The connection to the GAR (`[saml.gar]`).
    pub gar: GarSettings,
    /// The service providers, as `[[saml.service_providers]]` tables.
    pub service_providers: Vec<SamlServiceProviderSetting>,
    /// Federations' signed metadata aggregates, as `[[saml.metadata_sources]]` tables.
    pub metadata_sources: Vec<SamlMetadataSource>,
}

/// `[saml.gar]`: what a school ENT's identity provider tells the GAR (the ministry's access
/// point to pupils' and teachers' digital resources), released to the SP whose
/// `attributes` list `GARPersonIdentifiant` and `idEnt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GarSettings {
    /// The ENT's identifier the GAR gave at registration (`idEnt`); empty: not connected.
    pub ent_id: String,
    /// Where `GARPersonIdentifiant` comes from: `account_id` (default) or `hr_id`, as the
    /// feed sent to the GAR lists people.
    pub person_identifier: GarPersonIdentifier,
}

/// `[[saml.metadata_sources]]`: a federation's signed aggregate (RENATER, eduGAIN), fetched
/// and refreshed; its service providers may log in once its signature verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlMetadataSource {
    /// A short name, for logs and for `[[saml.service_providers]]` `metadata_source`.
    pub name: String,
    /// Where the aggregate is published (`https://…`; `http://` only for a loopback host).
    pub url: String,
    /// The federation's metadata signing certificate(s), PEM: the pinned key. Several
    /// certificates (one after the other in the file) while the federation rolls its key.
    pub signing_certificate_file: String,
    /// Where the last good aggregate is kept, to start with it when the URL cannot be reached;
    /// empty: not kept.
    #[serde(default)]
    pub backup_file: String,
    /// Largest aggregate accepted, in megabytes.
    #[serde(default = "default_max_megabytes")]
    pub max_megabytes: u32,
    /// Shortest time between two fetches, minutes (however short its `cacheDuration`), and
    /// the wait before trying again after a failure.
    #[serde(default = "default_min_refresh")]
    pub min_refresh_minutes: u32,
    /// Longest time between two fetches, minutes (however long its `cacheDuration`).
    #[serde(default = "default_max_refresh")]
    pub max_refresh_minutes: u32,
    /// Only SPs registered by one of these registration authorities; empty: any.
    #[serde(default)]
    pub registration_authorities: Vec<String>,
    /// Only these entity IDs; empty: any (within `registration_authorities`).
    #[serde(default)]
    pub entities: Vec<String>,
}

impl SamlMetadataSource {
    /// The pinned certificates (DER) of `signing_certificate_file`.
    ///
    /// # Errors
    /// [`ConfigError`] if the file cannot be read or holds no PEM certificate.
    pub fn pinned_certificates(&self, key_name: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
        let key = format!("{key_name}.signing_certificate_file");
        let pem = std::fs::read(&self.signing_certificate_file).map_err(|e| {
            bad(
                &key,
                &format!("cannot read {}: {e}", self.signing_certificate_file),
            )
        })?;
        sesame_protocol::saml::keys::certificates_from_pem(&pem)
            .map_err(|e| bad(&key, &e.to_string()))
    }

    /// Which of the aggregate's SPs may log in.
    pub fn filter(&self) -> sesame_protocol::saml::aggregate::AggregateFilter {
        sesame_protocol::saml::aggregate::AggregateFilter {
            registration_authorities: self.registration_authorities.clone(),
            entities: self.entities.clone(),
        }
    }

    fn validate(&self, key_name: &str) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(bad(&format!("{key_name}.name"), "required"));
        }
        let url = url::Url::parse(&self.url)
            .map_err(|e| bad(&format!("{key_name}.url"), &e.to_string()))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(bad(
                &format!("{key_name}.url"),
                "must be https:// (http:// only on a loopback host)",
            ));
        }
        self.pinned_certificates(key_name)?;
        if self.max_megabytes == 0 || self.max_megabytes > 2_000 {
            return Err(bad(
                &format!("{key_name}.max_megabytes"),
                "between 1 and 2000",
            ));
        }
        if self.min_refresh_minutes == 0 || self.min_refresh_minutes > self.max_refresh_minutes {
            return Err(bad(
                &format!("{key_name}.min_refresh_minutes"),
                "at least 1, and at most `max_refresh_minutes`",
            ));
        }
        Ok(())
    }
}

fn default_max_megabytes() -> u32 {
    200
}
fn default_min_refresh() -> u32 {
    10
}
fn default_max_refresh() -> u32 {
    240
}

/// `[[saml.service_providers]]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlServiceProviderSetting {
    /// Its metadata (an `EntityDescriptor`), a local file…
    #[serde(default)]
    pub metadata_file: String,
    /// …or the name of the `[[saml.metadata_sources]]` that brings it (then `entity_id` is
    /// required, and these settings apply when the aggregate carries it).
    #[serde(default)]
    pub metadata_source: String,
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
            logo_url: String::new(),
            logo_width: 80,
            logo_height: 60,
            information_url: String::new(),
            organization_url: String::new(),
            technical_contact: String::new(),
            support_contact: String::new(),
            administrative_contact: String::new(),
            metadata_valid_days: 7,
            key_activation_days: 7,
            release_by_entity_category: true,
            entitlements: BTreeMap::new(),
            assurance: Vec::new(),
            supann_etablissement: String::new(),
            gar: GarSettings::default(),
            service_providers: Vec::new(),
            metadata_sources: Vec::new(),
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
            if !entry.metadata_source.is_empty() {
                if entry.entity_id.is_empty() {
                    return Err(bad(
                        &format!("{key_name}.entity_id"),
                        "required with `metadata_source`: the SP of the aggregate these settings are for",
                    ));
                }
                if !self
                    .metadata_sources
                    .iter()
                    .any(|s| s.name == entry.metadata_source)
                {
                    return Err(bad(
                        &format!("{key_name}.metadata_source"),
                        &format!(
                            "no [[saml.metadata_sources]] is named {:?}",
                            entry.metadata_source
                        ),
                    ));
                }
                if !entry.metadata_file.is_empty() {
                    return Err(bad(
                        &format!("{key_name}.metadata_file"),
                        "give `metadata_file` or `metadata_source`, not both",
                    ));
                }
                continue;
            }
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
            providers.push(self.provider(metadata, entry, &key_name)?);
        }
        SamlServiceProviders::new(providers)
            .map_err(|e| bad("saml.service_providers", &e.to_string()))
    }

    /// The SP `metadata` from the aggregate of the source `source`, with the settings of its
    /// `[[saml.service_providers]]` entry if it has one, else the federation defaults
    /// (transient `NameID`, attributes by entity category, nothing unsolicited).
    ///
    /// # Errors
    /// [`ConfigError`] if its entry cannot apply to it (assertions to encrypt without a key).
    pub fn federated_provider(
        &self,
        source: &str,
        metadata: ServiceProvider,
    ) -> Result<SamlServiceProvider, ConfigError> {
        let found = self
            .service_providers
            .iter()
            .enumerate()
            .find(|(_, e)| e.metadata_source == source && e.entity_id == metadata.entity_id);
        match found {
            Some((i, entry)) => {
                self.provider(metadata, entry, &format!("saml.service_providers[{i}]"))
            }
            None => {
                let defaults = SamlServiceProviderSetting {
                    metadata_file: String::new(),
                    metadata_source: source.to_owned(),
                    entity_id: String::new(),
                    name: String::new(),
                    attributes: Vec::new(),
                    name_id_format: "transient".to_owned(),
                    sign_response: false,
                    allow_unsolicited: false,
                    require_signed_requests: false,
                    encrypt_assertions: None,
                };
                self.provider(
                    metadata,
                    &defaults,
                    &format!("saml.metadata_sources {source}"),
                )
            }
        }
    }

    /// What `entry` makes of the SP `metadata`.
    fn provider(
        &self,
        metadata: ServiceProvider,
        entry: &SamlServiceProviderSetting,
        key_name: &str,
    ) -> Result<SamlServiceProvider, ConfigError> {
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
            if attribute == GAR_ENT_ID && self.gar.ent_id.trim().is_empty() {
                return Err(bad(
                    "saml.gar.ent_id",
                    &format!(
                        "{} is released idEnt: set the ENT identifier the GAR gave",
                        metadata.entity_id
                    ),
                ));
            }
            if !ISSUER_ATTRIBUTES.contains(&attribute.as_str())
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
        Ok(SamlServiceProvider {
            metadata,
            name,
            attributes,
            name_id_format,
            sign_response: entry.sign_response,
            allow_unsolicited: entry.allow_unsolicited,
            require_signed_requests,
            encryption_key,
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            if !self.service_providers.is_empty() || !self.metadata_sources.is_empty() {
                return Err(bad(
                    "saml.service_providers",
                    "service providers or metadata sources are set but `saml.enabled` is false",
                ));
            }
            return Ok(());
        }
        for (key, value) in [
            ("saml.logo_url", &self.logo_url),
            ("saml.information_url", &self.information_url),
            ("saml.organization_url", &self.organization_url),
        ] {
            if !value.is_empty() && url::Url::parse(value).is_err() {
                return Err(bad(key, "must be an absolute URL"));
            }
        }
        for (key, value) in [
            ("saml.technical_contact", &self.technical_contact),
            ("saml.support_contact", &self.support_contact),
            ("saml.administrative_contact", &self.administrative_contact),
        ] {
            if !value.is_empty() && !value.trim_start_matches("mailto:").contains('@') {
                return Err(bad(key, "must be an e-mail address"));
            }
        }
        if !self.supann_etablissement.is_empty() && !self.supann_etablissement.starts_with('{') {
            return Err(bad(
                "saml.supann_etablissement",
                "a SUPANN code with its namespace, e.g. {UAI}0751717J",
            ));
        }
        if let Some(bad_value) = self.assurance.iter().find(|v| url::Url::parse(v).is_err()) {
            return Err(bad(
                "saml.assurance",
                &format!("{bad_value:?} is not a URI"),
            ));
        }
        for (affiliation, values) in &self.entitlements {
            if let Some(bad_value) = values.iter().find(|v| url::Url::parse(v).is_err()) {
                return Err(bad(
                    &format!("saml.entitlements.{}", affiliation.as_str()),
                    &format!("{bad_value:?} is not a URI"),
                ));
            }
        }
        for (i, source) in self.metadata_sources.iter().enumerate() {
            source.validate(&format!("saml.metadata_sources[{i}]"))?;
            if self.metadata_sources[..i]
                .iter()
                .any(|s| s.name == source.name)
            {
                return Err(bad(
                    &format!("saml.metadata_sources[{i}].name"),
                    &format!("two sources are named {:?}", source.name),
                ));
            }
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
                metadata_source: String::new(),
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

        // The GAR's idEnt without the identifier the GAR gave.
        let mut s = enabled(SP_METADATA);
        s.service_providers[0].attributes.push("idEnt".to_owned());
        assert!(error(&s).contains("`saml.gar.ent_id`"), "{}", error(&s));
        s.gar.ent_id = "ENT-TEST".to_owned();
        s.validate().unwrap();

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

    #[test]
    fn a_metadata_source_is_checked_and_its_mistakes_named() {
        let (_, cert) =
            sesame_protocol::saml::keys::generate("fed.test", time::OffsetDateTime::UNIX_EPOCH)
                .unwrap();
        let pem = metadata_file(&sesame_protocol::saml::keys::certificate_pem(&cert));
        let source = SamlMetadataSource {
            name: "renater".to_owned(),
            url: "https://metadata.federation.example/main.xml".to_owned(),
            signing_certificate_file: pem.clone(),
            backup_file: String::new(),
            max_megabytes: 200,
            min_refresh_minutes: 10,
            max_refresh_minutes: 240,
            registration_authorities: Vec::new(),
            entities: Vec::new(),
        };
        let with = |change: &dyn Fn(&mut SamlSettings)| {
            let mut s = enabled(SP_METADATA);
            s.metadata_sources.push(source.clone());
            change(&mut s);
            s
        };
        with(&|_| {}).validate().unwrap();
        assert_eq!(source.pinned_certificates("x").unwrap(), vec![cert]);
        for (change, key) in [
            (
                &(|s: &mut SamlSettings| {
                    s.metadata_sources[0].url = "http://metadata.example/x.xml".to_owned();
                }) as &dyn Fn(&mut SamlSettings),
                "`saml.metadata_sources[0].url`",
            ),
            (
                &|s: &mut SamlSettings| {
                    s.metadata_sources[0].signing_certificate_file = "/nonexistent.pem".to_owned();
                },
                "`saml.metadata_sources[0].signing_certificate_file`",
            ),
            (
                &|s: &mut SamlSettings| {
                    s.metadata_sources[0].signing_certificate_file = metadata_file("not a PEM");
                },
                "`saml.metadata_sources[0].signing_certificate_file`",
            ),
            (
                &|s: &mut SamlSettings| s.metadata_sources.push(s.metadata_sources[0].clone()),
                "`saml.metadata_sources[1].name`",
            ),
            (
                &|s: &mut SamlSettings| s.metadata_sources[0].min_refresh_minutes = 500,
                "`saml.metadata_sources[0].min_refresh_minutes`",
            ),
            (
                &|s: &mut SamlSettings| {
                    s.service_providers[0].metadata_file = String::new();
                    s.service_providers[0].metadata_source = "edugain".to_owned();
                    s.service_providers[0].entity_id = "https://sp.test/sp".to_owned();
                },
                "`saml.service_providers[0].metadata_source`",
            ),
            (
                &|s: &mut SamlSettings| {
                    s.service_providers[0].metadata_file = String::new();
                    s.service_providers[0].metadata_source = "renater".to_owned();
                },
                "`saml.service_providers[0].entity_id`",
            ),
        ] {
            let settings = with(change);
            assert!(
                error(&settings).contains(key),
                "{key}: {}",
                error(&settings)
            );
        }
        // Loopback may be plain HTTP (a local mirror, the tests).
        with(&|s| s.metadata_sources[0].url = "http://127.0.0.1:8080/x.xml".to_owned())
            .validate()
            .unwrap();
    }

    #[test]
    fn entitlements_must_be_uris_and_name_their_affiliation() {
        let mut s = enabled(SP_METADATA);
        s.entitlements.insert(
            Affiliation::Student,
            vec!["urn:mace:dir:entitlement:common-lib-terms".to_owned()],
        );
        s.service_providers[0].attributes = vec![
            "eduPersonEntitlement".to_owned(),
            "eduPersonTargetedID".to_owned(),
        ];
        s.validate().unwrap();
        s.entitlements
            .insert(Affiliation::Staff, vec!["library access".to_owned()]);
        assert!(
            error(&s).contains("`saml.entitlements.staff`"),
            "{}",
            error(&s)
        );
        let parsed: SamlSettings = toml::from_str(
            "enabled = true\n[entitlements]\nstudent = [\"urn:mace:dir:entitlement:common-lib-terms\"]\n",
        )
        .unwrap();
        assert_eq!(parsed.entitlements[&Affiliation::Student].len(), 1);
    }

    #[test]
    fn metadata_urls_and_contacts_are_checked() {
        let mut s = enabled(SP_METADATA);
        s.logo_url = "logo.png".to_owned();
        assert!(error(&s).contains("`saml.logo_url`"), "{}", error(&s));
        let mut s = enabled(SP_METADATA);
        s.technical_contact = "the DSI".to_owned();
        assert!(
            error(&s).contains("`saml.technical_contact`"),
            "{}",
            error(&s)
        );
        let mut s = enabled(SP_METADATA);
        s.technical_contact = "dsi@univ.example.org".to_owned();
        s.logo_url = "https://univ.example.org/logo.png".to_owned();
        s.validate().unwrap();
    }
}
