//! The error of reading the configuration, on its own so that every file that reads a part of
//! the configuration can return it without importing `config/mod.rs`, which imports them.

/// A configuration problem; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
