//! `GET|POST /charter`: accepting a new version of the IT charter after a login, before going
//! on to the service: the [`StepId::AcceptCharter`] step of a login transaction. Once the
//! acceptance is recorded, [`steps::next_or_finish`] goes on.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::i18n::Lang;

use sesame_core::login::steps::StepId;

use crate::pipeline::{steps, transaction};
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
    match transaction::parked_at(&state, &req, lang, StepId::AcceptCharter).await {
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
    let parked = match transaction::parked_at(&state, &req, lang, StepId::AcceptCharter).await {
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
    // The transaction names the account; its login (for the record) is read again.
    let account = match parked.tx.identified {
        Some(id) => state.services.accounts_repo.find_by_id(id).await,
        None => Ok(None),
    };
    let account = match account {
        Ok(Some(a)) => a,
        Ok(None) => return transaction::expired(&state, &req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while recording a charter acceptance");
            return state.unavailable(&req, lang);
        }
    };
    if let Err(e) = state
        .services
        .activation
        .accept_charter(account.id, account.login.as_str(), state.client_ip(&req))
        .await
    {
        tracing::error!(error = %e, "could not record a charter acceptance");
        return state.unavailable(&req, lang);
    }
    steps::next_or_finish(&state, &req, lang, parked).await
}
