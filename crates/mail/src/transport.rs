//! How a queued mail leaves Sesame: the [`MailTransport`] trait and the settings that pick
//! one (the file outbox or SMTP).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sesame_core::mail::QueuedMail;

use crate::error::{MailSetupError, TransportError};
use crate::message::Sender;
use crate::outbox::OutboxTransport;
use crate::smtp::SmtpTransport;

/// Delivers one mail. Implementations must be idempotent enough for a retry: the worker may
/// hand the same mail again after an ambiguous failure.
#[async_trait]
pub trait MailTransport: Send + Sync + std::fmt::Debug {
    /// Hands `mail` over (to the mail server, or to the outbox directory).
    ///
    /// # Errors
    /// [`TransportError`], whose variant tells the worker whether to retry.
    async fn deliver(&self, mail: &QueuedMail) -> Result<(), TransportError>;

    /// A short name for logs: `outbox` or `smtp`.
    fn name(&self) -> &'static str;
}

/// `mail.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// One `.eml` file per mail in a directory (the embedded default).
    Outbox,
    /// An SMTP server.
    Smtp,
}

/// `mail.smtp_security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte, "implicit TLS" or SMTPS (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a trusted local network (port 25).
    None,
}

impl SmtpSecurity {
    /// The usual port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Starttls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

/// Where and how to reach the SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Host name (checked against the server's certificate) or address.
    pub host: String,
    /// Port; 0 for the usual port of `security`.
    pub port: u16,
    /// Encryption.
    pub security: SmtpSecurity,
    /// Login for SMTP AUTH, if the server wants one.
    pub username: Option<String>,
    /// Its password. Never printed.
    pub password: Option<String>,
    /// Extra trusted CA certificates (PEM), for a relay with an internal CA.
    pub ca_pem: Option<Vec<u8>>,
    /// Budget of each SMTP command (and of the connection).
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("ca_pem", &self.ca_pem.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Which transport to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// One `.eml` per mail in this directory (created at the first mail if missing).
    Outbox {
        /// The directory.
        dir: PathBuf,
    },
    /// An SMTP server.
    Smtp(SmtpConfig),
}

/// Builds the transport of `config`, sending as `from`.
///
/// # Errors
/// [`MailSetupError::Smtp`] if the SMTP settings are unusable (the server is not contacted
/// here; nor is the outbox directory created, see [`OutboxTransport::prepare`]).
pub fn build_transport(
    config: &TransportConfig,
    from: &Sender,
) -> Result<Arc<dyn MailTransport>, MailSetupError> {
    Ok(match config {
        TransportConfig::Outbox { dir } => {
            Arc::new(OutboxTransport::new(dir.clone(), from.clone()))
        }
        TransportConfig::Smtp(smtp) => Arc::new(SmtpTransport::new(smtp, from.clone())?),
    })
}
