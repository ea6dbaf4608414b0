//! `[helpdesk]`: where assistance requests go, the console's agents, the form's limits.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[helpdesk]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HelpdeskSettings {
    /// Where assistance requests are mailed; empty: they are only stored (`sesame helpdesk
    /// list` shows them).
    pub address: String,
    /// Language of the mails to the helpdesk: `fr` or `en`.
    pub lang: String,
    /// Requests accepted from one client address per hour.
    pub form_per_ip_per_hour: u32,
    /// Acknowledgements sent to one personal address per day.
    pub acks_per_address_per_day: u32,
    /// Logins of the helpdesk agents: who may use the console at `/helpdesk` (find an
    /// account, unlock, block, send links, issue activation codes, close requests).
    pub agents: Vec<String>,
}

impl Default for HelpdeskSettings {
    fn default() -> Self {
        Self {
            address: String::new(),
            lang: "fr".to_owned(),
            form_per_ip_per_hour: 5,
            acks_per_address_per_day: 3,
            agents: Vec::new(),
        }
    }
}

impl HelpdeskSettings {
    /// The helpdesk's address, if one is set.
    ///
    /// # Errors
    /// [`ConfigError`] if it is not an address.
    pub fn address(&self) -> Result<Option<sesame_core::ids::Email>, ConfigError> {
        if self.address.trim().is_empty() {
            return Ok(None);
        }
        sesame_core::ids::Email::parse(&self.address)
            .map(Some)
            .map_err(|e| ConfigError(format!("invalid value for `helpdesk.address`: {e}")))
    }

    /// Whether `login` is a helpdesk agent.
    pub fn is_agent(&self, login: &sesame_core::ids::LoginName) -> bool {
        self.agents
            .iter()
            .any(|a| sesame_core::ids::LoginName::parse(a).is_ok_and(|agent| agent == *login))
    }

    /// The language of the mails to the helpdesk.
    pub fn mail_lang(&self) -> sesame_core::i18n::Lang {
        sesame_core::i18n::Lang::from_tag(&self.lang).unwrap_or_default()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let err =
            |key: &str, msg: &str| Err(ConfigError(format!("invalid value for `{key}`: {msg}")));
        self.address()?;
        if sesame_core::i18n::Lang::from_tag(&self.lang).is_none() {
            return err("helpdesk.lang", "expected fr or en");
        }
        if let Some(bad) = self
            .agents
            .iter()
            .find(|a| sesame_core::ids::LoginName::parse(a).is_err())
        {
            return err("helpdesk.agents", &format!("{bad:?} is not a login"));
        }
        if self.form_per_ip_per_hour == 0 || self.form_per_ip_per_hour > 1000 {
            return err(
                "helpdesk.form_per_ip_per_hour",
                "must be between 1 and 1000",
            );
        }
        if self.acks_per_address_per_day == 0 || self.acks_per_address_per_day > 100 {
            return err(
                "helpdesk.acks_per_address_per_day",
                "must be between 1 and 100",
            );
        }
        Ok(())
    }
}
