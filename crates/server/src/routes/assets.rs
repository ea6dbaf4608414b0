//! `GET /static/{name}`: the theme's CSS, JavaScript and logo.

use actix_web::{web, HttpResponse};

use crate::web::AppState;

/// Serves a built-in or themed static file.
pub async fn static_file(state: web::Data<AppState>, name: web::Path<String>) -> HttpResponse {
    match state.renderer.static_file(&name) {
        Some((content_type, bytes)) => HttpResponse::Ok()
            .content_type(content_type)
            .insert_header(("Cache-Control", "public, max-age=3600"))
            .body(bytes),
        None => HttpResponse::NotFound().finish(),
    }
}
