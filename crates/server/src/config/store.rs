//! `[store]`: the ephemeral store (tickets, sessions, counters).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sesame_store::{RedisTarget, RedisTls, TlsFile};

use super::{ConfigError, Secret};

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `memory://` (in-process, one instance only), `redis://…` or `rediss://…` (TLS). Secret
    /// when it holds a password.
    pub url: Secret,
    /// Prefix of every Redis key (several deployments can share one Redis).
    pub key_prefix: String,
    /// Budget of one store operation, in milliseconds; past it the request gets a 503.
    pub timeout_ms: u64,
    /// Whether tickets, codes and sessions Redis held before it restarted still count. `false`:
    /// a Redis restart ends them all, so a Redis restored from an older snapshot cannot bring a
    /// consumed ticket or an ended session back (security spec F03). `true` only with a Redis
    /// that cannot lose a write (`appendfsync always`, never restored from an older snapshot).
    pub keep_records_across_restarts: bool,
    /// `rediss://`: PEM file of the CA that signed Redis's certificate; empty: the Mozilla
    /// roots compiled into Sesame.
    pub tls_ca_file: String,
    /// `rediss://` with mutual TLS: PEM certificate chain Sesame presents (with its key).
    pub tls_client_cert_file: String,
    /// `rediss://` with mutual TLS: PEM private key of `tls_client_cert_file`. Secret (the file).
    pub tls_client_key_file: String,
    /// Redis Sentinel: `redis://[user:password@]host:port` (or `rediss://`) of each sentinel,
    /// which name the primary; `url` then gives only the scheme, credentials and database.
    /// Empty: `url` names Redis itself. Secret when they hold a password.
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under; required with `sentinels`.
    pub sentinel_service: String,
}

impl StoreSettings {
    /// Whether the store is shared by several processes (Redis), rather than inside this one.
    /// With the in-process store, what another process (the CLI) does to an account cannot
    /// reach this process's sessions, so the database is asked instead.
    pub fn is_shared(&self) -> bool {
        self.url.expose() != "memory://"
    }

    /// Where the Redis store connects: the URL, its TLS files read, and the sentinels.
    ///
    /// # Errors
    /// [`ConfigError`] naming the TLS setting whose file cannot be used.
    pub fn redis_target(&self) -> Result<RedisTarget, ConfigError> {
        let file = |path: &str| (!path.is_empty()).then(|| PathBuf::from(path));
        let (ca, cert, key) = (
            file(&self.tls_ca_file),
            file(&self.tls_client_cert_file),
            file(&self.tls_client_key_file),
        );
        let tls =
            RedisTls::from_files(ca.as_deref(), cert.as_deref(), key.as_deref()).map_err(|e| {
                let key = match e.file() {
                    TlsFile::Ca => "store.tls_ca_file",
                    TlsFile::ClientCert => "store.tls_client_cert_file",
                    TlsFile::ClientKey => "store.tls_client_key_file",
                };
                ConfigError(format!("invalid value for `{key}`: {e}"))
            })?;
        let target = RedisTarget::url(self.url.expose()).with_tls(tls);
        Ok(if self.sentinels.is_empty() {
            target
        } else {
            target.through_sentinels(self.sentinels.clone(), self.sentinel_service.as_str())
        })
    }

    /// Checks the `[store]` keys that types alone cannot.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| {
            Err(ConfigError(format!(
                "invalid value for `store.{key}`: {msg}"
            )))
        };
        let is_redis_url = |url: &str| url.starts_with("redis://") || url.starts_with("rediss://");
        let url = self.url.expose();
        if !(url == "memory://" || is_redis_url(url)) {
            return err("url", "expected memory://, redis://… or rediss://… (TLS)");
        }
        // Certificate checks cannot be turned off; a private CA goes in tls_ca_file.
        let insecure = |url: &str| url.starts_with("rediss://") && url.contains('#');
        if insecure(url) {
            return err(
                "url",
                "rediss:// with a #fragment (#insecure: no certificate check) is refused; \
                 trust a private CA with store.tls_ca_file",
            );
        }
        if self.timeout_ms == 0 {
            return err("timeout_ms", "must be at least 1");
        }
        let tls_files = [
            ("tls_ca_file", &self.tls_ca_file),
            ("tls_client_cert_file", &self.tls_client_cert_file),
            ("tls_client_key_file", &self.tls_client_key_file),
        ];
        if let Some((key, _)) = tls_files.iter().find(|(_, path)| !path.is_empty()) {
            if !url.starts_with("rediss://") {
                return err(key, "TLS files need a rediss:// store.url");
            }
        }
        for (i, sentinel) in self.sentinels.iter().enumerate() {
            if !is_redis_url(sentinel) || insecure(sentinel) {
                return err(
                    &format!("sentinels[{i}]"),
                    "expected redis://[user:password@]host:port or rediss://…",
                );
            }
        }
        if !self.sentinels.is_empty() {
            if url == "memory://" {
                return err("sentinels", "need a redis:// or rediss:// store.url");
            }
            if self.sentinel_service.is_empty() {
                return err(
                    "sentinel_service",
                    "required with store.sentinels (the name in `sentinel monitor`)",
                );
            }
        } else if !self.sentinel_service.is_empty() {
            return err("sentinel_service", "set without store.sentinels");
        }
        self.redis_target().map(drop)
    }
}
