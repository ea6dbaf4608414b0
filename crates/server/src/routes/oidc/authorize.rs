//! `GET|POST /authorize`, `/authorize/continue` and the consent form (`/authorize/consent`).
//! What they do is the pipeline's OpenID Connect end (`crate::pipeline::oidc`): a request is
//! answered from the session, or parked while the person logs in or consents. A consent asked
//! right after a login is that login transaction's [`StepId::Consent`] step; a consent asked
//! of a browser already logged in names the parked request in its form.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::login::steps::StepId;

use super::FormParams;
use crate::pipeline::oidc::{self, ConsentForm};
use crate::pipeline::session::current_session;
use crate::pipeline::transaction;
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

/// `GET /authorize`
pub async fn authorize_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let params = FormParams::parse(req.query_string().as_bytes());
    let session = current_session(&state, &req).await;
    oidc::start(&state, &req, params.pairs().to_vec(), session).await
}

/// `POST /authorize` (OpenID Connect Core §3.1.2.1: form-encoded body).
pub async fn authorize_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let params = FormParams::parse(&body);
    let session = current_session(&state, &req).await;
    oidc::start(&state, &req, params.pairs().to_vec(), session).await
}

/// Query of `/authorize/continue`.
#[derive(Debug, Deserialize)]
pub struct ContinueQuery {
    authz: Option<String>,
}

/// `GET /authorize/continue?authz=…`: a parked request answered with this browser's session.
/// A login made for a request completes it directly; this is the way back for logins begun
/// on an instance of the previous version during a rolling upgrade.
pub async fn resume(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ContinueQuery>,
) -> HttpResponse {
    let session = current_session(&state, &req).await;
    let id = query.authz.as_deref().unwrap_or_default();
    oidc::resume(&state, &req, id, session).await
}

/// `GET /authorize/consent`: the consent step of this browser's login transaction.
pub async fn show_consent_step(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = state.lang(&req, None);
    match transaction::parked_at(&state, &req, lang, StepId::Consent).await {
        Ok(parked) => {
            oidc::consent_step_page(&state, &req, lang, &parked.tx.continuation, parked.token())
                .await
        }
        Err(response) => response,
    }
}

/// `POST /authorize/consent`
pub async fn consent(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ConsentForm>,
) -> HttpResponse {
    let session = current_session(&state, &req).await;
    if !form.is_login_step() {
        return oidc::consent(&state, &req, &form, session).await;
    }
    let lang = state.lang(&req, None);
    let parked = match transaction::parked(&state, &req).await {
        Ok(Some(p)) if p.tx.current_step() == Some(StepId::Consent) => p,
        // Answered already (a second submission), refused, expired, or never begun.
        Ok(_) => return oidc::expired_page(&state, &req),
        Err(e) => {
            tracing::error!(error = %e, "could not read a login transaction");
            return state.unavailable(&req, lang);
        }
    };
    let purpose = FormPurpose::Consent { pending_id: "" };
    if !purpose.accepts(parked.token(), form.csrf.as_deref()) {
        return state.form_expired(&req, lang);
    }
    oidc::answer_consent_step(&state, &req, lang, &parked, session, form.allowed()).await
}
