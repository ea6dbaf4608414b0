//! The error of reading the configuration, on its own so that the sections kept outside
//! `config.rs` (`recovery_settings.rs`) can return it without importing `config.rs`, which
//! imports them.

/// A configuration problem; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
