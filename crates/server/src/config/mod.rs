//! Settings: built-in defaults, then the configuration file, then `SESAME_…` environment
//! variables. Unknown keys and bad values are refused with the key's full name.

pub mod admin_api;
pub mod cas;
pub mod database;
pub mod helpdesk;
pub mod ldap;
pub mod lifecycle;
pub mod log;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod oidc;
pub mod password_hashing;
pub mod recovery;
pub mod saml;
pub mod secret;
pub mod server;
pub mod store;
pub mod ui;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use sesame_core::accounts::PolicySet;
use sesame_core::lockout::LockoutPolicy;
use sesame_core::session::SessionPolicy;
use sesame_protocol::oidc::clients::{ClientRegistry, SigningAlg};
use sesame_protocol::services::ServiceRegistry;
use url::Url;

pub use self::admin_api::AdminApiSettings;
pub use self::cas::CasSettings;
pub use self::database::DatabaseSettings;
pub use self::helpdesk::HelpdeskSettings;
pub use self::ldap::LdapSettings;
pub use self::lifecycle::LifecycleSettings;
pub use self::log::LogSettings;
pub use self::mail::MailSettings;
pub use self::metrics::MetricsSettings;
pub use self::mfa::MfaSettings;
pub use self::oidc::OidcSettings;
pub use self::password_hashing::HashingSettings;
pub use self::saml::SamlSettings;
pub use self::secret::Secret;
pub use self::server::ServerSettings;
pub use self::store::StoreSettings;
pub use self::ui::UiSettings;

/// The embedded defaults, also shipped as documentation.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

pub use crate::config_error::ConfigError;

/// Every setting of a Sesame instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener and public address.
    pub server: ServerSettings,
    /// Account database.
    pub database: DatabaseSettings,
    /// Ticket, session and counter store.
    pub store: StoreSettings,
    /// argon2id parameters and pool.
    pub password_hashing: HashingSettings,
    /// Password policy (default and per affiliation).
    pub password_policy: PolicySet,
    /// Lockout.
    pub lockout: LockoutPolicy,
    /// SSO session lifetimes.
    pub session: SessionPolicy,
    /// CAS tickets and registered services.
    pub cas: CasSettings,
    /// OpenID Connect provider: token lifetimes, signing keys, registered clients.
    pub oidc: OidcSettings,
    /// Account lifecycle: provisioning imports (e-mail patterns, national ID key).
    pub lifecycle: LifecycleSettings,
    /// Look and wording of the pages.
    pub ui: UiSettings,
    /// Logging.
    pub log: LogSettings,
    /// Outgoing mail: transport (file outbox or SMTP), sender, retries.
    pub mail: MailSettings,
    /// The admin HTTP API (provisioning systems, helpdesk tools).
    #[serde(default)]
    pub admin_api: AdminApiSettings,
    /// Outgoing SMS (reset codes, mobile verification): the gateway.
    #[serde(default)]
    pub sms: recovery::SmsSettings,
    /// The helpdesk: where assistance requests go, and the form's flood limits.
    #[serde(default)]
    pub helpdesk: HelpdeskSettings,
    /// Second factors: the sealing key, the policy per affiliation.
    #[serde(default)]
    pub mfa: MfaSettings,
    /// The read-only LDAP v3 interface (off by default).
    #[serde(default)]
    pub ldap: LdapSettings,
    /// The SAML 2.0 identity provider (off by default).
    #[serde(default)]
    pub saml: SamlSettings,
    /// Prometheus metrics listener.
    pub metrics: MetricsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        #[expect(
            clippy::expect_used,
            reason = "the embedded defaults are tested to parse"
        )]
        toml::from_str(DEFAULT_TOML).expect("embedded default.toml is valid")
    }
}

/// Whether `dotted` (`mail.smtp_ca_file`) names a key of `defaults` (the settings' defaults
/// as JSON). Keys of tables with free keys (`mfa.affiliations.staff`) are known when they have
/// a default.
fn is_known_key(defaults: &serde_json::Value, dotted: &str) -> bool {
    let mut at = defaults;
    for part in dotted.split('.') {
        match at.get(part) {
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

/// Where the configuration file is: `--config`, else `./sesame.toml` if present, else none.
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let local = PathBuf::from("sesame.toml");
            local.exists().then_some(local)
        }
    }
}

impl Settings {
    /// Loads defaults ← `file` ← environment, then validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or key at fault.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Which keys exist, to tell a key that itself ends in `_file` (`mail.smtp_ca_file`,
        // a path) from the `_FILE` form of a secret (`SESAME_DATABASE__URL_FILE`: the value
        // of `database.url` is in that file).
        let known = serde_json::to_value(Settings::default())
            .map_err(|e| ConfigError(format!("the defaults: {e}")))?;
        let env_key = |var: &str| {
            var.strip_prefix("SESAME_")
                .map(|name| name.to_lowercase().replace("__", "."))
        };
        let known_to_env = known.clone();
        figment = figment.merge(
            Env::prefixed("SESAME_")
                .ignore(&["config"])
                .filter(move |key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !key.ends_with("_file") || is_known_key(&known_to_env, &key.replace("__", "."))
                })
                .split("__"),
        );
        // `SESAME_<SECTION>__<KEY>_FILE=/run/secrets/…`: the value is read from the file, so
        // secrets (database and Redis passwords) need not sit in the environment. For a key
        // that itself ends in `_file`, that form is `…_FILE_FILE`.
        for (var, path) in std::env::vars() {
            let Some(dotted) = env_key(&var) else {
                continue;
            };
            if !dotted.ends_with("_file") || is_known_key(&known, &dotted) {
                // A plain value (read by the provider above).
                continue;
            }
            let key = dotted
                .strip_suffix("_file")
                .unwrap_or(dotted.as_str())
                .to_owned();
            if !is_known_key(&known, &key) {
                return Err(ConfigError(format!(
                    "{var}: no configuration key `{key}` (a `_FILE` variable names the file holding the value of its key)"
                )));
            }
            let value = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("{var}: cannot read {path}: {e}")))?;
            let value = value.trim_end_matches(['\n', '\r']).to_owned();
            figment = figment.merge(Serialized::default(&key, value));
        }
        let settings: Settings = figment.extract().map_err(|e| describe_figment_error(&e))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that types alone cannot; the error names the key.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err =
            |key: &str, msg: &str| Err(ConfigError(format!("invalid value for `{key}`: {msg}")));
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return err(
                "server.listen",
                "expected an address such as 127.0.0.1:8080",
            );
        }
        match Url::parse(&self.server.public_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
                    return err(
                        "server.public_url",
                        "must not carry credentials, a query or a fragment",
                    );
                }
            }
            _ => {
                return err(
                    "server.public_url",
                    "expected an http(s) URL such as https://sso.example.edu",
                )
            }
        }
        for (i, p) in self.server.trusted_proxies.iter().enumerate() {
            if parse_cidr(p).is_none() {
                return err(
                    &format!("server.trusted_proxies[{i}]"),
                    "expected an IP address or CIDR block",
                );
            }
        }
        let database_url = self.database.url.expose();
        if !(database_url.starts_with("sqlite://")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return err("database.url", "expected sqlite://PATH or postgres://…");
        }
        if self.database.max_connections == 0 {
            return err("database.max_connections", "must be at least 1");
        }
        self.store.validate()?;
        if let Err(e) = sesame_core::credentials::hasher::PasswordHasher::validate_params(
            self.password_hashing.argon2(),
        ) {
            return err("password_hashing", &e);
        }
        if let Err(e) = self.password_policy.validate() {
            return err("password_policy", &e);
        }
        if let Err(e) = self.lockout.validate() {
            return err("lockout", &e);
        }
        if let Err(e) = self.session.validate() {
            return err("session", &e);
        }
        for (key, v) in [
            (
                "cas.service_ticket_ttl_secs",
                self.cas.service_ticket_ttl_secs,
            ),
            ("cas.proxy_ticket_ttl_secs", self.cas.proxy_ticket_ttl_secs),
        ] {
            if v == 0 || v > 300 {
                return err(key, "must be between 1 and 300 seconds");
            }
        }
        if self.cas.proxy_granting_ticket_ttl_secs == 0
            || self.cas.proxy_granting_ticket_ttl_secs > 86_400
        {
            return err(
                "cas.proxy_granting_ticket_ttl_secs",
                "must be between 1 and 86400 seconds",
            );
        }
        if !self.cas.proxy_callback_ca_file.is_empty() {
            let pem = std::fs::read(&self.cas.proxy_callback_ca_file).map_err(|e| {
                ConfigError(format!(
                    "invalid value for `cas.proxy_callback_ca_file`: {e}"
                ))
            })?;
            if reqwest::Certificate::from_pem_bundle(&pem).map_or(true, |c| c.is_empty()) {
                return err("cas.proxy_callback_ca_file", "holds no PEM certificate");
            }
        }
        if let Err(e) = ServiceRegistry::new(self.cas.services.clone()) {
            return err("cas.services", &e.to_string());
        }
        self.validate_oidc()?;
        self.lifecycle.import_rules()?;
        self.lifecycle
            .activation
            .validate()
            .map_err(|e| ConfigError(format!("invalid value for `lifecycle.activation.{e}`")))?;
        if time_tz::timezones::get_by_name(&self.ui.time_zone).is_none() {
            return err(
                "ui.time_zone",
                "expected an IANA time zone such as Europe/Paris or UTC",
            );
        }
        if !self.ui.theme_dir.is_empty() && !Path::new(&self.ui.theme_dir).is_dir() {
            return err("ui.theme_dir", "is not a directory");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return err("log.format", "expected text or json");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return err(
                "log.level",
                "expected a filter such as info or sesame=debug,info",
            );
        }
        self.mail.validate()?;
        if !self.admin_api.listen.is_empty() {
            match self.admin_api.listen.parse::<SocketAddr>() {
                Ok(addr) if addr.to_string() == self.server.listen => {
                    return err(
                        "admin_api.listen",
                        "must differ from server.listen (leave it empty to serve the API there)",
                    );
                }
                Ok(_) => {}
                Err(_) => {
                    return err(
                        "admin_api.listen",
                        "expected an address such as 127.0.0.1:8081, or empty",
                    )
                }
            }
        }
        self.lifecycle.recovery.policy()?;
        self.sms.gateway()?;
        self.sms.retry_window()?;
        if self.lifecycle.retention_days == 0 || self.lifecycle.retention_days > 36_500 {
            return err(
                "lifecycle.retention_days",
                "must be between 1 and 36500 days",
            );
        }
        self.helpdesk.validate()?;
        self.mfa.validate()?;
        self.ldap.validate()?;
        self.saml.validate()?;
        if !self.metrics.listen.trim().is_empty() {
            match self.metrics.listen.parse::<SocketAddr>() {
                Ok(addr)
                    if addr.port() != 0
                        && self.server.listen.parse::<SocketAddr>().ok() == Some(addr) =>
                {
                    return err(
                        "metrics.listen",
                        "must differ from server.listen: metrics never share the public listener",
                    )
                }
                Ok(_) => {}
                Err(_) => {
                    return err(
                        "metrics.listen",
                        "expected an address such as 127.0.0.1:9090, or empty for no metrics",
                    )
                }
            }
        }
        Ok(())
    }

    /// Whether the public URL is https (then cookies are `Secure` and `__Host-` prefixed).
    fn validate_oidc(&self) -> Result<(), ConfigError> {
        let err =
            |key: &str, msg: &str| Err(ConfigError(format!("invalid value for `{key}`: {msg}")));
        let o = &self.oidc;
        for (key, v, max) in [
            (
                "oidc.access_token_ttl_secs",
                o.access_token_ttl_secs,
                86_400,
            ),
            ("oidc.id_token_ttl_secs", o.id_token_ttl_secs, 86_400),
            (
                "oidc.refresh_token_ttl_secs",
                o.refresh_token_ttl_secs,
                31_536_000,
            ),
            (
                "oidc.refresh_token_max_secs",
                o.refresh_token_max_secs,
                31_536_000,
            ),
            ("oidc.key_reload_secs", o.key_reload_secs, 86_400),
        ] {
            if v == 0 || v > max {
                return err(key, &format!("must be between 1 and {max} seconds"));
            }
        }
        if o.refresh_token_max_secs < o.refresh_token_ttl_secs {
            return err(
                "oidc.refresh_token_max_secs",
                "must be at least oidc.refresh_token_ttl_secs",
            );
        }
        // Every instance rereads the keys within key_reload_secs and clients cache the JWKS
        // for 60 s: a new key must be in their hands before it signs.
        if o.key_activation_delay_secs < o.key_reload_secs.saturating_add(60) {
            return err(
                "oidc.key_activation_delay_secs",
                "must be at least oidc.key_reload_secs + 60, so every instance and every client's JWKS cache has a new key before it signs",
            );
        }
        if !o.signing_algorithms.contains(&SigningAlg::RS256) {
            return err("oidc.signing_algorithms", "must include RS256");
        }
        if let Err(e) = ClientRegistry::new(o.clients.clone()) {
            return err("oidc.clients", &e.to_string());
        }
        for client in &o.clients {
            if client.client_credentials && client.public {
                return err(
                    "oidc.clients",
                    &format!(
                        "client {}: a public client cannot use client_credentials",
                        client.client_id
                    ),
                );
            }
            if !o
                .signing_algorithms
                .contains(&client.id_token_signed_response_alg)
            {
                return err(
                    "oidc.clients",
                    &format!(
                        "client {} asks for {} ID tokens, which is not in oidc.signing_algorithms",
                        client.client_id,
                        client.id_token_signed_response_alg.as_str()
                    ),
                );
            }
        }
        Ok(())
    }

    pub fn is_https(&self) -> bool {
        self.server.public_url.starts_with("https://")
    }

    /// The public URL without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }

    /// The SAML identity provider's entity ID: `saml.entity_id`, else
    /// `<public_url>/saml/metadata`.
    pub fn saml_entity_id(&self) -> String {
        if self.saml.entity_id.is_empty() {
            format!("{}/saml/metadata", self.public_base())
        } else {
            self.saml.entity_id.clone()
        }
    }

    /// The institution's scope for SAML: `saml.scope`, else `cas.principal_scope`, else the
    /// public URL's host.
    pub fn saml_scope(&self) -> String {
        [&self.saml.scope, &self.cas.principal_scope]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .or_else(|| {
                Url::parse(self.public_base())
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
            })
            .unwrap_or_default()
            .to_lowercase()
    }

    /// The effective configuration as TOML, with secrets masked.
    ///
    /// # Errors
    /// [`ConfigError`] if serialisation fails.
    pub fn to_masked_toml(&self) -> Result<String, ConfigError> {
        let mut masked = self.clone();
        masked.database.url = mask_url_password(masked.database.url.expose()).into();
        masked.store.url = mask_url_password(masked.store.url.expose()).into();
        for sentinel in &mut masked.store.sentinels {
            *sentinel = mask_url_password(sentinel);
        }
        if !masked.mail.smtp_password.is_empty() {
            masked.mail.smtp_password = "********".into();
        }
        if !masked.lifecycle.national_id_key.is_empty() {
            masked.lifecycle.national_id_key = "********".into();
        }
        if !masked.sms.http_auth_value.is_empty() {
            masked.sms.http_auth_value = "********".into();
        }
        if !masked.saml.pairwise_salt.is_empty() {
            masked.saml.pairwise_salt = "********".into();
        }
        toml::to_string_pretty(&masked).map_err(|e| ConfigError(e.to_string()))
    }
}

/// Replaces the password of a URL's userinfo by `********`.
pub fn mask_url_password(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            // set_password only fails for URLs that cannot have one, excluded by the guard.
            let _ = u.set_password(Some("********"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

fn describe_figment_error(e: &figment::Error) -> ConfigError {
    let mut out = Vec::new();
    for err in e.clone() {
        let key = if err.path.is_empty() {
            String::new()
        } else {
            format!(" `{}`", err.path.join("."))
        };
        let source = err
            .metadata
            .as_ref()
            .map(|m| match &m.source {
                // The variable itself, not "`SESAME_` environment variable(s)".
                _ if m.name.contains("environment") && !err.path.is_empty() => format!(
                    " (from {})",
                    format!("SESAME_{}", err.path.join("__")).to_uppercase()
                ),
                Some(figment::Source::File(file)) => match line_of_key(file, &err.path) {
                    Some(line) => format!(" (from {}, line {line})", file.display()),
                    None => format!(" (from {})", file.display()),
                },
                _ => format!(" (from {})", m.name),
            })
            .unwrap_or_default();
        let kind = match &err.kind {
            // figment's path already ends with the unknown field.
            figment::error::Kind::UnknownField(field, _) => {
                let path = if err.path.is_empty() {
                    field.clone()
                } else {
                    err.path.join(".")
                };
                format!("unknown key `{path}`")
            }
            other => format!("invalid value for key{key}: {other}"),
        };
        out.push(format!("{kind}{source}"));
    }
    ConfigError(out.join("; "))
}

/// The line (1-based) of `path` (`["lockout", "threshold"]`) in a TOML file: the line of its
/// key under its table's header, found by reading the file as people write it (`[lockout]`
/// then `threshold = …`, or `lockout.threshold = …` at the top). `None` when not found that way
/// (inline tables, arrays of tables): the error then names the file only.
fn line_of_key(file: &Path, path: &[String]) -> Option<usize> {
    let (key, table) = path.split_last()?;
    let text = std::fs::read_to_string(file).ok()?;
    let mut current: Vec<String> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = header
                .trim_matches('[')
                .split('.')
                .map(|p| p.trim().trim_matches('"').to_owned())
                .collect();
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let mut full = current.clone();
        full.extend(
            name.split('.')
                .map(|p| p.trim().trim_matches('"').to_owned()),
        );
        if full.len() == path.len() && full.last() == Some(key) && full[..full.len() - 1] == *table
        {
            return Some(index + 1);
        }
    }
    None
}

/// Parses `10.0.0.0/8`, `::1` or `192.168.1.10` into (network, prefix length).
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a = s.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesame_mail::transport::{SmtpSecurity, TransportKind};

    #[test]
    fn embedded_defaults_are_valid_and_embedded() {
        let s = Settings::default();
        s.validate().unwrap();
        assert_eq!(s.database.url.expose(), "sqlite://data/sesame.db");
        assert_eq!(s.store.url.expose(), "memory://");
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert_eq!(s.password_policy.default.min_length, 15);
    }

    /// Every key of the settings is documented in docs/configuration.md: a row in its
    /// section's table with the key, its `SESAME_…` variable, default and secrecy. The keys
    /// are those of `Settings` itself (serialised defaults, nested tables walked), so a field
    /// added to any settings struct fails here until its row is written; the message lists
    /// exactly the rows to add (and rows left over for keys that no longer exist).
    #[test]
    fn every_key_is_in_the_configuration_reference() {
        let reference = include_str!("../../../../docs/configuration.md");
        let documented = reference_rows(reference);
        let defaults = toml::Value::try_from(Settings::default()).unwrap();
        let mut keys = Vec::new();
        setting_keys(&defaults, "", &mut keys);
        assert!(keys.len() > 50, "walked too few keys: {keys:?}");

        let mut missing = Vec::new();
        for key in &keys {
            let Some((section, rest)) = key.split_once('.') else {
                continue;
            };
            let env = env_var(key);
            let row = documented.iter().find(|r| {
                r.section == section
                    && (r.key == rest
                        || r.key.starts_with(&format!("{rest}."))
                        // A map documented by one row (`activation.paths`), its entries walked.
                        || rest.starts_with(&format!("{}.", r.key)))
            });
            match row {
                None => missing.push(format!(
                    "{key}: no row `{rest}` under `## [{section}]` (variable {env})"
                )),
                Some(r)
                    if !r.env.contains(&env)
                        && !r.env.contains("use the file")
                        // `SESAME_…__PATHS__<AFFILIATION>`: one variable per map entry.
                        && !r
                            .env
                            .split('<')
                            .next()
                            .and_then(|head| head.rsplit('`').next())
                            .is_some_and(|stem| r.env.contains('<') && env.starts_with(stem)) =>
                {
                    missing.push(format!("{key}: its row does not name {env}"))
                }
                Some(r) if !matches!(r.secret.as_str(), "no" | "**yes**" | "**yes** (masked)") => {
                    missing.push(format!(
                        "{key}: its Secret column says neither no nor **yes**"
                    ))
                }
                Some(_) => {}
            }
        }
        let stale: Vec<String> = documented
            .iter()
            .filter(|r| !r.key.contains('<'))
            .map(|r| format!("{}.{}", r.section, r.key))
            .filter(|k| {
                !keys
                    .iter()
                    .any(|key| key == k || key.starts_with(&format!("{k}.")))
            })
            .collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "docs/configuration.md is out of date with the settings.\n\
             Keys to document (a row | `key` | `SESAME_SECTION__KEY` | default | meaning | no or **yes** |):\n  {}\n\
             Rows for keys that do not exist:\n  {}",
            missing.join("\n  "),
            stale.join("\n  ")
        );
    }

    /// One row of a key table of docs/configuration.md.
    struct ReferenceRow {
        section: String,
        key: String,
        env: String,
        secret: String,
    }

    /// The rows `| \`key\` | variable | default | meaning | secret |` under each
    /// ``## `[section]` `` heading.
    fn reference_rows(markdown: &str) -> Vec<ReferenceRow> {
        let mut rows = Vec::new();
        let mut section = None;
        // Under ``### `[lifecycle.activation]` `` the keys are `activation.…` of `[lifecycle]`.
        let mut prefix = String::new();
        for line in markdown.lines() {
            if let Some(heading) = line.strip_prefix("## ") {
                section = heading
                    .trim()
                    .strip_prefix("`[")
                    .and_then(|h| h.strip_suffix("]`"))
                    .map(str::to_owned);
                prefix.clear();
                continue;
            }
            if let Some(sub) = line
                .strip_prefix("### `[")
                .and_then(|h| h.trim().strip_suffix("]`"))
            {
                if let Some((top, rest)) = sub.split_once('.') {
                    section = Some(top.to_owned());
                    prefix = format!("{rest}.");
                }
                continue;
            }
            let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) else {
                continue;
            };
            let cells: Vec<&str> = row.split(" | ").collect();
            let Some((key, _)) = cells[0].split_once('`') else {
                continue;
            };
            rows.push(ReferenceRow {
                section: section.clone(),
                key: format!("{prefix}{key}"),
                env: cells.get(1).copied().unwrap_or_default().to_owned(),
                secret: cells
                    .last()
                    .copied()
                    .unwrap_or_default()
                    .trim_end_matches('|')
                    .trim()
                    .to_owned(),
            });
        }
        rows
    }

    /// Dotted paths of every leaf of `value`: scalars, arrays, and tables that are empty by
    /// default (maps such as `lifecycle.email_patterns`).
    fn setting_keys(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        match value.as_table() {
            Some(table) if !table.is_empty() => {
                for (k, v) in table {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    setting_keys(v, &path, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    fn env_var(key: &str) -> String {
        format!("SESAME_{}", key.to_uppercase().replace('.', "__"))
    }

    #[test]
    fn the_metrics_listener_is_on_loopback_by_default_and_never_the_public_one() {
        let mut s = Settings::default();
        assert_eq!(s.metrics.listen, "127.0.0.1:9090");
        s.metrics.listen = String::new();
        s.validate().unwrap();
        s.metrics.listen = "not an address".to_owned();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("metrics.listen"), "{e}");
        s.metrics.listen = s.server.listen.clone();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("must differ from server.listen"), "{e}");
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_url_password("postgres://sesame:hunter2@db/sesame"),
            "postgres://sesame:********@db/sesame"
        );
        assert_eq!(
            mask_url_password("sqlite://data/x.db"),
            "sqlite://data/x.db"
        );
    }

    #[test]
    fn cidr_blocks_parse() {
        assert_eq!(parse_cidr("10.0.0.0/8").map(|c| c.1), Some(8));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("nonsense").is_none());
    }

    #[test]
    fn debug_of_the_settings_shows_no_secret() {
        let mut s = Settings::default();
        s.database.url = "postgres://sesame:db-pass-1@db.example/sesame".into();
        s.store.url = "redis://:redis-pass-2@cache.example".into();
        s.mail.smtp_password = "smtp-pass-3".into();
        s.lifecycle.national_id_key = "national-id-key-4-0123456789abcdef0123".into();
        s.sms.http_auth_value = "Bearer sms-key-5".into();
        let shown = format!("{s:?}");
        for secret in [
            "db-pass-1",
            "redis-pass-2",
            "smtp-pass-3",
            "national-id-key-4",
            "sms-key-5",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("smtp_password: ********"), "{shown}");
    }

    #[test]
    fn mail_settings_are_checked_and_the_smtp_password_never_shown() {
        let mut s = Settings::default();
        assert_eq!(s.mail.transport, TransportKind::Outbox);
        s.mail.transport = TransportKind::Smtp;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("mail.smtp_host"), "{e}");

        s.mail.smtp_host = "smtp.univ.example".to_owned();
        s.mail.smtp_username = "sesame".to_owned();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("go together"), "{e}");
        s.mail.smtp_password = "hunter2-relay".into();
        s.validate().unwrap();

        // No password in clear to another host; a relay on loopback is fine.
        s.mail.smtp_security = SmtpSecurity::None;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("mail.smtp_security"), "{e}");
        s.mail.smtp_host = "127.0.0.1".to_owned();
        s.validate().unwrap();

        assert!(!format!("{s:?}").contains("hunter2-relay"));
        let masked = s.to_masked_toml().unwrap();
        assert!(!masked.contains("hunter2-relay"), "{masked}");
        assert!(masked.contains("smtp_password = \"********\""), "{masked}");

        s.mail.from = "not an address".to_owned();
        assert!(s.validate().unwrap_err().to_string().contains("mail.from"));
        s.mail.from = "Sesame <sesame@univ.example>".to_owned();
        s.mail.retry_delays_secs = vec![60, 0];
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("mail.retry_delays_secs"), "{e}");
        s.mail.retry_delays_secs = vec![];
        s.validate().unwrap();
        s.mail.smtp_ca_file = "/nonexistent/ca.pem".to_owned();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("mail.smtp_ca_file"), "{e}");
    }

    /// `[store]`: TLS files only with `rediss://`, both halves of a client identity, readable
    /// files; no `#insecure`; sentinels with their service name.
    #[test]
    fn store_tls_and_sentinel_settings_are_checked() {
        let refused = |store: &StoreSettings, key: &str| {
            let s = Settings {
                store: store.clone(),
                ..Settings::default()
            };
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(key), "expected an error naming {key}: {e}");
            e
        };
        let base = Settings::default().store;
        let tls = StoreSettings {
            url: "rediss://redis.example:6380/0".into(),
            ..base.clone()
        };
        let s = Settings {
            store: tls.clone(),
            ..Settings::default()
        };
        s.validate().unwrap();

        let e = refused(
            &StoreSettings {
                url: "rediss://redis.example:6380/#insecure".into(),
                ..tls.clone()
            },
            "store.url",
        );
        assert!(e.contains("#insecure"), "{e}");
        refused(
            &StoreSettings {
                url: "redis://redis.example:6379".into(),
                tls_ca_file: "/etc/ssl/redis-ca.pem".to_owned(),
                ..base.clone()
            },
            "store.tls_ca_file",
        );
        let e = refused(
            &StoreSettings {
                tls_ca_file: "/nonexistent/redis-ca.pem".to_owned(),
                ..tls.clone()
            },
            "store.tls_ca_file",
        );
        assert!(e.contains("/nonexistent/redis-ca.pem"), "{e}");
        refused(
            &StoreSettings {
                tls_client_key_file: "/nonexistent/key.pem".to_owned(),
                ..tls.clone()
            },
            "store.tls_client_key_file",
        );
        refused(
            &StoreSettings {
                tls_client_cert_file: "/nonexistent/cert.pem".to_owned(),
                ..tls.clone()
            },
            "store.tls_client_cert_file",
        );
        // A file that is not PEM: named, its content not shown.
        let not_pem = std::env::temp_dir().join(format!("sesame-not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "SECRET-NOT-PEM").unwrap();
        let e = refused(
            &StoreSettings {
                tls_ca_file: not_pem.display().to_string(),
                ..tls.clone()
            },
            "store.tls_ca_file",
        );
        assert!(
            e.contains("no PEM certificate") && !e.contains("SECRET"),
            "{e}"
        );
        std::fs::remove_file(&not_pem).unwrap();

        let sentinel = StoreSettings {
            url: "redis://:pw@mymaster/0".into(),
            sentinels: vec!["redis://:sentinel-pw@10.0.0.1:26379".to_owned()],
            sentinel_service: "mymaster".to_owned(),
            ..base.clone()
        };
        let s = Settings {
            store: sentinel.clone(),
            ..Settings::default()
        };
        s.validate().unwrap();
        let masked = s.to_masked_toml().unwrap();
        assert!(!masked.contains("sentinel-pw"), "{masked}");
        refused(
            &StoreSettings {
                sentinel_service: String::new(),
                ..sentinel.clone()
            },
            "store.sentinel_service",
        );
        refused(
            &StoreSettings {
                sentinels: vec!["10.0.0.1:26379".to_owned()],
                ..sentinel.clone()
            },
            "store.sentinels[0]",
        );
        refused(
            &StoreSettings {
                sentinels: Vec::new(),
                ..sentinel
            },
            "store.sentinel_service",
        );
    }
}
