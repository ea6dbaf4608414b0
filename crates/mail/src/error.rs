//! Errors of the mail crate.
//!
//! Policy: setting mail up ([`crate::templates::MailTemplates::load`],
//! [`crate::transport::build_transport`], [`crate::message::Sender::parse`]) fails with
//! [`MailSetupError`], naming the file or setting at fault; the server refuses to start.
//! Once running, a delivery fails with [`TransportError`], whose variant tells the worker
//! what to do: stop this pass and retry later ([`TransportError::Unavailable`]), retry this
//! mail later ([`TransportError::Temporary`]) or give it up ([`TransportError::Permanent`]).
//! Messages never hold a mail body or a password; the worker removes the recipient's address
//! before storing or logging one.

/// Why mail could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    /// A template of the theme is unreadable or does not compile, or a kind lacks one.
    #[error("mail template {name}: {reason}")]
    Template {
        /// The template (or file) at fault.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The sender address does not parse.
    #[error("mail.from: {0}")]
    From(String),
    /// The SMTP settings are unusable (bad host, unreadable CA file…).
    #[error("mail.smtp: {0}")]
    Smtp(String),
    /// The outbox directory cannot be created.
    #[error("mail.outbox_dir {path}: {reason}")]
    Outbox {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Why one delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The transport cannot be reached (connection refused, timeout, TLS failure, outbox
    /// directory not writable): retry later, and stop the current pass.
    #[error("mail transport unavailable: {0}")]
    Unavailable(String),
    /// The server refused this mail for now (SMTP 4xx): retry it later.
    #[error("mail temporarily refused: {0}")]
    Temporary(String),
    /// The mail was refused for good (SMTP 5xx, an address that cannot be written): give it up.
    #[error("mail refused: {0}")]
    Permanent(String),
}
