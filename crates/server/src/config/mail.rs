//! `[mail]`: outgoing mail.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sesame_core::mail::RetryPolicy;
use sesame_mail::message::Sender;
use sesame_mail::transport::{SmtpConfig, SmtpSecurity, TransportConfig, TransportKind};
use sesame_mail::worker::WorkerSettings;

use super::{ConfigError, Secret};

/// `[mail]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// `outbox` (one `.eml` per mail in `outbox_dir`) or `smtp`.
    pub transport: TransportKind,
    /// The sender of every mail, `Name <address>` or an address.
    pub from: String,
    /// Directory of the outbox transport.
    pub outbox_dir: String,
    /// SMTP server host name (checked against its certificate).
    pub smtp_host: String,
    /// SMTP port; 0 for the usual one (587 STARTTLS, 465 TLS, 25 none).
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none`.
    pub smtp_security: SmtpSecurity,
    /// SMTP AUTH login; empty: no AUTH.
    pub smtp_username: String,
    /// SMTP AUTH password. Secret.
    pub smtp_password: Secret,
    /// Extra CA certificates (PEM) trusted for the SMTP server; empty: the public web PKI.
    pub smtp_ca_file: String,
    /// Budget of one SMTP command (and of the connection), seconds.
    pub timeout_secs: u64,
    /// How often the worker looks for due mail, seconds (a queued mail also wakes it).
    pub worker_interval_secs: u64,
    /// Mails claimed at once by a worker.
    pub batch_size: usize,
    /// Waits between attempts, seconds; after the last one, a failure gives the mail up.
    pub retry_delays_secs: Vec<u64>,
}

impl MailSettings {
    /// The transport settings (reads `smtp_ca_file`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the key at fault.
    pub fn transport_config(&self) -> Result<TransportConfig, ConfigError> {
        Ok(match self.transport {
            TransportKind::Outbox => TransportConfig::Outbox {
                dir: PathBuf::from(&self.outbox_dir),
            },
            TransportKind::Smtp => TransportConfig::Smtp(SmtpConfig {
                host: self.smtp_host.trim().to_owned(),
                port: self.smtp_port,
                security: self.smtp_security,
                username: (!self.smtp_username.is_empty()).then(|| self.smtp_username.clone()),
                password: (!self.smtp_password.is_empty())
                    .then(|| self.smtp_password.expose().to_owned()),
                ca_pem: if self.smtp_ca_file.is_empty() {
                    None
                } else {
                    Some(std::fs::read(&self.smtp_ca_file).map_err(|e| {
                        ConfigError(format!("invalid value for `mail.smtp_ca_file`: {e}"))
                    })?)
                },
                timeout: std::time::Duration::from_secs(self.timeout_secs),
            }),
        })
    }

    /// The sender.
    ///
    /// # Errors
    /// [`ConfigError`] if `mail.from` is not an address.
    pub fn sender(&self) -> Result<Sender, ConfigError> {
        Sender::parse(&self.from)
            .map_err(|e| ConfigError(format!("invalid value for `mail.from`: {e}")))
    }

    /// The worker's pace and retries.
    pub fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings {
            batch_size: self.batch_size,
            retry: RetryPolicy {
                delays: self
                    .retry_delays_secs
                    .iter()
                    .copied()
                    .map(std::time::Duration::from_secs)
                    .collect(),
            },
            delivery_timeout: std::time::Duration::from_secs(self.timeout_secs),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| {
            Err(ConfigError(format!(
                "invalid value for `mail.{key}`: {msg}"
            )))
        };
        self.sender()?;
        if self.transport == TransportKind::Outbox && self.outbox_dir.trim().is_empty() {
            return err(
                "outbox_dir",
                "must not be empty with transport = \"outbox\"",
            );
        }
        if self.transport == TransportKind::Smtp {
            let host = self.smtp_host.trim();
            if host.is_empty() {
                return err("smtp_host", "must be set with transport = \"smtp\"");
            }
            if self.smtp_username.is_empty() != self.smtp_password.is_empty() {
                return err(
                    "smtp_username",
                    "smtp_username and smtp_password go together (both set, or both empty)",
                );
            }
            let loopback =
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if self.smtp_security == SmtpSecurity::None
                && !self.smtp_username.is_empty()
                && !loopback
            {
                return err(
                    "smtp_security",
                    "a password is never sent unencrypted to another host: use starttls or tls",
                );
            }
            let config = self.transport_config()?;
            if let TransportConfig::Smtp(smtp) = &config {
                sesame_mail::smtp::SmtpTransport::new(smtp, self.sender()?).map_err(|e| {
                    ConfigError(format!("invalid value for `mail.smtp_ca_file`: {e}"))
                })?;
            }
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return err("timeout_secs", "must be between 1 and 300 seconds");
        }
        if self.worker_interval_secs == 0 || self.worker_interval_secs > 3600 {
            return err("worker_interval_secs", "must be between 1 and 3600 seconds");
        }
        if self.batch_size == 0 || self.batch_size > 1000 {
            return err("batch_size", "must be between 1 and 1000");
        }
        if self.retry_delays_secs.len() > 50 {
            return err("retry_delays_secs", "at most 50 delays");
        }
        if self
            .retry_delays_secs
            .iter()
            .any(|d| *d == 0 || *d > 7 * 86_400)
        {
            return err(
                "retry_delays_secs",
                "each delay must be between 1 s and 7 days",
            );
        }
        Ok(())
    }
}
