//! `GET|POST /cas/logout`: ends the SSO session everywhere (CAS Protocol 3.0 §2.3). The
//! server-side session is destroyed, so a copied cookie is dead on every instance.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::pipeline::end::end_session;
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

/// Query of `GET /cas/logout`. `service` redirects only to registered services, which arrive
/// with the CAS issue; until then it is ignored. `url` (CAS 2) is always ignored (A10).
#[derive(Debug, Deserialize)]
pub struct LogoutQuery {
    lang: Option<String>,
    service: Option<String>,
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
    // Back to the application only if it is registered: no open redirect (A10).
    let service = query
        .service
        .as_deref()
        .filter(|s| state.services.registry.find(s).is_some());
    end_session(&state, &req, query.lang.as_deref(), service).await
}

/// `POST /cas/logout`
pub async fn logout_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LogoutForm>,
) -> HttpResponse {
    if let Some(cookie) = req.cookie(&state.sso_cookie_name) {
        if !FormPurpose::Logout.accepts(cookie.value(), form.csrf.as_deref()) {
            let lang = state.lang(&req, None);
            return state.form_expired(&req, lang);
        }
    }
    end_session(&state, &req, None, None).await
}
