//! The person's own account pages. For now: the applications they allowed to receive their
//! information over OpenID Connect, and withdrawing that permission.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::audit::{AuditEvent, AuditKind};

use crate::pipeline::session::current_session;
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

fn to_login(state: &AppState) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}/cas/login", state.base())))
        .finish()
}

/// `GET /account/applications`
pub async fn applications(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let lang = state.lang(&req, None);
    let Some((cookie, session)) = current_session(&state, &req).await else {
        return to_login(&state);
    };
    let consents = match state
        .services
        .oidc
        .consents
        .consents_of(session.account_id)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while listing consents");
            return state.unavailable(&req, lang);
        }
    };
    let texts = state.renderer.texts(lang);
    let items: Vec<minijinja::Value> = consents
        .iter()
        .map(|c| {
            let name = state
                .services
                .oidc
                .clients
                .get(&c.client_id)
                .map_or_else(|| c.client_id.clone(), |client| client.name.clone());
            let scopes: Vec<String> = c
                .scopes
                .iter()
                .map(|s| {
                    texts
                        .get(&format!("scope_{s}"))
                        .cloned()
                        .unwrap_or_else(|| s.clone())
                })
                .collect();
            minijinja::context! {
                client_id => c.client_id,
                name => name,
                scopes => scopes,
                granted_at => state.local_time(c.granted_at),
            }
        })
        .collect();
    state.page(
        StatusCode::OK,
        "applications.html",
        lang,
        &req,
        minijinja::context! {
            login => session.login.as_str(),
            consents => items,
            csrf => FormPurpose::ConsentWithdrawal.token(&cookie),
        },
    )
}

/// The withdrawal form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    client_id: Option<String>,
    csrf: Option<String>,
}

/// `POST /account/applications/revoke`: withdraws the consent and ends every grant the
/// application holds for the person (refresh and access tokens, offline ones included).
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RevokeForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let Some((cookie, session)) = current_session(&state, &req).await else {
        return to_login(&state);
    };
    if !FormPurpose::ConsentWithdrawal.accepts(&cookie, form.csrf.as_deref()) {
        return state.form_expired(&req, lang);
    }
    let client_id = form.client_id.as_deref().unwrap_or_default();
    let oidc = &state.services.oidc;
    let withdrawn = match oidc
        .consents
        .revoke_consent(session.account_id, client_id)
        .await
    {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while withdrawing a consent");
            return state.unavailable(&req, lang);
        }
    };
    if withdrawn {
        if let Err(e) = oidc
            .tokens
            .grants()
            .revoke_consent_grants(&session.account_id, client_id)
            .await
        {
            tracing::error!(error = %e, "could not revoke the grants of a withdrawn consent");
            return state.unavailable(&req, lang);
        }
        let event = AuditEvent::new(
            AuditKind::ConsentRevoked,
            state.services.clock.now(),
            "self",
        )
        .login(session.login.as_str())
        .account(session.account_id)
        .ip(state.client_ip(&req))
        .detail(serde_json::json!({ "client_id": client_id }));
        if let Err(e) = state.services.audit.record(event).await {
            tracing::error!(error = %e, "could not record a consent withdrawal");
        }
    }
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}/account/applications", state.base())))
        .finish()
}
