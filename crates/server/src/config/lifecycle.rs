//! `[lifecycle]`: provisioning, activation, charter, recovery, retention.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sesame_core::ids::Affiliation;
use sesame_core::national_id::NationalIdKey;
use sesame_lifecycle::import::ImportRules;
use sesame_lifecycle::login::{EmailPattern, EmailPatterns};

use super::{ConfigError, Secret};

/// `[lifecycle]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSettings {
    /// Institutional e-mail of new accounts: an address with `{login}` in it, e.g.
    /// `{login}@univ.example.org`; empty: none.
    pub email_pattern: String,
    /// Per-affiliation patterns replacing `email_pattern` (an empty one: no institutional
    /// e-mail for that affiliation).
    pub email_patterns: BTreeMap<Affiliation, String>,
    /// The HMAC key national ID numbers are hashed with (at least 32 bytes); empty: national
    /// IDs are refused. Secret.
    pub national_id_key: Secret,
    /// `[lifecycle.activation]`: the activation paths open to each affiliation, code and
    /// flow lifetimes, failure limits, challenge difficulty.
    #[serde(default)]
    pub activation: sesame_lifecycle::activation::settings::ActivationPolicy,
    /// `[lifecycle.charter]`: the IT charter's version, link and text.
    #[serde(default)]
    pub charter: sesame_lifecycle::activation::settings::CharterPolicy,
    /// Forgotten password and verification links and codes.
    #[serde(default)]
    pub recovery: super::recovery::RecoverySettings,
    /// Days a disabled account is kept, counted from when it was disabled; then it is
    /// deleted (the audit trail stays).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

/// `lifecycle.retention_days` when not set.
fn default_retention_days() -> u32 {
    365
}

impl LifecycleSettings {
    /// What imports need: the e-mail patterns and the national ID key.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key at fault.
    pub fn import_rules(&self) -> Result<ImportRules, ConfigError> {
        let bad = |key: &str, e: &str| ConfigError(format!("invalid value for `{key}`: {e}"));
        // Each pattern on its own first, so the error names its key.
        for (key, raw) in
            std::iter::once(("lifecycle.email_pattern".to_owned(), &self.email_pattern)).chain(
                self.email_patterns
                    .iter()
                    .map(|(aff, raw)| (format!("lifecycle.email_patterns.{aff}"), raw)),
            )
        {
            if !raw.trim().is_empty() {
                EmailPattern::parse(raw).map_err(|e| bad(&key, &e))?;
            }
        }
        let email = EmailPatterns::new(&self.email_pattern, &self.email_patterns)
            .map_err(|e| bad("lifecycle.email_patterns", &e))?;
        let national_id_key = if self.national_id_key.is_empty() {
            None
        } else {
            Some(
                NationalIdKey::new(self.national_id_key.expose())
                    .map_err(|e| bad("lifecycle.national_id_key", &e.to_string()))?,
            )
        };
        Ok(ImportRules {
            email,
            national_id_key,
        })
    }
}
