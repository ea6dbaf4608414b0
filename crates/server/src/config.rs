//! Settings: built-in defaults, then the configuration file, then `SESAME_…` environment
//! variables. Unknown keys and bad values are refused with the key's full name.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use sesame_core::accounts::PolicySet;
use sesame_core::credentials::hasher::Argon2Params;
use sesame_core::ids::Affiliation;
use sesame_core::lockout::LockoutPolicy;
use sesame_core::mail::RetryPolicy;
use sesame_core::national_id::NationalIdKey;
use sesame_core::session::SessionPolicy;
use sesame_lifecycle::import::ImportRules;
use sesame_lifecycle::login::{EmailPattern, EmailPatterns};
use sesame_mail::message::Sender;
use sesame_mail::transport::{SmtpConfig, SmtpSecurity, TransportConfig, TransportKind};
use sesame_mail::worker::WorkerSettings;
use sesame_protocol::cas::tickets::CasTicketPolicy;
use sesame_protocol::oidc::clients::{ClientRegistry, OidcClient, SigningAlg};
use sesame_protocol::oidc::grants::TokenPolicy;
use sesame_protocol::services::{RegisteredService, ServiceRegistry};
use url::Url;

use crate::secret::Secret;

/// The embedded defaults, also shipped as documentation.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A configuration problem; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

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
    pub sms: crate::recovery_settings::SmsSettings,
    /// The helpdesk: where assistance requests go, and the form's flood limits.
    #[serde(default)]
    pub helpdesk: HelpdeskSettings,
    /// Prometheus metrics listener.
    pub metrics: MetricsSettings,
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address of the separate listener serving `/metrics` (never the public one); empty: no
    /// metrics.
    pub listen: String,
}

/// `[admin_api]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminApiSettings {
    /// Serve `/admin/api/v1/…` (API keys still required on every call).
    pub enabled: bool,
    /// A separate address for the admin API (e.g. `127.0.0.1:8081`, reachable from the
    /// internal network only); then the public listener answers 404 there. Empty: the API is
    /// on the public listener, behind its API keys.
    pub listen: String,
}

impl Default for AdminApiSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: String::new(),
        }
    }
}

/// `[helpdesk]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HelpdeskSettings {
    /// Where assistance requests are mailed; empty: they are only stored (`sesame helpdesk
    /// list` shows them).
    pub address: String,
    /// Language of the mails to the helpdesk: `fr` or `en`.
    pub lang: String,
    /// Requests accepted from one client address per hour.
    pub form_per_ip_per_hour: u32,
    /// Acknowledgements sent to one personal address per day.
    pub acks_per_address_per_day: u32,
    /// Logins of the helpdesk agents: who may use the console at `/helpdesk` (find an
    /// account, unlock, block, send links, issue activation codes, close requests).
    pub agents: Vec<String>,
}

impl Default for HelpdeskSettings {
    fn default() -> Self {
        Self {
            address: String::new(),
            lang: "fr".to_owned(),
            form_per_ip_per_hour: 5,
            acks_per_address_per_day: 3,
            agents: Vec::new(),
        }
    }
}

impl HelpdeskSettings {
    /// The helpdesk's address, if one is set.
    ///
    /// # Errors
    /// [`ConfigError`] if it is not an address.
    pub fn address(&self) -> Result<Option<sesame_core::ids::Email>, ConfigError> {
        if self.address.trim().is_empty() {
            return Ok(None);
        }
        sesame_core::ids::Email::parse(&self.address)
            .map(Some)
            .map_err(|e| ConfigError(format!("invalid value for `helpdesk.address`: {e}")))
    }

    /// Whether `login` is a helpdesk agent.
    pub fn is_agent(&self, login: &sesame_core::ids::LoginName) -> bool {
        self.agents
            .iter()
            .any(|a| sesame_core::ids::LoginName::parse(a).is_ok_and(|agent| agent == *login))
    }

    /// The language of the mails to the helpdesk.
    pub fn mail_lang(&self) -> sesame_core::i18n::Lang {
        sesame_core::i18n::Lang::from_tag(&self.lang).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let err =
            |key: &str, msg: &str| Err(ConfigError(format!("invalid value for `{key}`: {msg}")));
        self.address()?;
        if sesame_core::i18n::Lang::from_tag(&self.lang).is_none() {
            return err("helpdesk.lang", "expected fr or en");
        }
        if let Some(bad) = self
            .agents
            .iter()
            .find(|a| sesame_core::ids::LoginName::parse(a).is_err())
        {
            return err("helpdesk.agents", &format!("{bad:?} is not a login"));
        }
        if self.form_per_ip_per_hour == 0 || self.form_per_ip_per_hour > 1000 {
            return err(
                "helpdesk.form_per_ip_per_hour",
                "must be between 1 and 1000",
            );
        }
        if self.acks_per_address_per_day == 0 || self.acks_per_address_per_day > 100 {
            return err(
                "helpdesk.acks_per_address_per_day",
                "must be between 1 and 100",
            );
        }
        Ok(())
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: String,
    /// The URL people and applications use to reach Sesame (the CAS base is `<public_url>/cas`).
    pub public_url: String,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed (IP addresses or CIDR blocks).
    pub trusted_proxies: Vec<String>,
    /// Grace period for in-flight requests on SIGTERM.
    pub shutdown_timeout_secs: u64,
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`. Secret.
    pub url: Secret,
    /// Pool size.
    pub max_connections: u32,
    /// Apply pending migrations at start.
    pub migrate_on_start: bool,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `memory://` (in-process, one instance only) or `redis://…`. Secret when it holds a password.
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
}

impl StoreSettings {
    /// Whether the store is shared by several processes (Redis), rather than inside this one.
    /// With the in-process store, what another process (the CLI) does to an account cannot
    /// reach this process's sessions, so the database is asked instead.
    pub fn is_shared(&self) -> bool {
        self.url.expose() != "memory://"
    }
}

/// `[password_hashing]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashingSettings {
    /// argon2 memory, KiB.
    pub memory_kib: u32,
    /// argon2 passes.
    pub iterations: u32,
    /// argon2 lanes.
    pub parallelism: u32,
    /// Logins allowed to wait per hashing thread before 503.
    pub queue_per_worker: usize,
}

impl HashingSettings {
    /// The argon2 parameters.
    pub fn argon2(&self) -> Argon2Params {
        Argon2Params {
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
        }
    }
}

/// `[cas]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasSettings {
    /// Lifetime of a service ticket, seconds.
    pub service_ticket_ttl_secs: u64,
    /// Lifetime of a proxy ticket, seconds.
    pub proxy_ticket_ttl_secs: u64,
    /// Lifetime of a proxy-granting ticket, seconds.
    pub proxy_granting_ticket_ttl_secs: u64,
    /// Hosts whose `pgtUrl` may be plain http (development only).
    pub proxy_callback_http_hosts: Vec<String>,
    /// Hosts whose `pgtUrl` may resolve to internal addresses (https still required).
    pub proxy_callback_internal_hosts: Vec<String>,
    /// Extra trusted CA certificates (PEM file) for `pgtUrl` callbacks; empty: the public
    /// web PKI only.
    pub proxy_callback_ca_file: String,
    /// Domain of `eduPersonPrincipalName` (`login@scope`); empty: the institutional
    /// e-mail's domain.
    pub principal_scope: String,
    /// The applications allowed to use Sesame over CAS.
    pub services: Vec<RegisteredService>,
}

/// `[oidc]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Lifetime of an access token (a JWT, RFC 9068), seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of an ID token, seconds.
    pub id_token_ttl_secs: u64,
    /// A refresh token unused for this long expires, seconds.
    pub refresh_token_ttl_secs: u64,
    /// A chain of refresh tokens ends this long after the login, seconds.
    pub refresh_token_max_secs: u64,
    /// Algorithms Sesame keeps a signing key for (`RS256` always).
    pub signing_algorithms: Vec<SigningAlg>,
    /// How long after `sesame keys rotate` the new key starts signing, seconds: every
    /// instance reloads the keys (and publishes the new one) within this time.
    pub key_activation_delay_secs: u64,
    /// How often each instance rereads the signing keys, seconds.
    pub key_reload_secs: u64,
    /// The relying parties, as `[[oidc.clients]]` tables (see docs/oidc.md).
    pub clients: Vec<OidcClient>,
}

impl OidcSettings {
    /// Lifetimes for the token service.
    pub fn token_policy(&self) -> TokenPolicy {
        TokenPolicy {
            access_token_ttl: std::time::Duration::from_secs(self.access_token_ttl_secs),
            refresh_token_ttl: std::time::Duration::from_secs(self.refresh_token_ttl_secs),
            refresh_family_max: std::time::Duration::from_secs(self.refresh_token_max_secs),
        }
    }

    /// How long a retired key stays published: longer than any token it signed lives.
    pub fn retired_key_publication(&self) -> std::time::Duration {
        // ID tokens are what the keys sign; a client may have its own lifetime.
        let longest = self
            .clients
            .iter()
            .filter_map(|c| c.id_token_ttl_secs)
            .fold(self.id_token_ttl_secs, u64::max);
        std::time::Duration::from_secs(longest.saturating_add(3600))
    }
}

impl CasSettings {
    /// The ticket lifetimes.
    pub fn ticket_policy(&self) -> CasTicketPolicy {
        CasTicketPolicy {
            service_ticket_ttl_secs: self.service_ticket_ttl_secs,
            proxy_ticket_ttl_secs: self.proxy_ticket_ttl_secs,
            proxy_granting_ticket_ttl_secs: self.proxy_granting_ticket_ttl_secs,
        }
    }
}

/// `[lifecycle]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSettings {
    /// Institutional e-mail of new accounts: an address with `{login}` in it, e.g.
    /// `{login}@univ.example.org`; empty: none.
    pub email_pattern: String,
    /// Per-affiliation patterns replacing `email_pattern` (an empty one: no institutional
    /// e-mail for that affiliation).
    pub email_patterns: BTreeMap<Affiliation, String>,
    /// The HMAC key national ID numbers are hashed with (at least 32 bytes); empty: national
    /// IDs are refused. Secret.
    pub national_id_key: Secret,
    /// `[lifecycle.activation]`: the activation paths open to each affiliation, code and
    /// flow lifetimes, failure limits, challenge difficulty.
    #[serde(default)]
    pub activation: sesame_lifecycle::activation::settings::ActivationPolicy,
    /// `[lifecycle.charter]`: the IT charter's version, link and text.
    #[serde(default)]
    pub charter: sesame_lifecycle::activation::settings::CharterPolicy,
    /// Forgotten password and verification links and codes.
    #[serde(default)]
    pub recovery: crate::recovery_settings::RecoverySettings,
    /// Days a disabled account is kept, counted from when it was disabled; then it is
    /// deleted (the audit trail stays).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

/// `lifecycle.retention_days` when not set.
fn default_retention_days() -> u32 {
    365
}

impl LifecycleSettings {
    /// What imports need: the e-mail patterns and the national ID key.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key at fault.
    pub fn import_rules(&self) -> Result<ImportRules, ConfigError> {
        let bad = |key: &str, e: &str| ConfigError(format!("invalid value for `{key}`: {e}"));
        // Each pattern on its own first, so the error names its key.
        for (key, raw) in
            std::iter::once(("lifecycle.email_pattern".to_owned(), &self.email_pattern)).chain(
                self.email_patterns
                    .iter()
                    .map(|(aff, raw)| (format!("lifecycle.email_patterns.{aff}"), raw)),
            )
        {
            if !raw.trim().is_empty() {
                EmailPattern::parse(raw).map_err(|e| bad(&key, &e))?;
            }
        }
        let email = EmailPatterns::new(&self.email_pattern, &self.email_patterns)
            .map_err(|e| bad("lifecycle.email_patterns", &e))?;
        let national_id_key = if self.national_id_key.is_empty() {
            None
        } else {
            Some(
                NationalIdKey::new(self.national_id_key.expose())
                    .map_err(|e| bad("lifecycle.national_id_key", &e.to_string()))?,
            )
        };
        Ok(ImportRules {
            email,
            national_id_key,
        })
    }
}

/// `[ui]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSettings {
    /// Shown in titles and texts.
    pub institution_name: String,
    /// Directory overriding templates (`templates/`), static files (`static/`) and texts
    /// (`messages/fr.toml`, `messages/en.toml`); empty for the built-in theme.
    pub theme_dir: String,
    /// Where the "help" links point; empty hides them.
    pub helpdesk_url: String,
    /// IANA time zone used to show times to people ("try again at 14:05"), e.g.
    /// `Europe/Paris` (daylight saving included).
    pub time_zone: String,
    /// Words no password may contain (institution name, city…).
    pub context_words: Vec<String>,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `sesame=debug,info`.
    pub level: String,
}

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

    fn validate(&self) -> Result<(), ConfigError> {
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

impl Default for Settings {
    fn default() -> Self {
        #[expect(
            clippy::expect_used,
            reason = "the embedded defaults are tested to parse"
        )]
        toml::from_str(DEFAULT_TOML).expect("embedded default.toml is valid")
    }
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
        figment = figment.merge(
            Env::prefixed("SESAME_")
                .ignore(&["config"])
                .filter(|key| !key.as_str().to_ascii_lowercase().ends_with("_file"))
                .split("__"),
        );
        // `SESAME_<SECTION>__<KEY>_FILE=/run/secrets/…`: the value is read from the file, so
        // secrets (database and Redis passwords) need not sit in the environment.
        for (var, path) in std::env::vars() {
            let Some(name) = var
                .strip_prefix("SESAME_")
                .and_then(|v| v.strip_suffix("_FILE"))
            else {
                continue;
            };
            let key = name.to_lowercase().replace("__", ".");
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
        let store_url = self.store.url.expose();
        if !(store_url == "memory://" || store_url.starts_with("redis://")) {
            return err(
                "store.url",
                "expected memory:// or redis://… (TLS to Redis, rediss://, is not supported yet)",
            );
        }
        if self.store.timeout_ms == 0 {
            return err("store.timeout_ms", "must be at least 1");
        }
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

    /// The effective configuration as TOML, with secrets masked.
    ///
    /// # Errors
    /// [`ConfigError`] if serialisation fails.
    pub fn to_masked_toml(&self) -> Result<String, ConfigError> {
        let mut masked = self.clone();
        masked.database.url = mask_url_password(masked.database.url.expose()).into();
        masked.store.url = mask_url_password(masked.store.url.expose()).into();
        if !masked.mail.smtp_password.is_empty() {
            masked.mail.smtp_password = "********".into();
        }
        if !masked.lifecycle.national_id_key.is_empty() {
            masked.lifecycle.national_id_key = "********".into();
        }
        if !masked.sms.http_auth_value.is_empty() {
            masked.sms.http_auth_value = "********".into();
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
            .map(|m| format!(" (from {})", m.name))
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
        let reference = include_str!("../../../docs/configuration.md");
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
}
