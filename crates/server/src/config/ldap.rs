//! `[ldap]`: the read-only LDAP v3 interface (docs/ldap.md): listeners, TLS, the tree's base,
//! who may read what, and the limits that keep a search from costing the web login.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_ldap::dn::Dn;
use sesame_ldap::{CleartextBinds, ServiceAccount, ServiceScope};

use super::{parse_cidr, ConfigError};

/// `[ldap]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapSettings {
    /// Address of the LDAP listener (StartTLS offered when a certificate is set); empty: off.
    pub listen: String,
    /// Address of the LDAPS listener (TLS from the first byte); empty: off.
    pub listen_tls: String,
    /// PEM certificate chain for StartTLS and LDAPS (reread when it changes).
    pub tls_cert_file: String,
    /// PEM private key of that certificate.
    pub tls_key_file: String,
    /// The tree's base DN, e.g. `dc=univ,dc=example`.
    pub base_dn: String,
    /// `o` of the base entry; empty: `ui.institution_name`.
    pub organization: String,
    /// Accept `mail=<address>,ou=people,<base>` (and an address as `uid`) as a bind DN.
    pub bind_by_mail: bool,
    /// Anonymous binds read the public directory (only people who opted in); off: an
    /// anonymous client reads only the root DSE and the schema.
    pub anonymous_directory: bool,
    /// `never`, `loopback` or `always`: where a password bind may arrive without TLS.
    pub cleartext_binds: CleartextBindsSetting,
    /// Addresses (`10.0.0.5`, `10.0.0.0/24`) of servers binding on behalf of many people
    /// (Dovecot, a webmail): their binds count on each login's counter, not on the address's.
    pub relaying_peers: Vec<String>,
    /// Most entries one search (or one page of a paged search) returns.
    pub size_limit: usize,
    /// Longest one search runs, seconds.
    pub time_limit_secs: u64,
    /// Most accounts one search examines one by one (a search without an equality on `uid`
    /// or `mail`); beyond it the search ends with `adminLimitExceeded`.
    pub scan_limit: usize,
    /// Such searches running at once, across connections; beyond it `busy`.
    pub max_concurrent_scans: usize,
    /// Binds of people checking a password at once (LDAP's share of the hashing pool, so a
    /// mail server's burst leaves the rest to the login page); 0: half the hashing threads,
    /// at least one.
    pub max_concurrent_binds: usize,
    /// How long a bind waits for one of those places before it is told `busy`, milliseconds.
    pub bind_wait_ms: u64,
    /// Open connections at most.
    pub max_connections: usize,
    /// A connection silent this long is closed, seconds.
    pub idle_timeout_secs: u64,
    /// Service accounts, as `[[ldap.service_accounts]]` tables.
    pub service_accounts: Vec<ServiceAccountSetting>,
}

/// Where a password bind may arrive without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CleartextBindsSetting {
    /// Nowhere.
    Never,
    /// From the loopback interface only.
    Loopback,
    /// From anywhere.
    Always,
}

/// `[[ldap.service_accounts]]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountSetting {
    /// Its `cn`: it binds as `cn=<name>,ou=services,<base_dn>`.
    pub name: String,
    /// `auth`, `mail`, `directory` or `full`.
    pub scope: String,
    /// SHA-256 (hex) of its secret; `sesame ldap secret` prints a secret and its digest.
    pub secret_sha256: String,
}

impl Default for LdapSettings {
    fn default() -> Self {
        Self {
            listen: String::new(),
            listen_tls: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            base_dn: "dc=example,dc=org".to_owned(),
            organization: String::new(),
            bind_by_mail: false,
            anonymous_directory: false,
            cleartext_binds: CleartextBindsSetting::Loopback,
            relaying_peers: Vec::new(),
            size_limit: 500,
            time_limit_secs: 10,
            scan_limit: 100_000,
            max_concurrent_scans: 2,
            max_concurrent_binds: 0,
            bind_wait_ms: 1000,
            max_connections: 1024,
            idle_timeout_secs: 300,
            service_accounts: Vec::new(),
        }
    }
}

impl LdapSettings {
    /// Whether any listener is set.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty() || !self.listen_tls.is_empty()
    }

    /// The base DN, parsed.
    ///
    /// # Errors
    /// [`ConfigError`] naming `ldap.base_dn`.
    pub fn base(&self) -> Result<Dn, ConfigError> {
        match Dn::parse(&self.base_dn) {
            Ok(dn) if !dn.rdns.is_empty() => Ok(dn),
            _ => Err(ConfigError(format!(
                "invalid value for `ldap.base_dn`: `{}` is not a DN such as dc=univ,dc=example",
                self.base_dn
            ))),
        }
    }

    /// The service accounts, checked.
    ///
    /// # Errors
    /// [`ConfigError`] naming the entry at fault.
    pub fn services(&self) -> Result<Vec<ServiceAccount>, ConfigError> {
        let mut out: Vec<ServiceAccount> = Vec::new();
        for (i, s) in self.service_accounts.iter().enumerate() {
            let at = format!("ldap.service_accounts[{i}]");
            let name = s.name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(ConfigError(format!(
                    "invalid value for `{at}.name`: letters, digits, `-`, `_` and `.` only"
                )));
            }
            if out.iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
                return Err(ConfigError(format!(
                    "invalid value for `{at}.name`: `{name}` is named twice"
                )));
            }
            let scope = ServiceScope::parse(&s.scope).ok_or_else(|| {
                ConfigError(format!(
                    "invalid value for `{at}.scope`: one of auth, mail, directory, full"
                ))
            })?;
            let digest = s.secret_sha256.trim().to_ascii_lowercase();
            if digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ConfigError(format!(
                    "invalid value for `{at}.secret_sha256`: 64 hexadecimal digits (`sesame ldap secret` prints one)"
                )));
            }
            out.push(ServiceAccount {
                name: name.to_owned(),
                scope,
                secret_sha256: digest,
            });
        }
        Ok(out)
    }

    /// The relaying peers, parsed.
    ///
    /// # Errors
    /// [`ConfigError`] naming the entry at fault.
    pub fn relaying_peers(&self) -> Result<Vec<(std::net::IpAddr, u8)>, ConfigError> {
        self.relaying_peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                parse_cidr(p.trim()).ok_or_else(|| {
                    ConfigError(format!(
                        "invalid value for `ldap.relaying_peers[{i}]`: `{p}` is not an address or network"
                    ))
                })
            })
            .collect()
    }

    /// For the listener.
    pub fn cleartext(&self) -> CleartextBinds {
        match self.cleartext_binds {
            CleartextBindsSetting::Never => CleartextBinds::Never,
            CleartextBindsSetting::Loopback => CleartextBinds::Loopback,
            CleartextBindsSetting::Always => CleartextBinds::Always,
        }
    }

    /// Longest a search runs.
    pub fn time_limit(&self) -> Duration {
        Duration::from_secs(self.time_limit_secs)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.base()?;
        self.services()?;
        self.relaying_peers()?;
        let positive = [
            ("size_limit", self.size_limit),
            ("scan_limit", self.scan_limit),
            ("max_concurrent_scans", self.max_concurrent_scans),
            ("max_connections", self.max_connections),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError(format!(
                    "invalid value for `ldap.{key}`: at least 1"
                )));
            }
        }
        if self.time_limit_secs == 0 || self.idle_timeout_secs == 0 {
            return Err(ConfigError(
                "invalid value for `ldap.time_limit_secs` / `ldap.idle_timeout_secs`: at least 1"
                    .to_owned(),
            ));
        }
        if self.tls_cert_file.is_empty() != self.tls_key_file.is_empty() {
            return Err(ConfigError(
                "invalid value for `ldap.tls_cert_file` / `ldap.tls_key_file`: set both or neither"
                    .to_owned(),
            ));
        }
        if !self.listen_tls.is_empty() && self.tls_cert_file.is_empty() {
            return Err(ConfigError(
                "invalid value for `ldap.listen_tls`: LDAPS needs `ldap.tls_cert_file` and `ldap.tls_key_file`"
                    .to_owned(),
            ));
        }
        if self.cleartext_binds == CleartextBindsSetting::Never
            && !self.listen.is_empty()
            && self.tls_cert_file.is_empty()
        {
            return Err(ConfigError(
                "invalid value for `ldap.cleartext_binds`: `never` without a certificate would refuse every bind on `ldap.listen`"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_off_and_valid() {
        let s = LdapSettings::default();
        assert!(!s.enabled());
        s.validate().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let mut s = LdapSettings {
            base_dn: "univ".into(),
            ..LdapSettings::default()
        };
        assert!(s.validate().unwrap_err().0.contains("ldap.base_dn"));
        s.base_dn = "dc=univ,dc=example".into();
        s.service_accounts = vec![ServiceAccountSetting {
            name: "dovecot".into(),
            scope: "everything".into(),
            secret_sha256: "0".repeat(64),
        }];
        assert!(s
            .validate()
            .unwrap_err()
            .0
            .contains("ldap.service_accounts[0].scope"));
        s.service_accounts[0].scope = "auth".into();
        s.service_accounts[0].secret_sha256 = "s3cret".into();
        let e = s.validate().unwrap_err().0;
        assert!(e.contains("secret_sha256") && !e.contains("s3cret"), "{e}");
        s.service_accounts[0].secret_sha256 = "A".repeat(64);
        s.validate().unwrap();
        s.relaying_peers = vec!["10.0.0.0/33".into()];
        assert!(s.validate().unwrap_err().0.contains("relaying_peers[0]"));
        s.relaying_peers = vec!["10.0.0.0/8".into()];
        s.listen_tls = "127.0.0.1:636".into();
        assert!(s.validate().unwrap_err().0.contains("ldap.listen_tls"));
    }
}
