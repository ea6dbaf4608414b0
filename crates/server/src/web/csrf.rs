//! Tokens that forms carry against cross-site request forgery.

use sesame_core::random;

/// The token that the logged-in page's logout form carries: derived from the session cookie,
/// which a cross-site attacker does not know.
pub fn logout_csrf_token(cookie_value: &str) -> String {
    random::sha256_hex(&format!("logout-csrf:{cookie_value}"))
}
