//! The new-password page of the forgotten-password flow, shared by every way into it (the
//! mailed link, an SMS or helpdesk code in `routes::password_reset`, the identity check in
//! `routes::activation`): one form, posted to `/password/reset` with the verified token.

use actix_web::http::header::{HeaderValue, REFERRER_POLICY};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::account::Account;
use sesame_core::i18n::Lang;

use crate::web::AppState;

/// The form for `account`'s new password, carrying `token`, with the policy of its
/// affiliation and any `errors`. Served with `Referrer-Policy: no-referrer`: the page holds a
/// token (A49).
pub fn new_password_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    token: &str,
    account: &Account,
    errors: Option<Vec<String>>,
) -> HttpResponse {
    let rules = state
        .services
        .accounts
        .policies()
        .for_affiliation(account.affiliation)
        .describe(lang);
    let mut res = state.page(
        status,
        "reset_new_password.html",
        lang,
        req,
        minijinja::context! {
            token => token,
            login => account.login.as_str(),
            rules => rules,
            errors => errors,
        },
    );
    res.headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}
