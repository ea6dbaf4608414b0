//! `GET /.well-known/openid-configuration` and `GET /jwks`.

use actix_web::{web, HttpResponse};

use crate::web::AppState;

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4). Public and
/// the same for everyone, so caches may keep it for an hour.
pub async fn configuration(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .content_type("application/json")
        .body(state.services.oidc.discovery_json.clone())
}

/// `GET /jwks`: every published signing key (RFC 7517). A key is published before it signs
/// and after it stops. Clients may cache this for a minute: with every instance rereading
/// the keys within `key_reload_secs` (≤ the activation delay, 60 s by default), a new key
/// reaches a client's cache before the default 120 s activation delay ends.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .content_type("application/json")
        .body(state.services.oidc.tokens.keys().key_set().jwks_body())
}
