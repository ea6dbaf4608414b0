//! The cross-site check of forms (security spec A41).

use actix_web::HttpRequest;

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
