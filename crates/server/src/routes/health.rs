//! `GET /health/live` (the process answers) and `GET /health/ready` (it can serve: database
//! and store reachable). Load balancers route on readiness; orchestrators restart on liveness.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::web::AppState;

/// Longest a readiness probe waits on one dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health/live`
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "up" }))
}

/// `GET /health/ready`: 200 when the database and the store answer, else 503 naming which
/// did not.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let services = &state.services;
    let (db, store) = futures::join!(
        tokio::time::timeout(PROBE_TIMEOUT, services.accounts_repo.ping()),
        tokio::time::timeout(PROBE_TIMEOUT, services.store.ping()),
    );
    let db_ok = matches!(db, Ok(Ok(())));
    let store_ok = matches!(store, Ok(Ok(())));
    let status = |ok: bool| if ok { "up" } else { "down" };
    let body = json!({
        "status": if db_ok && store_ok { "ready" } else { "unavailable" },
        "checks": { "database": status(db_ok), "store": status(store_ok) },
    });
    if db_ok && store_ok {
        HttpResponse::Ok().json(body)
    } else {
        if !db_ok {
            tracing::warn!(check = "database", "readiness check failed");
        }
        if !store_ok {
            tracing::warn!(check = "store", "readiness check failed");
        }
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}
