//! CORS (Fetch standard §3.2) for the three endpoints a single-page application calls from
//! the browser: `/token` (RFC 6749 §3.2: "the authorization server MUST support CORS … for
//! public clients", as RFC 9700 §2.1.1 and the OAuth browser-based apps BCP describe),
//! `/revoke` and `/userinfo`.
//!
//! Only the origins of registered **public** clients' redirect URIs are answered, each by its
//! own name: never `*`, never `Access-Control-Allow-Credentials` (these endpoints take no
//! cookie; a browser sends its credentials in the request itself). The set of origins is
//! computed once, when the client registry is built
//! ([`ClientRegistry::is_public_client_origin`]); a request costs one hash lookup. Every other
//! endpoint, and every other origin, gets no CORS header: a page of another origin can post
//! to them (as any form can) but never read the answer.
//!
//! [`ClientRegistry::is_public_client_origin`]: sesame_protocol::oidc::clients::ClientRegistry::is_public_client_origin

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::web::AppState;

/// How long a browser may keep a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// The request headers an application may send: `Authorization` (a bearer token for
/// UserInfo, Basic is for confidential clients but harmless) and `Content-Type`.
const ALLOWED_HEADERS: &str = "authorization, content-type";

/// The `Origin` of `req` if it is a public client's.
fn allowed_origin(state: &AppState, req: &HttpRequest) -> Option<HeaderValue> {
    let origin = req.headers().get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    state
        .services
        .oidc
        .clients
        .is_public_client_origin(text)
        .then(|| origin.clone())
}

/// Wraps `/token`, `/revoke` and `/userinfo`: an answer to a public client's origin (errors
/// included, so the application can read `invalid_grant`) names that origin.
pub async fn public_client_cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let origin = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| allowed_origin(state, req.request()));
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    // The answer differs by origin: caches must not mix them.
    headers.append(VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        // A 401 of UserInfo says why in this header (RFC 6750 §3).
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
    Ok(res)
}

/// `OPTIONS` on the three endpoints: the preflight of a request with `Authorization` or a
/// JSON `Content-Type`. 204 with the methods and headers allowed for a public client's
/// origin asking for one of the endpoint's methods; 403 without any CORS header otherwise.
pub async fn preflight(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let methods = if req.path().ends_with("/userinfo") {
        "GET, POST"
    } else {
        "POST"
    };
    let asked = req
        .headers()
        .get(ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let method_allowed = !asked.is_empty() && methods.split(", ").any(|m| m == asked);
    if allowed_origin(&state, &req).is_none() || !method_allowed {
        return HttpResponse::Forbidden().finish();
    }
    HttpResponse::NoContent()
        .insert_header((ACCESS_CONTROL_ALLOW_METHODS, methods))
        .insert_header((ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
        .insert_header((ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE_SECS))
        .finish()
}
