//! A secret setting (a password, a key, a URL with a password in it): held as a
//! [`secrecy::SecretString`], so that `Debug`, and every log or panic message built from the
//! settings, shows `********` instead of it. Reading it takes an explicit [`Secret::expose`].

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret value of the configuration.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// The value, for the one place that uses it (a connection, a header, a key).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether it is unset.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl Default for Secret {
    fn default() -> Self {
        Self::from(String::new())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(SecretString::from(value))
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::from(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() { "\"\"" } else { "********" })
    }
}

/// Settings are compared when reloaded; in constant time, as every secret is.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        sesame_core::random::constant_time_eq(self.expose(), other.expose())
    }
}

impl Eq for Secret {}

/// Serialised as its value: the layered configuration (defaults, file, environment) merges
/// serialised settings. What shows settings to people masks secrets first
/// ([`crate::config::Settings::to_masked_toml`]).
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::from("hunter2");
        assert_eq!(format!("{secret:?}"), "********");
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }

    #[test]
    fn it_reads_and_writes_as_a_plain_string() {
        let secret: Secret = serde_json::from_str("\"k\"").unwrap();
        assert_eq!(secret, Secret::from("k"));
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"k\"");
    }
}
