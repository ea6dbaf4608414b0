//! `GET|POST /cas/logout`: ends the SSO session everywhere (CAS Protocol 3.0 §2.3). The
//! server-side session is destroyed, so a copied cookie is dead on every instance.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::audit::{AuditEvent, AuditKind};

use crate::routes::login::logout_csrf_token;
use crate::web::AppState;

/// Query of `GET /cas/logout`. `service` redirects only to registered services, which arrive
/// with the CAS issue; until then it is ignored. `url` (CAS 2) is always ignored (A10).
#[derive(Debug, Deserialize)]
pub struct LogoutQuery {
    lang: Option<String>,
}

/// Form of `POST /cas/logout` (the button on the logged-in page).
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// `GET /cas/logout`
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LogoutQuery>,
) -> HttpResponse {
    end_session(&state, &req, query.lang.as_deref()).await
}

/// `POST /cas/logout`
pub async fn logout_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LogoutForm>,
) -> HttpResponse {
    if let Some(cookie) = req.cookie(&state.sso_cookie_name) {
        if form.csrf.as_deref() != Some(logout_csrf_token(cookie.value()).as_str()) {
            let lang = state.lang(&req, None);
            return state.error_page(
                StatusCode::FORBIDDEN,
                lang,
                &req,
                "error_title",
                "error_form_expired",
            );
        }
    }
    end_session(&state, &req, None).await
}

async fn end_session(state: &AppState, req: &HttpRequest, lang: Option<&str>) -> HttpResponse {
    let lang = state.lang(req, lang);
    if let Some(cookie) = req.cookie(&state.sso_cookie_name) {
        match state.services.sessions.close(cookie.value()).await {
            Ok(Some(session)) => {
                let event = AuditEvent::new(AuditKind::Logout, state.services.clock.now(), "self")
                    .login(session.login.as_str())
                    .account(session.account_id)
                    .ip(state.client_ip(req));
                if let Err(e) = state.services.audit.record(event).await {
                    tracing::error!(error = %e, "could not record a logout");
                }
            }
            Ok(None) => {}
            Err(e) => {
                // Never tell someone they are logged out when the session may live on.
                tracing::error!(error = %e, "logout failed: store unavailable");
                let mut res = state.error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    lang,
                    req,
                    "error_title",
                    "error_unavailable",
                );
                res.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static("5"),
                );
                return res;
            }
        }
    }
    let mut res = state.page(
        StatusCode::OK,
        "logged_out.html",
        lang,
        req,
        minijinja::context! {},
    );
    if let Err(e) = res.add_cookie(&state.sso_cookie_removal()) {
        tracing::warn!(error = %e, "could not clear the SSO cookie");
    }
    res
}
