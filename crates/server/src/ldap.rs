//! The LDAP interface's wiring (docs/ldap.md): the directory backend over the same services
//! the web login uses, and the listeners, started beside the HTTP server when `[ldap]` sets
//! one.
//!
//! A bind is the web login's procedure: `Authenticator::login` (hashing pool, address and
//! login counters, lock, audit events marked `via: ldap`), then the same refusal of a password
//! an unblock voided as `pipeline::steps` applies. No device cookie: an LDAP bind counts on
//! the login's counter, so a person's known browsers keep working while an attacker hammers
//! IMAP (ADR 0012).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sesame_core::account::{Account, AccountWithProfile};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::authn::{LoginAttempt, LoginChannel};
use sesame_core::credentials::Password;
use sesame_core::error::AuthError;
use sesame_core::ids::{fold_identifier, Affiliation};
use sesame_ldap::{
    BackendError, BindRefusal, Directory, DirectoryBackend, DirectoryOptions, LdapServer,
    ServerOptions, ServiceAccounts, TlsFiles,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;
use crate::services::{Services, StartupError};

/// The directory backend over Sesame's services.
#[derive(Debug, Clone)]
pub struct AccountsDirectory {
    services: Services,
}

impl AccountsDirectory {
    /// Over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

fn backend_error(e: impl std::fmt::Display) -> BackendError {
    BackendError(e.to_string())
}

#[async_trait]
impl DirectoryBackend for AccountsDirectory {
    async fn bind_person(
        &self,
        identifier: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Account, BindRefusal> {
        let outcome = self
            .services
            .authenticator
            .login(LoginAttempt {
                login: identifier.to_owned(),
                password: Password::new(password),
                client_ip,
                device: None,
                channel: LoginChannel::Ldap,
            })
            .await;
        crate::metrics::login(&outcome);
        let account = match outcome {
            Ok(done) => done.account,
            Err(AuthError::Busy) => return Err(BindRefusal::Busy),
            Err(e @ (AuthError::Store(_) | AuthError::Repo(_) | AuthError::Hashing(_))) => {
                return Err(BindRefusal::Unavailable(e.to_string()))
            }
            Err(_) => return Err(BindRefusal::InvalidCredentials),
        };
        // A password an unblock voided may be the one a phisher typed: it proves nothing
        // here either (the login page sends its owner to set a new one).
        match self
            .services
            .helpdesk
            .desk
            .password_change_required(&account)
            .await
        {
            Ok(false) => Ok(account),
            Ok(true) => {
                // As the login page records it: the audit trail says why, the client only
                // "invalid credentials".
                let event = crate::pipeline::steps::voided_password_refusal(
                    self.services.clock.now(),
                    &account,
                    client_ip,
                    Some("ldap"),
                );
                match self.services.audit.record(event).await {
                    Ok(()) => Err(BindRefusal::InvalidCredentials),
                    Err(e) => Err(BindRefusal::Unavailable(e.to_string())),
                }
            }
            Err(e) => Err(BindRefusal::Unavailable(e.to_string())),
        }
    }

    async fn person(&self, identifier: &str) -> Result<Option<AccountWithProfile>, BackendError> {
        self.services
            .profiles
            .directory_entry(&fold_identifier(identifier))
            .await
            .map_err(backend_error)
    }

    async fn service_bind_refused(
        &self,
        name: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<(), BackendError> {
        // The name as given, bounded: it is the client's string.
        let name: String = name.chars().take(128).collect();
        let event = AuditEvent::new(
            AuditKind::LdapServiceBindRefused,
            self.services.clock.now(),
            "ldap",
        )
        .ip(client_ip)
        .detail(serde_json::json!({ "service": name }));
        self.services
            .audit
            .record(event)
            .await
            .map_err(backend_error)
    }

    async fn people(
        &self,
        after: Option<&str>,
        affiliation: Option<Affiliation>,
        limit: usize,
    ) -> Result<Vec<AccountWithProfile>, BackendError> {
        self.services
            .profiles
            .directory_page(after, affiliation, i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(backend_error)
    }
}

/// The running LDAP listeners.
#[derive(Debug)]
pub struct LdapListeners {
    /// The LDAP (StartTLS) listener's port.
    pub port: Option<u16>,
    /// The LDAPS listener's port.
    pub tls_port: Option<u16>,
    /// Stops them (dropping it stops them too).
    pub shutdown: watch::Sender<bool>,
}

async fn bind(key: &str, address: &str) -> Result<Option<(TcpListener, u16)>, StartupError> {
    if address.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| StartupError::Listen(format!("{key} {address}: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| StartupError::Listen(e.to_string()))?
        .port();
    Ok(Some((listener, port)))
}

/// Starts the listeners `[ldap]` sets, if any.
///
/// # Errors
/// [`StartupError`] when an address cannot be bound or the certificate cannot be read.
pub async fn start(
    settings: &Settings,
    services: &Services,
) -> Result<Option<LdapListeners>, StartupError> {
    let ldap = &settings.ldap;
    if !ldap.enabled() {
        return Ok(None);
    }
    let config = |e: crate::config::ConfigError| StartupError::Listen(e.to_string());
    let tls = if ldap.tls_cert_file.is_empty() {
        None
    } else {
        Some(Arc::new(
            TlsFiles::load(
                PathBuf::from(&ldap.tls_cert_file),
                PathBuf::from(&ldap.tls_key_file),
            )
            .map_err(|e| StartupError::Listen(format!("ldap TLS: {e}")))?,
        ))
    };
    let organization = if ldap.organization.is_empty() {
        settings.ui.institution_name.clone()
    } else {
        ldap.organization.clone()
    };
    let directory = Directory::new(
        DirectoryOptions {
            base: ldap.base().map_err(config)?,
            organization,
            principal_scope: settings.cas.principal_scope.clone(),
            bind_by_mail: ldap.bind_by_mail,
            anonymous_directory: ldap.anonymous_directory,
            size_limit: ldap.size_limit,
            time_limit: ldap.time_limit(),
            scan_limit: ldap.scan_limit,
            max_concurrent_scans: ldap.max_concurrent_scans,
            max_concurrent_binds: if ldap.max_concurrent_binds == 0 {
                (services.pool.workers() / 2).max(1)
            } else {
                ldap.max_concurrent_binds
            },
            bind_wait: Duration::from_millis(ldap.bind_wait_ms),
            start_tls: tls.is_some(),
            services: ServiceAccounts::new(ldap.services().map_err(config)?),
        },
        Arc::new(AccountsDirectory::new(services.clone())),
    );
    let server = LdapServer::new(
        directory,
        ServerOptions {
            tls,
            cleartext_binds: ldap.cleartext(),
            relaying_peers: ldap.relaying_peers().map_err(config)?,
            max_connections: ldap.max_connections,
            idle_timeout: Duration::from_secs(ldap.idle_timeout_secs),
        },
    );
    let (shutdown, stopped) = watch::channel(false);
    let plain = bind("ldap.listen", &ldap.listen).await?;
    let secure = bind("ldap.listen_tls", &ldap.listen_tls).await?;
    let port = plain.as_ref().map(|(_, p)| *p);
    let tls_port = secure.as_ref().map(|(_, p)| *p);
    for (listener, implicit_tls) in [(plain, false), (secure, true)] {
        if let Some((listener, port)) = listener {
            let server = server.clone();
            let stopped = stopped.clone();
            tracing::info!(port, implicit_tls, "LDAP listener started");
            tokio::spawn(async move { server.serve(listener, implicit_tls, stopped).await });
        }
    }
    Ok(Some(LdapListeners {
        port,
        tls_port,
        shutdown,
    }))
}
