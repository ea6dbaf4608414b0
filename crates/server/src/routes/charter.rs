//! `GET|POST /charter`: accepting a new version of the IT charter after a login, before going
//! on to the service: the [`RequiredAction::AcceptCharter`] step of a parked login. Once the
//! acceptance is recorded, [`required_actions::next_or_finish`] goes on.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::i18n::Lang;

use super::required_actions::{self, RequiredAction};
use crate::web::AppState;

/// `?lang=`
#[derive(Debug, Deserialize)]
pub struct CharterQuery {
    lang: Option<String>,
}

/// The charter form.
#[derive(Debug, Deserialize)]
pub struct CharterForm {
    accept: Option<String>,
    lang: Option<String>,
}

fn charter_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let charter = state.services.activation.charter();
    state.page(
        status,
        "charter.html",
        lang,
        req,
        minijinja::context! {
            error => error,
            charter_version => charter.version,
            charter_url => charter.url,
            charter_text => charter.text,
        },
    )
}

/// `GET /charter`
pub async fn show_charter(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CharterQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    match required_actions::parked_at(&state, &req, lang, RequiredAction::AcceptCharter).await {
        Ok(_) => charter_page(&state, &req, lang, StatusCode::OK, None),
        Err(response) => response,
    }
}

/// `POST /charter`
pub async fn submit_charter(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CharterForm>,
) -> HttpResponse {
    let lang = state.lang(&req, form.lang.as_deref());
    let parked = match required_actions::parked_at(
        &state,
        &req,
        lang,
        RequiredAction::AcceptCharter,
    )
    .await
    {
        Ok(p) => p,
        Err(response) => return response,
    };
    if !form
        .accept
        .as_deref()
        .is_some_and(|v| v == "true" || v == "on")
    {
        let msg = state.renderer.text(lang, "charter_error_required");
        return charter_page(&state, &req, lang, StatusCode::BAD_REQUEST, Some(msg));
    }
    if let Err(e) = state
        .services
        .activation
        .accept_charter(
            parked.login.account_id,
            &parked.login.login,
            state.client_ip(&req),
        )
        .await
    {
        tracing::error!(error = %e, "could not record a charter acceptance");
        return state.unavailable(&req, lang);
    }
    required_actions::next_or_finish(&state, &req, lang, parked).await
}
