//! The Sesame server: configuration, the HTTP application, page rendering and the operator
//! commands. The only crate that knows actix-web; it knows storage only through the ports of
//! `sesame-core`.

pub mod cas_params;
pub mod cli;
pub mod config;
pub mod config_error;
pub mod cors;
pub mod ldap;
pub mod metrics;
pub mod operations;
pub mod pipeline;
pub mod proxy_callback;
pub mod request_id;
pub mod reset_form;
pub mod routes;
pub mod saml_federation;
pub mod services;
pub mod telemetry;
pub mod templates;
pub mod web;

#[cfg(test)]
mod layout_tests;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web as aw, App, HttpServer};

use crate::config::Settings;
use crate::services::{Overrides, Services, StartupError};
use crate::templates::Renderer;
use crate::web::AppState;

/// A bound, ready-to-run Sesame HTTP server.
pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    /// The admin API's own listener (`admin_api.listen`), when it has one.
    admin: Option<(u16, Server)>,
    /// The metrics listener's server and port, when `[metrics] listen` is set.
    metrics: Option<(Server, u16)>,
    /// The LDAP listeners, when `[ldap]` sets one; they stop when this is dropped.
    ldap: Option<ldap::LdapListeners>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects storage, binds `settings.server.listen` and builds the server.
    ///
    /// # Errors
    /// [`StartupError`] when storage, theme or listener fail.
    pub async fn build(settings: Settings, overrides: Overrides) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(&settings.server.listen).map_err(|e| {
            StartupError::Store(format!("server.listen {}: {e}", settings.server.listen))
        })?;
        Self::build_with_listener(settings, overrides, listener).await
    }

    /// As [`Application::build`], on an already bound listener (tests bind port 0).
    ///
    /// # Errors
    /// [`StartupError`] when storage or theme fail.
    pub async fn build_with_listener(
        settings: Settings,
        overrides: Overrides,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let services =
            Services::build(&settings, &overrides, settings.database.migrate_on_start).await?;
        let renderer = Renderer::load(services::theme_dir(&settings))
            .map_err(|e| StartupError::Theme(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Store(e.to_string()))?
            .port();
        let state = aw::Data::new(AppState::new(settings.clone(), services.clone(), renderer));
        let workers = if settings.server.workers == 0 {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        } else {
            settings.server.workers
        };
        spawn_housekeeping(
            &services,
            std::time::Duration::from_secs(settings.oidc.key_reload_secs),
        );
        spawn_retention(&services);
        if settings.mail.transport == sesame_mail::transport::TransportKind::Outbox {
            sesame_mail::outbox::OutboxTransport::prepare(std::path::Path::new(
                &settings.mail.outbox_dir,
            ))
            .map_err(|e| StartupError::Mail(e.to_string()))?;
        }
        // Delivers queued mail every interval, and at once when a flow queues one.
        services.mail.worker.spawn(std::time::Duration::from_secs(
            settings.mail.worker_interval_secs,
        ));
        let metrics = match metrics::bind(&settings.metrics.listen)? {
            Some(listener) => {
                let port = listener
                    .local_addr()
                    .map_err(|e| StartupError::Listen(e.to_string()))?
                    .port();
                metrics::exporter()
                    .map(|handle| {
                        metrics::serve(listener, handle, settings.server.shutdown_timeout_secs)
                    })
                    .transpose()?
                    .map(|server| (server, port))
            }
            None => None,
        };
        // After the metrics recorder is installed: the first fetch is counted.
        if let Some(saml) = &services.saml {
            saml_federation::start(&settings.saml, &saml.providers, &services.clock)
                .await
                .map_err(|e| StartupError::Saml(e.to_string()))?;
        }
        let ldap = ldap::start(&settings, &services).await?;
        let https = settings.is_https();
        let admin = admin_server(&settings, &state)?;
        let admin_on_public = settings.admin_api.enabled && admin.is_none();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(aw::FormConfig::default().limit(16 * 1024))
                .app_data(aw::QueryConfig::default())
                .wrap(security_headers(https))
                .wrap(from_fn(web::access_log))
                .configure(|cfg| {
                    if admin_on_public {
                        routes::admin::configure(cfg);
                    }
                })
                .wrap(from_fn(metrics::track_http))
                .wrap(from_fn(web::origin::refuse_cross_site_forms))
                .configure(routes::configure)
        })
        .workers(workers)
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .listen(listener)
        .map_err(|e| StartupError::Store(e.to_string()))?
        .run();
        Ok(Self {
            port,
            server,
            services,
            admin,
            metrics,
            ldap,
        })
    }

    /// The LDAP listener's port, when `ldap.listen` is set.
    pub fn ldap_port(&self) -> Option<u16> {
        self.ldap.as_ref().and_then(|l| l.port)
    }

    /// The LDAPS listener's port, when `ldap.listen_tls` is set.
    pub fn ldaps_port(&self) -> Option<u16> {
        self.ldap.as_ref().and_then(|l| l.tls_port)
    }

    /// The admin API's own port, when `admin_api.listen` gives it one.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin.as_ref().map(|(port, _)| *port)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound port of the metrics listener, if `[metrics] listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    /// The services behind the server (tests reach the same store and database).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until stopped. SIGTERM is graceful: the listener closes and in-flight requests
    /// get `server.shutdown_timeout_secs` to finish; SIGINT and SIGQUIT stop at once.
    ///
    /// # Errors
    /// I/O errors of the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // Every server stops on the same signals; the public one's result is the answer, the
        // admin listener's error is one too, the metrics listener's is only logged. The LDAP
        // listeners stop with them (their handle is dropped on return).
        let _ldap = self.ldap;
        let metrics = async {
            if let Some((metrics_server, _)) = self.metrics {
                if let Err(e) = metrics_server.await {
                    tracing::warn!(error = %e, "the metrics listener stopped with an error");
                }
            }
        };
        match self.admin {
            Some((_, admin)) => {
                let (public, admin, ()) = futures::future::join3(self.server, admin, metrics).await;
                public.and(admin)
            }
            None => {
                let (public, ()) = futures::future::join(self.server, metrics).await;
                public
            }
        }
    }
}

/// The admin API on its own listener (`admin_api.listen`): only `/admin/api/v1/…` answers
/// there, and the public listener does not serve it (security spec A60).
fn admin_server(
    settings: &Settings,
    state: &aw::Data<AppState>,
) -> Result<Option<(u16, Server)>, StartupError> {
    let a = &settings.admin_api;
    if !a.enabled || a.listen.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(&a.listen)
        .map_err(|e| StartupError::Listen(format!("admin_api.listen {}: {e}", a.listen)))?;
    let port = listener
        .local_addr()
        .map_err(|e| StartupError::Listen(e.to_string()))?
        .port();
    let state = state.clone();
    let https = settings.is_https();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(security_headers(https))
            .wrap(from_fn(web::access_log))
            .configure(routes::admin::configure)
            .default_service(aw::to(routes::admin::not_found))
    })
    // Provisioning runs and helpdesk tools are few; the public workers serve people.
    .workers(2)
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    .listen(listener)
    .map_err(|e| StartupError::Listen(e.to_string()))?
    .run();
    tracing::info!(listen = %a.listen, "admin API on its own listener");
    Ok(Some((port, server)))
}

/// Headers every response carries unless the route set its own (security spec A45).
fn security_headers(https: bool) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        ))
        .add(("Cache-Control", "no-store"))
        .add(("Pragma", "no-cache"));
    if https {
        headers = headers.add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ));
    }
    headers
}

/// How often an instance measures again its clock's offset to the shared store's: machine
/// clocks drift, or are stepped by NTP, between two measures.
const CLOCK_ALIGNMENT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Background upkeep: hourly cleanup of records that only matter until they expire (ended
/// login locks, known devices whose cookie has expired, signing keys no longer published), a periodic reread of the signing keys
/// so that a key rotated on one instance is published and used by all, and the alignment of
/// the clock on the shared store's.
fn spawn_housekeeping(services: &Services, key_reload: std::time::Duration) {
    let repo = std::sync::Arc::clone(&services.accounts_repo);
    let clock = std::sync::Arc::clone(&services.clock);
    let keys = std::sync::Arc::clone(services.oidc.tokens.keys());
    let devices = services.devices.clone();
    tokio::spawn(async move {
        let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            match repo.purge_expired_login_locks(clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired login locks removed"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired login locks"),
            }
            match devices.purge().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    purged = n,
                    "known devices unseen for their cookie's lifetime removed"
                ),
                Err(e) => tracing::warn!(error = %e, "could not purge known devices"),
            }
            if let Err(e) = keys.purge().await {
                tracing::warn!(error = %e, "could not purge unpublished signing keys");
            }
        }
    });
    if let Some(clock) = services.deployment_clock.clone() {
        let store = std::sync::Arc::clone(&services.store);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CLOCK_ALIGNMENT_INTERVAL);
            every.tick().await;
            loop {
                every.tick().await;
                services::align_clock(&clock, store.as_ref()).await;
            }
        });
    }
    let keys = std::sync::Arc::clone(services.oidc.tokens.keys());
    let saml_keys = services
        .saml
        .as_ref()
        .map(|s| std::sync::Arc::clone(&s.keys));
    tokio::spawn(async move {
        let mut every = tokio::time::interval(key_reload);
        every.tick().await;
        loop {
            every.tick().await;
            if let Err(e) = keys.reload().await {
                tracing::warn!(error = %e, "could not reread the signing keys");
            }
            if let Some(saml) = &saml_keys {
                if let Err(e) = saml.reload().await {
                    tracing::warn!(error = %e, "could not reread the SAML signing keys");
                }
            }
        }
    });
}

/// Retention, once a day (the first pass an hour after start, so a restart loop does not
/// delete in a burst): disabled accounts past `lifecycle.retention_days` are deleted. Several
/// instances may run it; each deletion is checked again in its own transaction, so an account
/// is deleted (and audited) once.
fn spawn_retention(services: &Services) {
    let retention = services.helpdesk.retention.clone();
    tokio::spawn(async move {
        let day = std::time::Duration::from_secs(24 * 3600);
        let mut every_day = tokio::time::interval_at(
            tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
            day,
        );
        loop {
            every_day.tick().await;
            match retention.run(false, "retention").await {
                Ok(report) if report.deleted.is_empty() => {}
                Ok(report) => tracing::info!(
                    deleted = report.deleted.len(),
                    "disabled accounts past the retention period deleted"
                ),
                Err(e) => tracing::warn!(error = %e, "retention run failed"),
            }
        }
    });
}
