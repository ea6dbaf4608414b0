//! `[mfa]`: second factors: the key that seals TOTP secrets at rest, the name authenticator
//! applications show, and who must, may or may not use a second factor.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sesame_core::ids::Affiliation;
use sesame_mfa::policy::{EnrolmentGrace, MfaPolicy, MfaRequirement};
use sesame_mfa::sealing::{SecretSealer, KEY_LEN};

use super::{ConfigError, Secret};

/// `[mfa]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaSettings {
    /// `"<id>:<base64 of 32 random bytes>"` (`sesame keys mfa` prints one). Empty: second
    /// factors are off (the account page does not offer them, and an account that has one
    /// cannot log in until a key is set again: its factor cannot be checked). A secret: give
    /// it as `SESAME_MFA__SEALING_KEY_FILE`.
    pub sealing_key: Secret,
    /// Keys sealed with before a rotation, same form: secrets they sealed still open.
    pub former_sealing_keys: Vec<Secret>,
    /// The name authenticator applications show beside the login; empty: `ui.institution_name`.
    pub issuer: String,
    /// Per affiliation: `required`, `optional` or `off` (an affiliation not listed is
    /// `optional`).
    pub affiliations: BTreeMap<Affiliation, MfaRequirement>,
    /// How long a person who must enrol may still log in without a factor.
    pub grace: EnrolmentGrace,
    /// Days a browser that passed the second factor may be remembered ("Ne plus demander
    /// sur cet appareil"): its next logins ask for the password only. 0 (the default): off.
    /// At most 365.
    pub remember_browser_days: u32,
}

impl Default for MfaSettings {
    fn default() -> Self {
        let policy = MfaPolicy::default();
        Self {
            sealing_key: Secret::default(),
            former_sealing_keys: Vec::new(),
            issuer: String::new(),
            affiliations: policy.affiliations,
            grace: policy.grace,
            remember_browser_days: 0,
        }
    }
}

fn parse_key<'a>(key: &str, text: &'a str) -> Result<(&'a str, Vec<u8>), ConfigError> {
    let err = |msg: &str| ConfigError(format!("invalid value for `{key}`: {msg}"));
    let (id, b64) = text
        .split_once(':')
        .ok_or_else(|| err("expected <id>:<base64 of 32 bytes>"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| err("the part after the id is not base64"))?;
    if bytes.len() != KEY_LEN {
        return Err(err(&format!("the key must be {KEY_LEN} bytes")));
    }
    Ok((id.trim(), bytes))
}

impl MfaSettings {
    /// The sealer of TOTP secrets, if a key is set.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key at fault (never its value).
    pub fn sealer(&self) -> Result<Option<SecretSealer>, ConfigError> {
        if self.sealing_key.is_empty() {
            return Ok(None);
        }
        let (id, bytes) = parse_key("mfa.sealing_key", self.sealing_key.expose())?;
        let former = self
            .former_sealing_keys
            .iter()
            .map(|k| parse_key("mfa.former_sealing_keys", k.expose()))
            .collect::<Result<Vec<_>, _>>()?;
        let former: Vec<(&str, &[u8])> = former.iter().map(|(i, b)| (*i, b.as_slice())).collect();
        SecretSealer::new((id, &bytes), &former)
            .map(Some)
            .map_err(|e| ConfigError(format!("invalid value for `mfa.sealing_key`: {e}")))
    }

    /// The policy per affiliation.
    pub fn policy(&self) -> MfaPolicy {
        MfaPolicy {
            affiliations: self.affiliations.clone(),
            grace: self.grace.clone(),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.remember_browser_days > 365 {
            return Err(ConfigError(
                "invalid value for `mfa.remember_browser_days`: at most 365".to_owned(),
            ));
        }
        let sealer = self.sealer()?;
        // Nobody could add the factor the policy demands: past the grace, nothing would open.
        if sealer.is_none() && self.policy().any_required() {
            return Err(ConfigError(
                "invalid value for `mfa.affiliations`: `required` needs `mfa.sealing_key` (without it nobody can add a second factor)".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealing_key_is_an_id_and_32_bytes_of_base64_and_errors_never_show_it() {
        let mut s = MfaSettings::default();
        assert!(s.sealer().unwrap().is_none());
        let good = format!(
            "k2026:{}",
            base64::engine::general_purpose::STANDARD.encode([9u8; 32])
        );
        s.sealing_key = Secret::from(good.as_str());
        assert!(s.sealer().unwrap().is_some());
        for bad in ["nocolon", "k:not*base64", "k:AAAA"] {
            s.sealing_key = Secret::from(bad);
            let e = s.sealer().unwrap_err().to_string();
            assert!(e.contains("mfa.sealing_key"), "{e}");
            assert!(!e.contains(bad), "{e}");
        }
        assert!(!format!(
            "{:?}",
            MfaSettings {
                sealing_key: Secret::from(good.as_str()),
                ..MfaSettings::default()
            }
        )
        .contains(&good[6..]));
    }
}
