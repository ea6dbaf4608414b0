//! Prometheus metrics: the exporter, the separate listener that serves `/metrics`, and the
//! HTTP-side recording calls (names and labels live in `sesame-metrics`).
//!
//! `/metrics` is never on the public listener (security spec A60): it answers only on
//! `[metrics] listen`, which defaults to loopback. The public listener answers it 404 like
//! any unknown path.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sesame_core::authn::Authenticated;
use sesame_core::error::AuthError;
use sesame_protocol::cas::CasError;
use sesame_protocol::services::RegisteredService;

use crate::services::StartupError;

/// Bucket bounds, in seconds, of every duration histogram: from a Redis round trip (< 1 ms)
/// to a login that waited for the hashing pool and the failure delay (seconds).
const DURATION_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide exporter. The `metrics` facade has one global recorder per process, so
/// every `Application` of a process (tests start several) shares it.
static EXPORTER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle; `None` if
/// another recorder was installed first (then nothing is exported).
pub fn exporter() -> Option<PrometheusHandle> {
    EXPORTER
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(DURATION_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    sesame_metrics::describe();
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics exporter not installed");
                    None
                }
            }
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// An installed recorder keeps every histogram sample until upkeep folds it into the
/// buckets; only a scrape or `run_upkeep` does that. Without this thread, an instance nobody
/// scrapes grows by every request's samples (measured: peak RSS 73 MB → 160 MB over one
/// `make bench`). One thread per process, for the process-wide recorder.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started: histograms grow until scraped");
    }
}

/// Binds `[metrics] listen`; `None` when it is empty (metrics off).
///
/// # Errors
/// [`StartupError::Listen`] naming the key when the address cannot be bound.
pub fn bind(listen: &str) -> Result<Option<TcpListener>, StartupError> {
    if listen.trim().is_empty() {
        return Ok(None);
    }
    TcpListener::bind(listen)
        .map(Some)
        .map_err(|e| StartupError::Listen(format!("metrics.listen {listen}: {e}")))
}

/// The metrics server: `GET /metrics` in the Prometheus text format, 404 for anything else.
/// One worker: a scrape every few seconds is all it serves.
///
/// # Errors
/// [`StartupError::Listen`] if the listener cannot be used.
pub fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    shutdown_timeout_secs: u64,
) -> Result<Server, StartupError> {
    let handle = web::Data::new(handle);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(handle.clone())
            .route("/metrics", web::get().to(render))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .shutdown_timeout(shutdown_timeout_secs)
    .listen(listener)
    .map_err(|e| StartupError::Listen(format!("metrics.listen: {e}")))?
    .run();
    Ok(server)
}

async fn render(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// Records a login's outcome.
pub fn login(outcome: &Result<Authenticated, AuthError>) {
    sesame_metrics::login(match outcome {
        Ok(_) => "success",
        Err(AuthError::InvalidCredentials { .. }) => "invalid_credentials",
        Err(AuthError::ActivationCode) => "activation_code",
        Err(AuthError::Locked { .. }) => "locked",
        Err(AuthError::Throttled { .. }) => "throttled",
        Err(AuthError::Blocked) => "blocked",
        Err(AuthError::Disabled) => "disabled",
        Err(AuthError::Busy) => "busy",
        Err(AuthError::PasswordTooLong) => "password_too_long",
        Err(AuthError::Store(_) | AuthError::Repo(_) | AuthError::Hashing(_)) => "error",
    });
}

/// Records a CAS ticket validation: `success`, or the CAS error code (`INVALID_TICKET`…).
pub fn ticket_validated<T>(outcome: &Result<(T, RegisteredService), CasError>) {
    sesame_metrics::ticket_validated(match outcome {
        Ok(_) => "success",
        Err(e) => e.code.as_str(),
    });
}

/// Records a token response that carried tokens, by grant type (unknown grant types are
/// refused before any token, so the label set stays fixed).
pub fn token_response(grant_type: Option<&str>, response: &HttpResponse) {
    if !response.status().is_success() {
        return;
    }
    let grant = match grant_type {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        Some("client_credentials") => "client_credentials",
        _ => return,
    };
    sesame_metrics::token_issued(grant);
}

/// Middleware of the public listener: counts requests by route pattern (`/static/{name}`,
/// never the path itself), method and status, and times them.
///
/// # Errors
/// The inner service's errors, unchanged.
pub async fn track_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    // The pattern (`/static/{name}`), never the path: a fixed, small set of values.
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    sesame_metrics::http_request(&route, method, res.status().as_u16(), started.elapsed());
    Ok(res)
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
