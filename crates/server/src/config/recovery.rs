//! `[lifecycle.recovery]` and `[sms]`: forgotten password, the account page's verification
//! links and codes, and the SMS gateway (docs/configuration.md, docs/sms.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_core::ids::Affiliation;
use sesame_lifecycle::recovery::RecoveryPolicy;
use sesame_sms::gateway::{HttpGateway, HttpGatewayConfig, LogGateway, OutboxGateway, SmsGateway};

use super::{ConfigError, Secret};

/// `[lifecycle.recovery]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoverySettings {
    /// Lifetime of a reset or address verification link, seconds (default 3600; at most
    /// 86400).
    pub link_ttl_secs: u64,
    /// Lifetime of an SMS code, seconds (default 600).
    pub sms_code_ttl_secs: u64,
    /// Wrong codes allowed before a code is invalidated (default 5).
    pub sms_max_tries: u32,
    /// SMS sent to one number per 24 hours, at most (default 5).
    pub sms_per_number_per_day: u32,
    /// SMS sent for one account per 24 hours, at most (default 10).
    pub sms_per_account_per_day: u32,
    /// Lifetime of a reset code a helpdesk agent gives, seconds (default 1800; 60 to 86400).
    pub helpdesk_code_ttl_secs: u64,
    /// Wrong helpdesk codes allowed before the code is invalidated (default 5).
    pub helpdesk_code_max_tries: u32,
    /// The affiliations that may reset a forgotten password by identity check (HR number,
    /// national ID, birth date), as at Université Hassan II; default none.
    pub identity_check: Vec<Affiliation>,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        let p = RecoveryPolicy::default();
        Self {
            link_ttl_secs: p.link_ttl.as_secs(),
            sms_code_ttl_secs: p.sms_code_ttl.as_secs(),
            sms_max_tries: p.sms_max_tries,
            sms_per_number_per_day: p.sms_per_number_per_day,
            sms_per_account_per_day: p.sms_per_account_per_day,
            helpdesk_code_ttl_secs: p.helpdesk_code_ttl.as_secs(),
            helpdesk_code_max_tries: p.helpdesk_code_max_tries,
            identity_check: Vec::new(),
        }
    }
}

impl RecoverySettings {
    /// The policy these settings describe.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key at fault (a link may not live over 24 hours).
    pub fn policy(&self) -> Result<RecoveryPolicy, ConfigError> {
        let policy = RecoveryPolicy {
            link_ttl: Duration::from_secs(self.link_ttl_secs),
            sms_code_ttl: Duration::from_secs(self.sms_code_ttl_secs),
            sms_max_tries: self.sms_max_tries,
            sms_per_number_per_day: self.sms_per_number_per_day,
            sms_per_account_per_day: self.sms_per_account_per_day,
            helpdesk_code_ttl: Duration::from_secs(self.helpdesk_code_ttl_secs),
            helpdesk_code_max_tries: self.helpdesk_code_max_tries,
        };
        policy
            .validate()
            .map_err(|e| ConfigError(format!("invalid value in `lifecycle.recovery`: {e}")))?;
        Ok(policy)
    }
}

/// Where SMS go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsTransport {
    /// Logged (number masked, text never), not sent: development.
    Log,
    /// One JSON file per SMS in `outbox_dir`.
    Outbox,
    /// An HTTP request to a provider.
    Http,
}

/// `[sms]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    /// `log` (default), `outbox` or `http`.
    pub transport: SmsTransport,
    /// Directory of the outbox transport.
    pub outbox_dir: String,
    /// The provider's endpoint (http transport).
    pub http_url: String,
    /// `POST` (default), `PUT` or `GET`.
    pub http_method: String,
    /// Name of the authentication header, e.g. `Authorization`; empty: none.
    pub http_auth_header: String,
    /// Its value, e.g. `Bearer …`. Secret.
    pub http_auth_value: Secret,
    /// The body, `{to}` and `{text}` replaced (escaped for the content type).
    pub http_body_template: String,
    /// The body's content type.
    pub http_content_type: String,
    /// Budget of one request to the provider, seconds.
    pub timeout_secs: u64,
    /// How long an SMS is tried again while the gateway is down, seconds (0: one try). At most
    /// 540: an SMS code lives 600 s, and its lifetime is never extended for a late SMS.
    pub retry_for_secs: u64,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            transport: SmsTransport::Log,
            outbox_dir: "data/sms-outbox".to_owned(),
            http_url: String::new(),
            http_method: "POST".to_owned(),
            http_auth_header: String::new(),
            http_auth_value: Secret::default(),
            http_body_template: r#"{"to":"{to}","text":"{text}"}"#.to_owned(),
            http_content_type: "application/json".to_owned(),
            timeout_secs: 10,
            retry_for_secs: 300,
        }
    }
}

impl SmsSettings {
    /// How long a failed SMS is tried again.
    ///
    /// # Errors
    /// [`ConfigError`] above 540 s.
    pub fn retry_window(&self) -> Result<Duration, ConfigError> {
        if self.retry_for_secs > 540 {
            return Err(ConfigError(
                "invalid value for `sms.retry_for_secs`: at most 540 (an SMS code lives 600 s)"
                    .to_owned(),
            ));
        }
        Ok(Duration::from_secs(self.retry_for_secs))
    }

    /// The gateway these settings describe.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key at fault.
    pub fn gateway(&self) -> Result<Arc<dyn SmsGateway>, ConfigError> {
        Ok(match self.transport {
            SmsTransport::Log => Arc::new(LogGateway),
            SmsTransport::Outbox => {
                if self.outbox_dir.trim().is_empty() {
                    return Err(ConfigError(
                        "invalid value for `sms.outbox_dir`: must not be empty".to_owned(),
                    ));
                }
                Arc::new(OutboxGateway::new(PathBuf::from(&self.outbox_dir)))
            }
            SmsTransport::Http => {
                if self.timeout_secs == 0 {
                    return Err(ConfigError(
                        "invalid value for `sms.timeout_secs`: must be at least 1".to_owned(),
                    ));
                }
                Arc::new(
                    HttpGateway::new(HttpGatewayConfig {
                        url: self.http_url.clone(),
                        method: self.http_method.clone(),
                        auth_header: self.http_auth_header.clone(),
                        auth_value: self.http_auth_value.expose().to_owned(),
                        body_template: self.http_body_template.clone(),
                        content_type: self.http_content_type.clone(),
                        timeout: Duration::from_secs(self.timeout_secs),
                    })
                    .map_err(|e| ConfigError(format!("invalid value in `sms`: {e}")))?,
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_may_not_live_over_a_day() {
        let mut s = RecoverySettings::default();
        assert_eq!(s.policy().unwrap().link_ttl, Duration::from_secs(3600));
        s.link_ttl_secs = 86_401;
        let e = s.policy().unwrap_err().to_string();
        assert!(e.contains("link_ttl_secs"), "{e}");
    }

    #[test]
    fn the_http_gateway_needs_a_url() {
        let s = SmsSettings {
            transport: SmsTransport::Http,
            ..SmsSettings::default()
        };
        assert!(s.gateway().is_err());
    }
}
