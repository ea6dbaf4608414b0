//! The cross-site check of forms (security spec A41), as one middleware: a state-changing
//! request (`POST`, `PUT`, `PATCH`, `DELETE`) to a page's form whose `Origin` is not ours is
//! refused with the "form expired" page before any route sees it. Protocol endpoints, which
//! relying parties, browsers of other sites and machines call by design, are left alone
//! ([`is_protocol_endpoint`]).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, ResponseError};
use serde::Deserialize;

use super::error::{PageError, PageKind};
use super::AppState;

/// Whether a cross-site page sent this POST. Browsers send `Origin` on POSTs; when it is
/// present it must be ours (A41). SameSite=Lax and the single-use login ticket cover the rest.
pub fn is_cross_site(state: &AppState, req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get("origin") else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let Ok(ours) = url::Url::parse(state.base()) else {
        return true;
    };
    origin != ours.origin().ascii_serialization()
}

/// Whether this method changes state, and so must come from one of our own pages.
fn changes_state(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method)
}

/// Endpoints of the protocols and of the machines, called from other sites by design: token,
/// introspection, revocation and UserInfo (back channel or CORS), the authorization request
/// posted by a relying party (`response_mode`/`form_post`), OpenID Connect's end-session
/// endpoint, every CAS endpoint but the login form (ticket validation, SAML 1.1 validation,
/// logout with its own token), SAML's endpoints (requests posted by service providers' pages),
/// the admin API (API keys), metrics and health probes.
pub fn is_protocol_endpoint(path: &str) -> bool {
    matches!(
        path,
        "/token" | "/introspect" | "/revoke" | "/userinfo" | "/authorize" | "/logout" | "/metrics"
    ) || (path.starts_with("/cas/") && path != "/cas/login")
        || path.starts_with("/saml/")
        || path.starts_with("/admin/api/")
        || path.starts_with("/health")
}

/// The one field of a refused form that the answer uses: the language the page was in.
#[derive(Deserialize)]
struct LangField {
    lang: Option<String>,
}

/// Refuses a cross-site state-changing request to a page's form with the page the routes
/// gave before: 403, "the form has expired", in the form's language.
pub async fn refuse_cross_site_forms(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !changes_state(req.method()) || is_protocol_endpoint(req.path()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    if !is_cross_site(&state, req.request()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    // The body is read only to be refused: a form that is not one has no language.
    let explicit = req
        .extract::<web::Form<LangField>>()
        .await
        .ok()
        .and_then(|form| form.into_inner().lang);
    let lang = state.lang(req.request(), explicit.as_deref());
    let page = PageError::new(&state, req.request(), lang, PageKind::FORM_EXPIRED);
    Ok(req
        .into_response(page.error_response())
        .map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_endpoints_are_not_checked_and_forms_are() {
        for protocol in [
            "/token",
            "/introspect",
            "/revoke",
            "/userinfo",
            "/authorize",
            "/logout",
            "/cas/logout",
            "/cas/samlValidate",
            "/cas/serviceValidate",
            "/cas/p3/serviceValidate",
            "/admin/api/v1/accounts",
            "/metrics",
            "/health/live",
        ] {
            assert!(is_protocol_endpoint(protocol), "{protocol}");
        }
        for form in [
            "/cas/login",
            "/authorize/consent",
            "/account/password",
            "/account/applications/revoke",
            "/password/forgot",
            "/activation/step",
            "/assistance",
            "/charter",
            "/helpdesk/accounts/x/action",
            "/forgot-login",
        ] {
            assert!(!is_protocol_endpoint(form), "{form}");
        }
    }

    #[test]
    fn only_state_changing_methods_are_checked() {
        assert!(changes_state(&Method::POST));
        assert!(changes_state(&Method::DELETE));
        assert!(!changes_state(&Method::GET));
        assert!(!changes_state(&Method::OPTIONS));
    }
}
