//! The Sesame server: configuration, the HTTP application, page rendering and the operator
//! commands. The only crate that knows actix-web; it knows storage only through the ports of
//! `sesame-core`.

pub mod cas_flow;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod oidc_flow;
pub mod proxy_callback;
pub mod routes;
pub mod services;
pub mod telemetry;
pub mod templates;
pub mod web;

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
    /// The metrics listener's server and port, when `[metrics] listen` is set.
    metrics: Option<(Server, u16)>,
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
        let https = settings.is_https();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(aw::FormConfig::default().limit(16 * 1024))
                .app_data(aw::QueryConfig::default())
                .wrap(security_headers(https))
                .wrap(from_fn(web::access_log))
                .wrap(from_fn(metrics::track_http))
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
            metrics,
        })
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
        match self.metrics {
            // Both servers stop on the same signals; the public one's result is the answer.
            Some((metrics_server, _)) => {
                let (public, metrics) = futures::future::join(self.server, metrics_server).await;
                if let Err(e) = metrics {
                    tracing::warn!(error = %e, "the metrics listener stopped with an error");
                }
                public
            }
            None => self.server.await,
        }
    }
}

/// Headers every response carries unless the route set its own (security spec A45).
fn security_headers(https: bool) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
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

/// Background upkeep: hourly cleanup of records that only matter until they expire (ended
/// login locks, signing keys no longer published), and a periodic reread of the signing keys
/// so that a key rotated on one instance is published and used by all.
fn spawn_housekeeping(services: &Services, key_reload: std::time::Duration) {
    let repo = std::sync::Arc::clone(&services.accounts_repo);
    let clock = std::sync::Arc::clone(&services.clock);
    let keys = std::sync::Arc::clone(services.oidc.tokens.keys());
    tokio::spawn(async move {
        let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            match repo.purge_expired_login_locks(clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired login locks removed"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired login locks"),
            }
            if let Err(e) = keys.purge().await {
                tracing::warn!(error = %e, "could not purge unpublished signing keys");
            }
        }
    });
    let keys = std::sync::Arc::clone(services.oidc.tokens.keys());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(key_reload);
        every.tick().await;
        loop {
            every.tick().await;
            if let Err(e) = keys.reload().await {
                tracing::warn!(error = %e, "could not reread the signing keys");
            }
        }
    });
}
