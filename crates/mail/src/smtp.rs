//! SMTP with lettre: STARTTLS (required, never downgraded), implicit TLS, or plain for a
//! local relay; optional AUTH. One connection per mail: Sesame sends little mail, and a
//! fresh connection never trips over one the server closed.

use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sesame_core::mail::QueuedMail;

use crate::error::{MailSetupError, TransportError};
use crate::message::{build_message, Sender};
use crate::transport::{MailTransport, SmtpConfig, SmtpSecurity};

/// Sends through an SMTP server.
#[derive(Clone)]
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    from: Sender,
    host: String,
    port: u16,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// A transport for `config`, sending as `from`. Does not connect.
    ///
    /// # Errors
    /// [`MailSetupError::Smtp`] if the host is empty or the CA certificates do not parse.
    pub fn new(config: &SmtpConfig, from: Sender) -> Result<Self, MailSetupError> {
        let host = config.host.trim().to_owned();
        if host.is_empty() {
            return Err(MailSetupError::Smtp("smtp_host is empty".to_owned()));
        }
        let port = if config.port == 0 {
            config.security.default_port()
        } else {
            config.port
        };
        let tls = match config.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(&host, config)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(&host, config)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let Some(username) = config.username.as_deref().filter(|u| !u.is_empty()) {
            builder = builder.credentials(Credentials::new(
                username.to_owned(),
                config.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Self {
            inner: builder.build(),
            from,
            host,
            port,
        })
    }
}

fn tls_parameters(host: &str, config: &SmtpConfig) -> Result<TlsParameters, MailSetupError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(pem) = &config.ca_pem {
        let cert = Certificate::from_pem(pem)
            .map_err(|e| MailSetupError::Smtp(format!("smtp_ca_file: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| MailSetupError::Smtp(format!("TLS settings: {e}")))
}

#[async_trait]
impl MailTransport for SmtpTransport {
    async fn deliver(&self, mail: &QueuedMail) -> Result<(), TransportError> {
        let message = build_message(mail, &self.from)?;
        match self.inner.send(message).await {
            Ok(_) => Ok(()),
            // Refused credentials or a missing STARTTLS are the settings' fault, not the
            // mail's: keep every mail queued while the operator fixes them.
            Err(e) if e.status().is_some_and(|c| is_setup_refusal(&c.to_string())) => {
                Err(TransportError::Unavailable(e.to_string()))
            }
            Err(e) if e.is_permanent() => Err(TransportError::Permanent(e.to_string())),
            Err(e) if e.is_transient() => Err(TransportError::Temporary(e.to_string())),
            // Connection refused, timeout, TLS, no common AUTH mechanism: the server, not
            // this mail, is the problem.
            Err(e) => Err(TransportError::Unavailable(describe(&e))),
        }
    }

    fn name(&self) -> &'static str {
        "smtp"
    }
}

/// Replies about authentication or encryption (RFC 4954 §6, RFC 3207): 454 temporary
/// authentication failure, 530 authentication or STARTTLS required, 534 mechanism too weak,
/// 535 credentials invalid, 538 encryption required for the mechanism.
fn is_setup_refusal(code: &str) -> bool {
    matches!(code, "454" | "530" | "534" | "535" | "538")
}

/// The error with its causes (lettre's own message is often just "Connection error").
fn describe(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
